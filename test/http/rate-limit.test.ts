import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/**
 * PENNY_RATE_LIMIT_PER_SECOND: each merchant may make so many requests a second; beyond that a
 * 429 `rate_limit` that ran nothing and stored nothing. Driven by the official stripe SDK, with
 * its retries off so that each 429 is seen.
 */
const requestsPerSecondMax = 5;
let penny: ServedLedger;

beforeAll(async () => {
  penny = await serveTestLedger({ merchantRequestsPerSecondMax: requestsPerSecondMax });
});

async function newClient(name: string): Promise<Stripe> {
  return penny.stripeFor((await penny.merchants.createMerchant(name)).secretKey);
}

/** Payment intents of every merchant: only one test here creates any. */
async function intentCount(): Promise<number> {
  const result = await penny.pool.query<{ count: bigint }>('SELECT count(*) AS count FROM payment_intents');
  return Number(result.rows[0]?.count);
}

/** Waits for the start of a fresh one-second window, so a test's burst falls in one window. */
async function nextWindow(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 1_050));
}

async function refusalOf(call: Promise<unknown>): Promise<Stripe.errors.StripeError> {
  const error = await call.then(() => undefined, (thrown: unknown) => thrown);
  expect(error).toBeInstanceOf(Stripe.errors.StripeError);
  return error as Stripe.errors.StripeError;
}

describe('the per-merchant request rate limit', () => {
  it('answers the requests beyond the limit with 429 rate_limit, as Stripe does, with a Retry-After', async () => {
    const stripe = await newClient('Busy Shop');
    await nextWindow();
    const burst = await Promise.allSettled(Array.from({ length: requestsPerSecondMax + 3 },
      () => stripe.paymentIntents.list({ limit: 1 })));
    expect(burst.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(requestsPerSecondMax);
    const refusals = burst.flatMap((outcome) => outcome.status === 'rejected' ? [outcome.reason] : []);
    expect(refusals).toHaveLength(3);
    for (const refused of refusals as Stripe.errors.StripeError[]) {
      expect(refused.type).toBe('StripeRateLimitError');
      expect(refused.statusCode).toBe(429);
      expect(refused.code).toBe('rate_limit');
      expect(refused.message).toMatch(/Too many requests/);
      expect(refused.headers?.['retry-after']).toMatch(/^\d+$/);
    }
  });

  it('runs nothing and stores nothing for a refused POST, so the same key executes once the window passes', async () => {
    const stripe = await newClient('Retrying Shop');
    const key = `rate-${randomBytes(6).toString('hex')}`;
    const params = { amount: 2000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true };
    await nextWindow();
    for (let index = 0; index < requestsPerSecondMax; index += 1) await stripe.paymentIntents.list({ limit: 1 });
    const refused = await refusalOf(stripe.paymentIntents.create(params, { idempotencyKey: key }));
    expect(refused.statusCode).toBe(429);
    const stored = await penny.pool.query('SELECT 1 FROM idempotency_keys WHERE key = $1', [key]);
    expect(stored.rows).toEqual([]);
    expect(await intentCount()).toBe(0);

    await nextWindow();
    const created = await stripe.paymentIntents.create(params, { idempotencyKey: key });
    expect(created.status).toBe('succeeded');
    expect(created.lastResponse.headers['idempotent-replayed']).toBeUndefined();
    expect(await intentCount()).toBe(1);
  });

  it('refuses a request over the limit before its body is read or filtered, and counts refused bodies', async () => {
    const secretKey = (await penny.merchants.createMerchant('Card Pasting Shop')).secretKey;
    const stripe = penny.stripeFor(secretKey);
    const postCard = () => fetch(`http://127.0.0.1:${penny.port}/v1/payment_intents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secretKey}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'amount=2000&currency=usd&card[number]=4242424242424242',
    });
    await nextWindow();
    for (let index = 0; index < requestsPerSecondMax; index += 1) expect((await postCard()).status).toBe(400);
    expect((await postCard()).status).toBe(429);
    expect((await refusalOf(stripe.paymentIntents.list({ limit: 1 }))).statusCode).toBe(429);
  });

  it("counts each merchant on its own: one merchant's burst does not limit another", async () => {
    const busy = await newClient('Noisy Neighbour');
    const quiet = await newClient('Quiet Neighbour');
    await nextWindow();
    for (let index = 0; index < requestsPerSecondMax; index += 1) await busy.paymentIntents.list({ limit: 1 });
    expect((await refusalOf(busy.paymentIntents.list({ limit: 1 }))).statusCode).toBe(429);
    const page = await quiet.paymentIntents.list({ limit: 1 });
    expect(page.object).toBe('list');
  });

  it('does not count requests with a bad key, which get their 401 first', async () => {
    const stripe = await newClient('Guarded Shop');
    const impostor = penny.stripeFor(`sk_test_${randomBytes(24).toString('hex')}`);
    await nextWindow();
    for (let index = 0; index < 2 * requestsPerSecondMax; index += 1) {
      expect((await refusalOf(impostor.paymentIntents.list({ limit: 1 }))).statusCode).toBe(401);
    }
    for (let index = 0; index < requestsPerSecondMax; index += 1) await stripe.paymentIntents.list({ limit: 1 });
  });
});
