import { selectPage, type PageRows } from '../db/pages.js';
import { named, type Queryable } from '../db/pool.js';
import { toEvent, type EventRow } from '../events/event-store.js';

/**
 * Every SQL statement of merchant webhooks (endpoints, deliveries and their attempts), one
 * function per statement. webhook-endpoints.ts and webhook-deliveries.ts decide; this file never
 * decides anything. (The inbox of PSP webhooks, connector-inbox.ts, keeps its own.)
 */
export interface WebhookEndpointRow {
  readonly merchantId: string;
  readonly id: string;
  readonly url: string;
  readonly enabledEvents: string[];
  readonly description: string | null;
  readonly metadata: Record<string, string>;
  readonly status: 'enabled' | 'disabled';
  readonly secretCiphertext: string;
  readonly apiVersion: string;
  readonly createdAt: string;
}

export interface NewWebhookEndpoint {
  readonly merchantId: string;
  readonly id: string;
  readonly url: string;
  readonly enabledEvents: readonly string[];
  readonly description: string | null;
  readonly metadata: Record<string, string>;
  readonly secretCiphertext: string;
  readonly apiVersion: string;
}

/** The changes of an update; undefined keeps the stored value. */
export interface WebhookEndpointChanges {
  readonly url: string | undefined;
  readonly enabledEvents: readonly string[] | undefined;
  readonly description: string | undefined;
  readonly metadata: Record<string, string> | undefined;
  /** true disables, false enables; either clears failing_since. */
  readonly disabled: boolean | undefined;
}

/** Locks the merchant's row until the transaction ends (serializes its endpoint creations). */
export async function lockMerchant(db: Queryable, merchantId: string): Promise<void> {
  await db.query(named('SELECT 1 FROM merchants WHERE id = $1 FOR UPDATE'), [merchantId]);
}

/** The merchant's endpoints not deleted. */
export async function countLiveEndpoints(db: Queryable, merchantId: string): Promise<bigint> {
  const count = await db.query<{ count: bigint }>(named(`SELECT count(*) AS count FROM webhook_endpoints
         WHERE merchant_id = $1 AND deleted_at IS NULL`), [merchantId]);
  return count.rows[0]?.count ?? 0n;
}

export async function insertEndpoint(db: Queryable, endpoint: NewWebhookEndpoint): Promise<WebhookEndpointRow> {
  const result = await db.query(named(`INSERT INTO webhook_endpoints (merchant_id, id, url, enabled_events,
           description, metadata, secret_ciphertext, api_version)
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8) RETURNING *`),
  [endpoint.merchantId, endpoint.id, endpoint.url, endpoint.enabledEvents, endpoint.description,
    JSON.stringify(endpoint.metadata), endpoint.secretCiphertext, endpoint.apiVersion]);
  return toEndpoint(result.rows[0]);
}

/** An endpoint of the merchant, unless deleted. */
export async function selectLiveEndpoint(db: Queryable, merchantId: string, id: string):
Promise<WebhookEndpointRow | undefined> {
  const result = await db.query(named(`SELECT * FROM webhook_endpoints
       WHERE merchant_id = $1 AND id = $2 AND deleted_at IS NULL`), [merchantId, id]);
  return result.rows[0] === undefined ? undefined : toEndpoint(result.rows[0]);
}

/** A page of the merchant's endpoints not deleted, newest first (Stripe's cursors). */
export async function selectEndpointPage(db: Queryable, query: { merchantId: string; limit: number;
  startingAfter: string | undefined; endingBefore: string | undefined }): Promise<PageRows<WebhookEndpointRow>> {
  return selectPage(db, 'webhook_endpoints', { ...query, equals: {} }, toEndpoint);
}

export async function updateEndpoint(db: Queryable, merchantId: string, id: string,
  changes: WebhookEndpointChanges): Promise<WebhookEndpointRow> {
  const result = await db.query(named(`UPDATE webhook_endpoints SET url = coalesce($3, url),
           enabled_events = coalesce($4, enabled_events), description = coalesce($5, description),
           metadata = coalesce($6::jsonb, metadata),
           status = CASE WHEN $7::boolean IS NULL THEN status WHEN $7 THEN 'disabled' ELSE 'enabled' END,
           failing_since = CASE WHEN $7::boolean IS NULL THEN failing_since ELSE NULL END
         WHERE merchant_id = $1 AND id = $2 RETURNING *`),
  [merchantId, id, changes.url ?? null, changes.enabledEvents ?? null, changes.description ?? null,
    changes.metadata === undefined ? null : JSON.stringify(changes.metadata), changes.disabled ?? null]);
  return toEndpoint(result.rows[0]);
}

/** Hides the endpoint (deleted now) and disables it. */
export async function markEndpointDeleted(db: Queryable, merchantId: string, id: string): Promise<void> {
  await db.query(named(`UPDATE webhook_endpoints SET deleted_at = clock_timestamp(), status = 'disabled'
         WHERE merchant_id = $1 AND id = $2`), [merchantId, id]);
}

/** Starts a run of failures at `since`, unless one has started; the endpoint's run start and status. */
export async function markEndpointFailing(db: Queryable, merchantId: string, id: string, since: string):
Promise<{ failingSince: string; status: WebhookEndpointRow['status'] } | undefined> {
  const marked = await db.query(named(`UPDATE webhook_endpoints
         SET failing_since = coalesce(failing_since, $3::timestamptz)
       WHERE merchant_id = $1 AND id = $2 RETURNING failing_since, status`),
  [merchantId, id, since]);
  const row = marked.rows[0];
  return row === undefined ? undefined : { failingSince: row.failing_since, status: row.status };
}

/** Ends the endpoint's run of failures, if one has started. */
export async function clearEndpointFailing(db: Queryable, merchantId: string, id: string): Promise<void> {
  await db.query(named(`UPDATE webhook_endpoints SET failing_since = NULL
           WHERE merchant_id = $1 AND id = $2 AND failing_since IS NOT NULL`), [merchantId, id]);
}

export async function disableEndpoint(db: Queryable, merchantId: string, id: string): Promise<WebhookEndpointRow> {
  const disabled = await db.query(named(`UPDATE webhook_endpoints SET status = 'disabled'
       WHERE merchant_id = $1 AND id = $2 RETURNING *`), [merchantId, id]);
  return toEndpoint(disabled.rows[0]);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
function toEndpoint(row: any): WebhookEndpointRow {
  if (row === undefined) throw new Error('expected a webhook_endpoints row');
  return {
    merchantId: row.merchant_id, id: row.id, url: row.url, enabledEvents: row.enabled_events,
    description: row.description, metadata: row.metadata, status: row.status, secretCiphertext: row.secret_ciphertext,
    apiVersion: row.api_version, createdAt: row.created_at,
  };
}

export interface ClaimedDelivery {
  readonly merchantId: string;
  readonly id: string;
  readonly eventId: string;
  readonly endpointId: string;
  readonly attemptCount: number;
}

/**
 * Claims up to `batchMax` pending deliveries due by `now`, oldest due first, skipping those
 * another worker holds: each is counted as attempted and due again at `leaseUntil`.
 */
export async function claimDueDeliveries(db: Queryable, claim: { now: string; batchMax: number;
  leaseUntil: string }): Promise<ClaimedDelivery[]> {
  const result = await db.query(named(`WITH due AS (
         SELECT merchant_id, id FROM webhook_deliveries
          WHERE status = 'pending' AND next_attempt_at <= $1
          ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)
       UPDATE webhook_deliveries d SET next_attempt_at = $3, attempt_count = d.attempt_count + 1
         FROM due WHERE d.merchant_id = due.merchant_id AND d.id = due.id
       RETURNING d.merchant_id, d.id, d.event_id, d.endpoint_id, d.attempt_count`),
  [claim.now, claim.batchMax, claim.leaseUntil]);
  return result.rows.map((row) => ({
    merchantId: row.merchant_id, id: row.id, eventId: row.event_id, endpointId: row.endpoint_id,
    attemptCount: row.attempt_count,
  }));
}

/** What one attempt of a delivery needs: its event (with its pending count) and its endpoint. */
export interface DeliveryToSend {
  readonly event: EventRow;
  readonly url: string;
  readonly endpointStatus: WebhookEndpointRow['status'];
  readonly endpointDeletedAt: string | null;
  readonly secretCiphertext: string;
}

export async function selectDeliveryToSend(db: Queryable, merchantId: string, id: string):
Promise<DeliveryToSend | undefined> {
  const loaded = await db.query(named(`SELECT e.*, w.url, w.status AS endpoint_status, w.deleted_at,
         w.secret_ciphertext,
         (SELECT count(*)::integer FROM webhook_deliveries p WHERE p.merchant_id = e.merchant_id
            AND p.event_id = e.id AND p.status = 'pending') AS pending_webhooks
       FROM webhook_deliveries d JOIN events e ON e.merchant_id = d.merchant_id AND e.id = d.event_id
       JOIN webhook_endpoints w ON w.merchant_id = d.merchant_id AND w.id = d.endpoint_id
       WHERE d.merchant_id = $1 AND d.id = $2`), [merchantId, id]);
  const row = loaded.rows[0];
  if (row === undefined) return undefined;
  return {
    event: toEvent(row), url: row.url, endpointStatus: row.endpoint_status, endpointDeletedAt: row.deleted_at,
    secretCiphertext: row.secret_ciphertext,
  };
}

export interface DeliveryAttempt {
  readonly startedAt: string;
  readonly durationMs: number;
  readonly responseStatus: number | null;
  readonly error: string | null;
}

/** Records an attempt under the delivery's attempt count; a second record of it is ignored. */
export async function insertDeliveryAttempt(db: Queryable, delivery: Pick<ClaimedDelivery, 'merchantId' | 'id' |
  'attemptCount'>, attempt: DeliveryAttempt): Promise<void> {
  await db.query(named(`INSERT INTO webhook_delivery_attempts (merchant_id, delivery_id, attempt_number,
       started_at, duration_ms, response_status, error) VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT DO NOTHING`),
  [delivery.merchantId, delivery.id, delivery.attemptCount, attempt.startedAt, attempt.durationMs,
    attempt.responseStatus, attempt.error]);
}

export async function completeDelivery(db: Queryable, merchantId: string, id: string,
  status: 'succeeded' | 'failed', completedAt: string): Promise<void> {
  await db.query(named(`UPDATE webhook_deliveries SET status = $3, completed_at = $4
         WHERE merchant_id = $1 AND id = $2`), [merchantId, id, status, completedAt]);
}

/** Sets the delivery's status and next attempt; a `failed` one is completed at `now`. */
export async function rescheduleDelivery(db: Queryable, delivery: { merchantId: string; id: string;
  status: 'pending' | 'failed'; nextAttemptAt: string; now: string }): Promise<void> {
  await db.query(named(`UPDATE webhook_deliveries SET status = $3, next_attempt_at = $4,
           completed_at = CASE WHEN $3 = 'failed' THEN $5::timestamptz END
         WHERE merchant_id = $1 AND id = $2`),
  [delivery.merchantId, delivery.id, delivery.status, delivery.nextAttemptAt, delivery.now]);
}

export interface WebhookDeliveryRow {
  readonly merchantId: string;
  readonly id: string;
  readonly eventId: string;
  readonly endpointId: string;
  readonly status: 'pending' | 'succeeded' | 'failed';
  readonly attemptCount: number;
  readonly nextAttemptAt: string;
  readonly createdAt: string;
  readonly completedAt: string | null;
}

/**
 * Makes a delivery due at `now` again (pending, not completed); undefined when the merchant has no
 * such delivery. A delivery a worker is sending now (claimed: its latest attempt counted, not yet
 * recorded, its lease running) keeps its lease: that attempt is the resend, and a second worker
 * must not send it at the same time.
 */
export async function requeueDelivery(db: Queryable, delivery: { merchantId: string; id: string; now: string }):
Promise<WebhookDeliveryRow | undefined> {
  const result = await db.query(named(`UPDATE webhook_deliveries d SET status = 'pending', completed_at = NULL,
       next_attempt_at = CASE WHEN d.status = 'pending' AND d.next_attempt_at > $3 AND d.attempt_count > 0
           AND NOT EXISTS (SELECT 1 FROM webhook_delivery_attempts a WHERE a.merchant_id = d.merchant_id
             AND a.delivery_id = d.id AND a.attempt_number = d.attempt_count)
         THEN d.next_attempt_at ELSE $3 END
     WHERE merchant_id = $1 AND id = $2 RETURNING *`),
  [delivery.merchantId, delivery.id, delivery.now]);
  return result.rows[0] === undefined ? undefined : toDelivery(result.rows[0]);
}

export async function selectDelivery(db: Queryable, merchantId: string, id: string):
Promise<WebhookDeliveryRow | undefined> {
  const result = await db.query(named('SELECT * FROM webhook_deliveries WHERE merchant_id = $1 AND id = $2'),
    [merchantId, id]);
  return result.rows[0] === undefined ? undefined : toDelivery(result.rows[0]);
}

/** A page of a merchant's deliveries, newest first (Stripe's cursors), optionally of one event or endpoint. */
export async function selectDeliveryPage(db: Queryable, query: { merchantId: string; limit: number;
  startingAfter: string | undefined; endingBefore: string | undefined; eventId: string | undefined;
  endpointId: string | undefined }): Promise<PageRows<WebhookDeliveryRow>> {
  return selectPage(db, 'webhook_deliveries', {
    ...query, equals: { event_id: query.eventId, endpoint_id: query.endpointId },
  }, toDelivery);
}

/** The deliveries of these events of the merchant (a payment's page), oldest first, at most 200. */
export async function selectDeliveriesOfEvents(db: Queryable, merchantId: string, eventIds: readonly string[]):
Promise<WebhookDeliveryRow[]> {
  const result = await db.query(named(`SELECT * FROM webhook_deliveries WHERE merchant_id = $1 AND event_id = ANY($2::text[])
     ORDER BY created_at, id LIMIT 200`), [merchantId, eventIds]);
  return result.rows.map(toDelivery);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
function toDelivery(row: any): WebhookDeliveryRow {
  return {
    merchantId: row.merchant_id, id: row.id, eventId: row.event_id, endpointId: row.endpoint_id,
    status: row.status, attemptCount: row.attempt_count, nextAttemptAt: row.next_attempt_at,
    createdAt: row.created_at, completedAt: row.completed_at,
  };
}

/** The attempts of these deliveries of the merchant, by delivery id, each list in attempt order. */
export async function selectDeliveryAttempts(db: Queryable, merchantId: string, deliveryIds: readonly string[]):
Promise<Map<string, unknown[]>> {
  const attempts = await db.query<{ delivery_id: string; attempts: unknown[] }>(named(`SELECT a.delivery_id,
       json_agg(json_build_object('attempt', a.attempt_number, 'started_at', a.started_at,
         'duration_ms', a.duration_ms, 'response_status', a.response_status, 'error', a.error)
         ORDER BY a.attempt_number) AS attempts
     FROM webhook_delivery_attempts a WHERE a.merchant_id = $1 AND a.delivery_id = ANY($2::text[])
     GROUP BY a.delivery_id`), [merchantId, deliveryIds]);
  return new Map(attempts.rows.map((row) => [row.delivery_id, row.attempts]));
}
