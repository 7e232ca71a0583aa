import { selectPage, type PageRows } from '../db/pages.js';
import { clockNowSql, clockOffsetParameter } from '../db/clock-sql.js';
import { named, type Queryable } from '../db/pool.js';

/** The SQL of balance transactions, one function per statement. Amounts in ledger minor units. */
export type BalanceTransactionType = 'charge' | 'refund' | 'adjustment' | 'application_fee' | 'application_fee_refund'
  | 'payout' | 'payout_cancel' | 'payout_failure' | 'payout_minimum_balance_hold' | 'payout_minimum_balance_release'
  | 'transfer' | 'transfer_refund' | 'payment' | 'payment_refund';
export type BalanceTransactionStatus = 'pending' | 'available';

/** One currency of a Balance, in minor units: what the ledger's available and pending accounts hold. */
export interface CurrencyBalance {
  readonly currency: string;
  readonly availableMinor: bigint;
  readonly pendingMinor: bigint;
}

export interface FeeDetail {
  readonly amountMinor: bigint;
  readonly type: 'stripe_fee' | 'application_fee' | 'tax';
  readonly description: string;
  readonly application: string | null;
}

export interface BalanceTransactionRow {
  readonly merchantId: string;
  readonly accountId: string;
  readonly id: string;
  readonly type: BalanceTransactionType;
  readonly reportingCategory: string;
  readonly sourceId: string;
  readonly currency: string;
  readonly amountMinor: bigint;
  readonly feeMinor: bigint;
  readonly netMinor: bigint;
  readonly feeDetails: readonly FeeDetail[];
  readonly status: BalanceTransactionStatus;
  readonly availableOn: string;
  readonly description: string | null;
  readonly availabilityEntryId: string | null;
  readonly payoutId: string | null;
  /** A pending transaction riding on a charge (its transfer, its fee): available with that charge's settlement. */
  readonly settlesWith: string | null;
  readonly createdAt: string;
}

export type NewBalanceTransaction = Omit<BalanceTransactionRow, 'netMinor' | 'availabilityEntryId' | 'payoutId'
  | 'createdAt' | 'settlesWith'> & { readonly settlesWith?: string };

/**
 * Records a transaction once per source and type: a replay (a resumed request, a second report)
 * returns the row already there.
 */
export async function insertBalanceTransaction(db: Queryable, row: NewBalanceTransaction):
Promise<BalanceTransactionRow> {
  const inserted = await db.query(named(`INSERT INTO balance_transactions (merchant_id, account_id, id, type,
       reporting_category, source_id, currency, amount_minor, fee_minor, net_minor, fee_details, status, available_on,
       description, settles_with, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8::bigint - $9::bigint, $10::jsonb, $11, $12, $13, $14,
       ${clockNowSql(15)})
     ON CONFLICT (merchant_id, source_id, type, reporting_category) DO NOTHING RETURNING *`),
  [row.merchantId, row.accountId, row.id, row.type, row.reportingCategory, row.sourceId, row.currency,
    row.amountMinor.toString(), row.feeMinor.toString(), feeDetailsJson(row.feeDetails), row.status, row.availableOn,
    row.description, row.settlesWith ?? null, clockOffsetParameter()]);
  if (inserted.rows[0] !== undefined) return toBalanceTransaction(inserted.rows[0]);
  const existing = await selectBalanceTransactionBySource(db,
    { merchantId: row.merchantId, sourceId: row.sourceId, type: row.type, reportingCategory: row.reportingCategory });
  if (existing === undefined) throw new Error(`balance transaction of ${row.sourceId} vanished`);
  return existing;
}

export async function selectBalanceTransactionBySource(db: Queryable,
  key: { merchantId: string; sourceId: string; type: BalanceTransactionType; reportingCategory: string },
  options = { forUpdate: false }): Promise<BalanceTransactionRow | undefined> {
  const result = await db.query(named(`SELECT * FROM balance_transactions
     WHERE merchant_id = $1 AND source_id = $2 AND type = $3 AND reporting_category = $4
     ${options.forUpdate ? 'FOR UPDATE' : ''}`),
  [key.merchantId, key.sourceId, key.type, key.reportingCategory]);
  return result.rows[0] === undefined ? undefined : toBalanceTransaction(result.rows[0]);
}

/** The pending transactions riding on a charge, locked for the caller's transaction. */
export async function selectPendingRiders(db: Queryable, key: { merchantId: string; chargeId: string }):
Promise<BalanceTransactionRow[]> {
  const result = await db.query(named(`SELECT * FROM balance_transactions
     WHERE merchant_id = $1 AND settles_with = $2 AND status = 'pending' ORDER BY id FOR UPDATE`),
  [key.merchantId, key.chargeId]);
  return result.rows.map(toBalanceTransaction);
}

export async function selectBalanceTransaction(db: Queryable, key: { merchantId: string; accountId: string;
  id: string }): Promise<BalanceTransactionRow | undefined> {
  const result = await db.query(named(`SELECT * FROM balance_transactions
     WHERE merchant_id = $1 AND account_id = $2 AND id = $3`), [key.merchantId, key.accountId, key.id]);
  return result.rows[0] === undefined ? undefined : toBalanceTransaction(result.rows[0]);
}

export interface BalanceTransactionListQuery {
  readonly merchantId: string;
  readonly accountId: string;
  readonly limit: number;
  readonly startingAfter: string | undefined;
  readonly endingBefore: string | undefined;
  readonly type: string | undefined;
  readonly sourceId: string | undefined;
  readonly currency: string | undefined;
  readonly payoutId: string | undefined;
  readonly createdGte: string | undefined;
  readonly createdLte: string | undefined;
}

export function selectBalanceTransactionPage(db: Queryable, query: BalanceTransactionListQuery):
Promise<PageRows<BalanceTransactionRow>> {
  return selectPage(db, 'balance_transactions', {
    ...query,
    equals: { account_id: query.accountId, type: query.type, source_id: query.sourceId, currency: query.currency,
      payout_id: query.payoutId },
  }, toBalanceTransaction);
}

/** Marks a pending transaction available, as of `availableOn`, through the entry that moved its funds. */
export async function markBalanceTransactionAvailable(db: Queryable, row: Pick<BalanceTransactionRow, 'merchantId'
  | 'id'>, change: { availableOn: string; availabilityEntryId: string | null }): Promise<BalanceTransactionRow> {
  const result = await db.query(named(`UPDATE balance_transactions SET status = 'available', available_on = $3,
       availability_entry_id = $4
     WHERE merchant_id = $1 AND id = $2 RETURNING *`),
  [row.merchantId, row.id, change.availableOn, change.availabilityEntryId]);
  return toBalanceTransaction(result.rows[0]);
}

/** Pending transactions whose expected availability has come (the fixed-delay mode), oldest first. */
export async function selectDuePendingTransactions(db: Queryable, query: { now: string; limit: number }):
Promise<BalanceTransactionRow[]> {
  const result = await db.query(named(`SELECT * FROM balance_transactions
     WHERE status = 'pending' AND available_on <= $1 ORDER BY available_on LIMIT $2`), [query.now, query.limit]);
  return result.rows.map(toBalanceTransaction);
}

function feeDetailsJson(details: readonly FeeDetail[]): string {
  return JSON.stringify(details.map((detail) => ({ amount_minor: detail.amountMinor.toString(), type: detail.type,
    description: detail.description, application: detail.application })));
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
function toBalanceTransaction(row: any): BalanceTransactionRow {
  if (row === undefined) throw new Error('expected a balance_transactions row');
  return {
    merchantId: row.merchant_id, accountId: row.account_id, id: row.id, type: row.type,
    reportingCategory: row.reporting_category, sourceId: row.source_id, currency: row.currency,
    amountMinor: row.amount_minor, feeMinor: row.fee_minor, netMinor: row.net_minor,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- stored JSON
    feeDetails: (row.fee_details as any[]).map((detail) => ({ amountMinor: BigInt(detail.amount_minor),
      type: detail.type, description: detail.description, application: detail.application ?? null })),
    status: row.status, availableOn: row.available_on, description: row.description,
    availabilityEntryId: row.availability_entry_id, payoutId: row.payout_id, settlesWith: row.settles_with ?? null,
    createdAt: row.created_at,
  };
}

/** Where a page of a report stopped: the last row's creation time and id (rows go oldest first). */
export interface CreatedCursor {
  readonly createdAt: string;
  readonly id: string;
}

/**
 * One page, oldest first, of an owner's transactions created in [from, to), optionally of one
 * currency, either only payouts' own (`payout`, `payout_cancel`, `payout_failure`) or all others:
 * at most `limit` rows, after `after`. Reads through the list index (merchant, account, created).
 */
export async function selectTransactionsCreatedBetween(db: Queryable, query: { merchantId: string;
  accountId: string; from: string; to: string; currency: string | undefined; payouts: boolean;
  after: CreatedCursor | undefined; limit: number }): Promise<BalanceTransactionRow[]> {
  const result = await db.query(named(`SELECT * FROM balance_transactions
     WHERE merchant_id = $1 AND account_id = $2 AND created_at >= $3 AND created_at < $4
       AND ($5::text IS NULL OR currency = $5)
       AND (type IN ('payout', 'payout_cancel', 'payout_failure')) = $6
       AND ($7::timestamptz IS NULL OR (created_at, id) > ($7::timestamptz, $8::text))
     ORDER BY created_at, id LIMIT $9`),
  [query.merchantId, query.accountId, query.from, query.to, query.currency ?? null, query.payouts,
    query.after?.createdAt ?? null, query.after?.id ?? null, query.limit]);
  return result.rows.map(toBalanceTransaction);
}

/** One page, oldest first, of the transactions an automatic payout paid out: at most `limit` rows, after `after`. */
export async function selectTransactionsOfPayout(db: Queryable, query: { merchantId: string; payoutId: string;
  after: CreatedCursor | undefined; limit: number }): Promise<BalanceTransactionRow[]> {
  const result = await db.query(named(`SELECT * FROM balance_transactions
     WHERE merchant_id = $1 AND payout_id = $2
       AND ($3::timestamptz IS NULL OR (created_at, id) > ($3::timestamptz, $4::text))
     ORDER BY created_at, id LIMIT $5`),
  [query.merchantId, query.payoutId, query.after?.createdAt ?? null, query.after?.id ?? null, query.limit]);
  return result.rows.map(toBalanceTransaction);
}

/**
 * The net of an owner's transactions per currency created before `to` (and at or after `from`, if
 * given), split into payouts' own and the rest: one row per currency and kind, summed in the
 * database (BIGINT sums as NUMERIC, read back as bigint).
 */
export async function sumNetByCurrency(db: Queryable, query: { merchantId: string; accountId: string;
  from: string | undefined; to: string; currency: string | undefined }):
  Promise<{ currency: string; payouts: boolean; netMinor: bigint }[]> {
  const result = await db.query(named(`SELECT currency, type IN ('payout', 'payout_cancel', 'payout_failure') AS payouts,
       sum(net_minor) AS net_minor
     FROM balance_transactions
     WHERE merchant_id = $1 AND account_id = $2 AND created_at < $3
       AND ($4::timestamptz IS NULL OR created_at >= $4) AND ($5::text IS NULL OR currency = $5)
     GROUP BY 1, 2 ORDER BY 1, 2`),
  [query.merchantId, query.accountId, query.to, query.from ?? null, query.currency ?? null]);
  return result.rows.map((row) => ({ currency: row.currency, payouts: row.payouts, netMinor: BigInt(row.net_minor) }));
}

/**
 * Up to `limit` of an owner's available transactions in a currency that no automatic payout has
 * taken yet, after `after` (created, id), locked for the caller's transaction: what an automatic
 * payout reads, and pays, in its own transaction.
 */
export async function selectUnpaidAvailable(db: Queryable, query: { merchantId: string; accountId: string;
  currency: string; after: CreatedCursor | undefined; limit: number }):
  Promise<{ id: string; netMinor: bigint; createdAt: string }[]> {
  const result = await db.query(named(`SELECT id, net_minor, created_at FROM balance_transactions
     WHERE merchant_id = $1 AND account_id = $2 AND currency = $3 AND payout_id IS NULL AND status = 'available'
       AND ($4::timestamptz IS NULL OR (created_at, id) > ($4::timestamptz, $5::text))
     ORDER BY created_at, id LIMIT $6 FOR UPDATE`),
  [query.merchantId, query.accountId, query.currency, query.after?.createdAt ?? null, query.after?.id ?? null,
    query.limit]);
  return result.rows.map((row) => ({ id: row.id, netMinor: row.net_minor, createdAt: row.created_at }));
}

/**
 * What all of an owner's available transactions in a currency that no automatic payout has taken
 * yet net to, summed in the database (one aggregate over the `balance_transactions_unpaid` index;
 * nothing locked).
 */
export async function sumUnpaidAvailable(db: Queryable, query: { merchantId: string; accountId: string;
  currency: string }): Promise<bigint> {
  const result = await db.query(named(`SELECT COALESCE(sum(net_minor), 0)::text AS net_minor FROM balance_transactions
     WHERE merchant_id = $1 AND account_id = $2 AND currency = $3 AND payout_id IS NULL AND status = 'available'`),
  [query.merchantId, query.accountId, query.currency]);
  return BigInt(result.rows[0].net_minor as string);
}

/** Marks the named transactions, none taken yet, as paid out by `payoutId`. Answers how many. */
export async function linkToPayout(db: Queryable, link: { merchantId: string; payoutId: string;
  ids: readonly string[] }): Promise<number> {
  const result = await db.query(named(`UPDATE balance_transactions SET payout_id = $2
     WHERE merchant_id = $1 AND id = ANY($3::text[]) AND payout_id IS NULL`),
  [link.merchantId, link.payoutId, link.ids]);
  return result.rowCount ?? 0;
}
