import Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import { advanceClock, configureClock, nowMs } from '../../src/clock.js';
import { createLogger } from '../../src/logger.js';
import { PaymentExpiry } from '../../src/payments/payment-expiry.js';
import { parseFaultProfile } from '../../src/sandbox-psp/psp-faults.js';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/** An uncaptured authorization expires after 7 days by Penny's clock: voided, released, canceled `automatic`. */
let penny: ServedLedger;
let stripe: Stripe;
let expiry: PaymentExpiry;

beforeAll(async () => {
  configureClock('controlled');
  penny = await serveTestLedger();
  const created = await penny.merchants.createMerchant('Expiry Shop');
  stripe = penny.stripeFor(created.secretKey);
  expiry = new PaymentExpiry(penny.pool, penny.flows, { logger: createLogger('silent') });
});

async function heldAuthorization(amount: number) {
  return stripe.paymentIntents.create({ amount, currency: 'usd', payment_method: 'pm_card_visa', confirm: true,
    capture_method: 'manual' });
}

async function holdStatus(chargeId: string): Promise<string | undefined> {
  const response = await penny.request({ method: 'GET',
    url: `/v1/ledger/entries?limit=100` });
  const hold = (response.body.data as { external_reference: string; status: string }[])
    .find((entry) => entry.external_reference === `penny:charge:${chargeId}:authorization`);
  return hold?.status;
}

describe('authorization expiry', () => {
  it('leaves an authorization younger than 7 days alone', async () => {
    const intent = await heldAuthorization(5100);
    advanceClock(6 * 86_400_000);
    await expiry.expireDue();
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('requires_capture');
    advanceClock(2 * 86_400_000);
    await expiry.expireDue();
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('canceled');
  });

  it('cancels it after 7 days with reason automatic, voids it at the PSP and releases the hold', async () => {
    const intent = await heldAuthorization(5200);
    advanceClock(7 * 86_400_000 + 1000);
    expect(await expiry.expireDue()).toBeGreaterThanOrEqual(1);
    const canceled = await stripe.paymentIntents.retrieve(intent.id);
    expect(canceled).toMatchObject({ status: 'canceled', cancellation_reason: 'automatic', amount_capturable: 0 });
    const operations = await penny.sandbox.connector.lookup({ reference: intent.latest_charge as string });
    expect(operations.map((operation) => operation.kind)).toEqual(['void']);
    expect(await holdStatus(intent.latest_charge as string)).toBe('voided');
    const events = await stripe.events.list({ type: 'payment_intent.canceled', limit: 1 });
    expect(events.data[0]?.data.object).toMatchObject({ id: intent.id, cancellation_reason: 'automatic' });
  });

  it('an expired authorization can no longer be captured', async () => {
    const intent = await heldAuthorization(5300);
    advanceClock(8 * 86_400_000);
    await expiry.expireDue();
    await expect(stripe.paymentIntents.capture(intent.id))
      .rejects.toMatchObject({ statusCode: 400, code: 'payment_intent_unexpected_state' });
  });

  it('cancels it even when its hold was already released in the ledger', async () => {
    const intent = await heldAuthorization(5350);
    const hold = await penny.pool.query<{ id: string }>('SELECT id FROM ledger_entries WHERE external_reference = $1',
      [`penny:charge:${intent.latest_charge}:authorization`]);
    await penny.ledger.voidHold(hold.rows[0]?.id ?? '');
    advanceClock(8 * 86_400_000);
    await expiry.expireDue();
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('canceled');
  });

  it('one that cannot be expired now (its void refused) does not stop the others', async () => {
    const stuck = await heldAuthorization(5360);
    const charge = await stripe.charges.retrieve(stuck.latest_charge as string);
    // Captured at the PSP behind Penny's back: the PSP refuses the void.
    const attempt = await penny.pool.query<{ psp_reference: string }>(
      'SELECT psp_reference FROM payment_attempts WHERE payment_intent_id = $1', [stuck.id]);
    await penny.sandbox.connector.capture({ reference: charge.id, idempotencyKey: `outside:${charge.id}`,
      pspReference: attempt.rows[0]?.psp_reference ?? '', amountMinor: 5360n, currency: 'USD' });
    const other = await heldAuthorization(5370);
    advanceClock(8 * 86_400_000);
    await expiry.expireDue();
    expect((await stripe.paymentIntents.retrieve(other.id)).status).toBe('canceled');
    expect((await stripe.paymentIntents.retrieve(stuck.id)).status).toBe('requires_capture');
    const claims = await penny.pool.query('SELECT 1 FROM payment_intent_finalizations WHERE payment_intent_id = $1',
      [stuck.id]);
    expect(claims.rows).toEqual([]);
    const cases = await penny.pool.query('SELECT kind FROM payment_cases WHERE subject_id = $1', [`expiry:${stuck.id}`]);
    expect(cases.rows).toEqual([{ kind: 'unresolved_outcome' }]);
  });

  it('does not expire one that is being captured', async () => {
    const intent = await heldAuthorization(5400);
    await penny.pool.query(`INSERT INTO payment_intent_finalizations (merchant_id, payment_intent_id, kind, amount)
      SELECT merchant_id, id, 'capture', amount FROM payment_intents WHERE id = $1`, [intent.id]);
    advanceClock(8 * 86_400_000);
    await expiry.expireDue();
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('requires_capture');
  });

  it('counts 7 days from the authorization by Penny\'s clock, also after the clock was advanced before it', async () => {
    // Earlier tests moved Penny's clock days ahead of the database's.
    advanceClock(3 * 86_400_000);
    const intent = await heldAuthorization(5500);
    await expiry.expireDue();
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('requires_capture');
    advanceClock(7 * 86_400_000 - 60_000);
    await expiry.expireDue();
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('requires_capture');
    advanceClock(120_000);
    await expiry.expireDue();
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('canceled');
  });

  it('keeps the ledger hold a day longer than the authorization, so Penny voids at the PSP first', async () => {
    const authorizedAt = nowMs();
    const intent = await heldAuthorization(5600);
    const hold = await penny.pool.query<{ expires_at: string }>(
      'SELECT expires_at FROM ledger_entries WHERE external_reference = $1',
      [`penny:charge:${intent.latest_charge}:authorization`]);
    const lifetimeMs = Date.parse(hold.rows[0]?.expires_at ?? '') - authorizedAt;
    expect(lifetimeMs).toBeGreaterThanOrEqual(8 * 86_400_000);
    expect(lifetimeMs).toBeLessThan(8 * 86_400_000 + 60_000);
  });

  it('leaves a merchant\'s cancel in flight to its recovery, which keeps the merchant\'s reason', async () => {
    const intent = await heldAuthorization(5700);
    penny.sandbox.injector.set(parseFaultProfile({
      script: Array.from({ length: 3 }, () => ({ operation: 'void', fault: 'timeout_after' })) }));
    await expect(stripe.paymentIntents.cancel(intent.id, { cancellation_reason: 'fraudulent' }))
      .rejects.toMatchObject({ statusCode: 503, code: 'psp_outcome_unknown' });
    penny.sandbox.resetFaults();
    advanceClock(8 * 86_400_000);
    await expiry.expireDue();
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('requires_capture');
    await penny.recovery.runDue();
    expect(await stripe.paymentIntents.retrieve(intent.id))
      .toMatchObject({ status: 'canceled', cancellation_reason: 'fraudulent' });
  });
});
