import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { advanceClock, configureClock } from '../../src/clock.js';
import { limits } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { validateEndpointUrl } from '../../src/webhooks/endpoint-address.js';
import { retryDelayMs, WebhookDeliveryWorker } from '../../src/webhooks/webhook-deliveries.js';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/** Merchant webhooks: endpoints, signed delivery verified by the stripe SDK, retries, disabling. */
let penny: ServedLedger;
let stripe: Stripe;
let merchantId: string;
let worker: WebhookDeliveryWorker;

interface Received { body: string; signature: string }
let received: Received[] = [];
/** Statuses the receiver answers with, in order; 200 once they run out. */
let answers: number[] = [];
let receiverUrl: string;
const receiver = http.createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    received.push({ body: Buffer.concat(chunks).toString('utf8'), signature: String(request.headers['stripe-signature']) });
    response.statusCode = answers.shift() ?? 200;
    response.end('ok');
  });
});

beforeAll(async () => {
  configureClock('controlled');
  penny = await serveTestLedger();
  const created = await penny.merchants.createMerchant('Webhook Shop');
  merchantId = created.merchant.id;
  stripe = penny.stripeFor(created.secretKey);
  worker = new WebhookDeliveryWorker(penny.pool, penny.webhookEndpoints,
    { allowPrivateUrls: true, logger: createLogger('silent') });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
});

afterAll(async () => {
  await new Promise((resolve) => receiver.close(resolve));
});

beforeEach(async () => {
  received = [];
  answers = [];
  // Each test starts with no endpoint and nothing queued.
  await penny.pool.query(`UPDATE webhook_endpoints SET deleted_at = now(), status = 'disabled'
    WHERE merchant_id = $1 AND deleted_at IS NULL`, [merchantId]);
  await penny.pool.query(`UPDATE webhook_deliveries SET status = 'failed', completed_at = now()
    WHERE merchant_id = $1 AND status = 'pending'`, [merchantId]);
});

async function deliverAll(): Promise<void> {
  while ((await worker.deliverDue()) > 0) { /* until nothing is due */ }
}

async function pay(amount: number) {
  return stripe.paymentIntents.create({ amount, currency: 'usd', payment_method: 'pm_card_visa', confirm: true });
}

describe('webhook endpoints', () => {
  it('shows the signing secret once, on creation', async () => {
    const endpoint = await stripe.webhookEndpoints.create({ url: receiverUrl, enabled_events: ['*'] });
    expect(endpoint.secret).toMatch(/^whsec_/);
    expect(await stripe.webhookEndpoints.retrieve(endpoint.id)).not.toHaveProperty('secret');
    const listed = await stripe.webhookEndpoints.list();
    expect(listed.data.find((item) => item.id === endpoint.id)).not.toHaveProperty('secret');
  });

  it('stores no plain secret, also when the creation is kept for an idempotent replay', async () => {
    const endpoint = await stripe.webhookEndpoints.create({ url: receiverUrl, enabled_events: ['*'] },
      { idempotencyKey: 'endpoint-secret-1' });
    const secret = endpoint.secret ?? '';
    const replay = await stripe.webhookEndpoints.create({ url: receiverUrl, enabled_events: ['*'] },
      { idempotencyKey: 'endpoint-secret-1' });
    expect(replay.secret).toBe(secret);
    expect(replay.id).toBe(endpoint.id);
    const stored = await penny.pool.query(`SELECT 1 FROM webhook_endpoints, idempotency_keys
      WHERE webhook_endpoints::text LIKE $1 OR idempotency_keys::text LIKE $1`, [`%${secret.slice(6)}%`]);
    expect(stored.rows).toEqual([]);
  });

  it('refuses a URL that is not http or https', async () => {
    await expect(stripe.webhookEndpoints.create({ url: 'ftp://example.com/x', enabled_events: ['*'] }))
      .rejects.toMatchObject({ statusCode: 400, param: 'url' });
  });

  it('takes the marketplace\'s event types: payouts and application fees', async () => {
    const endpoint = await stripe.webhookEndpoints.create({ url: receiverUrl, enabled_events: ['payout.paid',
      'payout.failed', 'application_fee.created', 'application_fee.refunded', 'transfer.created'] });
    expect(endpoint.enabled_events).toContain('application_fee.refunded');
  });

  it('refuses an unknown event type, naming it', async () => {
    await expect(stripe.webhookEndpoints.create({ url: receiverUrl,
      enabled_events: ['payment_intent.exploded' as Stripe.WebhookEndpointCreateParams.EnabledEvent] }))
      .rejects.toMatchObject({ statusCode: 400, param: 'enabled_events[0]' });
  });

  it('refuses loopback and private addresses unless they are allowed', async () => {
    for (const url of ['http://127.0.0.1/x', 'http://10.1.2.3/x', 'http://[::1]/x', 'http://192.168.0.1/x',
      'http://169.254.169.254/latest', 'http://localhost/x', 'http://[::ffff:127.0.0.1]/x',
      'http://[2002:7f00:1::]/x', 'http://[::7f00:1]/x']) {
      await expect(validateEndpointUrl(url, { allowPrivate: false })).rejects.toMatchObject({ param: 'url' });
    }
    await expect(validateEndpointUrl('http://127.0.0.1/x', { allowPrivate: true })).resolves.toBe('http://127.0.0.1/x');
    await expect(validateEndpointUrl('https://93.184.215.14/hook', { allowPrivate: false }))
      .resolves.toBe('https://93.184.215.14/hook');
  });

  it('deletes an endpoint, which then is missing', async () => {
    const endpoint = await stripe.webhookEndpoints.create({ url: receiverUrl, enabled_events: ['*'] });
    expect(await stripe.webhookEndpoints.del(endpoint.id)).toMatchObject({ id: endpoint.id, deleted: true });
    await expect(stripe.webhookEndpoints.retrieve(endpoint.id)).rejects.toMatchObject({ statusCode: 404 });
  });
});

describe('delivery', () => {
  it('delivers each event signed so that stripe.webhooks.constructEvent verifies it', async () => {
    const endpoint = await stripe.webhookEndpoints.create({ url: receiverUrl, enabled_events: ['*'] });
    const intent = await pay(1000);
    await deliverAll();
    const events = received.map((item) => stripe.webhooks.constructEvent(item.body, item.signature,
      endpoint.secret ?? ''));
    expect(events.filter((event) => (event.data.object as { id: string }).id === intent.id).map((event) => event.type))
      .toEqual(expect.arrayContaining(['payment_intent.created', 'payment_intent.succeeded']));
    expect(() => stripe.webhooks.constructEvent(received[0]?.body ?? '', received[0]?.signature ?? '', 'whsec_wrong'))
      .toThrow();
  });

  it('names the connected account an event is about in `account`, as Connect\'s do; the platform\'s own carry none',
    async () => {
      const endpoint = await stripe.webhookEndpoints.create({ url: receiverUrl,
        enabled_events: ['account.updated', 'account.external_account.created', 'payment_intent.created'] });
      const seller = await stripe.accounts.create({ type: 'custom', country: 'US' });
      await stripe.accounts.createExternalAccount(seller.id, { external_account: { object: 'bank_account',
        country: 'US', currency: 'usd', account_number: '000123456789', routing_number: '110000000' } });
      await stripe.accounts.update(seller.id, { email: 'seller@example.com' });
      const intent = await pay(1025);
      await deliverAll();
      const events = received.map((item) => stripe.webhooks.constructEvent(item.body, item.signature,
        endpoint.secret ?? ''));
      const about = (type: string) => events.filter((event) => event.type === type);
      expect(about('account.updated').length).toBeGreaterThanOrEqual(2);
      for (const type of ['account.updated', 'account.external_account.created']) {
        for (const event of about(type)) expect(event.account).toBe(seller.id);
      }
      const own = about('payment_intent.created').find((event) => (event.data.object as { id: string }).id === intent.id);
      expect(own).toBeDefined();
      expect(own && 'account' in own).toBe(false);
    });

  it('delivers to an endpoint named by a host name', async () => {
    await stripe.webhookEndpoints.create({ url: receiverUrl.replace('127.0.0.1', 'localhost'),
      enabled_events: ['charge.succeeded'] });
    await pay(1050);
    await deliverAll();
    expect(received.map((item) => (JSON.parse(item.body) as { type: string }).type)).toEqual(['charge.succeeded']);
  });

  it('refuses, at connect time, a host name that resolves to a private address', async () => {
    const endpoint = await stripe.webhookEndpoints.create({ url: receiverUrl.replace('127.0.0.1', 'localhost'),
      enabled_events: ['charge.succeeded'] });
    const guarded = new WebhookDeliveryWorker(penny.pool, penny.webhookEndpoints,
      { allowPrivateUrls: false, logger: createLogger('silent') });
    await pay(1060);
    while ((await guarded.deliverDue()) > 0) { /* drain */ }
    expect(received).toEqual([]);
    const listed = await stripe.rawRequest('GET', `/v1/webhook_deliveries?webhook_endpoint=${endpoint.id}`) as
      unknown as { data: { attempts: { error: string | null }[] }[] };
    expect(listed.data[0]?.attempts[0]?.error).toMatch(/private address/);
  });

  it('sends only the events an endpoint listens for', async () => {
    await stripe.webhookEndpoints.create({ url: receiverUrl, enabled_events: ['charge.succeeded'] });
    await pay(1100);
    await deliverAll();
    expect(received.map((item) => (JSON.parse(item.body) as { type: string }).type)).toEqual(['charge.succeeded']);
  });

  it('retries a failed delivery within seconds, and records every attempt', async () => {
    const endpoint = await stripe.webhookEndpoints.create({ url: receiverUrl, enabled_events: ['charge.succeeded'] });
    answers = [500];
    await pay(1200);
    await deliverAll();
    expect(received).toHaveLength(1);
    const [pending] = (await stripe.rawRequest('GET', `/v1/webhook_deliveries?webhook_endpoint=${endpoint.id}`) as
      unknown as { data: { status: string; next_attempt: number; created: number; attempts: unknown[] }[] }).data;
    expect(pending?.status).toBe('pending');
    expect((pending?.next_attempt ?? 0) - (pending?.created ?? 0)).toBeLessThanOrEqual(11);
    advanceClock(limits.webhookFirstRetryDelayMs + 1000);
    await deliverAll();
    expect(received).toHaveLength(2);
    const listed = await stripe.rawRequest('GET', `/v1/webhook_deliveries?webhook_endpoint=${endpoint.id}`) as
      unknown as { data: { status: string; attempts: { attempt: number; response_status: number }[] }[] };
    expect(listed.data[0]?.status).toBe('succeeded');
    expect(listed.data[0]?.attempts.map((attempt) => [attempt.attempt, attempt.response_status]))
      .toEqual([[1, 500], [2, 200]]);
  });

  it('gives up on an event after 3 days of failures', async () => {
    const endpoint = await stripe.webhookEndpoints.create({ url: receiverUrl, enabled_events: ['charge.succeeded'] });
    answers = Array.from({ length: 100 }, () => 503);
    await pay(1300);
    for (let hour = 0; hour < 80; hour += 1) {
      await deliverAll();
      advanceClock(3_600_000);
    }
    const listed = await stripe.rawRequest('GET', `/v1/webhook_deliveries?webhook_endpoint=${endpoint.id}`) as
      unknown as { data: { status: string; attempt_count: number }[] };
    expect(listed.data[0]?.status).toBe('failed');
    expect(listed.data[0]?.attempt_count).toBeGreaterThan(5);
    expect(listed.data[0]?.attempt_count).toBeLessThan(25);
  });

  it('disables an endpoint that fails for days, and an event says so', async () => {
    const endpoint = await stripe.webhookEndpoints.create({ url: receiverUrl, enabled_events: ['charge.succeeded'] });
    answers = Array.from({ length: 200 }, () => 500);
    for (let hour = 0; hour < 60; hour += 1) {
      if (hour % 6 === 0) await pay(1400 + hour);
      await deliverAll();
      advanceClock(3_600_000);
    }
    expect((await stripe.webhookEndpoints.retrieve(endpoint.id)).status).toBe('disabled');
    const disabled = await stripe.events.list({ type: 'webhook_endpoint.disabled', limit: 1 });
    expect(disabled.data[0]?.data.object).toMatchObject({ id: endpoint.id, status: 'disabled' });
  });

  it('two workers never deliver the same attempt twice', async () => {
    await stripe.webhookEndpoints.create({ url: receiverUrl, enabled_events: ['*'] });
    for (let index = 0; index < 5; index += 1) await pay(1500 + index);
    const other = new WebhookDeliveryWorker(penny.pool, penny.webhookEndpoints,
      { allowPrivateUrls: true, logger: createLogger('silent') });
    await Promise.all([deliverAll(), (async () => { while ((await other.deliverDue()) > 0) { /* drain */ } })()]);
    const ids = received.map((item) => (JSON.parse(item.body) as { id: string }).id);
    expect(ids.length).toBeGreaterThanOrEqual(15);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('delivery list', () => {
  type DeliveryList = { data: { id: string; event: string }[]; has_more: boolean };
  const list = async (query: string) =>
    await stripe.rawRequest('GET', `/v1/webhook_deliveries?${query}`) as unknown as DeliveryList;

  it('pages through deliveries newest first with starting_after and ending_before', async () => {
    const endpoint = await stripe.webhookEndpoints.create({ url: receiverUrl, enabled_events: ['*'] });
    await pay(1500);
    await pay(1510);
    const all = await list(`webhook_endpoint=${endpoint.id}&limit=100`);
    expect(all.data.length).toBeGreaterThanOrEqual(6);
    expect(all.has_more).toBe(false);
    const walked: string[] = [];
    let page = await list(`webhook_endpoint=${endpoint.id}&limit=2`);
    walked.push(...page.data.map((item) => item.id));
    while (page.has_more) {
      page = await list(`webhook_endpoint=${endpoint.id}&limit=2&starting_after=${walked.at(-1)}`);
      walked.push(...page.data.map((item) => item.id));
    }
    expect(walked).toEqual(all.data.map((item) => item.id));
    const before = await list(`webhook_endpoint=${endpoint.id}&limit=2&ending_before=${all.data[3]?.id}`);
    expect(before.data.map((item) => item.id)).toEqual(all.data.slice(1, 3).map((item) => item.id));
    expect(before.has_more).toBe(true);
  });

  it('refuses starting_after and ending_before together', async () => {
    await expect(list('starting_after=whd_a&ending_before=whd_b')).rejects.toMatchObject({
      statusCode: 400, param: 'ending_before' });
  });
});

describe('retry schedule', () => {
  it('starts within seconds and grows, with jitter between half and all of the delay', () => {
    expect(retryDelayMs(1, () => 1)).toBe(limits.webhookFirstRetryDelayMs);
    expect(retryDelayMs(1, () => 0)).toBe(limits.webhookFirstRetryDelayMs / 2);
    expect(retryDelayMs(3, () => 1)).toBe(limits.webhookFirstRetryDelayMs * 9);
    expect(retryDelayMs(50, () => 1)).toBe(limits.webhookRetryDelayMaxMs);
  });
});
