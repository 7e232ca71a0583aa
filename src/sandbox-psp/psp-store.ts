import { nowIso } from '../clock.js';
import type pg from 'pg';
import { named, withTransaction, type Queryable } from '../db/pool.js';
import { newId } from '../ids.js';

/**
 * The sandbox acquirer's durable record: every money movement it performed, keyed by the
 * caller's idempotency key. It is the ground truth of "was the customer charged?". This file
 * holds every SQL statement of the sandbox PSP, its webhook outbox's included, and decides nothing.
 */
export type OperationKind = 'authorize' | 'capture' | 'void' | 'refund' | 'payout' | 'chargeback';

export interface OperationRow {
  readonly idempotencyKey: string;
  readonly reference: string;
  readonly kind: OperationKind;
  readonly pspReference: string;
  readonly parentPspReference: string | null;
  readonly amountMinor: bigint | null;
  readonly currency: string | null;
  readonly outcome: string;
  readonly declineCode: string | null;
  readonly paymentMethod: string | null;
  readonly requestFingerprint: string | null;
  readonly resolvesAt: string | null;
  /** The outcome a scheduled change (at `resolvesAt`) gives the operation. */
  readonly resolvedOutcome: string | null;
  /** A payout's bank account. */
  readonly destination: string | null;
  /** A failed payout's reason (Stripe's payout failure codes). */
  readonly failureCode: string | null;
  /** A dispute's reason (Stripe's dispute reasons). */
  readonly reason: string | null;
  /** A dispute's fee, in minor units of its currency. */
  readonly feeMinor: bigint | null;
  /** pm_card_bypassPending: the funds of this charge are available at once. */
  readonly availableImmediately: boolean;
  /** pm_card_createDispute: when the sandbox opens a dispute on this captured charge. */
  readonly disputeAt: string | null;
  /** When a payout or a dispute reached its final outcome. */
  readonly decidedAt: string | null;
  readonly createdAt: string;
}

/** What a caller records: the row's fields less those the record assigns (reference, timestamps). */
export interface NewOperation extends Pick<OperationRow, 'idempotencyKey' | 'reference' | 'kind' |
  'parentPspReference' | 'amountMinor' | 'currency' | 'outcome' | 'declineCode' | 'paymentMethod'> {
  readonly requestFingerprint: string;
  /**
   * An operation that changes later: it is recorded as `pending` (or `initialOutcome`) and takes
   * `outcome` at `resolvesAt` (a pending authorization, a payout going in transit).
   */
  readonly pending?: { readonly resolvesAt: string; readonly outcome: string } | undefined;
  /** The outcome recorded while `pending` waits; `pending` when absent. */
  readonly initialOutcome?: string | undefined;
  readonly destination?: string | null;
  readonly reason?: string | null;
  readonly feeMinor?: bigint | null;
  readonly availableImmediately?: boolean;
  readonly disputeAt?: string | null;
}

/** A webhook copy queued with the operation that caused it (the outbox, written in one statement). */
export interface WebhookCopy {
  readonly id: string;
  readonly copy: number;
  readonly type: string;
  readonly payload: string;
  readonly deliverAt: string;
}

/**
 * A transaction that books operations, which it dates with the sandbox's clock. Closing a day
 * (psp-settlement.ts) must not read the day while a booking dated in it is still uncommitted, or
 * the day would change after it was paid: bookings share a lock that closing takes alone, so a
 * booking dated before the close commits before the close reads, and one that waits for the close
 * is dated after it (the clock had moved on to the next day before the close began).
 */
export function withBookingTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  // One round trip opens it with the shared lock held; the work then dates its bookings.
  return withTransaction(pool, work,
    { begin: "BEGIN; SELECT pg_advisory_xact_lock_shared(hashtext('penny:sandbox_psp_bookings'))" });
}

/** Closing a day: waits for the bookings under way, and holds new ones until the transaction ends. */
export async function lockBookings(client: pg.PoolClient): Promise<void> {
  await client.query(named("SELECT pg_advisory_xact_lock(hashtext('penny:sandbox_psp_bookings'))"));
}

/**
 * Records an operation once per key; a repeat returns the first record and `created: false`.
 * The webhook copies `webhooksFor` gives for the new record are written by the same statement,
 * and only if the record is new, so an operation and its webhooks commit together.
 */
export async function recordOperation(db: Queryable, operation: NewOperation,
  webhooksFor: (operation: OperationRow) => readonly WebhookCopy[] = () => []) {
  const pspReference = newId('sbx');
  const createdAt = nowIso();
  const copies = webhooksFor(toOperation({
    idempotency_key: operation.idempotencyKey, merchant_reference: operation.reference, kind: operation.kind,
    psp_reference: pspReference, parent_psp_reference: operation.parentPspReference,
    amount_minor: operation.amountMinor, currency: operation.currency,
    outcome: recordedOutcome(operation), decline_code: operation.declineCode,
    payment_method: operation.paymentMethod, request_fingerprint: operation.requestFingerprint,
    resolves_at: operation.pending?.resolvesAt ?? null, resolved_outcome: operation.pending?.outcome ?? null,
    destination: operation.destination ?? null, failure_code: null, reason: operation.reason ?? null,
    fee_minor: operation.feeMinor ?? null, available_immediately: operation.availableImmediately ?? false,
    dispute_at: operation.disputeAt ?? null, decided_at: null, created_at: withMicroseconds(createdAt),
  }));
  // Two requests with one key at once: the second's insert waits for the first and does nothing,
  // but its statement's snapshot predates the first's row; a second look (a new snapshot) finds it.
  for (let look = 0; look < 2; look += 1) {
    const recorded = await recordOrFind(db, operation, { pspReference, createdAt, copies });
    if (recorded !== undefined) return recorded;
  }
  throw new Error('the sandbox neither recorded nor found an operation');
}

function recordedOutcome(operation: NewOperation): string {
  return operation.pending === undefined ? operation.outcome : operation.initialOutcome ?? 'pending';
}

/** `2026-01-31T12:00:00.123Z` as PostgreSQL gives it back: `2026-01-31T12:00:00.123000Z`. */
function withMicroseconds(iso: string): string {
  return iso.replace(/\.(\d{3})Z$/, '.$1000Z');
}

async function recordOrFind(db: Queryable, operation: NewOperation,
  prepared: { pspReference: string; createdAt: string; copies: readonly WebhookCopy[] }) {
  const { copies } = prepared;
  const result = await db.query(named(`WITH inserted AS (
       INSERT INTO sandbox_psp_operations (idempotency_key, merchant_reference, kind, psp_reference,
         parent_psp_reference, amount_minor, currency, outcome, decline_code, payment_method, request_fingerprint,
         resolves_at, resolved_outcome, created_at, updated_at,
         destination, reason, fee_minor, available_immediately, dispute_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $20, $21, $22, $23, $24)
       ON CONFLICT (idempotency_key) DO NOTHING
       RETURNING *, true AS created),
     webhooks AS (
       INSERT INTO sandbox_psp_webhooks (id, copy, type, payload, deliver_at)
       SELECT w.id, w.copy, w.type, w.payload::jsonb, w.deliver_at
       FROM unnest($15::text[], $16::integer[], $17::text[], $18::text[], $19::timestamptz[])
         AS w(id, copy, type, payload, deliver_at)
       WHERE EXISTS (SELECT 1 FROM inserted))
     SELECT * FROM inserted
     UNION ALL
     SELECT *, false AS created FROM sandbox_psp_operations WHERE idempotency_key = $1
       AND NOT EXISTS (SELECT 1 FROM inserted)`),
  [operation.idempotencyKey, operation.reference, operation.kind, prepared.pspReference, operation.parentPspReference,
    operation.amountMinor?.toString() ?? null, operation.currency, recordedOutcome(operation),
    operation.declineCode, operation.paymentMethod, operation.requestFingerprint,
    operation.pending?.resolvesAt ?? null, operation.pending?.outcome ?? null, prepared.createdAt,
    copies.map((copy) => copy.id), copies.map((copy) => copy.copy), copies.map((copy) => copy.type),
    copies.map((copy) => copy.payload), copies.map((copy) => copy.deliverAt),
    operation.destination ?? null, operation.reason ?? null, operation.feeMinor?.toString() ?? null,
    operation.availableImmediately ?? false, operation.disputeAt ?? null]);
  const row = result.rows[0];
  return row === undefined ? undefined : { operation: toOperation(row), created: row.created === true };
}

export async function selectOperation(db: Queryable, pspReference: string, options: { forUpdate?: boolean } = {}) {
  const result = await db.query(named(`SELECT * FROM sandbox_psp_operations WHERE psp_reference = $1
     ${options.forUpdate === true ? 'FOR UPDATE' : ''}`), [pspReference]);
  return result.rows[0] === undefined ? undefined : toOperation(result.rows[0]);
}

export async function selectOperationsByReference(db: Queryable, reference: string): Promise<OperationRow[]> {
  const result = await db.query(named(`SELECT * FROM sandbox_psp_operations WHERE merchant_reference = $1
     ORDER BY created_at, psp_reference LIMIT 100`), [reference]);
  return result.rows.map(toOperation);
}

export async function selectChildren(db: Queryable, parentPspReference: string): Promise<OperationRow[]> {
  const result = await db.query(named(`SELECT * FROM sandbox_psp_operations WHERE parent_psp_reference = $1
     ORDER BY created_at LIMIT 1000`), [parentPspReference]);
  return result.rows.map(toOperation);
}

/**
 * Operations whose scheduled change is due (`resolves_at` passed), locked for the caller's
 * transaction, skipping those another worker or a control call holds.
 */
export async function claimDueChanges(db: Queryable, batchMax: number): Promise<OperationRow[]> {
  const result = await db.query(named(`SELECT * FROM sandbox_psp_operations
     WHERE resolves_at <= $1 ORDER BY resolves_at LIMIT $2 FOR UPDATE SKIP LOCKED`), [nowIso(), batchMax]);
  return result.rows.map(toOperation);
}

/** A state change of an operation the caller holds locked; the next one scheduled, or none. */
export interface StateChange {
  readonly outcome: string;
  readonly failureCode?: string | null;
  readonly decidedAt?: string | null;
  /** A pm_card_createDispute charge that became captured: when its dispute opens. */
  readonly disputeAt?: string | null;
  readonly next?: { readonly resolvesAt: string; readonly outcome: string } | undefined;
}

export async function updateOperationState(db: Queryable, pspReference: string, change: StateChange):
Promise<OperationRow> {
  const result = await db.query(named(`UPDATE sandbox_psp_operations SET outcome = $2,
       failure_code = COALESCE($3, failure_code), decided_at = COALESCE($4, decided_at),
       resolves_at = $5, resolved_outcome = $6, updated_at = $7, dispute_at = COALESCE($8, dispute_at)
     WHERE psp_reference = $1
     RETURNING *`),
  [pspReference, change.outcome, change.failureCode ?? null, change.decidedAt ?? null,
    change.next?.resolvesAt ?? null, change.next?.outcome ?? null, nowIso(), change.disputeAt ?? null]);
  const row = result.rows[0];
  if (row === undefined) throw new Error(`no sandbox operation ${pspReference} to change`);
  return toOperation(row);
}

/** Captured pm_card_createDispute charges whose dispute is due, taken (their `dispute_at` cleared). */
export async function takeDueDisputeOpenings(db: Queryable, batchMax: number): Promise<OperationRow[]> {
  const result = await db.query(named(`UPDATE sandbox_psp_operations SET dispute_at = NULL, updated_at = $1
     WHERE psp_reference IN (SELECT psp_reference FROM sandbox_psp_operations
       WHERE dispute_at <= $1 ORDER BY dispute_at LIMIT $2 FOR UPDATE SKIP LOCKED)
     RETURNING *`), [nowIso(), batchMax]);
  return result.rows.map(toOperation);
}

/** The operation recorded under a key (a dispute's is derived from its charge), if any. */
export async function selectOperationByKey(db: Queryable, key: string): Promise<OperationRow | undefined> {
  const result = await db.query('SELECT * FROM sandbox_psp_operations WHERE idempotency_key = $1', [key]);
  return result.rows[0] === undefined ? undefined : toOperation(result.rows[0]);
}

/** Merchant payouts paid on one UTC day (settlement payouts are never `decided`), for the bank's statements. */
export async function selectPayoutsPaidOnDay(db: Queryable, day: string): Promise<OperationRow[]> {
  const result = await db.query(named(`SELECT * FROM sandbox_psp_operations
     WHERE kind = 'payout' AND outcome = 'paid' AND decided_at >= $1::date AND decided_at < $1::date + 1
     ORDER BY decided_at, psp_reference`), [day]);
  return result.rows.map(toOperation);
}

/** The sandbox's payouts of a day's batches to the operator (`settle`), as they were paid. */
export async function selectSettlementPayouts(db: Queryable, day: string): Promise<OperationRow[]> {
  const result = await db.query(named(`SELECT * FROM sandbox_psp_operations
     WHERE kind = 'payout' AND idempotency_key LIKE 'settlement:' || $1 || ':%' ORDER BY idempotency_key`), [day]);
  return result.rows.map(toOperation);
}

/** Operations created, or decided, on one UTC day, for its settlement. */
export async function selectOperationsOfDay(db: Queryable, day: string): Promise<OperationRow[]> {
  const result = await db.query(named(`SELECT * FROM sandbox_psp_operations
     WHERE (created_at >= $1::date AND created_at < $1::date + 1)
        OR (decided_at >= $1::date AND decided_at < $1::date + 1)
     ORDER BY created_at, psp_reference`), [day]);
  return result.rows.map(toOperation);
}

/** The PSP reference of the operation recorded under an idempotency key, if any. */
export async function selectPspReferenceByKey(db: Queryable, key: string): Promise<string | undefined> {
  const result = await db.query<{ psp_reference: string }>(
    'SELECT psp_reference FROM sandbox_psp_operations WHERE idempotency_key = $1', [key]);
  return result.rows[0]?.psp_reference;
}

/** Queues webhook copies in the sandbox's outbox. */
export async function insertWebhookCopies(db: Queryable, copies: readonly WebhookCopy[]): Promise<void> {
  await db.query(named(`INSERT INTO sandbox_psp_webhooks (id, copy, type, payload, deliver_at)
       SELECT w.id, w.copy, w.type, w.payload::jsonb, w.deliver_at
       FROM unnest($1::text[], $2::integer[], $3::text[], $4::text[], $5::timestamptz[])
         AS w(id, copy, type, payload, deliver_at)`),
  [copies.map((copy) => copy.id), copies.map((copy) => copy.copy), copies.map((copy) => copy.type),
    copies.map((copy) => copy.payload), copies.map((copy) => copy.deliverAt)]);
}

/** A webhook copy claimed for sending; `payload` is the event as JSON (jsonb, parsed). */
export interface ClaimedWebhookCopy {
  readonly id: string;
  readonly copy: number;
  readonly payload: unknown;
  readonly attemptCount: number;
}

/**
 * Claims up to 32 copies due by `now` and tried fewer than `attemptsMax` times, oldest due first,
 * skipping those another sender holds: each is counted as tried and due again at `leaseUntil`.
 */
export async function claimDueWebhookCopies(db: Queryable, claim: { now: string; leaseUntil: string;
  attemptsMax: number }): Promise<ClaimedWebhookCopy[]> {
  const due = await db.query(named(`UPDATE sandbox_psp_webhooks SET attempt_count = attempt_count + 1,
         deliver_at = $2
       WHERE (id, copy) IN (SELECT id, copy FROM sandbox_psp_webhooks
         WHERE delivered_at IS NULL AND deliver_at <= $1 AND attempt_count < $3
         ORDER BY deliver_at LIMIT 32 FOR UPDATE SKIP LOCKED)
       RETURNING id, copy, payload, attempt_count`),
  [claim.now, claim.leaseUntil, claim.attemptsMax]);
  return due.rows.map((row) => ({ id: row.id, copy: row.copy, payload: row.payload, attemptCount: row.attempt_count }));
}

export interface WebhookCopyResult {
  readonly id: string;
  readonly copy: number;
  readonly delivered: boolean;
  /** When it is due again if it was not delivered (written either way; a delivered copy is not claimed). */
  readonly retryAt: string;
}

/** Every copy's result in one statement: delivered at `deliveredAt`, or due again at its `retryAt`. */
export async function recordWebhookResults(db: Queryable, results: readonly WebhookCopyResult[],
  deliveredAt: string): Promise<void> {
  await db.query(named(`UPDATE sandbox_psp_webhooks w
       SET delivered_at = CASE WHEN r.delivered THEN $4::timestamptz END, deliver_at = r.retry_at
       FROM unnest($1::text[], $2::integer[], $3::boolean[], $5::timestamptz[]) AS r(id, copy, delivered, retry_at)
       WHERE w.id = r.id AND w.copy = r.copy`),
  [results.map((result) => result.id), results.map((result) => result.copy),
    results.map((result) => result.delivered), deliveredAt, results.map((result) => result.retryAt)]);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
function toOperation(row: any): OperationRow {
  return {
    idempotencyKey: row.idempotency_key, reference: row.merchant_reference, kind: row.kind,
    pspReference: row.psp_reference, parentPspReference: row.parent_psp_reference, amountMinor: row.amount_minor,
    currency: row.currency, outcome: row.outcome, declineCode: row.decline_code, paymentMethod: row.payment_method,
    requestFingerprint: row.request_fingerprint, resolvesAt: row.resolves_at, resolvedOutcome: row.resolved_outcome,
    destination: row.destination, failureCode: row.failure_code, reason: row.reason, feeMinor: row.fee_minor,
    availableImmediately: row.available_immediately === true, disputeAt: row.dispute_at, decidedAt: row.decided_at,
    createdAt: row.created_at,
  };
}

/** The sandbox's answer and webhook payload for an operation. */
export function presentOperation(operation: OperationRow) {
  return {
    object: 'operation',
    psp_reference: operation.pspReference,
    reference: operation.reference,
    kind: operation.kind,
    outcome: operation.outcome,
    parent_psp_reference: operation.parentPspReference,
    amount_minor: operation.amountMinor,
    currency: operation.currency,
    decline_code: operation.declineCode,
    available_immediately: operation.availableImmediately,
    destination: operation.destination,
    failure_code: operation.failureCode,
    reason: operation.reason,
    fee_minor: operation.feeMinor,
    decided_at: operation.decidedAt,
    created_at: operation.createdAt,
  };
}
