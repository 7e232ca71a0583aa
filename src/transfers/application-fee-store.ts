import { selectPage, type PageRows } from '../db/pages.js';
import { named, type Queryable } from '../db/pool.js';

/** The SQL of application fees and their refunds, one function per statement. Amounts in minor units. */
export interface ApplicationFeeRow {
  readonly merchantId: string;
  readonly id: string;
  /** The connected account the fee was taken from. */
  readonly account: string;
  readonly chargeId: string;
  readonly currency: string;
  readonly amountMinor: bigint;
  readonly amountRefundedMinor: bigint;
  readonly ledgerEntryId: string;
  readonly createdAt: string;
}

export interface ApplicationFeeRefundRow {
  readonly merchantId: string;
  readonly id: string;
  readonly feeId: string;
  readonly amountMinor: bigint;
  readonly metadata: Record<string, string>;
  readonly sourceRefund: string | null;
  readonly ledgerEntryId: string;
  readonly createdAt: string;
}

export async function insertApplicationFee(db: Queryable,
  fee: Omit<ApplicationFeeRow, 'amountRefundedMinor' | 'createdAt'>): Promise<ApplicationFeeRow> {
  const result = await db.query(named(`INSERT INTO application_fees (merchant_id, id, account, charge_id, currency,
       amount_minor, ledger_entry_id) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`),
  [fee.merchantId, fee.id, fee.account, fee.chargeId, fee.currency, fee.amountMinor.toString(), fee.ledgerEntryId]);
  return toFee(result.rows[0]);
}

export async function selectApplicationFee(db: Queryable, key: { merchantId: string; id: string },
  options = { forUpdate: false }): Promise<ApplicationFeeRow | undefined> {
  const result = await db.query(named(`SELECT * FROM application_fees WHERE merchant_id = $1 AND id = $2
     ${options.forUpdate ? 'FOR UPDATE' : ''}`), [key.merchantId, key.id]);
  return result.rows[0] === undefined ? undefined : toFee(result.rows[0]);
}

export async function selectApplicationFeeOfCharge(db: Queryable, key: { merchantId: string; chargeId: string },
  options = { forUpdate: false }): Promise<ApplicationFeeRow | undefined> {
  const result = await db.query(named(`SELECT * FROM application_fees WHERE merchant_id = $1 AND charge_id = $2
     ${options.forUpdate ? 'FOR UPDATE' : ''}`), [key.merchantId, key.chargeId]);
  return result.rows[0] === undefined ? undefined : toFee(result.rows[0]);
}

export function selectApplicationFeePage(db: Queryable, query: { merchantId: string; limit: number;
  startingAfter: string | undefined; endingBefore: string | undefined; chargeId: string | undefined;
  createdGte: string | undefined; createdLte: string | undefined }): Promise<PageRows<ApplicationFeeRow>> {
  return selectPage(db, 'application_fees', { ...query, equals: { charge_id: query.chargeId } }, toFee);
}

export async function addApplicationFeeRefunded(db: Queryable, fee: Pick<ApplicationFeeRow, 'merchantId' | 'id'>,
  amountMinor: bigint): Promise<ApplicationFeeRow> {
  const result = await db.query(named(`UPDATE application_fees SET amount_refunded_minor = amount_refunded_minor + $3
     WHERE merchant_id = $1 AND id = $2 RETURNING *`), [fee.merchantId, fee.id, amountMinor.toString()]);
  return toFee(result.rows[0]);
}

export async function insertApplicationFeeRefund(db: Queryable, refund: Omit<ApplicationFeeRefundRow, 'createdAt'>):
Promise<ApplicationFeeRefundRow> {
  const result = await db.query(named(`INSERT INTO application_fee_refunds (merchant_id, id, fee_id, amount_minor,
       metadata, source_refund, ledger_entry_id) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7) RETURNING *`),
  [refund.merchantId, refund.id, refund.feeId, refund.amountMinor.toString(), JSON.stringify(refund.metadata),
    refund.sourceRefund, refund.ledgerEntryId]);
  return toFeeRefund(result.rows[0]);
}

/** A fee's refunds, oldest first (at most 100: Stripe's embedded list page). */
export async function selectApplicationFeeRefunds(db: Queryable, fee: Pick<ApplicationFeeRow, 'merchantId' | 'id'>):
Promise<ApplicationFeeRefundRow[]> {
  const result = await db.query(named(`SELECT * FROM application_fee_refunds WHERE merchant_id = $1 AND fee_id = $2
     ORDER BY created_at, id LIMIT 100`), [fee.merchantId, fee.id]);
  return result.rows.map(toFeeRefund);
}

/** The refunds of a page of fees in one query, oldest first, at most 100 for each fee. */
export async function selectRefundsOfFees(db: Queryable, merchantId: string, feeIds: readonly string[]):
Promise<ApplicationFeeRefundRow[]> {
  const result = await db.query(named(`SELECT * FROM (SELECT r.*, row_number() OVER
         (PARTITION BY r.fee_id ORDER BY r.created_at, r.id) AS position
       FROM application_fee_refunds r WHERE r.merchant_id = $1 AND r.fee_id = ANY($2::text[])) ranked
     WHERE position <= 100 ORDER BY created_at, id`), [merchantId, feeIds]);
  return result.rows.map(toFeeRefund);
}

/** What a fee's refunds made by charge refunds (refund_application_fee) gave back. */
export async function selectFeeRefundedByRefunds(db: Queryable, fee: Pick<ApplicationFeeRow, 'merchantId' | 'id'>):
Promise<bigint> {
  const result = await db.query<{ total: bigint }>(named(`SELECT coalesce(sum(amount_minor), 0) AS total
     FROM application_fee_refunds WHERE merchant_id = $1 AND fee_id = $2 AND source_refund IS NOT NULL`),
  [fee.merchantId, fee.id]);
  return result.rows[0]?.total ?? 0n;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
function toFee(row: any): ApplicationFeeRow {
  if (row === undefined) throw new Error('expected an application_fees row');
  return {
    merchantId: row.merchant_id, id: row.id, account: row.account, chargeId: row.charge_id, currency: row.currency,
    amountMinor: row.amount_minor, amountRefundedMinor: row.amount_refunded_minor, ledgerEntryId: row.ledger_entry_id,
    createdAt: row.created_at,
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
function toFeeRefund(row: any): ApplicationFeeRefundRow {
  if (row === undefined) throw new Error('expected an application_fee_refunds row');
  return {
    merchantId: row.merchant_id, id: row.id, feeId: row.fee_id, amountMinor: row.amount_minor, metadata: row.metadata,
    sourceRefund: row.source_refund, ledgerEntryId: row.ledger_entry_id, createdAt: row.created_at,
  };
}
