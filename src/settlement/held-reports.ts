import type { Queryable } from '../db/pool.js';
import { nowMs } from '../clock.js';
import { PennyError } from '../errors.js';
import * as store from './settlement-store.js';

/**
 * What an operator sees and does about imported settlement reports that settlement failed to read
 * (`settlement_report_unreadable`, `settlement_report_held`): list them, and release one once its
 * cause is fixed, so the next settlement tick reads it.
 */
export const reportFileAttemptsListedMax = 100;

/** The first `reportFileAttemptsListedMax`, and whether more are left out. */
export async function listReportFileAttempts(db: Queryable):
Promise<{ attempts: store.ReportFileAttempt[]; hasMore: boolean }> {
  const found = await store.selectReportFileAttempts(db, reportFileAttemptsListedMax + 1);
  return { attempts: found.slice(0, reportFileAttemptsListedMax), hasMore: found.length > reportFileAttemptsListedMax };
}

/**
 * Makes the file due now (the clock's now: the caller configures it as the server's); a file held
 * after its last attempt is held again by one more failure. Refuses a file with no failed reading.
 */
export async function releaseReportFile(db: Queryable, fileId: string): Promise<void> {
  const released = await store.releaseReportFileAttempt(db, { fileId, now: new Date(nowMs()).toISOString() });
  if (!released) {
    throw new PennyError({ code: 'resource_missing', param: 'file',
      message: `No imported settlement report '${fileId.slice(0, 100)}' whose reading failed.` });
  }
}
