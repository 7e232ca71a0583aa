import fc from 'fast-check';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureClock, nowMs } from '../../src/clock.js';
import { checkStoredBalances } from '../../src/ledger/ledger-verify.js';
import { SettlementService } from '../../src/settlement/settlement-service.js';
import { serveTestLedger, settlementOf, type ServedLedger } from '../support/stripe.js';

/**
 * Balances under random sequences of charges (automatic or manual capture), captures in full or
 * in part, refunds of any amount, and settlement, through the official SDK against a real Penny
 * and the sandbox PSP. After every step, for each merchant and currency: the Balance equals the
 * sum of its transactions' nets per status (pending, available), no charge is refunded beyond
 * what it captured, every stored ledger balance is its postings' sum, and the trial balance is zero.
 */
let penny: ServedLedger;
let settlement: SettlementService;

beforeAll(async () => {
  configureClock('controlled');
  penny = await serveTestLedger();
  settlement = settlementOf(penny);
});

afterAll(() => {
  configureClock('system');
});

type Step =
  | { readonly kind: 'charge'; readonly amount: number; readonly currency: 'usd' | 'eur'; readonly manual: boolean }
  | { readonly kind: 'capture'; readonly payment: number; readonly permille: number }
  | { readonly kind: 'refund'; readonly payment: number; readonly permille: number }
  | { readonly kind: 'settle' };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('charge' as const),
    amount: fc.integer({ min: 50, max: 200_000 }), currency: fc.constantFrom('usd' as const, 'eur' as const),
    manual: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('capture' as const), payment: fc.nat(20),
    permille: fc.integer({ min: 1, max: 1000 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('refund' as const), payment: fc.nat(20),
    permille: fc.integer({ min: 1, max: 1000 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'settle' as const }) },
);

/** Runs one step; a refusal Stripe would also give (nothing left to capture or refund) is fine. */
async function run(stripe: Stripe, payments: Stripe.PaymentIntent[], next: Step): Promise<void> {
  if (next.kind === 'charge') {
    payments.push(await stripe.paymentIntents.create({ amount: next.amount, currency: next.currency,
      payment_method: 'pm_card_visa', confirm: true, capture_method: next.manual ? 'manual' : 'automatic' }));
    return;
  }
  if (next.kind === 'settle') {
    await settlement.pull({ connectorId: 'sandbox', day: new Date(nowMs()).toISOString().slice(0, 10) });
    return;
  }
  const payment = payments[next.payment % Math.max(payments.length, 1)];
  if (payment === undefined) return;
  const intent = await stripe.paymentIntents.retrieve(payment.id);
  if (next.kind === 'capture') {
    if (intent.status !== 'requires_capture') return;
    const amount = Math.max(1, Math.floor(intent.amount_capturable * next.permille / 1000));
    await stripe.paymentIntents.capture(intent.id, { amount_to_capture: amount });
    return;
  }
  const charge = intent.latest_charge === null ? undefined
    : await stripe.charges.retrieve(intent.latest_charge as string);
  const left = charge === undefined ? 0 : charge.amount_captured - charge.amount_refunded;
  if (left <= 0) return;
  const amount = Math.max(1, Math.floor(left * next.permille / 1000));
  await stripe.refunds.create({ payment_intent: intent.id, amount });
}

async function expectBalancesExplained(stripe: Stripe, context: string): Promise<void> {
  const balance = await stripe.balance.retrieve();
  for (const currency of ['usd', 'eur']) {
    const sums = { available: 0, pending: 0 };
    for await (const transaction of stripe.balanceTransactions.list({ currency, limit: 100 })) {
      sums[transaction.status as 'available' | 'pending'] += transaction.net;
    }
    const shown = {
      available: balance.available.find((item) => item.currency === currency)?.amount ?? 0,
      pending: balance.pending.find((item) => item.currency === currency)?.amount ?? 0,
    };
    expect(shown, `${context}: ${currency}`).toEqual(sums);
  }
}

async function expectRefundsWithinCaptures(stripe: Stripe, context: string): Promise<void> {
  for await (const charge of stripe.charges.list({ limit: 100 })) {
    expect(charge.amount_refunded, `${context}: ${charge.id}`).toBeLessThanOrEqual(charge.amount_captured);
  }
}

async function expectLedgerBalanced(context: string): Promise<void> {
  expect((await checkStoredBalances(penny.pool)).failures, context).toEqual([]);
  const trial = await penny.request({ method: 'GET', url: '/v1/ledger/trial_balance' });
  for (const currency of trial.body.currencies as { currency: string; difference: number }[]) {
    expect(currency.difference, `${context}: ${currency.currency}`).toBe(0);
  }
}

describe('balances under random charges, captures, refunds and settlements', () => {
  it('always equal their transactions and the ledger, and never refund beyond a capture', async () => {
    let merchants = 0;
    await fc.assert(fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 12 }), async (steps) => {
      merchants += 1;
      const created = await penny.merchants.createMerchant(`Property Shop ${merchants}`);
      const stripe = penny.stripeFor(created.secretKey);
      const payments: Stripe.PaymentIntent[] = [];
      for (const [index, next] of steps.entries()) {
        await run(stripe, payments, next);
        const context = `step ${index} (${next.kind}) of ${JSON.stringify(steps)}`;
        await expectBalancesExplained(stripe, context);
        await expectRefundsWithinCaptures(stripe, context);
        await expectLedgerBalanced(context);
      }
    }), { numRuns: 12 });
  }, 240_000);
});
