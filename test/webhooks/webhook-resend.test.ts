import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { WebhookDeliveryWorker } from '../../src/webhooks/webhook-deliveries.js';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/**
 * POST /v1/webhook_deliveries/:id/resend: a delivery, whatever became of it, is due again at once,
 * the worker sends it with its next attempt number, and the same Idempotency-Key resends once; a
 * delivery being sent at that moment is left to the worker sending it.
 */
let penny: ServedLedger;
let secretKey: string;
const answers: number[] = [];
let received = 0;
/** While set, the receiver holds its answers until it resolves (a delivery in flight). */
let held: Promise<void> | undefined;
const receiver = http.createServer((request, response) => {
  request.resume();
  request.on('end', () => {
    received += 1;
    void (held ?? Promise.resolve()).then(() => {
      response.statusCode = answers.shift() ?? 200;
      response.end('ok');
    });
  });
});

beforeAll(async () => {
  penny = await serveTestLedger();
  secretKey = (await penny.merchants.createMerchant('Resend Shop')).secretKey;
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  await new Promise((resolve) => receiver.close(resolve));
});

async function resend(id: string, key: string) {
  const response = await fetch(`http://127.0.0.1:${penny.port}/v1/webhook_deliveries/${id}/resend`, {
    method: 'POST', headers: { authorization: `Bearer ${secretKey}`, 'idempotency-key': key } });
  return { status: response.status, body: await response.json() as { status: string; attempt_count: number } };
}

describe('resending a webhook delivery', () => {
  it('sends a succeeded delivery again, once per idempotency key', async () => {
    const worker = new WebhookDeliveryWorker(penny.pool, penny.webhookEndpoints,
      { allowPrivateUrls: true, logger: createLogger('silent') });
    const stripe = penny.stripeFor(secretKey);
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    await stripe.webhookEndpoints.create({ url, enabled_events: ['payment_intent.succeeded'] });
    await stripe.paymentIntents.create({ amount: 1200, currency: 'usd', payment_method: 'pm_card_visa', confirm: true });
    while ((await worker.deliverDue()) > 0) { /* drain */ }
    const [delivery] = (await (await fetch(`http://127.0.0.1:${penny.port}/v1/webhook_deliveries`,
      { headers: { authorization: `Bearer ${secretKey}` } })).json() as { data: { id: string; status: string }[] }).data;
    expect(delivery?.status).toBe('succeeded');
    expect(received).toBe(1);

    const first = await resend(delivery?.id ?? '', 'resend-1');
    const again = await resend(delivery?.id ?? '', 'resend-1');
    expect(first).toEqual(again);
    expect(first.body).toMatchObject({ status: 'pending', attempt_count: 1 });
    while ((await worker.deliverDue()) > 0) { /* drain */ }
    expect(received).toBe(2);
    const missing = await resend('whd_nosuchdelivery', 'resend-2');
    expect(missing.status).toBe(404);
  });

  it('leaves a delivery a worker is sending now to that worker: no second worker sends it at once', async () => {
    const worker = () => new WebhookDeliveryWorker(penny.pool, penny.webhookEndpoints,
      { allowPrivateUrls: true, logger: createLogger('silent') });
    const created = await penny.merchants.createMerchant('Resend In Flight Shop');
    const stripe = penny.stripeFor(created.secretKey);
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/in-flight`;
    await stripe.webhookEndpoints.create({ url, enabled_events: ['payment_intent.succeeded'] });
    await stripe.paymentIntents.create({ amount: 1300, currency: 'usd', payment_method: 'pm_card_visa', confirm: true });
    let release = () => undefined as void;
    held = new Promise<void>((resolve) => { release = resolve; });
    const receivedBefore = received;
    const sending = worker().deliverDue();
    while (received === receivedBefore) await new Promise((resolve) => setTimeout(resolve, 10));
    const [delivery] = (await (await fetch(`http://127.0.0.1:${penny.port}/v1/webhook_deliveries`,
      { headers: { authorization: `Bearer ${created.secretKey}` } })).json() as { data: { id: string }[] }).data;

    const answer = await fetch(`http://127.0.0.1:${penny.port}/v1/webhook_deliveries/${delivery?.id ?? ''}/resend`, {
      method: 'POST', headers: { authorization: `Bearer ${created.secretKey}`, 'idempotency-key': 'resend-in-flight' } });
    expect(answer.status).toBe(200);
    const second = await worker().deliverDue();
    release();
    held = undefined;
    await sending;

    expect(second).toBe(0);
    expect(received - receivedBefore).toBe(1);
  });
});
