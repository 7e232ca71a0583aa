import fc from 'fast-check';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureClock, nowMs } from '../../src/clock.js';
import { withTransaction } from '../../src/db/pool.js';
import { canMove, payoutStatuses, payoutTransitions } from '../../src/payouts/payout-state.js';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/**
 * Whatever the PSP reports about a payout, in any order and any number of times (webhooks are
 * duplicated, delayed and reordered), a payout only moves forward (a paid one may still fail, as
 * the bank returns it), its money returns at most once, and the available balance is what its
 * final status says.
 */
let penny: ServedLedger;
let stripe: Stripe;
let merchantId: string;

beforeAll(async () => {
  configureClock('controlled');
  penny = await serveTestLedger();
  const created = await penny.merchants.createMerchant('Reported Shop');
  merchantId = created.merchant.id;
  stripe = penny.stripeFor(created.secretKey);
  const intent = await stripe.paymentIntents.create({ amount: 500_000, currency: 'usd',
    payment_method: 'pm_card_visa', confirm: true });
  await withTransaction(penny.pool, (client) => penny.balances.makeChargeAvailable(client, {
    merchantId, chargeId: intent.latest_charge as string, availableOn: new Date(nowMs()).toISOString() }));
});

afterAll(() => {
  configureClock('system');
});

async function availableUsd(): Promise<number> {
  const balance = await stripe.balance.retrieve();
  return balance.available.find((item) => item.currency === 'usd')?.amount ?? 0;
}

describe('the payout transition table', () => {
  it('moves only forward: no status is reachable from itself or from a final status', () => {
    for (const status of payoutStatuses) expect(canMove(status, status)).toBe(false);
    for (const status of ['failed', 'canceled'] as const) expect(payoutTransitions[status]).toEqual([]);
    for (const status of payoutStatuses) expect(canMove(status, 'pending')).toBe(false);
  });

  it('lets a paid payout fail (the bank returns it, as Stripe\'s can), and nothing else', () => {
    expect(payoutTransitions.paid).toEqual(['failed']);
  });
});

describe('PSP reports about a payout', () => {
  it('in any order, repeated, leave one final status and return the money at most once', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(fc.constantFrom('pending', 'in_transit', 'paid', 'failed'), { minLength: 1, maxLength: 6 }),
      async (outcomes) => {
        const before = await availableUsd();
        const payout = await stripe.payouts.create({ amount: 100, currency: 'usd' });
        const seen: string[] = [];
        for (const outcome of outcomes) {
          await withTransaction(penny.pool, (client) => penny.payouts.applyPspOperation(client, {
            kind: 'payout', pspReference: 'sbx_report', reference: payout.id, outcome, amountMinor: 100n,
            currency: 'USD', declineCode: null, redirectUrl: null, failureCode: outcome === 'failed' ? 'no_account' : null,
            connector: 'sandbox' }));
          seen.push((await stripe.payouts.retrieve(payout.id)).status);
        }
        // Forward only: once failed, it stays; once paid, it stays paid unless it fails.
        const failedIndex = seen.indexOf('failed');
        if (failedIndex >= 0) expect(new Set(seen.slice(failedIndex))).toEqual(new Set(['failed']));
        const paidIndex = seen.indexOf('paid');
        if (paidIndex >= 0) for (const status of seen.slice(paidIndex)) expect(['paid', 'failed']).toContain(status);
        const final = seen.at(-1);
        const returned = await penny.pool.query(`SELECT 1 FROM balance_transactions WHERE source_id = $1
           AND type = 'payout_failure'`, [payout.id]);
        expect(returned.rows.length).toBe(final === 'failed' ? 1 : 0);
        expect(await availableUsd()).toBe(final === 'failed' ? before : before - 100);
      }), { numRuns: 25 });
  });
});
