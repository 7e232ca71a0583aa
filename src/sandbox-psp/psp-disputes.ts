import type pg from 'pg';
import { nowIso, nowMs } from '../clock.js';
import type { Queryable } from '../db/pool.js';
import { PennyError } from '../errors.js';
import { invalid } from '../validation.js';
import { defaultDisputeReason, type DisputeReason } from './psp-decisions.js';
import { InvalidStateError, invalidState, notFound } from './psp-errors.js';
import type { FaultInjector } from './psp-faults.js';
import { sandboxPriceList } from './psp-settlement.js';
import {
  recordOperation, selectChildren, selectOperation, selectOperationByKey, selectOperationsByReference,
  updateOperationState, withBookingTransaction, type OperationRow,
} from './psp-store.js';
import { enqueueWebhook, webhookCopies } from './psp-outbox.js';

/**
 * Disputes at the sandbox acquirer: a cardholder disputes a captured charge. A dispute is an
 * operation of kind `chargeback` (one per charge), opened `needs_response` with the disputed
 * amount withdrawn and the dispute fee charged, then decided `won` (the amount comes back; the
 * fee does not, as on Stripe) or `lost`, by a control call or after a delay. Each state change
 * queues a signed webhook in the same transaction.
 *
 * The dispute's `reference` is Penny's reference of the operation that captured the charge (its
 * attempt for an automatic capture, its charge for a manual one), so a look-up by it finds the
 * dispute; its `parent_psp_reference` is the charge's authorization, the PSP reference Penny
 * keeps on the charge.
 */
export type DisputeOutcome = 'won' | 'lost';

export interface DisputeRequest {
  /** Penny's reference of an operation on the charge (attempt or charge id)… */
  readonly chargeReference?: string | undefined;
  /** …or the PSP reference of its authorization or capture. */
  readonly pspReference?: string | undefined;
  /** Default: what was captured. */
  readonly amountMinor?: bigint | undefined;
  readonly reason?: DisputeReason | undefined;
  /** The dispute decides itself this long after it opens (default: the fault profile's). */
  readonly decideAfterMs?: number | undefined;
  readonly decideOutcome?: DisputeOutcome | undefined;
}

/** The idempotency key of a charge's dispute: a charge is disputed at most once. */
export function disputeKeyOf(authorizationPspReference: string): string {
  return `chargeback:${authorizationPspReference}`;
}

/** Opens a dispute asked for by a control call or the CLI; a charge already disputed is refused. */
export async function openDispute(pool: pg.Pool, injector: FaultInjector, request: DisputeRequest):
Promise<OperationRow> {
  return withBookingTransaction(pool, async (client) => {
    const charge = await lockedCharge(client, request);
    const existing = await selectOperationByKey(client, disputeKeyOf(charge.authorization.pspReference));
    if (existing !== undefined) {
      throw invalidState(charge.authorization, `disputed again (dispute ${existing.pspReference})`);
    }
    return recordDispute(client, injector, charge, request);
  });
}

/**
 * The dispute a pm_card_createDispute charge gets once its time comes, in the caller's
 * transaction; nothing when the charge is disputed already or no longer captured.
 */
export async function openScheduledDispute(client: pg.PoolClient, injector: FaultInjector,
  capturing: OperationRow): Promise<OperationRow | undefined> {
  const authorization = capturing.kind === 'authorize' ? capturing.pspReference : capturing.parentPspReference;
  if (authorization === null) return undefined;
  let charge: LockedCharge;
  try {
    charge = await lockedCharge(client, { pspReference: authorization });
  } catch (error) {
    // Refunded away, voided, or never captured after all: there is nothing to dispute.
    if (error instanceof InvalidStateError || error instanceof PennyError) return undefined;
    throw error;
  }
  const existing = await selectOperationByKey(client, disputeKeyOf(charge.authorization.pspReference));
  if (existing !== undefined) return undefined;
  return recordDispute(client, injector, charge, {});
}

/** Decides a dispute that still needs a response, and queues its webhook. */
export async function decideDispute(pool: pg.Pool, injector: FaultInjector, pspReference: string,
  outcome: DisputeOutcome): Promise<OperationRow> {
  return withBookingTransaction(pool, async (client) => {
    const dispute = await selectOperation(client, pspReference, { forUpdate: true });
    if (dispute?.kind !== 'chargeback') throw notFound(pspReference, 'id');
    if (dispute.outcome !== 'needs_response') throw invalidState(dispute, outcome);
    const decided = await updateOperationState(client, dispute.pspReference, { outcome, decidedAt: nowIso() });
    await enqueueWebhook(client, decided, injector);
    return decided;
  });
}

interface LockedCharge {
  /** Locked for the transaction: disputes, captures and refunds of a charge are decided under it. */
  readonly authorization: OperationRow;
  readonly capturing: OperationRow;
  readonly capturedMinor: bigint;
}

async function lockedCharge(client: pg.PoolClient, request: DisputeRequest): Promise<LockedCharge> {
  const named = await namedOperation(client, request);
  const authorizationReference = named.kind === 'authorize' ? named.pspReference
    : named.kind === 'capture' ? named.parentPspReference : null;
  if (authorizationReference === null) throw invalidState(named, 'disputed: it is no charge');
  const authorization = await selectOperation(client, authorizationReference, { forUpdate: true });
  if (authorization === undefined) throw notFound(authorizationReference);
  if (authorization.outcome === 'captured') {
    return { authorization, capturing: authorization, capturedMinor: authorization.amountMinor ?? 0n };
  }
  const captures = (await selectChildren(client, authorization.pspReference))
    .filter((child) => child.kind === 'capture' && child.outcome === 'captured');
  const [capturing] = captures;
  if (capturing === undefined) throw invalidState(authorization, 'disputed: nothing was captured');
  return { authorization, capturing,
    capturedMinor: captures.reduce((sum, capture) => sum + (capture.amountMinor ?? 0n), 0n) };
}

async function namedOperation(db: Queryable, request: DisputeRequest): Promise<OperationRow> {
  if (request.pspReference !== undefined) {
    const operation = await selectOperation(db, request.pspReference);
    if (operation === undefined) throw notFound(request.pspReference);
    return operation;
  }
  const reference = request.chargeReference ?? '';
  const operations = await selectOperationsByReference(db, reference);
  const operation = operations.find((item) => item.kind === 'capture') ?? operations.find((item) =>
    item.kind === 'authorize');
  if (operation === undefined) throw notFound(reference, 'charge_reference');
  return operation;
}

async function recordDispute(client: pg.PoolClient, injector: FaultInjector, charge: LockedCharge,
  request: DisputeRequest): Promise<OperationRow> {
  const amountMinor = request.amountMinor ?? charge.capturedMinor;
  if (amountMinor > charge.capturedMinor) {
    throw invalid('amount_minor', `A dispute is at most what was captured (${charge.capturedMinor}).`);
  }
  const decision = request.decideAfterMs === undefined ? injector.disputeDecision()
    : { afterMs: request.decideAfterMs, outcome: request.decideOutcome ?? 'won' };
  let faults: string[] = [];
  const recorded = await recordOperation(client, {
    idempotencyKey: disputeKeyOf(charge.authorization.pspReference), reference: charge.capturing.reference,
    kind: 'chargeback', parentPspReference: charge.authorization.pspReference, amountMinor,
    currency: charge.authorization.currency, outcome: 'needs_response', declineCode: null,
    paymentMethod: charge.authorization.paymentMethod, requestFingerprint: 'chargeback',
    reason: request.reason ?? defaultDisputeReason, feeMinor: sandboxPriceList.disputeFeeMinor,
    ...(decision === undefined ? {} : { initialOutcome: 'needs_response', pending: {
      resolvesAt: new Date(nowMs() + decision.afterMs).toISOString(), outcome: decision.outcome } }),
  }, (row) => {
    const fate = webhookCopies(row, injector);
    faults = fate.faults;
    return fate.copies;
  });
  if (recorded.created) injector.countInjected(faults);
  return recorded.operation;
}
