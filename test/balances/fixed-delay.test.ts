import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { advanceClock, configureClock } from '../../src/clock.js';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/** PENNY_FUNDS_AVAILABILITY=T+2: an operator who fronts the money makes captured funds available after two days. */
let penny: ServedLedger;
let stripe: Stripe;

beforeAll(async () => {
  configureClock('controlled');
  penny = await serveTestLedger({ availability: { kind: 'fixed_delay', delayDays: 2 } });
  stripe = penny.stripeFor((await penny.merchants.createMerchant('Fronted Shop')).secretKey);
});

afterAll(() => {
  configureClock('system');
});

describe('the fixed-delay mode', () => {
  it('keeps a capture pending until its day, then makes it available once', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 6000, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true });
    const status = async () => (await stripe.balanceTransactions.list({ source: intent.latest_charge as string }))
      .data[0]?.status;
    advanceClock(86_400_000);
    await penny.balances.releaseDue();
    expect(await status()).toBe('pending');
    advanceClock(86_400_000 + 1000);
    expect(await penny.balances.releaseDue()).toBe(1);
    expect(await status()).toBe('available');
    expect(await penny.balances.releaseDue()).toBe(0);
    const available = (await stripe.balance.retrieve()).available.find((item) => item.currency === 'usd');
    expect(available?.amount).toBe(6000 - 204);
  });
});
