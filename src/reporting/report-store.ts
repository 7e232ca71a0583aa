import { selectPage, type PageRows } from '../db/pages.js';
import { named, type Queryable } from '../db/pool.js';
import type { ReportRunParameters, ReportTypeId } from './report-types.js';

/** Every SQL statement of report runs and their files (migration 0037), one function per statement. */
export type ReportRunStatus = 'pending' | 'succeeded' | 'failed';

export interface ReportRunRow {
  readonly merchantId: string;
  /** Who asked for it and sees it: the platform, or a connected account (Stripe-Account). */
  readonly accountId: string;
  /** Whose data it reports. */
  readonly dataAccountId: string;
  readonly id: string;
  readonly reportType: ReportTypeId;
  readonly parameters: ReportRunParameters;
  readonly status: ReportRunStatus;
  readonly error: string | null;
  readonly resultFileId: string | null;
  readonly attempts: number;
  readonly attemptFileId: string | null;
  readonly createdAt: string;
  readonly succeededAt: string | null;
}

export interface FileRow {
  readonly merchantId: string;
  readonly accountId: string;
  readonly id: string;
  readonly purpose: 'finance_report_run';
  readonly type: 'csv';
  readonly filename: string;
  readonly sizeBytes: bigint;
  readonly parts: number;
  readonly createdAt: string;
}

export async function insertReportRun(db: Queryable, run: Pick<ReportRunRow, 'merchantId' | 'accountId'
  | 'dataAccountId' | 'id' | 'reportType' | 'parameters'>): Promise<ReportRunRow> {
  const result = await db.query(named(`INSERT INTO report_runs (merchant_id, account_id, data_account_id, id,
       report_type, parameters)
     VALUES ($1, $2, $3, $4, $5, $6::jsonb) RETURNING *`),
  [run.merchantId, run.accountId, run.dataAccountId, run.id, run.reportType, JSON.stringify(run.parameters)]);
  return toReportRun(result.rows[0]);
}

export async function selectReportRun(db: Queryable, key: { merchantId: string; accountId: string; id: string }):
Promise<ReportRunRow | undefined> {
  const result = await db.query(named(`SELECT * FROM report_runs WHERE merchant_id = $1 AND account_id = $2
     AND id = $3`), [key.merchantId, key.accountId, key.id]);
  return result.rows[0] === undefined ? undefined : toReportRun(result.rows[0]);
}

export function selectReportRunPage(db: Queryable, query: { merchantId: string; accountId: string; limit: number;
  startingAfter: string | undefined; endingBefore: string | undefined; createdGte: string | undefined;
  createdLte: string | undefined }): Promise<PageRows<ReportRunRow>> {
  return selectPage(db, 'report_runs', { ...query, equals: { account_id: query.accountId } }, toReportRun);
}

/**
 * Claims up to `limit` pending runs whose lease has run out (or that were never claimed), oldest
 * first, skipping those another worker holds: each is leased until `leaseUntil`, its attempt counted.
 */
export async function claimDueReportRuns(db: Queryable, claim: { now: string; leaseUntil: string; limit: number }):
Promise<ReportRunRow[]> {
  const result = await db.query(named(`UPDATE report_runs r SET claimed_until = $2, attempts = r.attempts + 1
     FROM (SELECT merchant_id, id FROM report_runs
       WHERE status = 'pending' AND (claimed_until IS NULL OR claimed_until <= $1)
       ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED) due
     WHERE r.merchant_id = due.merchant_id AND r.id = due.id RETURNING r.*`),
  [claim.now, claim.leaseUntil, claim.limit]);
  return result.rows.map(toReportRun);
}

/** Notes the file an attempt writes, so that the next attempt can delete what it left. */
export async function updateAttemptFile(db: Queryable, run: Pick<ReportRunRow, 'merchantId' | 'id'>, fileId: string):
Promise<void> {
  await db.query(named(`UPDATE report_runs SET attempt_file_id = $3 WHERE merchant_id = $1 AND id = $2`),
    [run.merchantId, run.id, fileId]);
}

/** A pending run is tried again once `at` has come (its lease moved there). */
export async function updateRunRetryAt(db: Queryable, run: Pick<ReportRunRow, 'merchantId' | 'id'>, at: string):
Promise<void> {
  await db.query(named(`UPDATE report_runs SET claimed_until = $3 WHERE merchant_id = $1 AND id = $2
     AND status = 'pending'`), [run.merchantId, run.id, at]);
}

/** A pending run's success, with its file; undefined when it is no longer pending (another attempt finished). */
export async function markRunSucceeded(db: Queryable, run: Pick<ReportRunRow, 'merchantId' | 'id'>,
  done: { fileId: string; at: string }): Promise<ReportRunRow | undefined> {
  const result = await db.query(named(`UPDATE report_runs SET status = 'succeeded', result_file_id = $3,
       succeeded_at = $4, claimed_until = NULL
     WHERE merchant_id = $1 AND id = $2 AND status = 'pending' RETURNING *`),
  [run.merchantId, run.id, done.fileId, done.at]);
  return result.rows[0] === undefined ? undefined : toReportRun(result.rows[0]);
}

export async function markRunFailed(db: Queryable, run: Pick<ReportRunRow, 'merchantId' | 'id'>, error: string):
Promise<ReportRunRow | undefined> {
  const result = await db.query(named(`UPDATE report_runs SET status = 'failed', error = $3, claimed_until = NULL
     WHERE merchant_id = $1 AND id = $2 AND status = 'pending' RETURNING *`), [run.merchantId, run.id, error]);
  return result.rows[0] === undefined ? undefined : toReportRun(result.rows[0]);
}

/**
 * Makes the reads of a report one snapshot: the first statement of the transaction open on `db`
 * (REPEATABLE READ, READ ONLY), so pages read one after another agree with each other.
 */
export async function beginReportSnapshot(db: Queryable): Promise<void> {
  await db.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
}

export async function insertFilePart(db: Queryable, part: { merchantId: string; fileId: string; position: number;
  data: Buffer }): Promise<void> {
  await db.query(named(`INSERT INTO file_parts (merchant_id, file_id, position, data) VALUES ($1, $2, $3, $4)`),
    [part.merchantId, part.fileId, part.position, part.data]);
}

/** The parts an unfinished attempt wrote (its file row was never written). */
export async function deleteFileParts(db: Queryable, file: { merchantId: string; fileId: string }): Promise<void> {
  await db.query(named(`DELETE FROM file_parts WHERE merchant_id = $1 AND file_id = $2
     AND NOT EXISTS (SELECT 1 FROM files WHERE merchant_id = $1 AND id = $2)`), [file.merchantId, file.fileId]);
}

export async function insertFile(db: Queryable, file: Omit<FileRow, 'createdAt'>): Promise<FileRow> {
  const result = await db.query(named(`INSERT INTO files (merchant_id, account_id, id, purpose, type, filename,
       size_bytes, parts)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`),
  [file.merchantId, file.accountId, file.id, file.purpose, file.type, file.filename, file.sizeBytes.toString(),
    file.parts]);
  return toFile(result.rows[0]);
}

export async function selectFile(db: Queryable, key: { merchantId: string; accountId: string; id: string }):
Promise<FileRow | undefined> {
  const result = await db.query(named(`SELECT * FROM files WHERE merchant_id = $1 AND account_id = $2 AND id = $3`),
    [key.merchantId, key.accountId, key.id]);
  return result.rows[0] === undefined ? undefined : toFile(result.rows[0]);
}

/** The files of a page of runs (at most the ids given). */
export async function selectFilesByIds(db: Queryable, key: { merchantId: string; ids: readonly string[] }):
Promise<FileRow[]> {
  if (key.ids.length === 0) return [];
  const result = await db.query(named(`SELECT * FROM files WHERE merchant_id = $1 AND id = ANY($2::text[])`),
    [key.merchantId, key.ids]);
  return result.rows.map(toFile);
}

/** One part of a file's bytes (at most `limits.reportFilePartBytes` and one row). */
export async function selectFilePart(db: Queryable, key: { merchantId: string; fileId: string; position: number }):
Promise<Buffer | undefined> {
  const result = await db.query<{ data: Buffer }>(named(`SELECT data FROM file_parts
     WHERE merchant_id = $1 AND file_id = $2 AND position = $3`), [key.merchantId, key.fileId, key.position]);
  return result.rows[0]?.data;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
function toReportRun(row: any): ReportRunRow {
  if (row === undefined) throw new Error('expected a report_runs row');
  return {
    merchantId: row.merchant_id, accountId: row.account_id, dataAccountId: row.data_account_id, id: row.id,
    reportType: row.report_type, parameters: row.parameters, status: row.status, error: row.error,
    resultFileId: row.result_file_id, attempts: row.attempts, attemptFileId: row.attempt_file_id,
    createdAt: row.created_at, succeededAt: row.succeeded_at,
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
function toFile(row: any): FileRow {
  if (row === undefined) throw new Error('expected a files row');
  return {
    merchantId: row.merchant_id, accountId: row.account_id, id: row.id, purpose: row.purpose, type: row.type,
    filename: row.filename, sizeBytes: BigInt(row.size_bytes), parts: row.parts, createdAt: row.created_at,
  };
}
