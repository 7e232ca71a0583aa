import type { FastifyInstance, FastifyRequest } from 'fastify';
import type pg from 'pg';
import type { IdempotencyService } from '../idempotency/idempotency-service.js';
import { expandList, expandObject, readExpand } from '../payments/payment-expansion.js';
import { presentCharge, presentPaymentIntent, presentRefund } from '../payments/payment-presenter.js';
import type { PaymentService } from '../payments/payment-service.js';
import {
  parseCancelPaymentIntent, parseCapturePaymentIntent, parseConfirmPaymentIntent, parseCreatePaymentIntent,
  parseCreateRefund, parseUpdatePaymentIntent,
} from './stripe-payment-params.js';
import { cardDataError, inspectCardData } from '../security/card-filter.js';
import { readObject, readString } from '../validation.js';
import { merchantOf } from './merchant-routes.js';
import { answeredInTransaction, idempotent, readCreatedFilter, readPage } from './route-support.js';

export interface PaymentRouteDependencies {
  readonly pool: pg.Pool;
  readonly payments: PaymentService;
  readonly idempotency: IdempotencyService;
}

type IdParams = { Params: { id: string } };

/**
 * A list's cursors name Penny's own objects, and some ids hold long digit runs (a webhook
 * delivery's is hex), which the card filter would take for a card number now and then. A cursor
 * is only looked up, never stored or logged, and one naming nothing is 404, so it is not scanned.
 */
function withoutCursors(query: unknown): unknown {
  if (typeof query !== 'object' || query === null) return query;
  return Object.fromEntries(Object.entries(query)
    .filter(([name]) => name !== 'starting_after' && name !== 'ending_before'));
}

/** PaymentIntents, as Stripe's API serves them. Routes parse, then run idempotently, then present. */
export function registerPaymentRoutes(scope: FastifyInstance, dependencies: PaymentRouteDependencies): void {
  const { payments, pool } = dependencies;

  // Card data is refused before anything else sees the body or the query: nothing about it is
  // stored, and requests are logged without their query string.
  scope.addHook('preHandler', async (request) => {
    const finding = inspectCardData(withoutCursors(request.query))
      ?? (request.method === 'POST' ? inspectCardData(request.body) : undefined);
    if (finding !== undefined) throw cardDataError(finding.param, finding.reason);
  });

  scope.post('/v1/payment_intents', async (request, reply) => {
    const command = parseCreatePaymentIntent(request.body);
    const merchant = merchantOf(request);
    const paths = bodyExpand(request, 'payment_intent');
    return idempotent(dependencies.idempotency, request, reply, async (execution) => {
      const intent = await payments.createAndConfirm(execution, merchant.id, command);
      return { status: 200, body: presentPaymentIntent(intent) };
    }, expanding(merchant.id, paths));
  });

  scope.post<IdParams>('/v1/payment_intents/:id', async (request, reply) => {
    const command = parseUpdatePaymentIntent(request.body);
    const merchant = merchantOf(request);
    const paths = bodyExpand(request, 'payment_intent');
    return idempotent(dependencies.idempotency, request, reply, (execution) => answeredInTransaction(execution,
      async () => presentPaymentIntent(await payments.update(execution.client,
        { merchantId: merchant.id, id: request.params.id }, command))), expanding(merchant.id, paths));
  });

  scope.post<IdParams>('/v1/payment_intents/:id/confirm', async (request, reply) => {
    const command = parseConfirmPaymentIntent(request.body);
    const merchant = merchantOf(request);
    const paths = bodyExpand(request, 'payment_intent');
    return idempotent(dependencies.idempotency, request, reply, async (execution) => {
      const intent = await payments.flows.confirm(execution, { merchantId: merchant.id, id: request.params.id,
        ...command });
      return { status: 200, body: presentPaymentIntent(intent) };
    }, expanding(merchant.id, paths));
  });

  scope.post<IdParams>('/v1/payment_intents/:id/capture', async (request, reply) => {
    const command = parseCapturePaymentIntent(request.body);
    const merchant = merchantOf(request);
    const paths = bodyExpand(request, 'payment_intent');
    return idempotent(dependencies.idempotency, request, reply, async (execution) => {
      const intent = await payments.flows.capture(execution, { merchantId: merchant.id, id: request.params.id,
        ...command });
      return { status: 200, body: presentPaymentIntent(intent) };
    }, expanding(merchant.id, paths));
  });

  scope.get<IdParams>('/v1/payment_intents/:id', async (request) => {
    const query = readObject(request.query, '', ['expand', 'client_secret']);
    const merchant = merchantOf(request);
    const paths = readExpand(query.expand, 'payment_intent');
    const intent = await payments.retrieve(merchant.id, request.params.id);
    return expandObject(pool, presentPaymentIntent(intent), { merchantId: merchant.id, paths });
  });

  scope.get('/v1/payment_intents', async (request) => {
    const query = readObject(request.query, '', ['limit', 'starting_after', 'ending_before', 'customer', 'created',
      'expand']);
    const paths = readExpand(query.expand, 'payment_intent', { list: true });
    const created = readCreatedFilter(query.created);
    const page = await payments.list({
      merchantId: merchantOf(request).id,
      ...readPage(query),
      customer: readString(query.customer, 'customer', { lengthMax: 255 }),
      ...created,
    });
    const data = await expandList(pool, page.data.map(presentPaymentIntent),
      { merchantId: merchantOf(request).id, paths });
    return { object: 'list', data, has_more: page.hasMore, url: '/v1/payment_intents' };
  });

  scope.post<IdParams>('/v1/payment_intents/:id/cancel', async (request, reply) => {
    const command = parseCancelPaymentIntent(request.body);
    const merchant = merchantOf(request);
    const paths = bodyExpand(request, 'payment_intent');
    return idempotent(dependencies.idempotency, request, reply, async (execution) => {
      const intent = await payments.flows.cancel(execution, { merchantId: merchant.id, id: request.params.id,
        ...command });
      return { status: 200, body: presentPaymentIntent(intent) };
    }, expanding(merchant.id, paths));
  });

  scope.get<IdParams>('/v1/charges/:id', async (request) => {
    const query = readObject(request.query, '', ['expand']);
    const merchant = merchantOf(request);
    const paths = readExpand(query.expand, 'charge');
    const charge = await payments.retrieveCharge(merchant.id, request.params.id);
    return expandObject(pool, presentCharge(charge), { merchantId: merchant.id, paths });
  });

  scope.get('/v1/charges', async (request) => {
    const query = readObject(request.query, '', ['limit', 'starting_after', 'ending_before', 'payment_intent', 'expand']);
    const paths = readExpand(query.expand, 'charge', { list: true });
    const page = await payments.listCharges({
      merchantId: merchantOf(request).id,
      ...readPage(query),
      paymentIntent: readString(query.payment_intent, 'payment_intent', { lengthMax: 255 }),
    });
    const data = await expandList(pool, page.data.map(presentCharge),
      { merchantId: merchantOf(request).id, paths });
    return { object: 'list', data, has_more: page.hasMore, url: '/v1/charges' };
  });

  scope.post('/v1/refunds', async (request, reply) => {
    const command = parseCreateRefund(request.body);
    const merchant = merchantOf(request);
    const paths = bodyExpand(request, 'refund');
    return idempotent(dependencies.idempotency, request, reply, async (execution) => {
      const refund = await payments.flows.refund(execution, merchant.id, command);
      return { status: 200, body: presentRefund(refund) };
    }, expanding(merchant.id, paths));
  });

  scope.get<IdParams>('/v1/refunds/:id', async (request) => {
    const query = readObject(request.query, '', ['expand']);
    const merchant = merchantOf(request);
    const paths = readExpand(query.expand, 'refund');
    const refund = await payments.retrieveRefund(merchant.id, request.params.id);
    return expandObject(pool, presentRefund(refund), { merchantId: merchant.id, paths });
  });

  scope.get('/v1/refunds', async (request) => {
    const query = readObject(request.query, '', ['limit', 'starting_after', 'ending_before', 'charge', 'payment_intent',
      'expand']);
    const paths = readExpand(query.expand, 'refund', { list: true });
    const page = await payments.listRefunds({
      merchantId: merchantOf(request).id,
      ...readPage(query),
      charge: readString(query.charge, 'charge', { lengthMax: 255 }),
      paymentIntent: readString(query.payment_intent, 'payment_intent', { lengthMax: 255 }),
    });
    const data = await expandList(pool, page.data.map(presentRefund),
      { merchantId: merchantOf(request).id, paths });
    return { object: 'list', data, has_more: page.hasMore, url: '/v1/refunds' };
  });

  // Keys are scoped per acting account, so a connected account's keys are read with its header.
  scope.get<{ Params: { key: string } }>('/v1/idempotency_keys/:key', { config: { actsAsConnectedAccount: true } },
    async (request) => dependencies.idempotency.describe(
      { merchantId: merchantOf(request).id, accountId: request.actingAccountId ?? undefined }, request.params.key));
}

/** A POST's `expand`, read (and refused if malformed) before anything runs or is stored. */
function bodyExpand(request: FastifyRequest, type: 'payment_intent' | 'refund'): string[] {
  const body = request.body;
  return readExpand(typeof body === 'object' && body !== null ? (body as Record<string, unknown>).expand : undefined,
    type);
}

/** The options that expand a successful answer's `paths` on the request's connection. */
function expanding(merchantId: string, paths: readonly string[]) {
  return paths.length === 0 ? {} : {
    finishBody: (client: pg.PoolClient, body: unknown) => expandObject(client, body, { merchantId, paths }),
  };
}
