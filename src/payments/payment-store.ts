import { clockNowSql, clockOffsetParameter } from '../db/clock-sql.js';
import { named, type Queryable } from '../db/pool.js';
import { selectPage, type PageRows } from '../db/pages.js';
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
  readonly connect: ConnectFields;
  readonly createdAt: string;
}

/** A destination charge's Connect fields, on its intent and its charges; amounts in Stripe's units. */
export interface ConnectFields {
  readonly transferDestination: string | null;
  readonly transferAmount: bigint | null;
  readonly applicationFeeAmount: bigint | null;
  readonly onBehalfOf: string | null;
  readonly transferGroup: string | null;
}

export const noConnect: ConnectFields = { transferDestination: null, transferAmount: null, applicationFeeAmount: null,
  onBehalfOf: null, transferGroup: null };

export type NewPaymentIntent = Pick<PaymentIntentRow, 'merchantId' | 'id' | 'amount' | 'currency' | 'status' |
  'captureMethod' | 'paymentMethod' | 'customer' | 'description' | 'receiptEmail' | 'statementDescriptor' |
  'metadata' | 'connect'>;

export async function insertPaymentIntent(db: Queryable, intent: NewPaymentIntent): Promise<PaymentIntentRow> {
  const result = await db.query(
    named(`INSERT INTO payment_intents (merchant_id, id, amount, currency, status, capture_method, payment_method,
       customer, description, receipt_email, statement_descriptor, metadata, transfer_destination, transfer_amount,
       application_fee_amount, on_behalf_of, transfer_group, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13, $14, $15, $16, $17, ${clockNowSql(18)})
     RETURNING *`),
    [intent.merchantId, intent.id, intent.amount.toString(), intent.currency, intent.status, intent.captureMethod,
      intent.paymentMethod, intent.customer, intent.description, intent.receiptEmail, intent.statementDescriptor,
      JSON.stringify(intent.metadata), ...connectValues(intent.connect), clockOffsetParameter()],
  );
  return toRow(result.rows[0]);
}

/** The intent, locked for the rest of the caller's transaction when `forUpdate`. */
export async function selectPaymentIntent(
  db: Queryable,
  key: { merchantId: string; id: string },
  options: { forUpdate: boolean } = { forUpdate: false },
): Promise<PaymentIntentRow | undefined> {
  const result = await db.query(
    named(`SELECT * FROM payment_intents WHERE merchant_id = $1 AND id = $2 ${options.forUpdate ? 'FOR UPDATE' : ''}`),
    [key.merchantId, key.id],
  );
  return result.rows[0] === undefined ? undefined : toRow(result.rows[0]);
}

/**
 * Intents whose uncaptured authorization is due to expire by `now`: the charge's capture_before,
 * written at authorization (for charges from before it existed, their hold's expiry, then the
 * same instant). An intent being captured, or canceled by its merchant (the cancel's recovery job
 * finishes it), or with an open case about its expiry, is left out and takes no place in the batch.
 */
export async function selectExpiredAuthorizations(db: Queryable, query: { now: string; limit: number }):
Promise<{ merchantId: string; id: string }[]> {
  const due = await db.query<{ merchant_id: string; id: string }>(named(`SELECT p.merchant_id, p.id
     FROM payment_intents p
     JOIN charges c ON c.merchant_id = p.merchant_id AND c.id = p.latest_charge
     LEFT JOIN ledger_entries h ON h.id = c.authorization_entry_id
     WHERE p.status = 'requires_capture' AND coalesce(c.capture_before, h.expires_at) <= $1
      AND NOT EXISTS (SELECT 1 FROM payment_intent_finalizations f
        WHERE f.merchant_id = p.merchant_id AND f.payment_intent_id = p.id
          AND (f.kind = 'capture' OR f.cancellation_reason IS DISTINCT FROM 'automatic'))
      AND NOT EXISTS (SELECT 1 FROM payment_cases pc
        WHERE pc.kind = 'unresolved_outcome' AND pc.subject_id = 'expiry:' || p.id AND pc.status = 'open')
     ORDER BY p.updated_at LIMIT $2`), [query.now, query.limit]);
  return due.rows.map((row) => ({ merchantId: row.merchant_id, id: row.id }));
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

export function selectPaymentIntentPage(
  db: Queryable,
  query: PaymentIntentListQuery,
): Promise<PageRows<PaymentIntentRow>> {
  return selectPage(db, 'payment_intents', {
    merchantId: query.merchantId, limit: query.limit, startingAfter: query.startingAfter,
    endingBefore: query.endingBefore, equals: { customer: query.customer },
    createdGte: query.createdGte, createdLte: query.createdLte,
  }, toRow);
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
    canceledAt: row.canceled_at, cancellationReason: row.cancellation_reason, connect: toConnect(row),
    createdAt: row.created_at,
  };
}

function connectValues(connect: ConnectFields): (string | null)[] {
  return [connect.transferDestination, connect.transferAmount?.toString() ?? null,
    connect.applicationFeeAmount?.toString() ?? null, connect.onBehalfOf, connect.transferGroup];
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
function toConnect(row: any): ConnectFields {
  return {
    transferDestination: row.transfer_destination ?? null, transferAmount: row.transfer_amount ?? null,
    applicationFeeAmount: row.application_fee_amount ?? null, onBehalfOf: row.on_behalf_of ?? null,
    transferGroup: row.transfer_group ?? null,
  };
}

/** Any subset of an intent's mutable fields, in one UPDATE. */
export async function updatePaymentIntent(
  db: Queryable,
  row: Pick<PaymentIntentRow, 'merchantId' | 'id'>,
  change: {
    status: PaymentIntentStatus;
    paymentMethod?: string | null;
    amountCapturable?: bigint;
    amountReceived?: bigint;
    latestCharge?: string | null;
    lastPaymentError?: Record<string, unknown> | null;
    nextAction?: Record<string, unknown> | null;
    canceled?: { reason: string | null };
  },
): Promise<PaymentIntentRow> {
  const has = (key: keyof typeof change) => key in change;
  const result = await db.query(
    named(`UPDATE payment_intents SET status = $3,
       payment_method = CASE WHEN $4 THEN $5 ELSE payment_method END,
       amount_capturable = CASE WHEN $6 THEN $7::bigint ELSE amount_capturable END,
       amount_received = CASE WHEN $8 THEN $9::bigint ELSE amount_received END,
       latest_charge = CASE WHEN $10 THEN $11 ELSE latest_charge END,
       last_payment_error = CASE WHEN $12 THEN $13::jsonb ELSE last_payment_error END,
       next_action = CASE WHEN $14 THEN $15::jsonb ELSE next_action END,
       canceled_at = CASE WHEN $16 THEN clock_timestamp() ELSE canceled_at END,
       cancellation_reason = CASE WHEN $16 THEN $17 ELSE cancellation_reason END,
       updated_at = clock_timestamp()
     WHERE merchant_id = $1 AND id = $2 RETURNING *`),
    [row.merchantId, row.id, change.status,
      has('paymentMethod'), change.paymentMethod ?? null,
      has('amountCapturable'), change.amountCapturable?.toString() ?? null,
      has('amountReceived'), change.amountReceived?.toString() ?? null,
      has('latestCharge'), change.latestCharge ?? null,
      has('lastPaymentError'), change.lastPaymentError === undefined ? null : JSON.stringify(change.lastPaymentError),
      has('nextAction'), change.nextAction === undefined ? null : JSON.stringify(change.nextAction),
      change.canceled !== undefined, change.canceled?.reason ?? null],
  );
  return toRow(result.rows[0]);
}

/** An attempt's statuses: open while its outcome is unknown to Penny, then resolved for good. */
export const attemptStatuses = ['started', 'unknown', 'manual_review', 'authorized', 'captured', 'requires_action',
  'declined', 'failed', 'authentication_failed'] as const;
export type AttemptStatus = (typeof attemptStatuses)[number];
export type ChargeStatus = 'succeeded' | 'pending' | 'failed';
export type RefundStatus = 'pending' | 'succeeded' | 'failed';

export interface AttemptRow {
  readonly merchantId: string;
  readonly id: string;
  readonly paymentIntentId: string;
  readonly attemptNumber: number;
  readonly connector: string;
  readonly pspIdempotencyKey: string;
  readonly paymentMethod: string;
  readonly status: AttemptStatus;
  readonly pspReference: string | null;
  readonly authenticated: boolean;
  /** Where the customer returns after authenticating (3-D Secure), as the confirmation named it. */
  readonly returnUrl: string | null;
  readonly createdAt: string;
}

export async function insertAttempt(
  db: Queryable,
  attempt: Omit<AttemptRow, 'attemptNumber' | 'status' | 'pspReference' | 'pspIdempotencyKey' | 'createdAt'>,
): Promise<AttemptRow> {
  const result = await db.query(
    named(`INSERT INTO payment_attempts (merchant_id, id, payment_intent_id, attempt_number, connector,
       psp_idempotency_key, payment_method, status, authenticated, return_url)
     SELECT $1, $2, $3, coalesce(max(attempt_number), 0) + 1, $4,
       'penny:' || $3 || ':attempt:' || (coalesce(max(attempt_number), 0) + 1), $5, 'started', $6, $7
     FROM payment_attempts WHERE payment_intent_id = $3
     RETURNING *`),
    [attempt.merchantId, attempt.id, attempt.paymentIntentId, attempt.connector, attempt.paymentMethod,
      attempt.authenticated, attempt.returnUrl],
  );
  return toAttempt(result.rows[0]);
}

export async function selectAttempt(db: Queryable, merchantId: string, id: string): Promise<AttemptRow | undefined> {
  const result = await db.query(named('SELECT * FROM payment_attempts WHERE merchant_id = $1 AND id = $2'), [merchantId, id]);
  return result.rows[0] === undefined ? undefined : toAttempt(result.rows[0]);
}

/** The intent's newest attempt: the one a 3-D Secure page may still complete. */
export async function selectLatestAttempt(db: Queryable, merchantId: string, paymentIntentId: string):
Promise<AttemptRow | undefined> {
  const result = await db.query(named(`SELECT * FROM payment_attempts WHERE merchant_id = $1 AND payment_intent_id = $2
     ORDER BY attempt_number DESC LIMIT 1`), [merchantId, paymentIntentId]);
  return result.rows[0] === undefined ? undefined : toAttempt(result.rows[0]);
}

/** An attempt by its id alone: PSP webhooks and recovery name it so (ids are unique across merchants). */
export async function selectAttemptById(db: Queryable, id: string): Promise<AttemptRow | undefined> {
  const result = await db.query(named('SELECT * FROM payment_attempts WHERE id = $1'), [id]);
  return result.rows[0] === undefined ? undefined : toAttempt(result.rows[0]);
}

/** An attempt whose outcome recovery could not learn goes to manual review (unless resolved meanwhile). */
export async function markAttemptManualReview(db: Queryable, attempt: Pick<AttemptRow, 'merchantId' | 'id'>):
Promise<void> {
  await db.query(named(`UPDATE payment_attempts SET status = 'manual_review', updated_at = clock_timestamp()
     WHERE merchant_id = $1 AND id = $2 AND status IN ('started', 'unknown')`), [attempt.merchantId, attempt.id]);
}

export async function updateAttempt(
  db: Queryable,
  attempt: Pick<AttemptRow, 'merchantId' | 'id'>,
  change: { status: AttemptStatus; pspReference: string | null; declineCode: string | null },
): Promise<void> {
  await db.query(
    named(`UPDATE payment_attempts SET status = $3, psp_reference = coalesce($4, psp_reference), decline_code = $5,
       updated_at = clock_timestamp()
     WHERE merchant_id = $1 AND id = $2`),
    [attempt.merchantId, attempt.id, change.status, change.pspReference, change.declineCode]);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
function toAttempt(row: any): AttemptRow {
  if (row === undefined) throw new Error('expected a payment_attempts row');
  return {
    merchantId: row.merchant_id, id: row.id, paymentIntentId: row.payment_intent_id,
    attemptNumber: row.attempt_number, connector: row.connector, pspIdempotencyKey: row.psp_idempotency_key,
    paymentMethod: row.payment_method, status: row.status, pspReference: row.psp_reference,
    authenticated: row.authenticated, returnUrl: row.return_url ?? null, createdAt: row.created_at,
  };
}

export interface ChargeRow {
  readonly merchantId: string;
  readonly id: string;
  readonly paymentIntentId: string;
  readonly attemptId: string;
  /** The connector that authorized it: its captures, voids, refunds and look-ups go there. */
  readonly connector: string;
  readonly amount: bigint;
  readonly currency: string;
  readonly amountCaptured: bigint;
  readonly amountRefunded: bigint;
  readonly captured: boolean;
  readonly status: ChargeStatus;
  readonly paymentMethod: string;
  readonly failureCode: string | null;
  readonly failureMessage: string | null;
  readonly outcome: Record<string, unknown>;
  readonly pspReference: string | null;
  readonly authorizationEntryId: string | null;
  /** An uncaptured authorization expires then (Penny's clock); null once captured or for older charges. */
  readonly captureBefore: string | null;
  /** The PSP makes its funds available at once (pm_card_bypassPending): no wait for settlement. */
  readonly fundsAvailableImmediately: boolean;
  /** Its intent's Connect fields, as they were when it was made. */
  readonly connect: ConnectFields;
  /** The PSP disputed it: it is refunded no more. */
  readonly disputed: boolean;
  /** A destination charge's Transfer and ApplicationFee, once captured. */
  readonly transferId: string | null;
  readonly applicationFeeId: string | null;
  readonly createdAt: string;
}

export async function insertCharge(
  db: Queryable,
  charge: Omit<ChargeRow, 'amountRefunded' | 'captured' | 'createdAt' | 'disputed'>,
): Promise<ChargeRow> {
  const result = await db.query(
    named(`INSERT INTO charges (merchant_id, id, payment_intent_id, attempt_id, amount, currency, amount_captured,
       captured, status, payment_method, failure_code, failure_message, outcome, psp_reference,
       authorization_entry_id, capture_before, connector, funds_available_immediately, transfer_destination,
       transfer_amount, application_fee_amount, on_behalf_of, transfer_group, transfer_id, application_fee_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $7::bigint > 0, $8, $9, $10, $11, $12::jsonb, $13, $14, $15, $16, $17,
       $18, $19, $20, $21, $22, $23, $24)
     RETURNING *`),
    [charge.merchantId, charge.id, charge.paymentIntentId, charge.attemptId, charge.amount.toString(),
      charge.currency, charge.amountCaptured.toString(), charge.status, charge.paymentMethod, charge.failureCode,
      charge.failureMessage, JSON.stringify(charge.outcome), charge.pspReference, charge.authorizationEntryId,
      charge.captureBefore, charge.connector, charge.fundsAvailableImmediately, ...connectValues(charge.connect),
      charge.transferId, charge.applicationFeeId],
  );
  return toCharge(result.rows[0]);
}

export async function selectCharge(
  db: Queryable,
  key: { merchantId: string; id: string },
  options: { forUpdate: boolean } = { forUpdate: false },
): Promise<ChargeRow | undefined> {
  const result = await db.query(
    named(`SELECT * FROM charges WHERE merchant_id = $1 AND id = $2 ${options.forUpdate ? 'FOR UPDATE' : ''}`),
    [key.merchantId, key.id]);
  return result.rows[0] === undefined ? undefined : toCharge(result.rows[0]);
}

/** A charge by its id alone: PSP events name it so (ids are unique across merchants). */
export async function selectChargeById(db: Queryable, id: string): Promise<ChargeRow | undefined> {
  const result = await db.query(named('SELECT * FROM charges WHERE id = $1'), [id]);
  return result.rows[0] === undefined ? undefined : toCharge(result.rows[0]);
}

/** The charge an attempt made (a capture at authorization names the attempt, not the charge). */
export async function selectChargeByAttemptId(db: Queryable, attemptId: string): Promise<ChargeRow | undefined> {
  const result = await db.query(named('SELECT * FROM charges WHERE attempt_id = $1'), [attemptId]);
  return result.rows[0] === undefined ? undefined : toCharge(result.rows[0]);
}

export function selectChargePage(
  db: Queryable,
  query: { merchantId: string; limit: number; startingAfter: string | undefined; endingBefore: string | undefined;
    paymentIntent: string | undefined },
): Promise<PageRows<ChargeRow>> {
  return selectPage(db, 'charges', { ...query, equals: { payment_intent_id: query.paymentIntent } }, toCharge);
}

export async function updateChargeCaptured(
  db: Queryable,
  charge: ChargeRow,
  amountCaptured: bigint,
): Promise<ChargeRow> {
  const result = await db.query(
    named(`UPDATE charges SET amount_captured = $3, captured = true WHERE merchant_id = $1 AND id = $2 RETURNING *`),
    [charge.merchantId, charge.id, amountCaptured.toString()]);
  return toCharge(result.rows[0]);
}

/** The PSP disputed the charge (in the transaction that opens its dispute). */
export async function markChargeDisputed(db: Queryable, charge: Pick<ChargeRow, 'merchantId' | 'id'>): Promise<void> {
  await db.query(named('UPDATE charges SET disputed = true WHERE merchant_id = $1 AND id = $2'),
    [charge.merchantId, charge.id]);
}

/** A destination charge's Transfer and ApplicationFee, made by its capture. */
export async function updateChargeTransfer(db: Queryable, charge: Pick<ChargeRow, 'merchantId' | 'id'>,
  made: { transferId: string; applicationFeeId: string | null }): Promise<ChargeRow> {
  const result = await db.query(named(`UPDATE charges SET transfer_id = $3, application_fee_id = $4
     WHERE merchant_id = $1 AND id = $2 RETURNING *`),
  [charge.merchantId, charge.id, made.transferId, made.applicationFeeId]);
  return toCharge(result.rows[0]);
}

/** Reserves a refund's amount on its charge; the CHECK refuses more than was captured. */
export async function addChargeRefunded(db: Queryable, charge: ChargeRow, amount: bigint): Promise<ChargeRow> {
  const result = await db.query(
    named(`UPDATE charges SET amount_refunded = amount_refunded + $3 WHERE merchant_id = $1 AND id = $2 RETURNING *`),
    [charge.merchantId, charge.id, amount.toString()]);
  return toCharge(result.rows[0]);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
function toCharge(row: any): ChargeRow {
  if (row === undefined) throw new Error('expected a charges row');
  return {
    merchantId: row.merchant_id, id: row.id, paymentIntentId: row.payment_intent_id, attemptId: row.attempt_id,
    amount: row.amount, currency: row.currency, amountCaptured: row.amount_captured,
    amountRefunded: row.amount_refunded, captured: row.captured, status: row.status,
    paymentMethod: row.payment_method, failureCode: row.failure_code, failureMessage: row.failure_message,
    outcome: row.outcome, pspReference: row.psp_reference, authorizationEntryId: row.authorization_entry_id,
    captureBefore: row.capture_before, connector: row.connector,
    fundsAvailableImmediately: row.funds_available_immediately === true, connect: toConnect(row),
    disputed: row.disputed === true, transferId: row.transfer_id ?? null,
    applicationFeeId: row.application_fee_id ?? null, createdAt: row.created_at,
  };
}

/** Records that an intent is being captured or canceled; false when another finalization won. */
export interface FinalizationRow {
  readonly kind: string;
  readonly amount: bigint | null;
  readonly cancellationReason: string | null;
  /** The PSP idempotency key of this claim's call; null for claims made before keys were recorded. */
  readonly pspIdempotencyKey: string | null;
  /**
   * The PSP's reference of this claim's request when the PSP took it and reports later (Adyen's
   * `received`): only a report naming it settles the claim. Null until then, and for a PSP that
   * answers at once.
   */
  readonly pspReference: string | null;
}

export async function selectFinalization(db: Queryable, intent: Pick<PaymentIntentRow, 'merchantId' | 'id'>):
Promise<FinalizationRow | undefined> {
  const result = await db.query(named(`SELECT kind, amount, cancellation_reason, psp_idempotency_key, psp_reference
     FROM payment_intent_finalizations WHERE merchant_id = $1 AND payment_intent_id = $2`), [intent.merchantId, intent.id]);
  return result.rows[0] === undefined ? undefined : toFinalization(result.rows[0]);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
function toFinalization(row: any): FinalizationRow {
  return { kind: row.kind, amount: row.amount, cancellationReason: row.cancellation_reason,
    pspIdempotencyKey: row.psp_idempotency_key, pspReference: row.psp_reference ?? null };
}

/** Keeps the PSP reference of a claim's request the PSP took (`received`); the first one kept stays. */
export async function updateFinalizationPspReference(db: Queryable, intent: Pick<PaymentIntentRow, 'merchantId' | 'id'>,
  claim: { kind: 'capture' | 'cancel'; pspReference: string }): Promise<void> {
  await db.query(named(`UPDATE payment_intent_finalizations SET psp_reference = $4
     WHERE merchant_id = $1 AND payment_intent_id = $2 AND kind = $3 AND psp_reference IS NULL`),
  [intent.merchantId, intent.id, claim.kind, claim.pspReference]);
}

/** Gives back a claim whose PSP call was refused (nothing moved), so the intent can be finalized later. */
export async function deleteFinalization(db: Queryable, intent: Pick<PaymentIntentRow, 'merchantId' | 'id'>,
  kind: 'capture' | 'cancel'): Promise<void> {
  await db.query(named(`DELETE FROM payment_intent_finalizations
     WHERE merchant_id = $1 AND payment_intent_id = $2 AND kind = $3`), [intent.merchantId, intent.id, kind]);
}

/** Claims an intent's one finalization; the claim already there is returned when another won. */
export async function insertFinalization(
  db: Queryable,
  intent: Pick<PaymentIntentRow, 'merchantId' | 'id'>,
  claim: { kind: 'capture' | 'cancel'; amount: bigint | null; cancellationReason: string | null;
    pspIdempotencyKey: string },
): Promise<FinalizationRow & { won: boolean }> {
  const result = await db.query(
    named(`WITH inserted AS (
       INSERT INTO payment_intent_finalizations (merchant_id, payment_intent_id, kind, amount, cancellation_reason,
         psp_idempotency_key)
       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING
       RETURNING kind, amount, cancellation_reason, psp_idempotency_key, psp_reference)
     SELECT *, true AS inserted FROM inserted
     UNION ALL
     SELECT kind, amount, cancellation_reason, psp_idempotency_key, psp_reference, false
     FROM payment_intent_finalizations
     WHERE merchant_id = $1 AND payment_intent_id = $2 AND NOT EXISTS (SELECT 1 FROM inserted)`),
    [intent.merchantId, intent.id, claim.kind, claim.amount?.toString() ?? null, claim.cancellationReason,
      claim.pspIdempotencyKey]);
  const row = result.rows[0];
  if (row === undefined) throw new Error('a finalization was neither inserted nor found');
  return { ...toFinalization(row), won: row.inserted === true };
}

export interface RefundRow {
  readonly merchantId: string;
  readonly id: string;
  readonly chargeId: string;
  readonly paymentIntentId: string;
  /** The charge's connector: the refund is sent, looked up and recovered there. */
  readonly connector: string;
  readonly amount: bigint;
  readonly currency: string;
  readonly reason: string | null;
  readonly status: RefundStatus;
  readonly metadata: Record<string, string>;
  /** The refunded payment's customer and payment method, as they were when the refund was made. */
  readonly customer: string | null;
  readonly paymentMethod: string | null;
  readonly pspReference: string | null;
  readonly ledgerEntryId: string | null;
  readonly reverseTransfer: boolean;
  readonly refundApplicationFee: boolean;
  /** What its success reversed of a destination charge's transfer, and refunded of its fee. */
  readonly transferReversalId: string | null;
  readonly applicationFeeRefundId: string | null;
  readonly createdAt: string;
}

/** The refund's customer is its PaymentIntent's, read in the same statement. */
export async function insertRefund(
  db: Queryable,
  refund: Pick<RefundRow, 'merchantId' | 'id' | 'chargeId' | 'paymentIntentId' | 'connector' | 'amount' | 'currency' |
    'reason' | 'metadata' | 'paymentMethod' | 'reverseTransfer' | 'refundApplicationFee'>,
): Promise<RefundRow> {
  const result = await db.query(
    named(`INSERT INTO refunds (merchant_id, id, charge_id, payment_intent_id, amount, currency, reason, status, metadata,
       payment_method, customer, connector, reverse_transfer, refund_application_fee, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8::jsonb, $9,
       (SELECT customer FROM payment_intents WHERE merchant_id = $1 AND id = $4), $10, $11, $12, ${clockNowSql(13)})
     RETURNING *`),
    [refund.merchantId, refund.id, refund.chargeId, refund.paymentIntentId, refund.amount.toString(),
      refund.currency, refund.reason, JSON.stringify(refund.metadata), refund.paymentMethod, refund.connector,
      refund.reverseTransfer, refund.refundApplicationFee, clockOffsetParameter()]);
  return toRefund(result.rows[0]);
}

export async function selectRefund(db: Queryable, merchantId: string, id: string): Promise<RefundRow | undefined> {
  const result = await db.query(named('SELECT * FROM refunds WHERE merchant_id = $1 AND id = $2'), [merchantId, id]);
  return result.rows[0] === undefined ? undefined : toRefund(result.rows[0]);
}

/** A refund by its id alone: PSP events name it so (ids are unique across merchants). */
export async function selectRefundById(db: Queryable, id: string): Promise<RefundRow | undefined> {
  const result = await db.query(named('SELECT * FROM refunds WHERE id = $1'), [id]);
  return result.rows[0] === undefined ? undefined : toRefund(result.rows[0]);
}

export async function completeRefund(
  db: Queryable,
  refund: RefundRow,
  done: { pspReference: string; ledgerEntryId: string; transferReversalId: string | null;
    applicationFeeRefundId: string | null },
): Promise<RefundRow> {
  const result = await db.query(
    named(`UPDATE refunds SET status = 'succeeded', psp_reference = $3, ledger_entry_id = $4,
       transfer_reversal_id = $5, application_fee_refund_id = $6
     WHERE merchant_id = $1 AND id = $2 RETURNING *`),
    [refund.merchantId, refund.id, done.pspReference, done.ledgerEntryId, done.transferReversalId,
      done.applicationFeeRefundId]);
  return toRefund(result.rows[0]);
}

/**
 * What a charge's succeeded refunds came to, in Stripe's units: in all, and those that asked to
 * reverse the transfer and to refund the application fee.
 */
export async function selectSucceededRefundTotals(db: Queryable, charge: Pick<ChargeRow, 'merchantId' | 'id'>):
Promise<{ all: bigint; reversing: bigint; feeRefunding: bigint }> {
  const result = await db.query<{ all: bigint; reversing: bigint; fee_refunding: bigint }>(named(`SELECT
       coalesce(sum(amount), 0) AS all,
       coalesce(sum(amount) FILTER (WHERE reverse_transfer), 0) AS reversing,
       coalesce(sum(amount) FILTER (WHERE refund_application_fee), 0) AS fee_refunding
     FROM refunds WHERE merchant_id = $1 AND charge_id = $2 AND status = 'succeeded'`), [charge.merchantId, charge.id]);
  const row = result.rows[0];
  return { all: row?.all ?? 0n, reversing: row?.reversing ?? 0n, feeRefunding: row?.fee_refunding ?? 0n };
}

/**
 * The PSP took the refund and tells its outcome later (Adyen's `received`): its PSP reference is
 * kept on the pending refund, which is how its later report is told from a request in flight.
 */
export async function markRefundReceived(db: Queryable, refund: Pick<RefundRow, 'merchantId' | 'id'>,
  pspReference: string): Promise<void> {
  await db.query(named(`UPDATE refunds SET psp_reference = $3 WHERE merchant_id = $1 AND id = $2
     AND status = 'pending'`), [refund.merchantId, refund.id, pspReference]);
}

export async function failRefund(db: Queryable, refund: RefundRow): Promise<RefundRow> {
  const result = await db.query(named(`UPDATE refunds SET status = 'failed' WHERE merchant_id = $1 AND id = $2
     RETURNING *`), [refund.merchantId, refund.id]);
  return toRefund(result.rows[0]);
}

export function selectRefundPage(
  db: Queryable,
  query: { merchantId: string; limit: number; startingAfter: string | undefined; endingBefore: string | undefined;
    charge: string | undefined; paymentIntent: string | undefined },
): Promise<PageRows<RefundRow>> {
  return selectPage(db, 'refunds', {
    ...query, equals: { charge_id: query.charge, payment_intent_id: query.paymentIntent },
  }, toRefund);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
function toRefund(row: any): RefundRow {
  if (row === undefined) throw new Error('expected a refunds row');
  return {
    merchantId: row.merchant_id, id: row.id, chargeId: row.charge_id, paymentIntentId: row.payment_intent_id,
    connector: row.connector, amount: row.amount, currency: row.currency, reason: row.reason, status: row.status,
    metadata: row.metadata, customer: row.customer, paymentMethod: row.payment_method, pspReference: row.psp_reference,
    ledgerEntryId: row.ledger_entry_id, reverseTransfer: row.reverse_transfer === true,
    refundApplicationFee: row.refund_application_fee === true, transferReversalId: row.transfer_reversal_id ?? null,
    applicationFeeRefundId: row.application_fee_refund_id ?? null, createdAt: row.created_at,
  };
}

/** The fields a merchant may change before confirmation; null leaves a field as it is. */
export async function updatePaymentIntentDetails(
  db: Queryable,
  row: PaymentIntentRow,
  change: { amount: bigint | null; currency: string | null; paymentMethod: string | null; captureMethod: string | null;
    description: string | null; customer: string | null; receiptEmail: string | null;
    statementDescriptor: string | null; metadata: Record<string, string>; status: PaymentIntentStatus },
): Promise<PaymentIntentRow> {
  const result = await db.query(
    named(`UPDATE payment_intents SET
       amount = coalesce($3::bigint, amount), currency = coalesce($4, currency),
       payment_method = coalesce($5, payment_method), capture_method = coalesce($6, capture_method),
       description = nullif(coalesce($7, description), ''), customer = nullif(coalesce($8, customer), ''),
       receipt_email = nullif(coalesce($9, receipt_email), ''),
       statement_descriptor = nullif(coalesce($10, statement_descriptor), ''),
       metadata = $11::jsonb, status = $12, updated_at = clock_timestamp()
     WHERE merchant_id = $1 AND id = $2 RETURNING *`),
    [row.merchantId, row.id, change.amount?.toString() ?? null, change.currency, change.paymentMethod,
      change.captureMethod, change.description, change.customer, change.receiptEmail, change.statementDescriptor,
      JSON.stringify(change.metadata), change.status]);
  return toRow(result.rows[0]);
}

/**
 * The operator's search over every merchant's PaymentIntents (the dashboard's payments list):
 * each filter optional, newest first, Stripe's cursors over (created_at, id). `amountGte`/`Lte`
 * are in Stripe's units of the intent's currency; `search` matches an intent, charge or attempt
 * id, a PSP reference, or a metadata value exactly.
 */
export interface PaymentIntentSearchQuery {
  readonly merchantId: string | undefined;
  readonly status: string | undefined;
  readonly currency: string | undefined;
  readonly amountGte: bigint | undefined;
  readonly amountLte: bigint | undefined;
  readonly createdGte: string | undefined;
  readonly createdLte: string | undefined;
  readonly connector: string | undefined;
  readonly search: string | undefined;
  readonly limit: number;
  readonly startingAfter: string | undefined;
  readonly endingBefore: string | undefined;
}

export async function selectPaymentIntentSearchPage(db: Queryable, query: PaymentIntentSearchQuery):
Promise<PageRows<PaymentIntentRow>> {
  const backwards = query.endingBefore !== undefined;
  const result = await db.query(named(`SELECT * FROM (SELECT p.* FROM payment_intents p
     WHERE ($2::text IS NULL OR p.merchant_id = $2)
       AND ($3::text IS NULL OR p.status = $3)
       AND ($4::text IS NULL OR p.currency = $4)
       AND ($5::bigint IS NULL OR p.amount >= $5)
       AND ($6::bigint IS NULL OR p.amount <= $6)
       AND ($7::timestamptz IS NULL OR p.created_at >= $7)
       AND ($8::timestamptz IS NULL OR p.created_at <= $8)
       AND ($9::text IS NULL OR EXISTS (SELECT 1 FROM payment_attempts a
             WHERE a.merchant_id = p.merchant_id AND a.payment_intent_id = p.id AND a.connector = $9))
       AND ($10::text IS NULL OR p.id = $10 OR p.latest_charge = $10
             OR EXISTS (SELECT 1 FROM jsonb_each_text(p.metadata) m WHERE m.value = $10)
             OR EXISTS (SELECT 1 FROM payment_attempts a WHERE a.merchant_id = p.merchant_id
                  AND a.payment_intent_id = p.id AND (a.id = $10 OR a.psp_reference = $10)))
       AND ($11::text IS NULL OR (p.created_at, p.id) ${backwards ? '>' : '<'}
             (SELECT created_at, id FROM payment_intents WHERE id = $11
               AND ($2::text IS NULL OR merchant_id = $2)))
     ORDER BY p.created_at ${backwards ? 'ASC' : 'DESC'}, p.id ${backwards ? 'ASC' : 'DESC'} LIMIT $1) page
     ORDER BY created_at DESC, id DESC`),
  [query.limit + 1, query.merchantId ?? null, query.status ?? null, query.currency ?? null,
    query.amountGte?.toString() ?? null, query.amountLte?.toString() ?? null, query.createdGte ?? null,
    query.createdLte ?? null, query.connector ?? null, query.search ?? null,
    query.startingAfter ?? query.endingBefore ?? null]);
  const hasMore = result.rows.length > query.limit;
  const rows = backwards ? result.rows.slice(hasMore ? 1 : 0) : result.rows.slice(0, query.limit);
  return { rows: rows.map(toRow), hasMore };
}

/** An intent by its id alone (ids are unique across merchants): the operator's look-up. */
export async function selectPaymentIntentById(db: Queryable, id: string): Promise<PaymentIntentRow | undefined> {
  const result = await db.query(named('SELECT * FROM payment_intents WHERE id = $1'), [id]);
  return result.rows[0] === undefined ? undefined : toRow(result.rows[0]);
}

/** An intent's attempts, first to last (an intent has a handful). */
export async function selectAttemptsOfIntent(db: Queryable, key: { merchantId: string; id: string }):
Promise<AttemptRow[]> {
  const result = await db.query(named(`SELECT * FROM payment_attempts WHERE merchant_id = $1 AND payment_intent_id = $2
     ORDER BY attempt_number LIMIT 100`), [key.merchantId, key.id]);
  return result.rows.map(toAttempt);
}
