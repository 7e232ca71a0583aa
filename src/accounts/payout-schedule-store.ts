import { named, type Queryable } from '../db/pool.js';
import type { PayoutSchedule, Weekday } from './account-commands.js';

/**
 * Every SQL statement of payout schedules: a platform merchant's own (merchant_payout_schedules,
 * migration 0031; no row is `manual`) and the scan of accounts due for an automatic payout over
 * it and connected_accounts. payout-schedules.ts decides; this file decides nothing.
 */
export async function selectPlatformPayoutSchedule(db: Queryable, merchantId: string):
Promise<PayoutSchedule | undefined> {
  const result = await db.query(named(`SELECT payout_interval, payout_weekly_anchor, payout_monthly_anchor
     FROM merchant_payout_schedules WHERE merchant_id = $1`), [merchantId]);
  return result.rows[0] === undefined ? undefined : toSchedule(result.rows[0]);
}

export async function upsertPlatformPayoutSchedule(db: Queryable, merchantId: string, schedule: PayoutSchedule):
Promise<PayoutSchedule> {
  const result = await db.query(named(`INSERT INTO merchant_payout_schedules AS s (merchant_id, payout_interval,
       payout_weekly_anchor, payout_monthly_anchor)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (merchant_id) DO UPDATE SET payout_interval = EXCLUDED.payout_interval,
       payout_weekly_anchor = EXCLUDED.payout_weekly_anchor, payout_monthly_anchor = EXCLUDED.payout_monthly_anchor,
       updated_at = clock_timestamp()
     RETURNING s.payout_interval, s.payout_weekly_anchor, s.payout_monthly_anchor`),
  [merchantId, schedule.interval, schedule.interval === 'weekly' ? schedule.weeklyAnchor : null,
    schedule.interval === 'monthly' ? schedule.monthlyAnchor : null]);
  return toSchedule(result.rows[0]);
}

/** An account whose schedule pays out on a given day: the platform itself (accountId = merchantId) or a seller. */
export interface DueAccount {
  readonly merchantId: string;
  readonly accountId: string;
}

/**
 * Accounts (platforms and live connected accounts) whose schedule is daily, weekly on `weekday`, or
 * monthly on one of `monthDays`, after the key `after` in (merchant, account) order, at most `limit`.
 */
export async function selectAccountsDue(db: Queryable, query: { weekday: Weekday; monthDays: readonly number[];
  after: DueAccount | undefined; limit: number }): Promise<DueAccount[]> {
  const result = await db.query<{ merchant_id: string; account_id: string }>(named(`SELECT merchant_id, account_id
     FROM (SELECT merchant_id, merchant_id AS account_id, payout_interval, payout_weekly_anchor, payout_monthly_anchor
             FROM merchant_payout_schedules WHERE payout_interval <> 'manual'
           UNION ALL
           SELECT merchant_id, id, payout_interval, payout_weekly_anchor, payout_monthly_anchor
             FROM connected_accounts WHERE payout_interval <> 'manual' AND deleted_at IS NULL) s
     WHERE (payout_interval = 'daily' OR (payout_interval = 'weekly' AND payout_weekly_anchor = $1)
            OR (payout_interval = 'monthly' AND payout_monthly_anchor = ANY($2::smallint[])))
       AND (merchant_id, account_id) > ($3, $4)
     ORDER BY merchant_id, account_id LIMIT $5`),
  [query.weekday, query.monthDays, query.after?.merchantId ?? '', query.after?.accountId ?? '', query.limit]);
  return result.rows.map((row) => ({ merchantId: row.merchant_id, accountId: row.account_id }));
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
function toSchedule(row: any): PayoutSchedule {
  const interval = row.payout_interval as PayoutSchedule['interval'];
  return interval === 'weekly' ? { interval, weeklyAnchor: row.payout_weekly_anchor as Weekday }
    : interval === 'monthly' ? { interval, monthlyAnchor: Number(row.payout_monthly_anchor) } : { interval };
}
