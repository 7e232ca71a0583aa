import http from 'node:http';
import https from 'node:https';
import type pg from 'pg';
import type { Logger } from 'pino';
import { nowMs } from '../clock.js';
import { limits } from '../config.js';
import { inTransaction, withTransaction, type Queryable } from '../db/pool.js';
import { PennyError } from '../errors.js';
import { presentEvent, recordEvent } from '../events/event-store.js';
import { failpoint } from '../failpoints.js';
import { stringifyJson } from '../json.js';
import { guardedLookup } from './endpoint-address.js';
import { signPayload } from '../security/hmac-signature.js';
import { presentWebhookEndpoint, type WebhookEndpoints } from './webhook-endpoints.js';
import {
  claimDueDeliveries, clearEndpointFailing, completeDelivery, disableEndpoint, insertDeliveryAttempt,
  markEndpointFailing, requeueDelivery, rescheduleDelivery, selectDeliveriesOfEvents, selectDelivery,
  selectDeliveryAttempts, selectDeliveryPage, selectDeliveryToSend,
  type ClaimedDelivery, type DeliveryAttempt, type WebhookDeliveryRow,
} from './webhook-store.js';

/**
 * Delivers each event to each endpoint listening for it, at least once: a worker claims due
 * deliveries with FOR UPDATE SKIP LOCKED and moves their next attempt forward by a lease, POSTs
 * the event signed with Stripe-Signature, and records the attempt. A failure is retried with
 * exponential backoff and jitter (the first retry within seconds) for up to 3 days; a worker that
 * dies mid-delivery leaves the lease to run out, and the delivery is tried again.
 */
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
    return claimDueDeliveries(this.pool, { now: new Date(now).toISOString(), batchMax: limits.webhookClaimBatchMax,
      leaseUntil: new Date(now + limits.webhookLeaseMs).toISOString() });
  }

  private async attempt(delivery: ClaimedDelivery): Promise<void> {
    const row = await selectDeliveryToSend(this.pool, delivery.merchantId, delivery.id);
    if (row === undefined) throw new Error(`delivery ${delivery.id} lost its event or endpoint`);
    if (row.endpointStatus !== 'enabled' || row.endpointDeletedAt !== null) {
      await this.finish(delivery, 'failed', { startedAt: new Date(nowMs()).toISOString(), durationMs: 0,
        responseStatus: null, error: 'the endpoint is disabled' });
      return;
    }
    const payload = stringifyJson(presentEvent(row.event));
    // The signature's timestamp is wall time: receivers check it against their own clocks.
    const signature = signPayload(payload, this.endpoints.secretOf({ secretCiphertext: row.secretCiphertext }),
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
    await this.retryOrGiveUp(delivery, Date.parse(row.event.createdAt), result);
  }

  private async finish(delivery: ClaimedDelivery, status: 'succeeded' | 'failed', result: DeliveryAttempt) {
    await withTransaction(this.pool, async (client) => {
      await insertDeliveryAttempt(client, delivery, result);
      await completeDelivery(client, delivery.merchantId, delivery.id, status, new Date(nowMs()).toISOString());
      if (status === 'succeeded') await clearEndpointFailing(client, delivery.merchantId, delivery.endpointId);
    });
  }

  private async retryOrGiveUp(delivery: ClaimedDelivery, eventCreatedMs: number, result: DeliveryAttempt) {
    const now = nowMs();
    const nextAttemptMs = now + retryDelayMs(delivery.attemptCount);
    await withTransaction(this.pool, async (client) => {
      await insertDeliveryAttempt(client, delivery, result);
      const givingUp = nextAttemptMs > eventCreatedMs + limits.webhookRetryWindowMs;
      await rescheduleDelivery(client, { merchantId: delivery.merchantId, id: delivery.id,
        status: givingUp ? 'failed' : 'pending', nextAttemptAt: new Date(nextAttemptMs).toISOString(),
        now: new Date(now).toISOString() });
      await this.noteEndpointFailure(client, delivery, now);
    });
  }

  /** An endpoint that has failed without a success for days is disabled, and an event says so. */
  private async noteEndpointFailure(client: pg.PoolClient, delivery: ClaimedDelivery, now: number) {
    const endpoint = await markEndpointFailing(client, delivery.merchantId, delivery.endpointId,
      new Date(now).toISOString());
    if (endpoint?.status !== 'enabled') return;
    if (now - Date.parse(endpoint.failingSince) < limits.webhookEndpointDisableAfterMs) return;
    const disabled = await disableEndpoint(client, delivery.merchantId, delivery.endpointId);
    this.options.logger.warn({ endpoint: delivery.endpointId }, 'webhook endpoint disabled after failing for days');
    await recordEvent(client, {
      merchantId: delivery.merchantId, type: 'webhook_endpoint.disabled',
      object: presentWebhookEndpoint({ ...disabled, secretCiphertext: '' }),
    });
  }
}

/** Backoff: 10 s, 30 s, 90 s, … ×3 each time up to 12 h, each scaled by a random 50–100 % (jitter). */
export function retryDelayMs(attemptCount: number, random: () => number = Math.random): number {
  const exponent = Math.max(0, attemptCount - 1);
  const delay = Math.min(limits.webhookFirstRetryDelayMs * 3 ** exponent, limits.webhookRetryDelayMaxMs);
  return Math.round(delay * (0.5 + random() * 0.5));
}

/** One POST, bounded in time (connect, wait and read); redirects are not followed (a failure). */
function postJson(url: string, body: string, headers: Record<string, string>, allowPrivate: boolean) {
  const startedMs = Date.now();
  const startedAt = new Date(nowMs()).toISOString();
  return new Promise<DeliveryAttempt>((resolve) => {
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
  const page = await selectDeliveryPage(db, query);
  if (page.rows.length === 0) return { ...page, rows: [] };
  const byDelivery = await selectDeliveryAttempts(db, query.merchantId, page.rows.map((row) => row.id));
  return { ...page, rows: page.rows.map((row) => ({ ...row, attempts: byDelivery.get(row.id) ?? [] })) };
}

/**
 * Resend: the delivery is made due now, whatever became of it (pending, succeeded or failed; one a
 * worker is sending at this moment keeps its lease, see requeueDelivery), and
 * the delivery worker sends it again with its next attempt number; the usual retries follow while
 * the event is within its retry window. The endpoint must still exist. In the caller's transaction
 * (an idempotent request's), so a resend sent twice under one key resends once.
 */
export async function resendDelivery(client: pg.PoolClient, endpoints: WebhookEndpoints,
  key: { merchantId: string; id: string }) {
  return inTransaction(client, async () => {
    const found = await selectDelivery(client, key.merchantId, key.id);
    if (found === undefined) {
      throw new PennyError({ code: 'resource_missing', param: 'id', message: `No such webhook delivery: '${key.id}'` });
    }
    await endpoints.retrieve(client, key.merchantId, found.endpointId);
    const requeued = await requeueDelivery(client, { ...key, now: new Date(nowMs()).toISOString() });
    if (requeued === undefined) throw new Error(`webhook delivery ${key.id} vanished while it was requeued`);
    const attempts = await selectDeliveryAttempts(client, key.merchantId, [key.id]);
    return presentDelivery({ ...requeued, attempts: attempts.get(key.id) ?? [] });
  });
}

/** The deliveries of these events (a payment's), each with its attempts. */
export async function deliveriesOfEvents(db: Queryable, merchantId: string, eventIds: readonly string[]) {
  if (eventIds.length === 0) return [];
  const rows = await selectDeliveriesOfEvents(db, merchantId, eventIds);
  if (rows.length === 0) return [];
  const byDelivery = await selectDeliveryAttempts(db, merchantId, rows.map((row) => row.id));
  return rows.map((row) => ({ ...row, attempts: byDelivery.get(row.id) ?? [] }));
}

/** Penny's record of one event's delivery to one endpoint, with every attempt. */
export function presentDelivery(row: WebhookDeliveryRow & { attempts: unknown[] }) {
  return {
    id: row.id,
    object: 'webhook_delivery',
    event: row.eventId,
    webhook_endpoint: row.endpointId,
    status: row.status,
    attempt_count: row.attemptCount,
    next_attempt: row.status === 'pending' ? Math.floor(Date.parse(row.nextAttemptAt) / 1000) : null,
    created: Math.floor(Date.parse(row.createdAt) / 1000),
    attempts: row.attempts,
  };
}
