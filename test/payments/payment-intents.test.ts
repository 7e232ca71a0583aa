import Stripe from 'stripe';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { IdempotencyService, requestFingerprint } from '../../src/idempotency/idempotency-service.js';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/** PaymentIntents and idempotency keys, driven by the official stripe SDK over HTTP. */
let penny: ServedLedger;
let port: number;
let stripe: Stripe;
let secretKey: string;

beforeAll(async () => {
  penny = await serveTestLedger();
  port = penny.port;
  secretKey = (await penny.merchants.createMerchant('Intent Shop')).secretKey;
  stripe = client(secretKey);
});

function client(key: string, maxNetworkRetries = 0): Stripe {
  return penny.stripeFor(key, maxNetworkRetries);
}

async function intentCount(): Promise<number> {
  const result = await penny.pool.query<{ count: bigint }>('SELECT count(*) AS count FROM payment_intents');
  return Number(result.rows[0]?.count);
}

async function rawPost(path: string, body: string, key: string, headers: Record<string, string> = {}) {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secretKey}`, 'content-type': 'application/x-www-form-urlencoded',
      'idempotency-key': key, ...headers },
    body,
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

describe('creating and reading PaymentIntents', () => {
  it('creates an intent with Stripe\'s shape and status', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 2000, currency: 'usd', metadata: { order: '42' } });
    expect(intent).toMatchObject({
      object: 'payment_intent', amount: 2000, currency: 'usd', status: 'requires_payment_method',
      amount_capturable: 0, amount_received: 0, latest_charge: null, metadata: { order: '42' }, livemode: false,
    });
    expect(intent.id).toMatch(/^pi_/);
    expect(await stripe.paymentIntents.retrieve(intent.id)).toEqual(intent);
  });

  it('starts in requires_confirmation when a payment method is given', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 500, currency: 'eur', payment_method: 'pm_card_visa' });
    expect(intent.status).toBe('requires_confirmation');
  });

  it('refuses an amount below the currency\'s minimum with amount_too_small', async () => {
    const error = await stripe.paymentIntents.create({ amount: 49, currency: 'usd' }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ statusCode: 400, code: 'amount_too_small', param: 'amount' });
  });

  it('refuses an unknown parameter, naming it', async () => {
    const response = await rawPost('/v1/payment_intents', 'amount=1000&currency=usd&colour=red', 'unknown-param-1');
    expect(response.status).toBe(400);
    expect(JSON.parse(response.text).error).toMatchObject({ code: 'parameter_unknown', param: 'colour' });
  });

  it('refuses a currency sent as an object (currency[a]=x) with 400 currency_invalid and creates nothing', async () => {
    const before = await intentCount();
    const response = await rawPost('/v1/payment_intents', 'amount=1000&currency[a]=x', 'currency-object-1');
    expect(response.status).toBe(400);
    expect(JSON.parse(response.text).error).toMatchObject({ code: 'currency_invalid', param: 'currency' });
    expect(await intentCount()).toBe(before);
  });

  it('refuses a card number anywhere in the request without echoing it', async () => {
    const before = await intentCount();
    const response = await rawPost('/v1/payment_intents',
      'amount=1000&currency=usd&metadata[note]=4242 4242 4242 4242', 'card-number-1');
    expect(response.status).toBe(400);
    expect(JSON.parse(response.text).error).toMatchObject({ code: 'card_number_in_request', param: 'metadata[note]' });
    expect(response.text).not.toContain('4242');
    expect(await intentCount()).toBe(before);
  });

  it('refuses a card number in a query string too', async () => {
    const response = await fetch(`http://127.0.0.1:${port}/v1/payment_intents?customer=4242424242424242`, {
      headers: { authorization: `Bearer ${secretKey}` },
    });
    expect(response.status).toBe(400);
    const text = await response.text();
    expect(JSON.parse(text).error).toMatchObject({ code: 'card_number_in_request', param: 'customer' });
    expect(text).not.toContain('4242');
  });

  it('does not take a list cursor with a long digit run for a card number (ids can hold one)', async () => {
    const response = await fetch(`http://127.0.0.1:${port}/v1/payment_intents?starting_after=pi_4242424242424242`, {
      headers: { authorization: `Bearer ${secretKey}` },
    });
    expect(JSON.parse(await response.text()).error).toMatchObject({ code: 'resource_missing', param: 'starting_after' });
  });

  it('answers another merchant\'s intent as missing', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd' });
    const other = client((await penny.merchants.createMerchant('Other Shop')).secretKey);
    const error = await other.paymentIntents.retrieve(intent.id).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ statusCode: 404, code: 'resource_missing' });
  });
});

describe('updating PaymentIntents', () => {
  it('changes the amount and metadata; an empty value removes a key', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd', metadata: { a: '1', b: '2' } });
    const updated = await stripe.paymentIntents.update(intent.id, { amount: 1200, metadata: { a: '', c: '3' } });
    expect(updated).toMatchObject({ amount: 1200, metadata: { b: '2', c: '3' } });
    expect(updated.metadata).not.toHaveProperty('a');
  });

  it('moves to requires_confirmation when a payment method is attached', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd' });
    const updated = await stripe.paymentIntents.update(intent.id, { payment_method: 'pm_card_visa' });
    expect(updated.status).toBe('requires_confirmation');
  });

  it('refuses an update once the intent has succeeded', async () => {
    const intent = await stripe.paymentIntents.create({
      amount: 1000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true,
    });
    const error = await stripe.paymentIntents.update(intent.id, { description: 'late' }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ statusCode: 400, code: 'payment_intent_unexpected_state' });
  });

  it('refuses an amount below the minimum on update', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd' });
    const error = await stripe.paymentIntents.update(intent.id, { amount: 10 }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ statusCode: 400, code: 'amount_too_small' });
    expect((await stripe.paymentIntents.retrieve(intent.id)).amount).toBe(1000);
  });
});

describe('unsetting fields', () => {
  it('unsets description, customer and receipt_email on update with an empty value, as Stripe does', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd', description: 'Order 1',
      customer: 'cus_1', receipt_email: 'a@example.com' });
    const updated = await stripe.paymentIntents.update(intent.id, { description: '', customer: '', receipt_email: '' });
    expect(updated).toMatchObject({ description: null, customer: null, receipt_email: null });
    expect(await stripe.paymentIntents.retrieve(intent.id)).toMatchObject({ description: null });
  });

  it('unsets statement_descriptor on update with an empty value, as Stripe does', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd', statement_descriptor: 'SHOP 42' });
    const updated = await stripe.paymentIntents.update(intent.id, { statement_descriptor: '' });
    expect(updated.statement_descriptor).toBeNull();
    expect((await stripe.paymentIntents.retrieve(intent.id)).statement_descriptor).toBeNull();
  });
});

describe('metadata on PaymentIntents', () => {
  const keys = (prefix: string, count: number, value: (index: number) => string) =>
    Object.fromEntries(Array.from({ length: count }, (_, index) => [`${prefix}${index}`, value(index)]));

  it('refuses 51 keys with metadata_invalid naming metadata', async () => {
    const error = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd', metadata: keys('k', 51, String) })
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ statusCode: 400, code: 'metadata_invalid', param: 'metadata' });
  });

  it('refuses metadata sent as JSON null on update with 400 metadata_invalid, and changes nothing', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd', metadata: { kept: 'yes' } });
    const response = await fetch(`http://127.0.0.1:${port}/v1/payment_intents/${intent.id}`, {
      method: 'POST', headers: { authorization: `Bearer ${secretKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 1500, metadata: null }),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { code: 'metadata_invalid', param: 'metadata' } });
    expect(await stripe.paymentIntents.retrieve(intent.id)).toMatchObject({ amount: 1000, metadata: { kept: 'yes' } });
  });

  it('refuses a key of 41 characters and a value of 501', async () => {
    const longKey = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd', metadata: { ['k'.repeat(41)]: 'v' } })
      .catch((caught: unknown) => caught);
    expect(longKey).toMatchObject({ statusCode: 400, code: 'metadata_invalid' });
    const longValue = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd', metadata: { k: 'v'.repeat(501) } })
      .catch((caught: unknown) => caught);
    expect(longValue).toMatchObject({ statusCode: 400, code: 'metadata_invalid', param: 'metadata[k]' });
  });

  it('accepts 50 keys and leaves out a key posted empty', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd',
      metadata: { ...keys('k', 50, String), empty: '' } });
    expect(Object.keys(intent.metadata)).toHaveLength(50);
    expect(intent.metadata).not.toHaveProperty('empty');
  });

  it('replaces all 50 keys in one update that removes 50 and sets 50', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd', metadata: keys('old', 50, String) });
    const updated = await stripe.paymentIntents.update(intent.id, {
      metadata: { ...keys('old', 50, () => ''), ...keys('new', 50, String) },
    });
    expect(Object.keys(updated.metadata).sort()).toEqual(Object.keys(keys('new', 50, String)).sort());
  });
});

describe('idempotency keys', () => {
  it('does not store a parameter refusal found while updating, so the corrected retry with the key runs', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd' });
    const refused = await rawPost(`/v1/payment_intents/${intent.id}`, 'amount=10', 'update-fix-1');
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.text).error).toMatchObject({ code: 'amount_too_small', param: 'amount' });
    const corrected = await rawPost(`/v1/payment_intents/${intent.id}`, 'amount=2000', 'update-fix-1');
    expect(corrected.status).toBe(200);
    expect(corrected.headers.get('idempotent-replayed')).toBeNull();
    expect(JSON.parse(corrected.text)).toMatchObject({ id: intent.id, amount: 2000 });
  });

  it('stores an over-capture refusal (judged on the intent\'s amounts), which the same key replays', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true, capture_method: 'manual' });
    const refused = await rawPost(`/v1/payment_intents/${intent.id}/capture`, 'amount_to_capture=1001', 'capture-kept-1');
    expect(JSON.parse(refused.text).error).toMatchObject({ code: 'amount_too_large', param: 'amount_to_capture' });
    const again = await rawPost(`/v1/payment_intents/${intent.id}/capture`, 'amount_to_capture=1001', 'capture-kept-1');
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.text).toBe(refused.text);
  });

  it('stores a refusal of the intent\'s state, which the same key replays', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd' });
    await stripe.paymentIntents.cancel(intent.id);
    const first = await rawPost(`/v1/payment_intents/${intent.id}`, 'amount=2000', 'state-kept-1');
    expect(JSON.parse(first.text).error).toMatchObject({ code: 'payment_intent_unexpected_state' });
    const again = await rawPost(`/v1/payment_intents/${intent.id}`, 'amount=2000', 'state-kept-1');
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.text).toBe(first.text);
  });

  it('replays the original response byte for byte, with Idempotent-Replayed, and creates one intent', async () => {
    const before = await intentCount();
    const first = await rawPost('/v1/payment_intents', 'amount=1500&currency=usd&metadata[k]=v', 'replay-1');
    const second = await rawPost('/v1/payment_intents', 'amount=1500&currency=usd&metadata[k]=v', 'replay-1');
    expect(second.status).toBe(first.status);
    expect(second.text).toBe(first.text);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(await intentCount()).toBe(before + 1);
  });

  it('refuses the same key with other parameters as an idempotency_error naming the parameter', async () => {
    await stripe.paymentIntents.create({ amount: 1000, currency: 'usd' }, { idempotencyKey: 'mismatch-1' });
    const before = await intentCount();
    const error = await stripe.paymentIntents.create({ amount: 1001, currency: 'usd' }, { idempotencyKey: 'mismatch-1' })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(error).toMatchObject({ statusCode: 400, param: 'amount' });
    expect(await intentCount()).toBe(before);
  });

  it('does not store a request that failed validation: a corrected retry with the same key executes', async () => {
    const refused = await stripe.paymentIntents.create({ amount: 10, currency: 'usd' }, { idempotencyKey: 'corrected-1' })
      .catch((caught: unknown) => caught);
    expect(refused).toMatchObject({ statusCode: 400, code: 'amount_too_small' });
    const intent = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd' }, { idempotencyKey: 'corrected-1' });
    expect(intent.amount).toBe(1000);
  });

  it('stores and replays an error that happened once execution began', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd' });
    await stripe.paymentIntents.cancel(intent.id);
    const first = await rawPost(`/v1/payment_intents/${intent.id}/cancel`, '', 'stored-error-1');
    const second = await rawPost(`/v1/payment_intents/${intent.id}/cancel`, '', 'stored-error-1');
    expect(first.status).toBe(400);
    expect(JSON.parse(first.text).error.code).toBe('payment_intent_unexpected_state');
    expect(second.text).toBe(first.text);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
  });

  it('makes one intent from 50 concurrent requests with one key, all answered with it', async () => {
    const before = await intentCount();
    const retrying = client(secretKey, 5);
    const results = await Promise.all(Array.from({ length: 50 }, () =>
      retrying.paymentIntents.create({ amount: 3000, currency: 'usd' }, { idempotencyKey: 'concurrent-1' })));
    expect(new Set(results.map((result) => result.id)).size).toBe(1);
    expect(await intentCount()).toBe(before + 1);
  });

  it('answers a second request while the first still holds the key with 409 idempotency_key_in_use', async () => {
    const holder = await penny.pool.connect();
    try {
      const merchant = (await penny.pool.query<{ id: string }>(
        "SELECT id FROM merchants WHERE name = 'Intent Shop'")).rows[0]?.id;
      await holder.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [`${merchant}:held-1`]);
      const response = await rawPost('/v1/payment_intents', 'amount=1000&currency=usd', 'held-1');
      expect(response.status).toBe(409);
      expect(JSON.parse(response.text).error).toMatchObject({ type: 'idempotency_error', code: 'idempotency_key_in_use' });
      await holder.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [`${merchant}:held-1`]);
    } finally {
      holder.release();
    }
    const after = await rawPost('/v1/payment_intents', 'amount=1000&currency=usd', 'held-1');
    expect(after.status).toBe(200);
  });

  it('answers different parameters under a key still in flight with 400, not a 409 the SDK would retry', async () => {
    const merchant = (await penny.pool.query<{ id: string }>(
      "SELECT id FROM merchants WHERE name = 'Intent Shop'")).rows[0]?.id as string;
    const params = { amount: '1000', currency: 'usd' };
    const fingerprint = requestFingerprint({ method: 'POST', path: '/v1/payment_intents', params });
    // The first request's row, unfinished, and its lock held, as while it runs.
    await penny.pool.query(
      `INSERT INTO idempotency_keys (merchant_id, key, request_method, request_path, request_fingerprint, request_params)
       VALUES ($1, 'running-1', 'POST', '/v1/payment_intents', $2, $3::jsonb)`,
      [merchant, fingerprint, JSON.stringify(params)]);
    const holder = await penny.pool.connect();
    try {
      await holder.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [`${merchant}:running-1`]);
      const different = await rawPost('/v1/payment_intents', 'amount=1001&currency=usd', 'running-1');
      expect(different.status).toBe(400);
      expect(JSON.parse(different.text).error).toMatchObject({ type: 'idempotency_error', param: 'amount' });
      const same = await rawPost('/v1/payment_intents', 'amount=1000&currency=usd', 'running-1');
      expect(same.status).toBe(409);
      await holder.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [`${merchant}:running-1`]);
    } finally {
      holder.release();
    }
  });

  it('shows a key\'s state, fingerprint and stored status', async () => {
    await stripe.paymentIntents.create({ amount: 1000, currency: 'usd' }, { idempotencyKey: 'described-1' });
    const response = await fetch(`http://127.0.0.1:${port}/v1/idempotency_keys/described-1`, {
      headers: { authorization: `Bearer ${secretKey}` },
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      object: 'idempotency_key', key: 'described-1', state: 'completed', response_status: 200,
      request_method: 'POST', request_path: '/v1/payment_intents',
    });
  });

  it('shows a key of the longest length allowed, 255 characters, even percent-encoded', async () => {
    const key = `${'k'.repeat(251)}/:?#`;
    expect(key).toHaveLength(255);
    await stripe.paymentIntents.create({ amount: 1000, currency: 'usd' }, { idempotencyKey: key });
    const response = await fetch(`http://127.0.0.1:${port}/v1/idempotency_keys/${encodeURIComponent(key)}`, {
      headers: { authorization: `Bearer ${secretKey}` },
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ object: 'idempotency_key', key, state: 'completed' });
  });
});

describe('replays of a finished key from memory', () => {
  const body = 'amount=1500&currency=usd';

  it('answers a replay with the stored response once the key was read finished, with no database read', async () => {
    const first = await rawPost('/v1/payment_intents', body, 'remembered-1');
    await rawPost('/v1/payment_intents', body, 'remembered-1');
    // Gone from the database (as the reaper would delete it), yet still within its retention here.
    await penny.pool.query("DELETE FROM idempotency_keys WHERE key = 'remembered-1'");
    const replay = await rawPost('/v1/payment_intents', body, 'remembered-1');
    expect(replay.status).toBe(200);
    expect(replay.text).toBe(first.text);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
  });

  it('refuses other parameters under a remembered key with idempotency_key_reused', async () => {
    await rawPost('/v1/payment_intents', body, 'remembered-2');
    await rawPost('/v1/payment_intents', body, 'remembered-2');
    const other = await rawPost('/v1/payment_intents', 'amount=1600&currency=usd', 'remembered-2');
    expect(other.status).toBe(400);
    expect(JSON.parse(other.text)).toMatchObject({ error: { code: 'idempotency_key_reused', param: 'amount' } });
  });

  it('replays a remembered key sent with the same parameters written in another order', async () => {
    const first = await rawPost('/v1/payment_intents', body, 'remembered-5');
    await rawPost('/v1/payment_intents', body, 'remembered-5');
    const reordered = await rawPost('/v1/payment_intents', 'currency=usd&amount=1500', 'remembered-5');
    expect(reordered.status).toBe(200);
    expect(reordered.text).toBe(first.text);
  });

  it('refuses the same form text under a remembered key on another path with idempotency_key_reused', async () => {
    const first = await rawPost('/v1/payment_intents', body, 'remembered-6');
    await rawPost('/v1/payment_intents', body, 'remembered-6');
    const other = await rawPost(`/v1/payment_intents/${JSON.parse(first.text).id}`, body, 'remembered-6');
    expect(other.status).toBe(400);
    expect(JSON.parse(other.text)).toMatchObject({ error: { code: 'idempotency_key_reused' } });
  });

  it('answers a replay of the text already found the same before the route runs', async () => {
    const first = await rawPost('/v1/payment_intents', body, 'remembered-7');
    await rawPost('/v1/payment_intents', body, 'remembered-7');
    const runs = vi.spyOn(IdempotencyService.prototype, 'run');
    try {
      const replay = await rawPost('/v1/payment_intents', body, 'remembered-7');
      expect(replay.text).toBe(first.text);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(replay.headers.get('request-id')).toMatch(/^req_/);
      expect(runs).not.toHaveBeenCalled();
    } finally {
      runs.mockRestore();
    }
  });

  it('checks a remembered replay sent with a query string in full: card data there is refused', async () => {
    await rawPost('/v1/payment_intents', body, 'remembered-8');
    await rawPost('/v1/payment_intents', body, 'remembered-8');
    const replay = await rawPost('/v1/payment_intents?description=4242424242424242', body, 'remembered-8');
    expect(replay.status).toBe(400);
    expect(JSON.parse(replay.text)).toMatchObject({ error: { code: 'card_number_in_request' } });
  });

  it('answers a remembered key sent with Stripe-Account as the connected account\'s request, not the platform\'s', async () => {
    await rawPost('/v1/payment_intents', body, 'remembered-9');
    await rawPost('/v1/payment_intents', body, 'remembered-9');
    const replay = await rawPost('/v1/payment_intents', body, 'remembered-9', { 'stripe-account': 'acct_missing' });
    expect(replay.headers.get('idempotent-replayed')).toBeNull();
    expect(JSON.parse(replay.text)).toMatchObject({ error: { param: 'Stripe-Account' } });
  });

  it('keeps no key past its retention: once reaped, the key runs as a new request', async () => {
    const first = await rawPost('/v1/payment_intents', body, 'remembered-3');
    await penny.pool.query(
      "UPDATE idempotency_keys SET completed_at = now() - interval '25 hours' WHERE key = 'remembered-3'");
    await rawPost('/v1/payment_intents', body, 'remembered-3');
    await penny.pool.query("DELETE FROM idempotency_keys WHERE key = 'remembered-3'");
    const again = await rawPost('/v1/payment_intents', body, 'remembered-3');
    expect(again.status).toBe(200);
    expect(JSON.parse(again.text).id).not.toBe(JSON.parse(first.text).id);
  });

  it('keeps keys per merchant: another merchant\'s same key runs its own request', async () => {
    const first = await rawPost('/v1/payment_intents', body, 'remembered-4');
    await rawPost('/v1/payment_intents', body, 'remembered-4');
    const other = (await penny.merchants.createMerchant('Replay Cache Other Shop')).secretKey;
    const theirs = await rawPost('/v1/payment_intents', body, 'remembered-4', { authorization: `Bearer ${other}` });
    expect(theirs.status).toBe(200);
    expect(JSON.parse(theirs.text).id).not.toBe(JSON.parse(first.text).id);
  });
});

describe('retention of idempotency keys', () => {
  it('shows a finished key past the retention as expired', async () => {
    await stripe.paymentIntents.create({ amount: 1000, currency: 'usd' }, { idempotencyKey: 'aged-1' });
    await penny.pool.query(
      "UPDATE idempotency_keys SET completed_at = now() - interval '25 hours' WHERE key = 'aged-1'");
    const response = await fetch(`http://127.0.0.1:${port}/v1/idempotency_keys/aged-1`, {
      headers: { authorization: `Bearer ${secretKey}` },
    });
    expect(await response.json()).toMatchObject({ key: 'aged-1', state: 'expired' });
  });

  it('reaps finished keys past the retention, never unfinished ones', async () => {
    const { reapFinishedKeys } = await import('../../src/idempotency/idempotency-service.js');
    await stripe.paymentIntents.create({ amount: 1000, currency: 'usd' }, { idempotencyKey: 'old-finished' });
    const merchant = (await penny.pool.query<{ merchant_id: string }>(
      "SELECT merchant_id FROM idempotency_keys WHERE key = 'old-finished'")).rows[0]?.merchant_id;
    await penny.pool.query(
      `UPDATE idempotency_keys SET created_at = now() - interval '2 days', completed_at = now() - interval '2 days'
       WHERE key = 'old-finished'`);
    await penny.pool.query(
      `INSERT INTO idempotency_keys (merchant_id, key, request_method, request_path, request_fingerprint,
         request_params, created_at) VALUES ($1, 'old-unfinished', 'POST', '/v1/payment_intents', 'x', '{}',
         now() - interval '3 days')`, [merchant]);
    await stripe.paymentIntents.create({ amount: 1000, currency: 'usd' }, { idempotencyKey: 'young-finished' });
    expect(await reapFinishedKeys(penny.pool, { retentionHours: 24, batchMax: 100 })).toBeGreaterThanOrEqual(1);
    const left = await penny.pool.query<{ key: string }>(
      "SELECT key FROM idempotency_keys WHERE key IN ('old-finished', 'old-unfinished', 'young-finished') ORDER BY key");
    expect(left.rows.map((row) => row.key)).toEqual(['old-unfinished', 'young-finished']);
  });
});

describe('cancel', () => {
  it('cancels from requires_payment_method with the reason given', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd' });
    const canceled = await stripe.paymentIntents.cancel(intent.id, { cancellation_reason: 'abandoned' });
    expect(canceled).toMatchObject({ status: 'canceled', cancellation_reason: 'abandoned' });
    expect(canceled.canceled_at).toBeGreaterThan(0);
  });

  it('refuses to cancel twice with payment_intent_unexpected_state, embedding the intent', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd' });
    await stripe.paymentIntents.cancel(intent.id);
    const error = await stripe.paymentIntents.cancel(intent.id).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ statusCode: 400, code: 'payment_intent_unexpected_state' });
    expect((error as { payment_intent?: { id: string } }).payment_intent?.id).toBe(intent.id);
  });

  it('lets exactly one of ten concurrent cancels win', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd' });
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => stripe.paymentIntents.cancel(intent.id)));
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
  });
});

describe('lists', () => {
  it('walks every page with autoPagingEach, newest first, each intent once', async () => {
    const merchant = await penny.merchants.createMerchant('Paging Shop');
    const pager = client(merchant.secretKey);
    const created: string[] = [];
    for (let index = 0; index < 25; index += 1) {
      created.push((await pager.paymentIntents.create({ amount: 1000 + index, currency: 'usd' })).id);
    }
    const seen: string[] = [];
    await pager.paymentIntents.list({ limit: 10 }).autoPagingEach((intent) => { seen.push(intent.id); });
    expect(seen).toEqual([...created].reverse());
  });

  it('pages backwards with ending_before', async () => {
    const merchant = await penny.merchants.createMerchant('Backwards Shop');
    const pager = client(merchant.secretKey);
    const ids: string[] = [];
    for (let index = 0; index < 5; index += 1) ids.push((await pager.paymentIntents.create({ amount: 1000, currency: 'usd' })).id);
    const page = await pager.paymentIntents.list({ limit: 2, ending_before: ids[1] });
    expect(page.data.map((intent) => intent.id)).toEqual([ids[3], ids[2]]);
    expect(page.has_more).toBe(true);
  });

  it('refuses starting_after together with ending_before, and a limit outside 1 to 100', async () => {
    const both = await stripe.paymentIntents.list({ starting_after: 'pi_a', ending_before: 'pi_b' })
      .catch((caught: unknown) => caught);
    expect(both).toMatchObject({ statusCode: 400 });
    const tooMany = await stripe.paymentIntents.list({ limit: 101 }).catch((caught: unknown) => caught);
    expect(tooMany).toMatchObject({ statusCode: 400, param: 'limit' });
  });

  it.each([
    ['created', 9007199254740991], ['created[gte]', 253402300800], ['created[lt]', -99999999999],
  ])('refuses %s=%s, a unix time past year 9999 or before 1970, with 400 parameter_invalid_timestamp', async (param, value) => {
    const response = await fetch(`http://127.0.0.1:${port}/v1/payment_intents?${param}=${value}`,
      { headers: { authorization: `Bearer ${secretKey}` } });
    expect(response.status).toBe(400);
    expect((await response.json() as { error: unknown }).error).toMatchObject({ code: 'parameter_invalid_timestamp', param });
  });

  it('filters by customer and by created', async () => {
    const merchant = await penny.merchants.createMerchant('Filter Shop');
    const filtered = client(merchant.secretKey);
    const mine = await filtered.paymentIntents.create({ amount: 1000, currency: 'usd', customer: 'cus_1' });
    await filtered.paymentIntents.create({ amount: 1000, currency: 'usd', customer: 'cus_2' });
    const byCustomer = await filtered.paymentIntents.list({ customer: 'cus_1' });
    expect(byCustomer.data.map((intent) => intent.id)).toEqual([mine.id]);
    const future = await filtered.paymentIntents.list({ created: { gte: mine.created + 3600 } });
    expect(future.data).toEqual([]);
    const recent = await filtered.paymentIntents.list({ created: { gte: mine.created } });
    expect(recent.data.length).toBe(2);
  });
});
