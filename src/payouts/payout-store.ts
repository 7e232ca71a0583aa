import { selectPage, type PageRows } from '../db/pages.js';
import { clockNowSql, clockOffsetParameter } from '../db/clock-sql.js';
import { named, type Queryable } from '../db/pool.js';
import type { PayoutStatus } from './payout-state.js';

/** Every SQL statement of payouts, one function per statement; payout-service.ts decides. */
export type PspCall = 'sent' | 'unknown' | 'refused';

export interface PayoutRow {
  readonly merchantId: string;
  readonly accountId: string;
  readonly id: string;
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly status: PayoutStatus;
  readonly destination: string;
  readonly method: 'standard';
  readonly description: string | null;
  readonly statementDescriptor: string | null;
  readonly metadata: Record<string, string>;
  readonly automatic: boolean;
  /** The UTC day (`YYYY-MM-DD`) an automatic payout pays out for; null for a manual one. */
  readonly automaticDay: string | null;
  readonly failureCode: string | null;
  readonly failureMessage: string | null;
  readonly connector: string;
  readonly pspCall: PspCall;
  readonly pspReference: string | null;
  /** Sends of the PSP call by the payouts worker, after the request's own (migration 0045). */
  readonly pspResendCount: number;
  readonly arrivalDate: string;
  readonly entryId: string;
  readonly returnEntryId: string | null;
  readonly balanceTransactionId: string;
  readonly failureBalanceTransactionId: string | null;
  readonly createdAt: string;
}

export type NewPayout = Omit<PayoutRow, 'status' | 'method' | 'automatic' | 'failureCode' | 'failureMessage'
  | 'pspCall' | 'pspReference' | 'pspResendCount' | 'returnEntryId' | 'failureBalanceTransactionId' | 'createdAt'>;

export async function insertPayout(db: Queryable, payout: NewPayout): Promise<PayoutRow> {
  const result = await db.query(named(`INSERT INTO payouts (merchant_id, account_id, id, amount_minor, currency,
       status, destination, description, statement_descriptor, metadata, connector, arrival_date, entry_id,
       balance_transaction_id, automatic, automatic_day, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8, $9::jsonb, $10, $11, $12, $13, $14::date IS NOT NULL, $14::date,
       ${clockNowSql(15)}, ${clockNowSql(15)})
     RETURNING *`),
  [payout.merchantId, payout.accountId, payout.id, payout.amountMinor.toString(), payout.currency,
    payout.destination, payout.description, payout.statementDescriptor, JSON.stringify(payout.metadata),
    payout.connector, payout.arrivalDate, payout.entryId, payout.balanceTransactionId, payout.automaticDay,
    clockOffsetParameter()]);
  return toPayout(result.rows[0]);
}

/** The automatic payout of an owner in a currency for a UTC day, if there is one. */
export async function selectAutomaticPayout(db: Queryable, key: { merchantId: string; accountId: string;
  currency: string; day: string }): Promise<{ id: string } | undefined> {
  const result = await db.query<{ id: string }>(named(`SELECT id FROM payouts WHERE merchant_id = $1
       AND account_id = $2 AND currency = $3 AND automatic_day = $4::date AND automatic`),
  [key.merchantId, key.accountId, key.currency, key.day]);
  return result.rows[0];
}

/** Whether an error is the database refusing a second automatic payout for one owner, currency and day. */
export function isAutomaticPayoutConflict(error: unknown): boolean {
  const failure = error as { code?: unknown; constraint?: unknown } | null;
  return failure?.code === '23505' && failure.constraint === 'payouts_automatic_once';
}

/** A payout of the owner; with `forUpdate`, locked to the transaction's end. */
export async function selectPayout(db: Queryable, key: { merchantId: string; accountId: string; id: string },
  options: { forUpdate: boolean } = { forUpdate: false }): Promise<PayoutRow | undefined> {
  const result = await db.query(named(`SELECT * FROM payouts WHERE merchant_id = $1 AND account_id = $2 AND id = $3
     ${options.forUpdate ? 'FOR UPDATE' : ''}`), [key.merchantId, key.accountId, key.id]);
  return result.rows[0] === undefined ? undefined : toPayout(result.rows[0]);
}

/** A payout by its id alone (Penny's reference at the PSP): how a settlement report's line names it. */
export async function selectPayoutById(db: Queryable, id: string): Promise<PayoutRow | undefined> {
  const result = await db.query(named(`SELECT * FROM payouts WHERE id = $1`), [id]);
  return result.rows[0] === undefined ? undefined : toPayout(result.rows[0]);
}

/** A payout by its id alone, locked: how a PSP event finds it. */
export async function lockPayoutById(db: Queryable, id: string): Promise<PayoutRow | undefined> {
  const result = await db.query(named(`SELECT * FROM payouts WHERE id = $1 FOR UPDATE`), [id]);
  return result.rows[0] === undefined ? undefined : toPayout(result.rows[0]);
}

export async function updatePspCall(db: Queryable, payout: Pick<PayoutRow, 'merchantId' | 'id'>,
  call: { pspCall: PspCall; pspReference: string | null }): Promise<PayoutRow> {
  const result = await db.query(named(`UPDATE payouts SET psp_call = $3, psp_reference = COALESCE($4, psp_reference),
       updated_at = ${clockNowSql(5)}
     WHERE merchant_id = $1 AND id = $2 RETURNING *`),
  [payout.merchantId, payout.id, call.pspCall, call.pspReference, clockOffsetParameter()]);
  return toPayout(result.rows[0]);
}

/**
 * Counts a send of the PSP call by the worker, if the call is still unknown and the payout pending;
 * false when it is not (answered meanwhile), and then nothing is sent.
 */
export async function countResend(db: Queryable, payout: Pick<PayoutRow, 'merchantId' | 'id'>): Promise<boolean> {
  const result = await db.query(named(`UPDATE payouts SET psp_resend_count = psp_resend_count + 1,
       updated_at = ${clockNowSql(3)}
     WHERE merchant_id = $1 AND id = $2 AND psp_call = 'unknown' AND status = 'pending'`),
  [payout.merchantId, payout.id, clockOffsetParameter()]);
  return result.rowCount === 1;
}

export async function updatePayoutStatus(db: Queryable, payout: Pick<PayoutRow, 'merchantId' | 'id'>,
  change: { status: PayoutStatus; failureCode: string | null; failureMessage: string | null;
    returnEntryId: string | null; failureBalanceTransactionId: string | null }): Promise<PayoutRow> {
  const result = await db.query(named(`UPDATE payouts SET status = $3, failure_code = $4, failure_message = $5,
       return_entry_id = $6, failure_balance_transaction_id = $7,
       updated_at = ${clockNowSql(8)}
     WHERE merchant_id = $1 AND id = $2 RETURNING *`),
  [payout.merchantId, payout.id, change.status, change.failureCode, change.failureMessage, change.returnEntryId,
    change.failureBalanceTransactionId, clockOffsetParameter()]);
  return toPayout(result.rows[0]);
}

/** Payouts whose PSP answer was lost and which still wait for it, oldest first. */
export async function selectUnknownPayouts(db: Queryable, query: { before: string; limit: number }):
Promise<PayoutRow[]> {
  const result = await db.query(named(`SELECT * FROM payouts WHERE psp_call = 'unknown' AND status = 'pending'
       AND updated_at <= $1 ORDER BY updated_at LIMIT $2`), [query.before, query.limit]);
  return result.rows.map(toPayout);
}

export interface PayoutListQuery {
  readonly merchantId: string;
  readonly accountId: string;
  readonly limit: number;
  readonly startingAfter: string | undefined;
  readonly endingBefore: string | undefined;
  readonly status: string | undefined;
  readonly destination: string | undefined;
  readonly createdGte: string | undefined;
  readonly createdLte: string | undefined;
}

export function selectPayoutPage(db: Queryable, query: PayoutListQuery): Promise<PageRows<PayoutRow>> {
  return selectPage(db, 'payouts', {
    ...query, equals: { account_id: query.accountId, status: query.status, destination: query.destination },
  }, toPayout);
}

/** Payouts of the merchant by id (at most the ids given: a page of a report's rows). */
export async function selectPayoutsByIds(db: Queryable, query: { merchantId: string; ids: readonly string[] }):
Promise<PayoutRow[]> {
  if (query.ids.length === 0) return [];
  const result = await db.query(named(`SELECT * FROM payouts WHERE merchant_id = $1 AND id = ANY($2::text[])`),
    [query.merchantId, query.ids]);
  return result.rows.map(toPayout);
}

/**
 * One page, by arrival then id, of an owner's automatic payouts that arrive in [from, to), not
 * failed or canceled, optionally of one currency: at most `limit`, after `after`.
 */
export async function selectAutomaticPayoutsArrivingBetween(db: Queryable, query: { merchantId: string;
  accountId: string; from: string; to: string; currency: string | undefined;
  after: { arrivalDate: string; id: string } | undefined; limit: number }): Promise<PayoutRow[]> {
  const result = await db.query(named(`SELECT * FROM payouts
     WHERE merchant_id = $1 AND account_id = $2 AND arrival_date >= $3 AND arrival_date < $4 AND automatic
       AND status NOT IN ('failed', 'canceled') AND ($5::text IS NULL OR currency = $5)
       AND ($6::timestamptz IS NULL OR (arrival_date, id) > ($6::timestamptz, $7::text))
     ORDER BY arrival_date, id LIMIT $8`),
  [query.merchantId, query.accountId, query.from, query.to, query.currency ?? null,
    query.after?.arrivalDate ?? null, query.after?.id ?? null, query.limit]);
  return result.rows.map(toPayout);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
function toPayout(row: any): PayoutRow {
  if (row === undefined) throw new Error('expected a payouts row');
  return {
    merchantId: row.merchant_id, accountId: row.account_id, id: row.id, amountMinor: row.amount_minor,
    currency: row.currency, status: row.status, destination: row.destination, method: row.method,
    description: row.description, statementDescriptor: row.statement_descriptor, metadata: row.metadata,
    automatic: row.automatic,
    automaticDay: dayText(row.automatic_day), failureCode: row.failure_code, failureMessage: row.failure_message,
    connector: row.connector, pspCall: row.psp_call, pspReference: row.psp_reference,
    pspResendCount: Number(row.psp_resend_count), arrivalDate: row.arrival_date,
    entryId: row.entry_id, returnEntryId: row.return_entry_id, balanceTransactionId: row.balance_transaction_id,
    failureBalanceTransactionId: row.failure_balance_transaction_id, createdAt: row.created_at,
  };
}

/** A `date` as `YYYY-MM-DD`: node-postgres reads one as local midnight, so its local parts are the day. */
function dayText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (!(value instanceof Date)) return String(value).slice(0, 10);
  const pad = (part: number) => String(part).padStart(2, '0');
  return `${value.getFullYear()}-${pad(value.getMonth() + 1)}-${pad(value.getDate())}`;
}
