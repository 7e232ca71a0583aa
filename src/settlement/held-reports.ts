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

export function listReportFileAttempts(db: Queryable): Promise<store.ReportFileAttempt[]> {
  return store.selectReportFileAttempts(db, reportFileAttemptsListedMax);
}

/** Makes the file due now; one more failure holds it again. Refuses a file with no failed reading. */
export async function releaseReportFile(db: Queryable, fileId: string): Promise<void> {
  const released = await store.releaseReportFileAttempt(db, { fileId, now: new Date(nowMs()).toISOString() });
  if (!released) {
    throw new PennyError({ code: 'resource_missing', param: 'file',
      message: `No imported settlement report '${fileId.slice(0, 100)}' whose reading failed.` });
  }
}
