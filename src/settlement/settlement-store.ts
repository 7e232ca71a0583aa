import { named, type Queryable } from '../db/pool.js';
import type { SettledLine } from './settlement-report.js';

/** The SQL of settlement pulls, one function per statement. */

/** The first (earliest) day pulled of a connector that is `since` or later, if any. */
export async function selectFirstSettlementPull(db: Queryable, query: { connector: string; since: string }):
Promise<string | undefined> {
  const result = await db.query<{ day: string | null }>(named(
    'SELECT min(day)::text AS day FROM settlement_pulls WHERE connector = $1 AND day >= $2::date'),
  [query.connector, query.since]);
  return result.rows[0]?.day ?? undefined;
}

/** The days of `[from, to]` pulled of a connector. */
export async function selectSettlementPulledDays(db: Queryable, range: { connector: string; from: string; to: string }):
Promise<Set<string>> {
  const result = await db.query<{ day: string }>(named(`SELECT day::text AS day FROM settlement_pulls
     WHERE connector = $1 AND day BETWEEN $2::date AND $3::date`), [range.connector, range.from, range.to]);
  return new Set(result.rows.map((row) => row.day));
}

export async function insertSettlementPull(db: Queryable, pull: { connector: string; day: string;
  settledCount: number }): Promise<void> {
  await db.query(named(`INSERT INTO settlement_pulls (connector, day, settled_count) VALUES ($1, $2, $3)
     ON CONFLICT (connector, day) DO UPDATE SET settled_count = settlement_pulls.settled_count + excluded.settled_count,
       pulled_at = clock_timestamp()`), [pull.connector, pull.day, pull.settledCount]);
}

/** A PSP's settlement report imported as a file (reconciliation_files) that settlement has not read yet. */
export interface UnsettledReportFile {
  readonly id: string;
  readonly filename: string;
  /** Attempts that failed so far (settlement_report_file_attempts). */
  readonly attemptCount: number;
}

/**
 * Up to `limit` imported Settlement details reports (format `adyen_sdr`) settlement has not read
 * that are due at `now`: never tried, or failed and past their backoff (a held file is not);
 * the one due longest first (a file never tried is due since its import).
 */
export async function selectUnsettledReportFiles(db: Queryable, query: { now: string; limit: number }):
Promise<UnsettledReportFile[]> {
  const result = await db.query<UnsettledReportFile>(named(`SELECT f.id, f.filename,
       coalesce(a.attempt_count, 0) AS "attemptCount"
     FROM reconciliation_files f
     LEFT JOIN settlement_report_file_attempts a ON a.file_id = f.id
     WHERE f.format = 'adyen_sdr'
       AND NOT EXISTS (SELECT 1 FROM settlement_report_files s WHERE s.file_id = f.id)
       AND (a.file_id IS NULL OR (a.status = 'retrying' AND a.next_attempt_at <= $1))
     ORDER BY coalesce(a.next_attempt_at, f.imported_at), f.id LIMIT $2`), [query.now, query.limit]);
  return result.rows;
}

/**
 * Records a failed attempt at reading a file: `retrying` at `nextAttemptAt`, or `held` for an
 * operator (nextAttemptAt null).
 */
export async function upsertReportFileAttempt(db: Queryable, attempt: { fileId: string; attemptCount: number;
  error: string; nextAttemptAt: string | null }): Promise<void> {
  await db.query(named(`INSERT INTO settlement_report_file_attempts
       (file_id, status, attempt_count, last_error, next_attempt_at)
     VALUES ($1, CASE WHEN $4::timestamptz IS NULL THEN 'held' ELSE 'retrying' END, $2, $3, $4)
     ON CONFLICT (file_id) DO UPDATE SET status = excluded.status, attempt_count = excluded.attempt_count,
       last_error = excluded.last_error, next_attempt_at = excluded.next_attempt_at, updated_at = clock_timestamp()`),
  [attempt.fileId, attempt.attemptCount, attempt.error.slice(0, 2000), attempt.nextAttemptAt]);
}

/** An imported report settlement failed to read: retrying after its backoff, or held for an operator. */
export interface ReportFileAttempt {
  readonly fileId: string;
  readonly filename: string;
  readonly status: 'retrying' | 'held';
  readonly attemptCount: number;
  readonly lastError: string;
  readonly nextAttemptAt: string | null;
  readonly updatedAt: string;
}

/**
 * Up to `limit` imported reports whose reading failed, held first, then the latest failed first;
 * times as UTC ISO 8601 text.
 */
export async function selectReportFileAttempts(db: Queryable, limit: number): Promise<ReportFileAttempt[]> {
  const result = await db.query<ReportFileAttempt>(named(`SELECT a.file_id AS "fileId", f.filename, a.status,
       a.attempt_count AS "attemptCount", a.last_error AS "lastError",
       to_char(a.next_attempt_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "nextAttemptAt",
       to_char(a.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "updatedAt"
     FROM settlement_report_file_attempts a JOIN reconciliation_files f ON f.id = a.file_id
     ORDER BY a.status = 'held' DESC, a.updated_at DESC, a.file_id LIMIT $1`), [limit]);
  return result.rows;
}

/**
 * An operator's release of a file whose reading failed: due at `now`, its attempts and last error
 * kept (so a file held after its last attempt is held again by one more failure, with that
 * failure's error). Whether a file was released.
 */
export async function releaseReportFileAttempt(db: Queryable, release: { fileId: string; now: string }):
Promise<boolean> {
  const result = await db.query(named(`UPDATE settlement_report_file_attempts
     SET status = 'retrying', next_attempt_at = $2, updated_at = clock_timestamp() WHERE file_id = $1`),
  [release.fileId, release.now]);
  return result.rowCount === 1;
}

/** Forgets a file's failed attempts (it has been read). */
export async function deleteReportFileAttempts(db: Queryable, fileId: string): Promise<void> {
  await db.query(named('DELETE FROM settlement_report_file_attempts WHERE file_id = $1'), [fileId]);
}

/** One line of an imported report, with the connector of the Adyen account it names (connector_accounts). */
export interface ImportedReportLine extends SettledLine {
  readonly connector: string;
}

/**
 * The lines a file brought into reconciliation (a line known from an earlier file stays that
 * file's) whose Merchant Account is an Adyen account of Penny's, in file order; a line of any
 * other account is none of Penny's to settle. Amounts are the records' own: ISO minor units, as
 * the report's parser read them.
 */
export async function selectImportedReportLines(db: Queryable, fileId: string): Promise<ImportedReportLine[]> {
  const result = await db.query<Omit<ImportedReportLine, 'netMinor'> & { netMinor: string }>(named(`SELECT
       a.connector, r.type, coalesce(r.merchant_reference, '') AS "merchantReference",
       coalesce(r.psp_reference, '') AS "pspReference",
       coalesce(r.refs ->> 'Modification Reference', '') AS "modificationReference", r.currency,
       coalesce(r.booking_date::text, '') AS "bookingDay", r.amount_minor::text AS "netMinor"
     FROM reconciliation_records r
     JOIN connector_accounts a ON a.kind = 'adyen' AND a.merchant_account = r.refs ->> 'Merchant Account'
     WHERE r.file_id = $1 AND r.kind = 'psp_line'
     ORDER BY r.line, r.id`), [fileId]);
  return result.rows.map((row) => ({ ...row, netMinor: BigInt(row.netMinor) }));
}

/** Records that settlement read the file; false when another worker recorded it first. */
export async function insertSettledReportFile(db: Queryable, file: { fileId: string; settledCount: number;
  payoutCount: number }): Promise<boolean> {
  const result = await db.query(named(`INSERT INTO settlement_report_files (file_id, settled_count, payout_count)
     VALUES ($1, $2, $3) ON CONFLICT (file_id) DO NOTHING`), [file.fileId, file.settledCount, file.payoutCount]);
  return result.rowCount !== 0;
}

/**
 * A record of a line settlement read before Penny booked its capture (settlement_unbooked_lines,
 * written by src/balances/settlement-line-store.ts) that has done its work: the charge it names
 * on its connector (by its id or its attempt's) is booked and available, and what a payout left in
 * suspense for the line (if anything) has been attributed (the booking's
 * `penny:settlement_line:…:attributed` entry).
 */
const unbookedLineResolved = `EXISTS (SELECT 1 FROM charges c
       JOIN balance_transactions t ON t.merchant_id = c.merchant_id AND t.source_id = c.id AND t.type = 'charge'
         AND t.reporting_category = 'charge' AND t.status = 'available'
       WHERE (c.id = u.merchant_reference OR c.attempt_id = u.merchant_reference) AND c.connector = u.connector)
     AND (u.suspense_minor IS NULL OR u.suspense_minor = 0 OR EXISTS (SELECT 1 FROM ledger_entries e
       WHERE e.external_reference = 'penny:settlement_line:' || u.connector || ':' || u.merchant_reference
         || ':attributed'))`;

/**
 * Up to `limit` records of lines read before their capture was booked, in key order after `after`
 * (the primary key's index: one scan step reads `limit` rows however large the table), each with
 * whether it is resolved.
 */
export async function selectUnbookedLinesAfter(db: Queryable, query: { after: { connector: string; reference: string };
  limit: number }): Promise<{ connector: string; reference: string; resolved: boolean }[]> {
  const result = await db.query<{ connector: string; reference: string; resolved: boolean }>(named(`SELECT
       u.connector, u.merchant_reference AS reference, ${unbookedLineResolved} AS resolved
     FROM settlement_unbooked_lines u
     WHERE (u.connector, u.merchant_reference) > ($1, $2)
     ORDER BY u.connector, u.merchant_reference LIMIT $3`), [query.after.connector, query.after.reference, query.limit]);
  return result.rows;
}

/** Deletes one such record if it is resolved still (the caller holds its reference's lock); whether it did. */
export async function deleteResolvedUnbookedLine(db: Queryable, key: { connector: string; reference: string }):
Promise<boolean> {
  const result = await db.query(named(`DELETE FROM settlement_unbooked_lines u
     WHERE u.connector = $1 AND u.merchant_reference = $2 AND ${unbookedLineResolved}`),
  [key.connector, key.reference]);
  return result.rowCount !== 0;
}
