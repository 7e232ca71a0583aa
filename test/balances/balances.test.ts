import Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import { withTransaction } from '../../src/db/pool.js';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/**
 * Stripe's Balance and BalanceTransactions, read through the official SDK: the Balance is what
 * the ledger says, and the transactions explain it (their nets, by status, sum to it).
 */
let penny: ServedLedger;
let stripe: Stripe;
let merchantId: string;

beforeAll(async () => {
  penny = await serveTestLedger();
  const created = await penny.merchants.createMerchant('Balance Shop');
  merchantId = created.merchant.id;
  stripe = penny.stripeFor(created.secretKey);
});

async function paid(amount: number, currency = 'usd') {
  const intent = await stripe.paymentIntents.create({ amount, currency, payment_method: 'pm_card_visa',
    confirm: true });
  expect(intent.status).toBe('succeeded');
  return intent;
}

function amountOf(list: Stripe.Balance.Available[] | Stripe.Balance.Pending[], currency: string): number {
  return list.find((item) => item.currency === currency)?.amount ?? 0;
}

/** The nets of every transaction of the merchant, summed per currency and status, in Stripe units. */
async function transactionSums(currency: string): Promise<{ available: number; pending: number }> {
  const sums = { available: 0, pending: 0 };
  for await (const transaction of stripe.balanceTransactions.list({ currency, limit: 100 })) {
    sums[transaction.status as 'available' | 'pending'] += transaction.net;
  }
  return sums;
}

describe('a captured charge', () => {
  it('is pending in the Balance for its amount less Penny\'s fee', async () => {
    const before = await stripe.balance.retrieve();
    await paid(10_000);
    const after = await stripe.balance.retrieve();
    // Penny's fee: 2.9% of 10,000 + 30 = 320.
    expect(amountOf(after.pending, 'usd') - amountOf(before.pending, 'usd')).toBe(10_000 - 320);
    expect(amountOf(after.available, 'usd') - amountOf(before.available, 'usd')).toBe(0);
    expect(after).toMatchObject({ object: 'balance', livemode: false });
  });

  it('has one charge transaction: gross, Penny\'s fee with its details, net, pending, sourced by the charge', async () => {
    const intent = await paid(5000);
    const { data } = await stripe.balanceTransactions.list({ source: intent.latest_charge as string });
    expect(data).toHaveLength(1);
    expect(data[0]).toMatchObject({
      object: 'balance_transaction', type: 'charge', reporting_category: 'charge', amount: 5000, fee: 175,
      net: 4825, currency: 'usd', status: 'pending', source: intent.latest_charge,
      fee_details: [{ amount: 175, currency: 'usd', type: 'stripe_fee', application: null }],
    });
    expect(data[0]?.available_on).toBeGreaterThan(data[0]?.created as number);
  });

  it('is retrieved by its id, and another merchant\'s id is a 404', async () => {
    const intent = await paid(2500);
    const [transaction] = (await stripe.balanceTransactions.list({ source: intent.latest_charge as string })).data;
    expect((await stripe.balanceTransactions.retrieve(transaction?.id as string)).id).toBe(transaction?.id);
    const other = await penny.merchants.createMerchant('Other Balance Shop');
    const refusal = await penny.stripeFor(other.secretKey).balanceTransactions.retrieve(transaction?.id as string)
      .catch((error: unknown) => error);
    expect(refusal).toMatchObject({ statusCode: 404, raw: { code: 'resource_missing' } });
  });
});

describe('a refund', () => {
  it('takes its amount from the available balance at once, as an available refund transaction', async () => {
    const intent = await paid(4000);
    const before = await stripe.balance.retrieve();
    const refund = await stripe.refunds.create({ payment_intent: intent.id, amount: 1500 });
    const after = await stripe.balance.retrieve();
    expect(amountOf(after.available, 'usd') - amountOf(before.available, 'usd')).toBe(-1500);
    const { data } = await stripe.balanceTransactions.list({ type: 'refund', source: refund.id });
    expect(data).toEqual([expect.objectContaining({ type: 'refund', reporting_category: 'refund', amount: -1500,
      fee: 0, net: -1500, status: 'available', source: refund.id })]);
  });
});

describe('pm_card_bypassPending', () => {
  it('makes a charge\'s funds available at capture, with no wait for settlement', async () => {
    const before = await stripe.balance.retrieve();
    const intent = await stripe.paymentIntents.create({ amount: 9000, currency: 'usd',
      payment_method: 'pm_card_bypassPending', confirm: true });
    const [transaction] = (await stripe.balanceTransactions.list({ source: intent.latest_charge as string })).data;
    expect(transaction).toMatchObject({ type: 'charge', status: 'available', net: 9000 - 291 });
    const after = await stripe.balance.retrieve();
    expect(amountOf(after.available, 'usd') - amountOf(before.available, 'usd')).toBe(9000 - 291);
    expect(amountOf(after.pending, 'usd') - amountOf(before.pending, 'usd')).toBe(0);
  });

  it('does so at a manual capture too, for the captured amount', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 6000, currency: 'usd',
      payment_method: 'pm_card_bypassPending', confirm: true, capture_method: 'manual' });
    await stripe.paymentIntents.capture(intent.id, { amount_to_capture: 5000 });
    const [transaction] = (await stripe.balanceTransactions.list({ source: intent.latest_charge as string })).data;
    expect(transaction).toMatchObject({ status: 'available', amount: 5000 });
  });
});

describe('making funds available', () => {
  it('moves a charge\'s net from pending to available once, with its ledger entry, however often it is asked',
    async () => {
      const intent = await paid(8000);
      const charge = intent.latest_charge as string;
      const before = await stripe.balance.retrieve();
      const at = new Date().toISOString();
      const first = await withTransaction(penny.pool, (client) =>
        penny.balances.makeChargeAvailable(client, { merchantId, chargeId: charge, availableOn: at }));
      const second = await withTransaction(penny.pool, (client) =>
        penny.balances.makeChargeAvailable(client, { merchantId, chargeId: charge, availableOn: at }));
      expect(first).toEqual([{ merchantId, accountId: merchantId }]);
      expect(second).toBeUndefined();
      const { data } = await stripe.balanceTransactions.list({ source: charge, type: 'charge' });
      expect(data[0]).toMatchObject({ status: 'available', net: 8000 - 262 });
      const after = await stripe.balance.retrieve();
      expect(amountOf(after.available, 'usd') - amountOf(before.available, 'usd')).toBe(8000 - 262);
      expect(amountOf(after.pending, 'usd') - amountOf(before.pending, 'usd')).toBe(-(8000 - 262));
      const entries = await penny.pool.query('SELECT 1 FROM ledger_entries WHERE external_reference = $1',
        [`penny:charge:${charge}:available`]);
      expect(entries.rows).toHaveLength(1);
    });
});

describe('the Balance against its transactions', () => {
  it('equals, per status, the sum of the transactions\' nets', async () => {
    await paid(1234);
    await paid(50_00, 'eur');
    const balance = await stripe.balance.retrieve();
    for (const currency of ['usd', 'eur']) {
      const sums = await transactionSums(currency);
      const shown = { available: amountOf(balance.available, currency), pending: amountOf(balance.pending, currency) };
      expect({ currency, ...shown }).toEqual({ currency, ...sums });
    }
  });

  it('refuses an unknown filter value with a 400 naming it', async () => {
    const refusal = await stripe.balanceTransactions.list({ type: 'no_such_type' }).catch((error: unknown) => error);
    expect(refusal).toMatchObject({ statusCode: 400, raw: { param: 'type' } });
  });
});

describe('a connected account\'s balance (Stripe-Account)', () => {
  it('is its own: empty until money reaches it, and the platform\'s transactions are not its', async () => {
    const account = await stripe.accounts.create({ type: 'custom', country: 'US' });
    const intent = await paid(3300);
    const balance = await stripe.balance.retrieve({}, { stripeAccount: account.id });
    expect(balance).toMatchObject({ object: 'balance', available: [], pending: [] });
    const [platformTransaction] = (await stripe.balanceTransactions.list({ source: intent.latest_charge as string }))
      .data;
    const refusal = await stripe.balanceTransactions.retrieve(platformTransaction?.id as string, {},
      { stripeAccount: account.id }).catch((error: unknown) => error);
    expect(refusal).toMatchObject({ statusCode: 404 });
    expect((await stripe.balanceTransactions.list({}, { stripeAccount: account.id })).data).toEqual([]);
  });
});

describe('a connected account\'s ledger accounts', () => {
  it('are created under its own id, so its Balance can hold money of its own', async () => {
    const account = await stripe.accounts.create({ type: 'custom', country: 'US' });
    await withTransaction(penny.pool, (client) =>
      penny.balances.accounts.accountsFor(client, { ownerId: account.id, currency: 'USD' }));
    const balance = await stripe.balance.retrieve({}, { stripeAccount: account.id });
    expect(balance.available).toEqual([{ amount: 0, currency: 'usd', source_types: { card: 0 } }]);
    expect(balance.pending).toEqual([{ amount: 0, currency: 'usd', source_types: { card: 0 } }]);
  });
});
