import Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/** Every state change writes a Stripe-shaped event in its own transaction, listed by /v1/events. */
let penny: ServedLedger;
let stripe: Stripe;
let merchantId: string;

beforeAll(async () => {
  penny = await serveTestLedger();
  const created = await penny.merchants.createMerchant('Event Shop');
  merchantId = created.merchant.id;
  stripe = penny.stripeFor(created.secretKey);
});

async function eventsOf(objectId: string): Promise<Stripe.Event[]> {
  const result = await penny.pool.query<{ id: string }>(
    `SELECT id FROM events WHERE merchant_id = $1 AND data->'object'->>'id' = $2 ORDER BY created_at, id`,
    [merchantId, objectId]);
  return Promise.all(result.rows.map((row) => stripe.events.retrieve(row.id)));
}

describe('events of a payment', () => {
  it('an automatic-capture payment writes created, processing, charge.succeeded and succeeded', async () => {
    const intent = await stripe.paymentIntents.create({
      amount: 2000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true,
    });
    const types = (await eventsOf(intent.id)).map((event) => event.type);
    expect(types).toEqual(['payment_intent.created', 'payment_intent.processing', 'payment_intent.succeeded']);
    const chargeEvents = await eventsOf(intent.latest_charge as string);
    expect(chargeEvents.map((event) => event.type)).toEqual(['charge.succeeded']);
  });

  it('an event carries the object after the change and the changed fields before it', async () => {
    const intent = await stripe.paymentIntents.create({
      amount: 2100, currency: 'usd', payment_method: 'pm_card_visa', confirm: true,
    });
    const succeeded = (await eventsOf(intent.id)).find((event) => event.type === 'payment_intent.succeeded');
    expect(succeeded?.data.object).toMatchObject({ id: intent.id, object: 'payment_intent', status: 'succeeded' });
    expect(succeeded?.data.previous_attributes).toMatchObject({ status: 'processing', amount_received: 0 });
    expect(Object.keys(succeeded?.data.previous_attributes ?? {})).not.toContain('amount');
  });

  it('an event names the request and the idempotency key that caused it', async () => {
    const intent = await stripe.paymentIntents.create(
      { amount: 2200, currency: 'usd' }, { idempotencyKey: 'event-key-1' });
    const [created] = await eventsOf(intent.id);
    expect(created?.request).toMatchObject({ idempotency_key: 'event-key-1' });
    expect(created?.request?.id).toMatch(/^req_/);
  });

  it('a manual capture writes amount_capturable_updated, then charge.captured and succeeded', async () => {
    const intent = await stripe.paymentIntents.create({
      amount: 3000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true, capture_method: 'manual',
    });
    await stripe.paymentIntents.capture(intent.id, { amount_to_capture: 2000 });
    expect((await eventsOf(intent.id)).map((event) => event.type)).toEqual(['payment_intent.created',
      'payment_intent.processing', 'payment_intent.amount_capturable_updated', 'payment_intent.succeeded']);
    const charge = await eventsOf(intent.latest_charge as string);
    expect(charge.map((event) => event.type)).toEqual(['charge.succeeded', 'charge.captured']);
    expect(charge[1]?.data.previous_attributes).toMatchObject({ captured: false, amount_captured: 0 });
  });

  it('a decline writes charge.failed and payment_intent.payment_failed', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 4000, currency: 'usd' });
    await expect(stripe.paymentIntents.confirm(intent.id, { payment_method: 'pm_card_chargeDeclined' }))
      .rejects.toMatchObject({ statusCode: 402 });
    const types = (await eventsOf(intent.id)).map((event) => event.type);
    expect(types).toEqual(['payment_intent.created', 'payment_intent.processing', 'payment_intent.payment_failed']);
    const retrieved = await stripe.paymentIntents.retrieve(intent.id);
    expect((await eventsOf(retrieved.latest_charge as string)).map((event) => event.type)).toEqual(['charge.failed']);
  });

  it('a cancel writes payment_intent.canceled with the reason', async () => {
    const intent = await stripe.paymentIntents.create({
      amount: 5000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true, capture_method: 'manual',
    });
    await stripe.paymentIntents.cancel(intent.id, { cancellation_reason: 'abandoned' });
    const canceled = (await eventsOf(intent.id)).at(-1);
    expect(canceled?.type).toBe('payment_intent.canceled');
    expect(canceled?.data.object).toMatchObject({ status: 'canceled', cancellation_reason: 'abandoned' });
  });

  it('a refund writes refund.created, refund.updated and charge.refunded', async () => {
    const intent = await stripe.paymentIntents.create({
      amount: 6000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true,
    });
    const refund = await stripe.refunds.create({ payment_intent: intent.id, amount: 1000 });
    const refundEvents = await eventsOf(refund.id);
    expect(refundEvents.map((event) => event.type)).toEqual(['refund.created', 'refund.updated']);
    expect(refundEvents[1]?.data.previous_attributes).toMatchObject({ status: 'pending' });
    const chargeTypes = (await eventsOf(intent.latest_charge as string)).map((event) => event.type);
    expect(chargeTypes).toEqual(['charge.succeeded', 'charge.refunded']);
  });

  it('a request refused part-way leaves the events of later requests intact', async () => {
    await expect(stripe.paymentIntents.create({ amount: 7100, currency: 'usd', confirm: true }))
      .rejects.toMatchObject({ statusCode: 400 });
    for (let index = 0; index < 5; index += 1) {
      const intent = await stripe.paymentIntents.create({ amount: 7200 + index, currency: 'usd' });
      expect((await eventsOf(intent.id)).map((event) => event.type)).toEqual(['payment_intent.created']);
    }
  });

  it('a refused operation writes no event', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 7000, currency: 'usd' });
    await expect(stripe.paymentIntents.capture(intent.id)).rejects.toMatchObject({ statusCode: 400 });
    expect((await eventsOf(intent.id)).map((event) => event.type)).toEqual(['payment_intent.created']);
  });
});

describe('the events API', () => {
  it('lists newest first and filters by type', async () => {
    const intent = await stripe.paymentIntents.create({
      amount: 8000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true,
    });
    const page = await stripe.events.list({ type: 'payment_intent.succeeded', limit: 3 });
    expect(page.data[0]?.data.object).toMatchObject({ id: intent.id });
    expect(page.data.every((event) => event.type === 'payment_intent.succeeded')).toBe(true);
    const created = page.data.map((event) => event.created);
    expect([...created].sort((a, b) => b - a)).toEqual(created);
  });

  it('filters by several types', async () => {
    const page = await stripe.events.list({ types: ['charge.succeeded', 'charge.failed'], limit: 100 });
    expect(page.data.length).toBeGreaterThan(0);
    expect(new Set(page.data.map((event) => event.type))).toEqual(new Set(['charge.succeeded', 'charge.failed']));
  });

  it('walks every event with autoPagingEach', async () => {
    const seen: string[] = [];
    await stripe.events.list({ limit: 2 }).autoPagingEach((event) => {
      seen.push(event.id);
    });
    const total = await penny.pool.query<{ count: bigint }>(
      'SELECT count(*) AS count FROM events WHERE merchant_id = $1', [merchantId]);
    expect(seen.length).toBe(Number(total.rows[0]?.count));
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('answers another merchant\'s event as missing', async () => {
    const other = await penny.merchants.createMerchant('Other Shop');
    const [event] = (await stripe.events.list({ limit: 1 })).data;
    await expect(penny.stripeFor(other.secretKey).events.retrieve(event?.id ?? ''))
      .rejects.toMatchObject({ statusCode: 404, code: 'resource_missing' });
    expect((await penny.stripeFor(other.secretKey).events.list()).data).toEqual([]);
  });

  it('refuses an unknown list parameter', async () => {
    await expect(stripe.events.list({ colour: 'red' } as Stripe.EventListParams))
      .rejects.toMatchObject({ statusCode: 400, code: 'parameter_unknown', param: 'colour' });
  });

  it('events are append-only in the database', async () => {
    const [event] = (await stripe.events.list({ limit: 1 })).data;
    await expect(penny.pool.query(`UPDATE events SET type = 'charge.failed' WHERE id = $1`, [event?.id]))
      .rejects.toMatchObject({ code: 'PN003' });
    await expect(penny.pool.query('DELETE FROM events WHERE id = $1', [event?.id]))
      .rejects.toMatchObject({ code: 'PN003' });
  });
});
