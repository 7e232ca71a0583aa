import { named, type Queryable } from '../db/pool.js';

/** The SQL of settlement reports a PSP announced, to download and import (connector_report_downloads). */
export interface ReportDownloadRow {
  readonly connector: string;
  readonly url: string;
  readonly attemptCount: number;
}

/** Records an announced report once; false when it was announced before (Adyen's retry, a repeat). */
export async function insertReportDownload(db: Queryable, report: { connector: string; url: string }):
Promise<boolean> {
  const result = await db.query(named(`INSERT INTO connector_report_downloads (connector, url) VALUES ($1, $2)
     ON CONFLICT (connector, url) DO NOTHING`), [report.connector, report.url]);
  return result.rowCount !== 0;
}

/**
 * Claims up to `limit` due pending downloads: each counts a try and is leased until `leaseUntil`,
 * so a worker that dies mid-download leaves it to be tried again then, and two never take one.
 */
export async function claimDueReportDownloads(db: Queryable, claim: { now: string; leaseUntil: string;
  limit: number }): Promise<ReportDownloadRow[]> {
  const result = await db.query<ReportDownloadRow>(named(`UPDATE connector_report_downloads d
     SET attempt_count = d.attempt_count + 1, next_attempt_at = $2
     FROM (SELECT connector, url FROM connector_report_downloads WHERE status = 'pending' AND next_attempt_at <= $1
           ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) due
     WHERE d.connector = due.connector AND d.url = due.url
     RETURNING d.connector, d.url, d.attempt_count AS "attemptCount"`), [claim.now, claim.leaseUntil, claim.limit]);
  return result.rows;
}

export async function markReportImported(db: Queryable, report: { connector: string; url: string; fileId: string;
  now: string }): Promise<void> {
  await db.query(named(`UPDATE connector_report_downloads SET status = 'imported', file_id = $3, last_error = NULL,
     finished_at = $4 WHERE connector = $1 AND url = $2`), [report.connector, report.url, report.fileId, report.now]);
}

/** A failed try: tried again at `nextAttemptAt`, or (null) set aside as failed. */
export async function markReportFailed(db: Queryable, report: { connector: string; url: string; error: string;
  nextAttemptAt: string | null; now: string }): Promise<void> {
  await db.query(named(`UPDATE connector_report_downloads SET last_error = $3,
       status = CASE WHEN $4::timestamptz IS NULL THEN 'failed' ELSE 'pending' END,
       next_attempt_at = coalesce($4::timestamptz, next_attempt_at),
       finished_at = CASE WHEN $4::timestamptz IS NULL THEN $5::timestamptz END
     WHERE connector = $1 AND url = $2`),
  [report.connector, report.url, report.error.slice(0, 500), report.nextAttemptAt, report.now]);
}
