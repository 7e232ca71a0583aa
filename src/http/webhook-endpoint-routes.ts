import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import type { IdempotencyService } from '../idempotency/idempotency-service.js';
import { readObject, readString } from '../validation.js';
import { listDeliveries, presentDelivery, resendDelivery } from '../webhooks/webhook-deliveries.js';
import {
  presentWebhookEndpoint, type WebhookEndpoints,
} from '../webhooks/webhook-endpoints.js';
import { merchantOf } from './merchant-routes.js';
import { parseEndpointCommand } from './webhook-endpoint-params.js';
import { answeredInTransaction, idempotent, readPage } from './route-support.js';

type IdParams = { Params: { id: string } };

/** Stripe's WebhookEndpoints API, and Penny's list of delivery attempts. */
export function registerWebhookEndpointRoutes(
  scope: FastifyInstance,
  dependencies: { pool: pg.Pool; endpoints: WebhookEndpoints; idempotency: IdempotencyService },
): void {
  const { endpoints, idempotency, pool } = dependencies;

  scope.post('/v1/webhook_endpoints', async (request, reply) => {
    const command = parseEndpointCommand(request.body, true);
    const merchant = merchantOf(request);
    // The answer holds the signing secret, so its stored copy for replays is sealed.
    return idempotent(idempotency, request, reply, (execution) => answeredInTransaction(execution, async () => {
      const created = await endpoints.create(execution.client, merchant.id, command);
      return presentWebhookEndpoint(created.endpoint, created.secret);
    }), { sealResponse: true });
  });

  scope.post<IdParams>('/v1/webhook_endpoints/:id', async (request, reply) => {
    const command = parseEndpointCommand(request.body, false);
    const merchant = merchantOf(request);
    return idempotent(idempotency, request, reply, (execution) => answeredInTransaction(execution,
      async () => presentWebhookEndpoint(
        await endpoints.update(execution.client, merchant.id, request.params.id, command))));
  });

  scope.delete<IdParams>('/v1/webhook_endpoints/:id', async (request, reply) => {
    const merchant = merchantOf(request);
    return idempotent(idempotency, request, reply, (execution) => answeredInTransaction(execution,
      () => endpoints.delete(execution.client, merchant.id, request.params.id)));
  });

  scope.get<IdParams>('/v1/webhook_endpoints/:id', async (request) => {
    readObject(request.query, '', ['expand']);
    return presentWebhookEndpoint(await endpoints.retrieve(pool, merchantOf(request).id, request.params.id));
  });

  scope.get('/v1/webhook_endpoints', async (request) => {
    const query = readObject(request.query, '', ['limit', 'starting_after', 'ending_before', 'expand']);
    const page = await endpoints.list({ merchantId: merchantOf(request).id, ...readPage(query) });
    return {
      object: 'list', data: page.rows.map((row) => presentWebhookEndpoint(row)), has_more: page.hasMore,
      url: '/v1/webhook_endpoints',
    };
  });

  // Penny's own: the delivery is sent again now (Stripe's Dashboard has Resend; its API has none).
  scope.post<IdParams>('/v1/webhook_deliveries/:id/resend', async (request, reply) => {
    readObject(request.body ?? {}, '', []);
    const merchant = merchantOf(request);
    return idempotent(idempotency, request, reply, (execution) => answeredInTransaction(execution,
      () => resendDelivery(execution.client, endpoints, { merchantId: merchant.id, id: request.params.id })));
  });

  scope.get('/v1/webhook_deliveries', async (request) => {
    const query = readObject(request.query, '', ['limit', 'starting_after', 'ending_before', 'event',
      'webhook_endpoint']);
    const page = await listDeliveries(pool, {
      merchantId: merchantOf(request).id,
      ...readPage(query),
      eventId: readString(query.event, 'event', { lengthMax: 255 }),
      endpointId: readString(query.webhook_endpoint, 'webhook_endpoint', { lengthMax: 255 }),
    });
    return {
      object: 'list', data: page.rows.map(presentDelivery), has_more: page.hasMore, url: '/v1/webhook_deliveries',
    };
  });
}
