import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { IdempotencyService } from '../idempotency/idempotency-service.js';
import type { PayoutOwner } from '../payouts/payout-commands.js';
import { presentPayout } from '../payouts/payout-presenter.js';
import type { PayoutService } from '../payouts/payout-service.js';
import { readObject, readString } from '../validation.js';
import { merchantOf } from './merchant-routes.js';
import { parseCreatePayout, readPayoutStatus } from './payout-params.js';
import { answeredInTransaction, idempotent, readCreatedFilter, readPage } from './route-support.js';

type IdParams = { Params: { id: string } };

/**
 * Stripe's Payouts API, for the platform's own balance or, with the Stripe-Account header, one of
 * its connected accounts'. Routes parse, run idempotently, present.
 */
export function registerPayoutRoutes(scope: FastifyInstance,
  dependencies: { payouts: PayoutService; idempotency: IdempotencyService }): void {
  const { payouts, idempotency } = dependencies;
  const acting = { config: { actsAsConnectedAccount: true } };

  scope.post('/v1/payouts', acting, async (request, reply) => {
    const command = parseCreatePayout(request.body);
    const owner = ownerOf(request);
    return idempotent(idempotency, request, reply, async (execution) => ({
      status: 200, body: await payouts.create(execution, { owner, command }),
    }));
  });

  scope.get<IdParams>('/v1/payouts/:id', acting, async (request) => {
    readObject(request.query, '', ['expand']);
    return presentPayout(await payouts.retrieve({ ...ownerOf(request), id: request.params.id }));
  });

  scope.get('/v1/payouts', acting, async (request) => {
    const query = readObject(request.query, '', ['limit', 'starting_after', 'ending_before', 'status', 'destination',
      'created', 'expand']);
    const page = await payouts.list({
      ...ownerOf(request),
      ...readPage(query),
      status: readPayoutStatus(query.status),
      destination: readString(query.destination, 'destination', { lengthMax: 255 }),
      ...readCreatedFilter(query.created),
    });
    return { object: 'list', data: page.rows.map(presentPayout), has_more: page.hasMore, url: '/v1/payouts' };
  });

  scope.post<IdParams>('/v1/payouts/:id/cancel', acting, async (request, reply) => {
    readObject(request.body ?? {}, '', ['expand']);
    const key = { ...ownerOf(request), id: request.params.id };
    return idempotent(idempotency, request, reply, (execution) => answeredInTransaction(execution,
      async () => presentPayout(await payouts.cancel(execution.client, key))));
  });
}

function ownerOf(request: FastifyRequest): PayoutOwner {
  const merchant = merchantOf(request);
  return { merchantId: merchant.id, accountId: request.actingAccountId ?? merchant.id };
}
