import { named, type Queryable } from '../db/pool.js';

/**
 * What the metrics read from the database at each scrape. Each count reads an index made for its
 * worker, or a queue its worker keeps short (the seal queue), so a scrape stays cheap as history grows.
 */
const waitingCounts = `SELECT
    (SELECT count(*) FROM recovery_jobs WHERE status = 'pending') AS recovery_jobs_pending,
    (SELECT count(*) FROM connector_webhook_inbox WHERE status = 'received') AS psp_events_received,
    (SELECT count(*) FROM connector_webhook_inbox WHERE status = 'parked') AS psp_events_parked,
    (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending') AS webhook_deliveries_pending,
    (SELECT coalesce(sum(cardinality(entry_ids)), 0) FROM ledger_unsealed_statements) AS ledger_entries_unsealed,
    (SELECT count(*) FROM ledger_open_holds) AS ledger_holds_open_with_expiry,
    (SELECT count(*) FROM settlement_report_file_attempts WHERE status = 'held') AS settlement_reports_held`;

/** Counts of what waits for a worker, by name (the `what` label). */
export async function selectWaitingCounts(db: Queryable): Promise<Record<string, bigint>> {
  const result = await db.query<Record<string, bigint>>(named(waitingCounts));
  return result.rows[0] ?? {};
}

export async function selectCasesOpenByKind(db: Queryable): Promise<{ kind: string; count: bigint }[]> {
  const result = await db.query<{ kind: string; count: bigint }>(named(
    `SELECT kind, count(*) AS count FROM payment_cases WHERE status = 'open' GROUP BY kind`));
  return result.rows;
}

/**
 * Open reconciliation breaks by type and age band (what an operator alerts on), and the age of
 * the oldest per type; reads the breaks' status index.
 */
export async function selectOpenBreakAges(db: Queryable): Promise<{ type: string; age: string; count: bigint;
  oldestSeconds: bigint }[]> {
  const result = await db.query<{ type: string; age: string; count: bigint; oldest_seconds: bigint }>(named(
    `SELECT type, CASE WHEN age < interval '1 day' THEN 'under_1d' WHEN age < interval '3 days' THEN '1d_to_3d'
         WHEN age < interval '7 days' THEN '3d_to_7d' ELSE 'over_7d' END AS age,
       count(*) AS count, max(extract(epoch FROM age))::bigint AS oldest_seconds
     FROM (SELECT type, clock_timestamp() - opened_at AS age FROM reconciliation_breaks WHERE status = 'open') open
     GROUP BY 1, 2`));
  return result.rows.map((row) => ({ type: row.type, age: row.age, count: row.count,
    oldestSeconds: row.oldest_seconds }));
}
