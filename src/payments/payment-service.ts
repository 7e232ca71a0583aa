import type pg from 'pg';
import { inTransaction, type Queryable } from '../db/pool.js';
import { PennyError } from '../errors.js';
import { newId } from '../ids.js';
import type { Execution } from '../idempotency/idempotency-service.js';
import type { PaymentFlows } from './payment-flows.js';
import { assertSplitFits } from './destination-charges.js';
import { validateStripeAmount } from '../money/stripe-currency.js';
import { recordIntentEvent } from './payment-events.js';
import { presentPaymentIntent } from './payment-presenter.js';
import { assertOperationAllowed, assertTransition, initialStatus } from './payment-state.js';
import { savedIntentId, saveRecoveryPoint } from './payment-recovery-points.js';
import * as store from './payment-store.js';

export type { AttemptRow, ChargeRow, PaymentIntentRow, RefundRow } from './payment-store.js';
import type { CreatePaymentIntentCommand, UpdatePaymentIntentCommand } from './payment-commands.js';

/**
 * PaymentIntents. Each operation runs on the connection of its idempotent request and locks the
 * intent's row (FOR UPDATE), so concurrent operations on one payment are serialized and exactly
 * one wins.
 */
export class PaymentService {
  constructor(private readonly pool: pg.Pool, readonly flows: PaymentFlows) {}

  async create(client: pg.PoolClient, merchantId: string, command: CreatePaymentIntentCommand) {
    await this.flows.lockConnectAccounts(client, merchantId, command.connect);
    const { connect } = command;
    const intent = await store.insertPaymentIntent(client, {
      merchantId,
      id: newId('pi'),
      amount: command.amount,
      currency: command.currency,
      status: initialStatus(command.paymentMethod),
      captureMethod: command.captureMethod,
      paymentMethod: command.paymentMethod ?? null,
      customer: command.customer ?? null,
      description: command.description ?? null,
      receiptEmail: command.receiptEmail ?? null,
      statementDescriptor: command.statementDescriptor ?? null,
      metadata: command.metadata,
      connect: { transferDestination: connect.transferDestination ?? null,
        transferAmount: connect.transferAmount ?? null, applicationFeeAmount: connect.applicationFeeAmount ?? null,
        onBehalfOf: connect.onBehalfOf ?? null, transferGroup: connect.transferGroup ?? null },
    });
    await recordIntentEvent(client, undefined, intent);
    return intent;
  }

  /** The test 3-D Secure page's Fail, on a connection of its own (no PSP call, so no idempotent request). */
  async failAuthentication(attempt: Pick<store.AttemptRow, 'merchantId' | 'paymentIntentId' | 'id'>):
  Promise<store.PaymentIntentRow> {
    const client = await this.pool.connect();
    try {
      return await this.flows.failAuthentication(client, attempt);
    } finally {
      client.release();
    }
  }

  /** The customer back from the PSP's own authentication page, on a connection of its own (PaymentFlows). */
  async completePspAuthentication(attempt: store.AttemptRow, details: Readonly<Record<string, string>>):
  Promise<store.PaymentIntentRow> {
    const client = await this.pool.connect();
    try {
      return await this.flows.completePspAuthentication(client, attempt, details);
    } finally {
      client.release();
    }
  }

  async retrieve(merchantId: string, id: string): Promise<store.PaymentIntentRow> {
    const intent = await store.selectPaymentIntent(this.pool, { merchantId: merchantId, id });
    if (intent === undefined) throw noSuchIntent(id);
    return intent;
  }

  /** A confirmation attempt by its id alone (an unguessable id: the 3-D Secure page is named by it). */
  findAttempt(attemptId: string): Promise<store.AttemptRow | undefined> {
    return store.selectAttemptById(this.pool, attemptId);
  }

  async list(query: store.PaymentIntentListQuery) {
    await this.assertCursorExists(query,
      (id) => store.selectPaymentIntent(this.pool, { merchantId: query.merchantId, id }));
    const page = await store.selectPaymentIntentPage(this.pool, query);
    return { data: page.rows, hasMore: page.hasMore };
  }

  /** A cursor names an object of this merchant, or the list is refused with 404. */
  private async assertCursorExists(
    query: { startingAfter: string | undefined; endingBefore: string | undefined },
    find: (id: string) => Promise<unknown>,
  ): Promise<void> {
    const cursor = query.startingAfter ?? query.endingBefore;
    if (cursor === undefined || (await find(cursor)) !== undefined) return;
    const param = query.startingAfter !== undefined ? 'starting_after' : 'ending_before';
    throw new PennyError({ code: 'resource_missing', param, message: `No such object: '${cursor}'` });
  }

  /**
   * Create, and with confirm=true confirm in the same idempotent request: the intent is created
   * with a recovery point, so a resumed request confirms the intent it created, never a second one.
   */
  async createAndConfirm(execution: Execution, merchantId: string, command: CreatePaymentIntentCommand) {
    const intentId = savedIntentId(execution);
    if (intentId !== undefined) {
      if (!command.confirm) return this.retrieve(merchantId, intentId);
      return this.flows.confirm(confirmStep(execution, intentId), { merchantId, id: intentId, ...command });
    }
    // Creation and, with confirm=true, the attempt's record commit together: one transaction.
    const created = await inTransaction(execution.client, async () => {
      const intent = await this.create(execution.client, merchantId, command);
      if (!command.confirm) {
        await saveRecoveryPoint(execution, { point: 'intent_created', intent: intent.id });
        return { intent, attempt: undefined };
      }
      const recorded = await this.flows.recordAttempt(confirmStep(execution, intent.id), intent, command);
      return { intent, attempt: recorded };
    });
    if (created.attempt === undefined) return created.intent;
    return this.flows.confirmRecorded(confirmStep(execution, created.intent.id),
      { merchantId, attemptId: created.attempt.attempt.id, known: created.attempt,
        paymentMethodData: command.paymentMethodData });
  }

  /** Updates an intent while its status allows (before confirmation), under its row lock. */
  async update(client: pg.PoolClient, key: { merchantId: string; id: string }, command: UpdatePaymentIntentCommand) {
    const { merchantId, id } = key;
    return inTransaction(client, async () => {
      const intent = await store.selectPaymentIntent(client, { merchantId: merchantId, id }, { forUpdate: true });
      if (intent === undefined) throw noSuchIntent(id);
      assertOperationAllowed(intent.status, 'update', presentPaymentIntent(intent));
      const currency = command.currency ?? intent.currency;
      const amount = command.amount ?? (command.currency === undefined ? undefined : intent.amount);
      const validAmount = amount === undefined ? null : validateStripeAmount(currency, amount, 'amount');
      if (validAmount !== null) {
        assertSplitFits(intent.connect, { currency, amount: validAmount },
          command.currency === undefined ? 'amount' : 'currency');
      }
      const metadata = command.metadata.clearAll ? {} : { ...intent.metadata };
      for (const key of command.metadata.unset) delete metadata[key];
      Object.assign(metadata, command.metadata.set);
      if (Object.keys(metadata).length > 50) {
        throw new PennyError({ code: 'metadata_invalid', param: 'metadata', message: 'metadata can have at most 50 keys.' });
      }
      const paymentMethod = command.paymentMethod ?? null;
      const status = paymentMethod !== null && intent.status === 'requires_payment_method'
        ? 'requires_confirmation' : intent.status;
      if (status !== intent.status) assertTransition(intent.status, status);
      const updated = await store.updatePaymentIntentDetails(client, intent, {
        amount: validAmount, currency: command.currency ?? null, paymentMethod,
        captureMethod: command.captureMethod ?? null, description: command.description ?? null,
        customer: command.customer ?? null, receiptEmail: command.receiptEmail ?? null,
        statementDescriptor: command.statementDescriptor ?? null, metadata, status,
      });
      return updated;
    });
  }

  /** The operator's search over every merchant's intents (the dashboard's list). */
  async search(query: store.PaymentIntentSearchQuery) {
    const cursor = query.startingAfter ?? query.endingBefore;
    // A merchant's cursor must be its own intent: another merchant's id is as unknown as none.
    const found = cursor === undefined ? undefined : query.merchantId === undefined
      ? await store.selectPaymentIntentById(this.pool, cursor)
      : await store.selectPaymentIntent(this.pool, { merchantId: query.merchantId, id: cursor });
    if (cursor !== undefined && found === undefined) {
      throw noSuchIntent(cursor, query.startingAfter === undefined ? 'ending_before' : 'starting_after');
    }
    const page = await store.selectPaymentIntentSearchPage(this.pool, query);
    return { data: page.rows, hasMore: page.hasMore };
  }

  /** An intent by id, for the operator (any merchant's); 404 when there is none. */
  async retrieveAny(id: string): Promise<store.PaymentIntentRow> {
    const intent = await store.selectPaymentIntentById(this.pool, id);
    if (intent === undefined) throw noSuchIntent(id, 'id');
    return intent;
  }

  /** An intent's confirmation attempts, first to last. */
  attempts(intent: Pick<store.PaymentIntentRow, 'merchantId' | 'id'>): Promise<store.AttemptRow[]> {
    return store.selectAttemptsOfIntent(this.pool, { merchantId: intent.merchantId, id: intent.id });
  }

  async retrieveCharge(merchantId: string, id: string): Promise<store.ChargeRow> {
    const charge = await store.selectCharge(this.pool, { merchantId: merchantId, id });
    if (charge === undefined) {
      throw new PennyError({ code: 'resource_missing', param: 'id', message: `No such charge: '${id}'` });
    }
    return charge;
  }

  async listCharges(query: { merchantId: string; limit: number; startingAfter: string | undefined;
    endingBefore: string | undefined; paymentIntent: string | undefined }) {
    await this.assertCursorExists(query, (id) => store.selectCharge(this.pool, { merchantId: query.merchantId, id }));
    const page = await store.selectChargePage(this.pool, query);
    return { data: page.rows, hasMore: page.hasMore };
  }

  async retrieveRefund(merchantId: string, id: string): Promise<store.RefundRow> {
    const refund = await store.selectRefund(this.pool, merchantId, id);
    if (refund === undefined) {
      throw new PennyError({ code: 'resource_missing', param: 'id', message: `No such refund: '${id}'` });
    }
    return refund;
  }

  async listRefunds(query: { merchantId: string; limit: number; startingAfter: string | undefined;
    endingBefore: string | undefined; charge: string | undefined; paymentIntent: string | undefined }) {
    await this.assertCursorExists(query, (id) => store.selectRefund(this.pool, query.merchantId, id));
    const page = await store.selectRefundPage(this.pool, query);
    return { data: page.rows, hasMore: page.hasMore };
  }
}

/**
 * The confirmation's view of a create-and-confirm request: its points start once the intent
 * exists, and every point it saves keeps the intent's id, so a resumed request finds it.
 */
function confirmStep(execution: Execution, intentId: string): Execution {
  return {
    ...execution,
    recoveryPoint: execution.recoveryPoint === 'attempt_recorded' ? 'attempt_recorded' : 'started',
    saveRecoveryPoint: (point, data) => execution.saveRecoveryPoint(point, { ...data, intent: intentId }),
  };
}

function noSuchIntent(id: string, param = 'intent'): PennyError {
  return new PennyError({ code: 'resource_missing', param, message: `No such payment_intent: '${id}'` });
}

/**
 * The charge a PSP's record names by Penny's reference: the charge itself (a capture) or the
 * attempt that captured at once. Undefined for a reference Penny never made.
 */
export async function chargeOfReference(db: Queryable, reference: string): Promise<store.ChargeRow | undefined> {
  if (reference.startsWith('ch_')) return store.selectChargeById(db, reference);
  if (reference.startsWith('pa_')) return store.selectChargeByAttemptId(db, reference);
  return undefined;
}

/**
 * The merchant's charge a reference names, its row locked (FOR UPDATE) for the rest of the
 * caller's transaction and read as it is under that lock: the lock refunds (reserveRefund,
 * applyRefund, failRefund) and disputes take first. Undefined for one Penny never made or another
 * merchant's (left unlocked).
 */
export async function lockChargeOfReference(db: Queryable, key: { merchantId: string; reference: string }):
Promise<store.ChargeRow | undefined> {
  const found = await chargeOfReference(db, key.reference);
  if (found === undefined || found.merchantId !== key.merchantId) return undefined;
  return store.selectCharge(db, found, { forUpdate: true });
}

/** The refund a PSP's record names by Penny's reference (re_…); undefined for one Penny never made. */
export function refundOfReference(db: Queryable, reference: string): Promise<store.RefundRow | undefined> {
  return reference.startsWith('re_') ? store.selectRefundById(db, reference) : Promise.resolve(undefined);
}
