import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import { PennyError } from '../errors.js';
import { presentEvent, selectEvent, selectEventPage } from '../events/event-store.js';
import { invalid, readObject, readString } from '../validation.js';
import { merchantOf } from './merchant-routes.js';
import { readCreatedFilter, readPage } from './route-support.js';

/** Stripe's Events API: every state change of a merchant's objects, newest first. */
const typesMax = 20;

export function registerEventRoutes(scope: FastifyInstance, pool: pg.Pool): void {
  // With Stripe-Account, a connected account sees its own events only; the platform sees all of them.
  const acting = { config: { actsAsConnectedAccount: true } };
  scope.get<{ Params: { id: string } }>('/v1/events/:id', acting, async (request) => {
    readObject(request.query, '', ['expand']);
    const event = await selectEvent(pool, merchantOf(request).id, request.params.id);
    if (event === undefined || (request.actingAccountId !== null && event.accountId !== request.actingAccountId)) {
      throw new PennyError({ code: 'resource_missing', param: 'id', message: `No such event: '${request.params.id}'` });
    }
    return presentEvent(event);
  });

  scope.get('/v1/events', acting, async (request) => {
    const query = readObject(request.query, '', ['limit', 'starting_after', 'ending_before', 'type', 'types',
      'created', 'expand', 'delivery_success']);
    const page = await selectEventPage(pool, {
      merchantId: merchantOf(request).id,
      ...readPage(query),
      type: readString(query.type, 'type', { lengthMax: 255 }),
      types: readTypes(query.types),
      ...readCreatedFilter(query.created),
      accountId: request.actingAccountId ?? undefined,
    });
    return { object: 'list', data: page.rows.map(presentEvent), has_more: page.hasMore, url: '/v1/events' };
  });
}

function readTypes(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  const list = Array.isArray(value) ? value : typeof value === 'object' && value !== null ? Object.values(value) : [value];
  if (list.length === 0 || list.length > typesMax) throw invalid('types', `types takes 1 to ${typesMax} event types.`);
  return list.map((item, index) => {
    const type = readString(item, `types[${index}]`, { lengthMax: 255 });
    if (type === undefined) throw invalid(`types[${index}]`, 'An event type is a string.');
    return type;
  });
}
