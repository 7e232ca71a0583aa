import type { Queryable } from '../db/pool.js';
import type { PaymentIntentStatus } from './payment-state.js';

/** The SQL of PaymentIntents, one function per statement. Every statement is merchant-scoped. */
export interface PaymentIntentRow {
  readonly merchantId: string;
  readonly id: string;
  readonly amount: bigint;
  readonly currency: string;
  readonly status: PaymentIntentStatus;
  readonly captureMethod: string;
  readonly paymentMethod: string | null;
  readonly customer: string | null;
  readonly description: string | null;
  readonly receiptEmail: string | null;
  readonly statementDescriptor: string | null;
  readonly metadata: Record<string, string>;
  readonly amountCapturable: bigint;
  readonly amountReceived: bigint;
  readonly latestCharge: string | null;
  readonly lastPaymentError: Record<string, unknown> | null;
  readonly nextAction: Record<string, unknown> | null;
  readonly canceledAt: string | null;
  readonly cancellationReason: string | null;
  readonly createdAt: string;
}

export type NewPaymentIntent = Pick<PaymentIntentRow, 'merchantId' | 'id' | 'amount' | 'currency' | 'status' |
  'captureMethod' | 'paymentMethod' | 'customer' | 'description' | 'receiptEmail' | 'statementDescriptor' |
  'metadata'>;

export async function insertPaymentIntent(db: Queryable, intent: NewPaymentIntent): Promise<PaymentIntentRow> {
  const result = await db.query(
    `INSERT INTO payment_intents (merchant_id, id, amount, currency, status, capture_method, payment_method,
       customer, description, receipt_email, statement_descriptor, metadata)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb)
     RETURNING *`,
    [intent.merchantId, intent.id, intent.amount.toString(), intent.currency, intent.status, intent.captureMethod,
      intent.paymentMethod, intent.customer, intent.description, intent.receiptEmail, intent.statementDescriptor,
      JSON.stringify(intent.metadata)],
  );
  return toRow(result.rows[0]);
}

/** The intent, locked for the rest of the caller's transaction when `forUpdate`. */
export async function selectPaymentIntent(
  db: Queryable,
  merchantId: string,
  id: string,
  options: { forUpdate: boolean } = { forUpdate: false },
): Promise<PaymentIntentRow | undefined> {
  const result = await db.query(
    `SELECT * FROM payment_intents WHERE merchant_id = $1 AND id = $2 ${options.forUpdate ? 'FOR UPDATE' : ''}`,
    [merchantId, id],
  );
  return result.rows[0] === undefined ? undefined : toRow(result.rows[0]);
}

export interface PaymentIntentListQuery {
  readonly merchantId: string;
  readonly limit: number;
  readonly startingAfter: string | undefined;
  readonly endingBefore: string | undefined;
  readonly customer: string | undefined;
  readonly createdGte: string | undefined;
  readonly createdLte: string | undefined;
}

/** Newest first; `ending_before` pages backwards and is returned newest first as well. */
export async function selectPaymentIntentPage(
  db: Queryable,
  query: PaymentIntentListQuery,
): Promise<PaymentIntentRow[]> {
  const backwards = query.endingBefore !== undefined;
  const cursor = query.startingAfter ?? query.endingBefore ?? null;
  const result = await db.query(
    `SELECT * FROM (
       SELECT * FROM payment_intents p
       WHERE p.merchant_id = $1
         AND ($3::text IS NULL OR p.customer = $3)
         AND ($4::timestamptz IS NULL OR p.created_at >= $4)
         AND ($5::timestamptz IS NULL OR p.created_at <= $5)
         AND ($6::text IS NULL OR (
           CASE WHEN $7
             THEN (p.created_at, p.id) > (SELECT created_at, id FROM payment_intents WHERE merchant_id = $1 AND id = $6)
             ELSE (p.created_at, p.id) < (SELECT created_at, id FROM payment_intents WHERE merchant_id = $1 AND id = $6)
           END))
       ORDER BY CASE WHEN $7 THEN p.created_at END ASC, CASE WHEN $7 THEN p.id END ASC,
                p.created_at DESC, p.id DESC
       LIMIT $2) page
     ORDER BY created_at DESC, id DESC`,
    [query.merchantId, query.limit + 1, query.customer ?? null, query.createdGte ?? null, query.createdLte ?? null,
      cursor, backwards],
  );
  return result.rows.map(toRow);
}

export async function updatePaymentIntentStatus(
  db: Queryable,
  row: PaymentIntentRow,
  change: { status: PaymentIntentStatus; canceledAt?: boolean; cancellationReason?: string | null },
): Promise<PaymentIntentRow> {
  const result = await db.query(
    `UPDATE payment_intents SET status = $3,
       canceled_at = CASE WHEN $4 THEN clock_timestamp() ELSE canceled_at END,
       cancellation_reason = CASE WHEN $4 THEN $5 ELSE cancellation_reason END,
       amount_capturable = CASE WHEN $4 THEN 0 ELSE amount_capturable END,
       updated_at = clock_timestamp()
     WHERE merchant_id = $1 AND id = $2 RETURNING *`,
    [row.merchantId, row.id, change.status, change.canceledAt === true, change.cancellationReason ?? null],
  );
  return toRow(result.rows[0]);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
function toRow(row: any): PaymentIntentRow {
  if (row === undefined) throw new Error('expected a payment_intents row');
  return {
    merchantId: row.merchant_id, id: row.id, amount: row.amount, currency: row.currency, status: row.status,
    captureMethod: row.capture_method, paymentMethod: row.payment_method, customer: row.customer,
    description: row.description, receiptEmail: row.receipt_email, statementDescriptor: row.statement_descriptor,
    metadata: row.metadata, amountCapturable: row.amount_capturable, amountReceived: row.amount_received,
    latestCharge: row.latest_charge, lastPaymentError: row.last_payment_error, nextAction: row.next_action,
    canceledAt: row.canceled_at, cancellationReason: row.cancellation_reason, createdAt: row.created_at,
  };
}
