import { named, type Queryable } from '../db/pool.js';

/** The SQL of reconciliation breaks and runs as read and acted on after a run; recon-breaks.ts decides. */

export const breakStatuses = ['open', 'resolved', 'ignored'] as const;
export type BreakStatus = typeof breakStatuses[number];

export interface BreakRow {
  readonly id: string;
  readonly runId: string;
  readonly type: string;
  readonly leg: 'ledger_psp' | 'psp_bank';
  readonly status: BreakStatus;
  readonly externalRef: string | null;
  readonly internalRef: string | null;
  readonly currency: string | null;
  readonly expectedMinor: bigint;
  readonly actualMinor: bigint;
  readonly differenceMinor: bigint;
  readonly merchantId: string | null;
  readonly ownerId: string | null;
  readonly recordId: bigint | null;
  readonly itemId: bigint | null;
  /** The net of the break's record (what it moved in the PSP's batch), when it has one. */
  readonly recordNetMinor: bigint | null;
  readonly detail: string;
  readonly openedAt: string;
  readonly resolution: 'repaired' | 'matched' | null;
  readonly repairEntryId: string | null;
  readonly resolvedAt: string | null;
  readonly resolvedByRunId: string | null;
  readonly ignoredReason: string | null;
  readonly ignoredAt: string | null;
}

export interface RunRow {
  readonly id: string;
  readonly asOf: string;
  readonly startedAt: string;
  readonly finishedAt: string | null;
  readonly inputFileIds: readonly string[];
  readonly counts: Record<string, unknown>;
}

const breakSelect = `SELECT b.id, b.run_id, b.type, b.leg, b.status, b.external_ref, b.internal_ref, b.currency,
  b.expected_minor, b.actual_minor, b.difference_minor, b.merchant_id, b.owner_id, b.record_id, b.item_id,
  r.amount_minor AS record_net_minor, b.detail, b.opened_at, b.resolution, b.repair_entry_id, b.resolved_at,
  b.resolved_by_run_id, b.ignored_reason, b.ignored_at
  FROM reconciliation_breaks b LEFT JOIN reconciliation_records r ON r.id = b.record_id`;

function toBreak(row: Record<string, unknown>): BreakRow {
  return {
    id: row.id as string, runId: row.run_id as string, type: row.type as string,
    leg: row.leg as BreakRow['leg'], status: row.status as BreakStatus,
    externalRef: (row.external_ref as string | null) ?? null, internalRef: (row.internal_ref as string | null) ?? null,
    currency: (row.currency as string | null) ?? null, expectedMinor: row.expected_minor as bigint,
    actualMinor: row.actual_minor as bigint, differenceMinor: row.difference_minor as bigint,
    merchantId: (row.merchant_id as string | null) ?? null, ownerId: (row.owner_id as string | null) ?? null,
    recordId: (row.record_id as bigint | null) ?? null, itemId: (row.item_id as bigint | null) ?? null,
    recordNetMinor: (row.record_net_minor as bigint | null) ?? null, detail: row.detail as string,
    openedAt: row.opened_at as string, resolution: (row.resolution as BreakRow['resolution']) ?? null,
    repairEntryId: (row.repair_entry_id as string | null) ?? null,
    resolvedAt: (row.resolved_at as string | null) ?? null,
    resolvedByRunId: (row.resolved_by_run_id as string | null) ?? null,
    ignoredReason: (row.ignored_reason as string | null) ?? null, ignoredAt: (row.ignored_at as string | null) ?? null,
  };
}

export async function selectBreak(db: Queryable, id: string, options: { lock?: boolean } = {}):
Promise<BreakRow | undefined> {
  const lock = options.lock === true ? ' FOR UPDATE OF b' : '';
  const result = await db.query(named(`${breakSelect} WHERE b.id = $1${lock}`),
    [id]);
  return result.rows[0] === undefined ? undefined : toBreak(result.rows[0]);
}

/** Breaks by run, status and type, in the order they were opened, a page after `startingAfter`. */
export async function selectBreaks(db: Queryable, query: { runId?: string; status?: BreakStatus; type?: string;
  limit: number; startingAfter?: string }): Promise<BreakRow[]> {
  const result = await db.query(named(`${breakSelect}
     WHERE ($1::text IS NULL OR b.run_id = $1) AND ($2::text IS NULL OR b.status = $2) AND ($3::text IS NULL OR b.type = $3)
       AND ($4::text IS NULL OR (b.opened_at, b.id) > (SELECT opened_at, id FROM reconciliation_breaks WHERE id = $4))
     ORDER BY b.opened_at, b.id LIMIT $5`),
  [query.runId ?? null, query.status ?? null, query.type ?? null, query.startingAfter ?? null, query.limit]);
  return result.rows.map(toBreak);
}

export async function markRepaired(db: Queryable, update: { id: string; entryId: string }): Promise<void> {
  await db.query(named(`UPDATE reconciliation_breaks SET status = 'resolved', resolution = 'repaired',
     repair_entry_id = $2, resolved_at = clock_timestamp() WHERE id = $1`), [update.id, update.entryId]);
}

/**
 * The bank entry or PSP payout a repaired break was about is answered: no later run pairs it, so a
 * late counterpart opens a break of its own, whose repair undoes this one's entry.
 */
export async function insertRepairedRecord(db: Queryable, row: { recordId: bigint; runId: string }): Promise<void> {
  await db.query(named(`INSERT INTO reconciliation_record_matches (record_id, run_id, pass) VALUES ($1, $2, 'repaired')
     ON CONFLICT (record_id) DO NOTHING`), [row.recordId.toString(), row.runId]);
}

export async function markIgnored(db: Queryable, update: { id: string; reason: string }): Promise<void> {
  await db.query(named(`UPDATE reconciliation_breaks SET status = 'ignored', ignored_reason = $2,
     ignored_at = clock_timestamp() WHERE id = $1`), [update.id, update.reason]);
}

function toRun(row: Record<string, unknown>): RunRow {
  return { id: row.id as string, asOf: row.as_of as string, startedAt: row.started_at as string,
    finishedAt: (row.finished_at as string | null) ?? null, inputFileIds: row.input_file_ids as string[],
    counts: row.counts as Record<string, unknown> };
}

export async function selectRun(db: Queryable, id: string): Promise<RunRow | undefined> {
  const result = await db.query(named(`SELECT id, as_of::text AS as_of, started_at, finished_at, input_file_ids, counts
     FROM reconciliation_runs WHERE id = $1`), [id]);
  return result.rows[0] === undefined ? undefined : toRun(result.rows[0]);
}

/** Runs, newest first, a page after `startingAfter`. */
export async function selectRuns(db: Queryable, query: { limit: number; startingAfter?: string }): Promise<RunRow[]> {
  const result = await db.query(named(`SELECT id, as_of::text AS as_of, started_at, finished_at, input_file_ids, counts
     FROM reconciliation_runs
     WHERE ($1::text IS NULL OR (started_at, id) < (SELECT started_at, id FROM reconciliation_runs WHERE id = $1))
     ORDER BY started_at DESC, id DESC LIMIT $2`), [query.startingAfter ?? null, query.limit]);
  return result.rows.map(toRun);
}
