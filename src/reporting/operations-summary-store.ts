import { named, type Queryable } from '../db/pool.js';

/**
 * The SQL of the dashboard's home page: a window's figures and payments per hour, over every
 * merchant or one (`merchantId`). Each reads an index by creation time (migration 0040) or a
 * status index, so the page costs the window's rows, not the history's.
 */
export interface WindowFigures {
  readonly volume: readonly { currency: string; amount: bigint; count: bigint }[];
  readonly succeeded: bigint;
  readonly failed: bigint;
  readonly refunds: readonly { currency: string; amount: bigint; count: bigint }[];
}

export async function selectWindowFigures(db: Queryable, query: { from: string; merchantId: string | null }):
Promise<WindowFigures> {
  const volume = await db.query<{ currency: string; amount: bigint; count: bigint }>(named(`SELECT currency,
       coalesce(sum(amount_received), 0)::bigint AS amount, count(*) AS count
     FROM payment_intents WHERE created_at >= $1 AND ($2::text IS NULL OR merchant_id = $2) AND status = 'succeeded'
     GROUP BY currency ORDER BY currency`), [query.from, query.merchantId]);
  const counts = await db.query<{ succeeded: bigint; failed: bigint }>(named(`SELECT
       count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
       count(*) FILTER (WHERE status = 'canceled'
         OR (status = 'requires_payment_method' AND jsonb_typeof(last_payment_error) = 'object')) AS failed
     FROM payment_intents WHERE created_at >= $1 AND ($2::text IS NULL OR merchant_id = $2)`),
  [query.from, query.merchantId]);
  const refunds = await db.query<{ currency: string; amount: bigint; count: bigint }>(named(`SELECT currency,
       coalesce(sum(amount), 0)::bigint AS amount, count(*) AS count
     FROM refunds WHERE created_at >= $1 AND ($2::text IS NULL OR merchant_id = $2) AND status = 'succeeded'
     GROUP BY currency ORDER BY currency`), [query.from, query.merchantId]);
  return { volume: volume.rows, succeeded: counts.rows[0]?.succeeded ?? 0n, failed: counts.rows[0]?.failed ?? 0n,
    refunds: refunds.rows };
}

/** Payments created per hour since `from` (hours with none are absent), and how many of them succeeded. */
export async function selectPaymentsPerHour(db: Queryable, query: { from: string; merchantId: string | null }):
Promise<{ hour: string; payments: bigint; succeeded: bigint }[]> {
  const result = await db.query<{ hour: string; payments: bigint; succeeded: bigint }>(named(`SELECT
       date_trunc('hour', created_at) AS hour, count(*) AS payments,
       count(*) FILTER (WHERE status = 'succeeded') AS succeeded
     FROM payment_intents WHERE created_at >= $1 AND ($2::text IS NULL OR merchant_id = $2)
     GROUP BY 1 ORDER BY 1`), [query.from, query.merchantId]);
  return result.rows;
}

/** What waits for someone: open cases and breaks (the operator's), payouts not yet paid. */
export async function selectWaiting(db: Queryable, merchantId: string | null): Promise<{ openCases: bigint;
  openBreaks: bigint; pendingPayouts: readonly { currency: string; amount: bigint; count: bigint }[] }> {
  const open = await db.query<{ cases: bigint; breaks: bigint }>(named(`SELECT
       (SELECT count(*) FROM payment_cases WHERE status = 'open' AND ($1::text IS NULL OR merchant_id = $1)) AS cases,
       (SELECT count(*) FROM reconciliation_breaks WHERE status = 'open' AND ($1::text IS NULL OR merchant_id = $1))
         AS breaks`), [merchantId]);
  const payouts = await db.query<{ currency: string; amount: bigint; count: bigint }>(named(`SELECT currency,
       coalesce(sum(amount_minor), 0)::bigint AS amount, count(*) AS count
     FROM payouts WHERE status IN ('pending', 'in_transit') AND ($1::text IS NULL OR merchant_id = $1)
     GROUP BY currency ORDER BY currency`), [merchantId]);
  return { openCases: open.rows[0]?.cases ?? 0n, openBreaks: open.rows[0]?.breaks ?? 0n, pendingPayouts: payouts.rows };
}
