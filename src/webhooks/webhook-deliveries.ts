import http from 'node:http';
import https from 'node:https';
import type pg from 'pg';
import type { Logger } from 'pino';
import { nowMs } from '../clock.js';
import { limits } from '../config.js';
import { selectPage } from '../db/pages.js';
import { named, withTransaction, type Queryable } from '../db/pool.js';
import { presentEvent, recordEvent, type EventRow } from '../events/event-store.js';
import { failpoint } from '../failpoints.js';
import { stringifyJson } from '../json.js';
import { guardedLookup } from './endpoint-address.js';
import { signPayload } from '../security/hmac-signature.js';
import { presentWebhookEndpoint, type WebhookEndpoints } from './webhook-endpoints.js';

/**
 * Delivers each event to each endpoint listening for it, at least once: a worker claims due
 * deliveries with FOR UPDATE SKIP LOCKED and moves their next attempt forward by a lease, POSTs
 * the event signed with Stripe-Signature, and records the attempt. A failure is retried with
 * exponential backoff and jitter (the first retry within seconds) for up to 3 days; a worker that
 * dies mid-delivery leaves the lease to run out, and the delivery is tried again.
 */
interface ClaimedDelivery {
  readonly merchantId: string;
  readonly id: string;
  readonly eventId: string;
  readonly endpointId: string;
  readonly attemptCount: number;
}

interface AttemptResult {
  readonly startedAt: string;
  readonly durationMs: number;
  readonly responseStatus: number | null;
  readonly error: string | null;
}

export class WebhookDeliveryWorker {
  constructor(
    private readonly pool: pg.Pool,
    private readonly endpoints: WebhookEndpoints,
    private readonly options: { allowPrivateUrls: boolean; logger: Logger },
  ) {}

  /** One pass: claims a bounded batch of due deliveries and attempts each. Returns how many. */
  async deliverDue(): Promise<number> {
    const claimed = await this.claim();
    let next = 0;
    const lanes = Array.from({ length: Math.min(limits.webhookConcurrencyMax, claimed.length) }, async () => {
      for (let index = next++; index < claimed.length; index = next++) {
        const delivery = claimed[index];
        if (delivery !== undefined) await this.attempt(delivery);
      }
    });
    await Promise.all(lanes);
    return claimed.length;
  }

  private async claim(): Promise<ClaimedDelivery[]> {
    const now = nowMs();
    const result = await this.pool.query(named(`WITH due AS (
         SELECT merchant_id, id FROM webhook_deliveries
          WHERE status = 'pending' AND next_attempt_at <= $1
          ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)
       UPDATE webhook_deliveries d SET next_attempt_at = $3, attempt_count = d.attempt_count + 1
         FROM due WHERE d.merchant_id = due.merchant_id AND d.id = due.id
       RETURNING d.merchant_id, d.id, d.event_id, d.endpoint_id, d.attempt_count`),
    [new Date(now).toISOString(), limits.webhookClaimBatchMax, new Date(now + limits.webhookLeaseMs).toISOString()]);
    return result.rows.map((row) => ({
      merchantId: row.merchant_id, id: row.id, eventId: row.event_id, endpointId: row.endpoint_id,
      attemptCount: row.attempt_count,
    }));
  }

  private async attempt(delivery: ClaimedDelivery): Promise<void> {
    const loaded = await this.pool.query(named(`SELECT e.*, w.url, w.status AS endpoint_status, w.deleted_at,
         w.secret_ciphertext,
         (SELECT count(*)::integer FROM webhook_deliveries p WHERE p.merchant_id = e.merchant_id
            AND p.event_id = e.id AND p.status = 'pending') AS pending_webhooks
       FROM webhook_deliveries d JOIN events e ON e.merchant_id = d.merchant_id AND e.id = d.event_id
       JOIN webhook_endpoints w ON w.merchant_id = d.merchant_id AND w.id = d.endpoint_id
       WHERE d.merchant_id = $1 AND d.id = $2`), [delivery.merchantId, delivery.id]);
    const row = loaded.rows[0];
    if (row === undefined) throw new Error(`delivery ${delivery.id} lost its event or endpoint`);
    if (row.endpoint_status !== 'enabled' || row.deleted_at !== null) {
      await this.finish(delivery, 'failed', { startedAt: new Date(nowMs()).toISOString(), durationMs: 0,
        responseStatus: null, error: 'the endpoint is disabled' });
      return;
    }
    const payload = stringifyJson(presentEvent(toEventRow(row)));
    // The signature's timestamp is wall time: receivers check it against their own clocks.
    const signature = signPayload(payload, this.endpoints.secretOf({ secretCiphertext: row.secret_ciphertext }),
      Math.floor(Date.now() / 1000));
    const result = await postJson(row.url, payload, {
      'Stripe-Signature': signature, 'User-Agent': 'Penny/1.0 (+https://stripe.com/docs/webhooks)',
    }, this.options.allowPrivateUrls);
    failpoint('during_webhook_delivery');
    const succeeded = result.responseStatus !== null && result.responseStatus >= 200 && result.responseStatus < 300;
    if (succeeded) {
      await this.finish(delivery, 'succeeded', result);
      return;
    }
    this.options.logger.info({ delivery: delivery.id, event: delivery.eventId, status: result.responseStatus,
      error: result.error }, 'webhook delivery failed');
    await this.retryOrGiveUp(delivery, Date.parse(row.created_at), result);
  }

  private async finish(delivery: ClaimedDelivery, status: 'succeeded' | 'failed', result: AttemptResult) {
    await withTransaction(this.pool, async (client) => {
      await recordAttempt(client, delivery, result);
      await client.query(named(`UPDATE webhook_deliveries SET status = $3, completed_at = $4
         WHERE merchant_id = $1 AND id = $2`), [delivery.merchantId, delivery.id, status, new Date(nowMs()).toISOString()]);
      if (status === 'succeeded') {
        await client.query(named(`UPDATE webhook_endpoints SET failing_since = NULL
           WHERE merchant_id = $1 AND id = $2 AND failing_since IS NOT NULL`), [delivery.merchantId, delivery.endpointId]);
      }
    });
  }

  private async retryOrGiveUp(delivery: ClaimedDelivery, eventCreatedMs: number, result: AttemptResult) {
    const now = nowMs();
    const nextAttemptMs = now + retryDelayMs(delivery.attemptCount);
    await withTransaction(this.pool, async (client) => {
      await recordAttempt(client, delivery, result);
      const givingUp = nextAttemptMs > eventCreatedMs + limits.webhookRetryWindowMs;
      await client.query(named(`UPDATE webhook_deliveries SET status = $3, next_attempt_at = $4,
           completed_at = CASE WHEN $3 = 'failed' THEN $5::timestamptz END
         WHERE merchant_id = $1 AND id = $2`),
      [delivery.merchantId, delivery.id, givingUp ? 'failed' : 'pending', new Date(nextAttemptMs).toISOString(),
        new Date(now).toISOString()]);
      await this.noteEndpointFailure(client, delivery, now);
    });
  }

  /** An endpoint that has failed without a success for days is disabled, and an event says so. */
  private async noteEndpointFailure(client: pg.PoolClient, delivery: ClaimedDelivery, now: number) {
    const marked = await client.query(named(`UPDATE webhook_endpoints
         SET failing_since = coalesce(failing_since, $3::timestamptz)
       WHERE merchant_id = $1 AND id = $2 RETURNING failing_since, status`),
    [delivery.merchantId, delivery.endpointId, new Date(now).toISOString()]);
    const endpoint = marked.rows[0];
    if (endpoint?.status !== 'enabled') return;
    if (now - Date.parse(endpoint.failing_since) < limits.webhookEndpointDisableAfterMs) return;
    const disabled = await client.query(named(`UPDATE webhook_endpoints SET status = 'disabled'
       WHERE merchant_id = $1 AND id = $2 RETURNING *`), [delivery.merchantId, delivery.endpointId]);
    this.options.logger.warn({ endpoint: delivery.endpointId }, 'webhook endpoint disabled after failing for days');
    const row = disabled.rows[0];
    await recordEvent(client, {
      merchantId: delivery.merchantId, type: 'webhook_endpoint.disabled',
      object: presentWebhookEndpoint({
        merchantId: row.merchant_id, id: row.id, url: row.url, enabledEvents: row.enabled_events,
        description: row.description, metadata: row.metadata, status: row.status, secretCiphertext: '',
        apiVersion: row.api_version, createdAt: row.created_at,
      }),
    });
  }
}

/** Backoff: 10 s, 30 s, 90 s, … ×3 each time up to 12 h, each scaled by a random 50–100 % (jitter). */
export function retryDelayMs(attemptCount: number, random: () => number = Math.random): number {
  const exponent = Math.max(0, attemptCount - 1);
  const delay = Math.min(limits.webhookFirstRetryDelayMs * 3 ** exponent, limits.webhookRetryDelayMaxMs);
  return Math.round(delay * (0.5 + random() * 0.5));
}

async function recordAttempt(client: Queryable, delivery: ClaimedDelivery, result: AttemptResult) {
  await client.query(named(`INSERT INTO webhook_delivery_attempts (merchant_id, delivery_id, attempt_number,
       started_at, duration_ms, response_status, error) VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT DO NOTHING`),
  [delivery.merchantId, delivery.id, delivery.attemptCount, result.startedAt, result.durationMs,
    result.responseStatus, result.error]);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
function toEventRow(row: any): EventRow {
  return {
    merchantId: row.merchant_id, id: row.id, type: row.type, apiVersion: row.api_version, data: row.data,
    requestId: row.request_id, idempotencyKey: row.idempotency_key, createdAt: row.created_at,
    pendingWebhooks: row.pending_webhooks,
  };
}

/** One POST, bounded in time (connect, wait and read); redirects are not followed (a failure). */
function postJson(url: string, body: string, headers: Record<string, string>, allowPrivate: boolean) {
  const startedMs = Date.now();
  const startedAt = new Date(nowMs()).toISOString();
  return new Promise<AttemptResult>((resolve) => {
    const done = (responseStatus: number | null, error: string | null) =>
      resolve({ startedAt, durationMs: Date.now() - startedMs, responseStatus, error });
    const transport = url.startsWith('https:') ? https : http;
    const request = transport.request(url, {
      method: 'POST', lookup: guardedLookup(allowPrivate), timeout: limits.webhookTimeoutMs,
      headers: { ...headers, 'Content-Type': 'application/json; charset=utf-8',
        'Content-Length': Buffer.byteLength(body) },
    }, (response) => {
      response.resume();
      done(response.statusCode ?? null, null);
      response.destroy();
    });
    const deadline = setTimeout(() => request.destroy(new Error('timed out')), limits.webhookTimeoutMs);
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', (error) => done(null, error.message.slice(0, 200)));
    request.on('close', () => clearTimeout(deadline));
    request.end(body);
  });
}

/** A page of a merchant's deliveries, newest first, each with its attempts (Stripe's cursors). */
export async function listDeliveries(db: Queryable, query: { merchantId: string; limit: number;
  startingAfter: string | undefined; endingBefore: string | undefined; eventId: string | undefined;
  endpointId: string | undefined }) {
  const page = await selectPage(db, 'webhook_deliveries', {
    ...query, equals: { event_id: query.eventId, endpoint_id: query.endpointId },
  }, (row) => row);
  if (page.rows.length === 0) return page;
  const attempts = await db.query<{ delivery_id: string; attempts: unknown[] }>(named(`SELECT a.delivery_id,
       json_agg(json_build_object('attempt', a.attempt_number, 'started_at', a.started_at,
         'duration_ms', a.duration_ms, 'response_status', a.response_status, 'error', a.error)
         ORDER BY a.attempt_number) AS attempts
     FROM webhook_delivery_attempts a WHERE a.merchant_id = $1 AND a.delivery_id = ANY($2::text[])
     GROUP BY a.delivery_id`), [query.merchantId, page.rows.map((row) => String(row.id))]);
  const byDelivery = new Map(attempts.rows.map((row) => [row.delivery_id, row.attempts]));
  return { ...page, rows: page.rows.map((row) => ({ ...row, attempts: byDelivery.get(String(row.id)) ?? [] })) };
}

/** Penny's record of one event's delivery to one endpoint, with every attempt. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
export function presentDelivery(row: any) {
  return {
    id: row.id,
    object: 'webhook_delivery',
    event: row.event_id,
    webhook_endpoint: row.endpoint_id,
    status: row.status,
    attempt_count: row.attempt_count,
    next_attempt: row.status === 'pending' ? Math.floor(Date.parse(row.next_attempt_at) / 1000) : null,
    created: Math.floor(Date.parse(row.created_at) / 1000),
    attempts: row.attempts,
  };
}
