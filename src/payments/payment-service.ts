import type pg from 'pg';
import { PennyError } from '../errors.js';
import { newId } from '../ids.js';
import { presentPaymentIntent } from './payment-presenter.js';
import { assertOperationAllowed, assertTransition, initialStatus } from './payment-state.js';
import * as store from './payment-store.js';
import type { CreatePaymentIntentCommand } from './payment-validation.js';

/**
 * PaymentIntents. Each operation runs on the connection of its idempotent request and locks the
 * intent's row (FOR UPDATE), so concurrent operations on one payment are serialized and exactly
 * one wins.
 */
export class PaymentService {
  constructor(private readonly pool: pg.Pool) {}

  async create(client: pg.PoolClient, merchantId: string, command: CreatePaymentIntentCommand) {
    return store.insertPaymentIntent(client, {
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
    });
  }

  async retrieve(merchantId: string, id: string): Promise<store.PaymentIntentRow> {
    const intent = await store.selectPaymentIntent(this.pool, merchantId, id);
    if (intent === undefined) throw noSuchIntent(id);
    return intent;
  }

  async list(query: store.PaymentIntentListQuery) {
    const cursor = query.startingAfter ?? query.endingBefore;
    if (cursor !== undefined && (await store.selectPaymentIntent(this.pool, query.merchantId, cursor)) === undefined) {
      throw noSuchIntent(cursor, query.startingAfter !== undefined ? 'starting_after' : 'ending_before');
    }
    const rows = await store.selectPaymentIntentPage(this.pool, query);
    const hasMore = rows.length > query.limit;
    const page = query.endingBefore !== undefined
      ? rows.slice(hasMore ? 1 : 0)
      : rows.slice(0, query.limit);
    return { data: page, hasMore };
  }

  /** Cancels in one transaction, under the intent's row lock. */
  async cancel(client: pg.PoolClient, merchantId: string, id: string, cancellationReason: string | null) {
    await client.query('BEGIN');
    try {
      const intent = await store.selectPaymentIntent(client, merchantId, id, { forUpdate: true });
      if (intent === undefined) throw noSuchIntent(id);
      assertOperationAllowed(intent.status, 'cancel', presentPaymentIntent(intent));
      assertTransition(intent.status, 'canceled');
      const canceled = await store.updatePaymentIntentStatus(client, intent, {
        status: 'canceled', canceledAt: true, cancellationReason,
      });
      await client.query('COMMIT');
      return canceled;
    } catch (error) {
      await client.query('ROLLBACK');
      throw error;
    }
  }
}

function noSuchIntent(id: string, param = 'intent'): PennyError {
  return new PennyError({ code: 'resource_missing', param, message: `No such payment_intent: '${id}'` });
}
