import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureClock, nowMs } from '../../src/clock.js';
import { withTransaction } from '../../src/db/pool.js';
import { parseFaultProfile } from '../../src/sandbox-psp/psp-faults.js';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/**
 * A route's change and the answer its Idempotency-Key replays commit together. Here the database
 * refuses the first write of a finished answer for the route under test, as a crash or a cut
 * connection between the change and the answer would: the request fails, and its retry under the
 * same key must then do the change once and answer it, never do it twice or refuse it as done.
 * Found by a reviewer: these routes committed the change first and stored the answer after.
 */
let penny: ServedLedger;

beforeAll(async () => {
  configureClock('controlled');
  penny = await serveTestLedger();
  await penny.pool.query(`CREATE TABLE test_lost_answers (path_like text PRIMARY KEY, armed boolean NOT NULL)`);
  // While armed for a path, the database refuses to store a finished answer for it.
  await penny.pool.query(`CREATE FUNCTION test_lose_answer() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.response_status IS NOT NULL AND OLD.response_status IS NULL AND EXISTS (
        SELECT 1 FROM test_lost_answers WHERE armed AND NEW.request_path LIKE path_like) THEN
        RAISE EXCEPTION 'the answer was lost';
      END IF;
      RETURN NEW;
    END $$`);
  await penny.pool.query(`CREATE TRIGGER test_lose_answer BEFORE UPDATE ON idempotency_keys
    FOR EACH ROW EXECUTE FUNCTION test_lose_answer()`);
});

afterAll(() => configureClock('system'));

async function loseNextAnswer(pathLike: string): Promise<void> {
  await penny.pool.query(`INSERT INTO test_lost_answers VALUES ($1, true)
    ON CONFLICT (path_like) DO UPDATE SET armed = true`, [pathLike]);
}

async function answerAgain(): Promise<void> {
  await penny.pool.query('UPDATE test_lost_answers SET armed = false');
}

describe('a request whose answer was lost after its change, retried under the same key', () => {
  it('creates one connected account', async () => {
    const created = await penny.merchants.createMerchant('Lost Answer Accounts');
    const stripe = penny.stripeFor(created.secretKey);
    await loseNextAnswer('/v1/accounts');
    const first = await stripe.accounts.create({ type: 'custom', country: 'US' }, { idempotencyKey: 'acct-1' })
      .then(() => 'answered', () => 'failed');
    await answerAgain();
    const retry = await stripe.accounts.create({ type: 'custom', country: 'US' }, { idempotencyKey: 'acct-1' });
    const listed = await stripe.accounts.list({ limit: 10 });
    expect(first).toBe('failed');
    expect(listed.data.map((account) => account.id)).toEqual([retry.id]);
  });

  it('creates one webhook endpoint', async () => {
    const created = await penny.merchants.createMerchant('Lost Answer Endpoints');
    const stripe = penny.stripeFor(created.secretKey);
    const params = { url: 'https://example.com/hooks', enabled_events: ['payment_intent.succeeded' as const] };
    await loseNextAnswer('/v1/webhook_endpoints');
    const first = await stripe.webhookEndpoints.create(params, { idempotencyKey: 'endpoint-1' })
      .then(() => 'answered', () => 'failed');
    await answerAgain();
    const retry = await stripe.webhookEndpoints.create(params, { idempotencyKey: 'endpoint-1' });
    const listed = await stripe.webhookEndpoints.list({ limit: 10 });
    expect(first).toBe('failed');
    expect(listed.data.map((endpoint) => endpoint.id)).toEqual([retry.id]);
    expect(retry.secret).toMatch(/^whsec_/);
  });

  it('answers the canceled payout instead of refusing it as already canceled', async () => {
    const created = await penny.merchants.createMerchant('Lost Answer Payouts');
    const stripe = penny.stripeFor(created.secretKey);
    const intent = await stripe.paymentIntents.create({
      amount: 10_000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true,
    });
    await withTransaction(penny.pool, (client) => penny.balances.makeChargeAvailable(client, {
      merchantId: created.merchant.id, chargeId: intent.latest_charge as string,
      availableOn: new Date(nowMs()).toISOString(),
    }));
    // The PSP refuses the payout (three 429s, the connector's every try), so it may be canceled.
    penny.sandbox.injector.set(parseFaultProfile({
      script: Array.from({ length: 3 }, () => ({ operation: 'payout', fault: 'error_429' })),
    }));
    const payout = await stripe.payouts.create({ amount: 2_000, currency: 'usd' });
    penny.sandbox.resetFaults();
    await loseNextAnswer('%/cancel');
    const first = await stripe.payouts.cancel(payout.id, {}, { idempotencyKey: 'cancel-1' })
      .then(() => 'answered', () => 'failed');
    await answerAgain();
    const retry = await stripe.payouts.cancel(payout.id, {}, { idempotencyKey: 'cancel-1' });
    expect(first).toBe('failed');
    expect(retry).toMatchObject({ id: payout.id, status: 'canceled' });
  });
});
