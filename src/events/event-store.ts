import { AsyncLocalStorage } from 'node:async_hooks';
import { clockOffsetMs } from '../clock.js';
import { selectPage, type PageRows } from '../db/pages.js';
import { appendAtCommit, named, type Queryable, type Statement } from '../db/pool.js';
import { stringifyJson } from '../json.js';
import { newId } from '../ids.js';

/**
 * Stripe-shaped events, written in the transaction of the state change they describe (a
 * transactional outbox): the same statement queues a delivery to every enabled endpoint of the
 * merchant that listens for the type, so an event is never lost between commit and delivery.
 */
export const eventApiVersion = '2024-06-20';

export interface EventRequest {
  readonly requestId: string;
  readonly idempotencyKey: string | null;
}

/** The request a state change happens in; a worker's changes (webhooks, recovery) have none. */
const currentRequest = new AsyncLocalStorage<EventRequest>();

export function withEventRequest<T>(request: EventRequest, work: () => Promise<T>): Promise<T> {
  return currentRequest.run(request, work);
}

export interface NewEvent {
  readonly merchantId: string;
  /**
   * Whose object the event is about: a connected account (Stripe Connect's `account` on the event),
   * or the platform itself (its own id, or undefined), whose events carry no `account`.
   */
  readonly account?: string | undefined;
  readonly type: string;
  readonly object: unknown;
  readonly previousAttributes?: Record<string, unknown> | undefined;
}

export interface EventRow {
  readonly merchantId: string;
  /** The connected account the event is about; null for the platform's own. */
  readonly accountId: string | null;
  readonly id: string;
  readonly type: string;
  readonly apiVersion: string;
  readonly data: { object: unknown; previous_attributes?: Record<string, unknown> };
  readonly requestId: string | null;
  readonly idempotencyKey: string | null;
  readonly createdAt: string;
  readonly pendingWebhooks: number;
}

/**
 * Writes an event in the transaction open on `db`. Events of one transaction are written together
 * in one statement at its end (before COMMIT), in the order they happened; outside a transaction
 * opened by inTransaction, at once.
 */
export async function recordEvent(db: Queryable, event: NewEvent): Promise<string> {
  const request = currentRequest.getStore();
  const id = newId('evt');
  const data = event.previousAttributes === undefined
    ? { object: event.object }
    : { object: event.object, previous_attributes: event.previousAttributes };
  const accountId = event.account === undefined || event.account === event.merchantId ? null : event.account;
  const row: EventInsert = { merchantId: event.merchantId, accountId, id, type: event.type,
    data: stringifyJson(data), requestId: request?.requestId ?? null, idempotencyKey: request?.idempotencyKey ?? null };
  await appendAtCommit(db, 'events', row, insertEvents);
  return id;
}

interface EventInsert {
  readonly merchantId: string;
  readonly accountId: string | null;
  readonly id: string;
  readonly type: string;
  readonly data: string;
  readonly requestId: string | null;
  readonly idempotencyKey: string | null;
}


/**
 * The statement that inserts events and, with them, a delivery to every enabled endpoint listening for
 * each. `created_at` is the database's clock_timestamp() (microseconds, increasing row by row, so
 * events list in the order they happened) moved by the controlled clock's offset.
 */
function insertEvents(events: readonly EventInsert[]): Statement {
  return {
    text: `WITH event AS (
       INSERT INTO events (merchant_id, id, type, api_version, data, request_id, idempotency_key, created_at,
                           account_id)
       SELECT merchant_id, id, type, $7, data::jsonb, request_id, idempotency_key,
              clock_timestamp() + $8::bigint * interval '1 millisecond', account_id
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $9::text[])
           WITH ORDINALITY AS input(merchant_id, id, type, data, request_id, idempotency_key, account_id, position)
        ORDER BY position
       RETURNING merchant_id, id, type, created_at)
     INSERT INTO webhook_deliveries (merchant_id, id, event_id, endpoint_id, next_attempt_at)
     SELECT e.merchant_id, 'whd_' || replace(gen_random_uuid()::text, '-', ''), e.id, w.id, e.created_at
       FROM event e JOIN webhook_endpoints w ON w.merchant_id = e.merchant_id
      WHERE w.status = 'enabled' AND w.deleted_at IS NULL AND w.enabled_events && ARRAY['*', e.type]`,
    values: [events.map((event) => event.merchantId), events.map((event) => event.id),
      events.map((event) => event.type), events.map((event) => event.data), events.map((event) => event.requestId),
      events.map((event) => event.idempotencyKey), eventApiVersion, clockOffsetMs(),
      events.map((event) => event.accountId)],
  };
}

const pendingWebhooks = `(SELECT count(*)::integer FROM webhook_deliveries d
  WHERE d.merchant_id = events.merchant_id AND d.event_id = events.id AND d.status = 'pending') AS pending_webhooks`;

export async function selectEvent(db: Queryable, merchantId: string, id: string): Promise<EventRow | undefined> {
  const result = await db.query(named(`SELECT events.*, ${pendingWebhooks} FROM events
     WHERE merchant_id = $1 AND id = $2`), [merchantId, id]);
  return result.rows[0] === undefined ? undefined : toEvent(result.rows[0]);
}

export interface EventListQuery {
  readonly merchantId: string;
  readonly limit: number;
  readonly startingAfter: string | undefined;
  readonly endingBefore: string | undefined;
  readonly type: string | undefined;
  readonly types: readonly string[] | undefined;
  readonly createdGte: string | undefined;
  readonly createdLte: string | undefined;
  /** Only the events of this connected account (a request with Stripe-Account); all, when absent. */
  readonly accountId?: string | undefined;
}

export async function selectEventPage(db: Queryable, query: EventListQuery): Promise<PageRows<EventRow>> {
  const page = await selectPage(db, 'events', {
    ...query, equals: { type: query.type, account_id: query.accountId }, anyOf: { type: query.types },
  }, (row) => row);
  if (page.rows.length === 0) return { rows: [], hasMore: page.hasMore };
  const counts = await db.query<{ id: string; pending_webhooks: number }>(
    named(`SELECT events.id, ${pendingWebhooks} FROM events WHERE merchant_id = $1 AND id = ANY($2::text[])`),
    [query.merchantId, page.rows.map((row) => String(row.id))]);
  const pending = new Map(counts.rows.map((row) => [row.id, row.pending_webhooks]));
  return {
    rows: page.rows.map((row) => toEvent({ ...row, pending_webhooks: pending.get(String(row.id)) ?? 0 })),
    hasMore: page.hasMore,
  };
}

/**
 * The events about one PaymentIntent and its charges, refunds and disputes (their object names
 * it in `payment_intent`), oldest first, at most `limit` (index events_payment_intent).
 */
export async function selectEventsOfPayment(db: Queryable, query: { merchantId: string; paymentIntentId: string;
  limit: number }): Promise<EventRow[]> {
  const result = await db.query(named(`SELECT events.*, ${pendingWebhooks} FROM events
     WHERE merchant_id = $1
       AND coalesce(data -> 'object' ->> 'payment_intent', data -> 'object' ->> 'id') = $2
     ORDER BY created_at, id LIMIT $3`), [query.merchantId, query.paymentIntentId, query.limit]);
  return result.rows.map(toEvent);
}

/** An events row (or a row carrying an event's columns) as an EventRow. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
export function toEvent(row: any): EventRow {
  return {
    merchantId: row.merchant_id, accountId: row.account_id ?? null, id: row.id, type: row.type,
    apiVersion: row.api_version, data: row.data,
    requestId: row.request_id, idempotencyKey: row.idempotency_key, createdAt: row.created_at,
    pendingWebhooks: row.pending_webhooks,
  };
}

/** Stripe's Event object; an event about a connected account names it in `account`, as Connect's do. */
export function presentEvent(event: EventRow) {
  return {
    id: event.id,
    object: 'event',
    ...(event.accountId === null ? {} : { account: event.accountId }),
    api_version: event.apiVersion,
    created: Math.floor(Date.parse(event.createdAt) / 1000),
    data: event.data,
    livemode: false,
    pending_webhooks: event.pendingWebhooks,
    request: { id: event.requestId, idempotency_key: event.idempotencyKey },
    type: event.type,
  };
}

/** Stripe's `previous_attributes`: the top-level fields whose values differ, with their earlier values. */
export function changedAttributes(before: object, after: object): Record<string, unknown> {
  const earlier = before as Record<string, unknown>;
  const later = after as Record<string, unknown>;
  const changed: Record<string, unknown> = {};
  for (const key of Object.keys(later)) {
    if (stringifyJson(earlier[key] ?? null) !== stringifyJson(later[key] ?? null)) changed[key] = earlier[key];
  }
  return changed;
}
