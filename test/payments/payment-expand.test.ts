import Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/** Stripe's `expand`: ids replaced by their objects, on retrieve, list and create, and refused where it cannot. */
let penny: ServedLedger;
let stripe: Stripe;

beforeAll(async () => {
  penny = await serveTestLedger();
  const created = await penny.merchants.createMerchant('Expand Shop');
  stripe = penny.stripeFor(created.secretKey);
});

function pay(amount: number, params: Partial<Stripe.PaymentIntentCreateParams> = {},
  options: Stripe.RequestOptions = {}) {
  return stripe.paymentIntents.create({ amount, currency: 'usd', payment_method: 'pm_card_visa', confirm: true,
    ...params }, options);
}

describe('expand', () => {
  it('replaces a PaymentIntent\'s latest_charge by the charge on retrieve', async () => {
    const intent = await pay(6100);
    const expanded = await stripe.paymentIntents.retrieve(intent.id, { expand: ['latest_charge'] });
    expect(expanded.latest_charge).toMatchObject({ object: 'charge', id: intent.latest_charge, amount: 6100 });
    expect((await stripe.paymentIntents.retrieve(intent.id)).latest_charge).toBe(intent.latest_charge);
  });

  it('expands inside what it expanded, along a dotted path', async () => {
    const intent = await pay(6200);
    const expanded = await stripe.paymentIntents.retrieve(intent.id, { expand: ['latest_charge.payment_intent'] });
    const charge = expanded.latest_charge as Stripe.Charge;
    expect(charge.payment_intent).toMatchObject({ object: 'payment_intent', id: intent.id });
  });

  it('expands the object a create answers, and the replay of its key answers the same bytes', async () => {
    const options = { idempotencyKey: 'expand-create-1' };
    const created = await pay(6300, { expand: ['latest_charge'] }, options);
    expect(created.latest_charge).toMatchObject({ object: 'charge', amount_captured: 6300 });
    const replayed = await pay(6300, { expand: ['latest_charge'] }, options);
    expect(JSON.stringify(replayed)).toBe(JSON.stringify(created));
    expect(replayed.lastResponse.headers['idempotent-replayed']).toBe('true');
  });

  it('expands every object of a list with data. paths', async () => {
    await pay(6400);
    const page = await stripe.paymentIntents.list({ limit: 3, expand: ['data.latest_charge'] });
    expect(page.data.length).toBeGreaterThan(0);
    for (const intent of page.data) expect(intent.latest_charge).toMatchObject({ object: 'charge' });
  });

  it('expands a refund\'s charge and payment_intent', async () => {
    const intent = await pay(6500);
    const refund = await stripe.refunds.create({ payment_intent: intent.id, amount: 500,
      expand: ['charge', 'payment_intent'] });
    expect(refund.charge).toMatchObject({ object: 'charge', amount_refunded: 500 });
    expect(refund.payment_intent).toMatchObject({ object: 'payment_intent', id: intent.id });
    const charge = await stripe.charges.retrieve(intent.latest_charge as string, { expand: ['payment_intent'] });
    expect(charge.payment_intent).toMatchObject({ object: 'payment_intent', id: intent.id });
  });

  it('refuses a property that cannot be expanded with 400 naming expand, storing nothing under the key', async () => {
    await expect(pay(6600, { expand: ['customer'] }, { idempotencyKey: 'expand-bad-1' }))
      .rejects.toMatchObject({ statusCode: 400, param: 'expand', message: 'This property cannot be expanded (customer).' });
    // Refused before it ran (nothing created, nothing charged): the corrected request with the same key executes.
    const created = await penny.pool.query('SELECT 1 FROM payment_intents WHERE amount = 6600');
    expect(created.rows).toEqual([]);
    expect((await pay(6600, {}, { idempotencyKey: 'expand-bad-1' })).status).toBe('succeeded');
    const intent = await pay(6610);
    await expect(stripe.paymentIntents.retrieve(intent.id, { expand: ['latest_charge.refunds'] }))
      .rejects.toMatchObject({ statusCode: 400, param: 'expand' });
  });

  it('refuses names every JavaScript object has, as any other unknown property', async () => {
    const intent = await pay(6800);
    for (const path of ['constructor', '__proto__', 'toString', 'latest_charge.hasOwnProperty']) {
      await expect(stripe.paymentIntents.retrieve(intent.id, { expand: [path] }))
        .rejects.toMatchObject({ statusCode: 400, param: 'expand' });
    }
  });

  it('refuses a list path without data., more than 20 paths, and more than 4 levels', async () => {
    await expect(stripe.paymentIntents.list({ expand: ['latest_charge'] }))
      .rejects.toMatchObject({ statusCode: 400, param: 'expand' });
    const intent = await pay(6700);
    await expect(stripe.paymentIntents.retrieve(intent.id, {
      expand: Array.from({ length: 21 }, () => 'latest_charge') })).rejects.toMatchObject({ statusCode: 400 });
    await expect(stripe.paymentIntents.retrieve(intent.id, {
      expand: ['latest_charge.payment_intent.latest_charge.payment_intent.latest_charge'] }))
      .rejects.toMatchObject({ statusCode: 400, param: 'expand' });
  });
});
