import Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/**
 * A connected account's payouts (Stripe-Account) come from its own available balance, to its own
 * bank account: refused, with nothing written, when it has no money, no bank account in the
 * currency, or names a bank account it does not have. (A connected account cannot hold money yet:
 * merchant_ledger_accounts names only platform merchants, which the balances work changes.)
 */
let penny: ServedLedger;
let stripe: Stripe;
let merchantId: string;

beforeAll(async () => {
  penny = await serveTestLedger();
  const created = await penny.merchants.createMerchant('Marketplace');
  merchantId = created.merchant.id;
  stripe = penny.stripeFor(created.secretKey);
});

async function seller(iban = 'DE89370400440532013000') {
  const account = await stripe.accounts.create({ type: 'custom', country: 'DE' });
  const bank = await stripe.accounts.createExternalAccount(account.id, { external_account: { object: 'bank_account',
    country: 'DE', currency: 'eur', account_number: iban } }) as Stripe.BankAccount;
  return { account, bank };
}

async function payoutRows(accountId: string): Promise<number> {
  const rows = await penny.pool.query('SELECT 1 FROM payouts WHERE account_id = $1', [accountId]);
  return rows.rows.length;
}

describe('a connected account\'s payout', () => {
  it('with nothing available is 400 balance_insufficient, nothing written', async () => {
    const { account } = await seller();
    const error = await stripe.payouts.create({ amount: 500, currency: 'eur' }, { stripeAccount: account.id })
      .catch((caught) => caught);
    expect(error).toMatchObject({ statusCode: 400, code: 'balance_insufficient', param: 'amount' });
    expect(await payoutRows(account.id)).toBe(0);
  });

  it('with no bank account in the currency is refused naming currency, nothing written', async () => {
    const { account } = await seller();
    const error = await stripe.payouts.create({ amount: 500, currency: 'usd' }, { stripeAccount: account.id })
      .catch((caught) => caught);
    expect(error).toMatchObject({ statusCode: 400, param: 'currency' });
    expect(await payoutRows(account.id)).toBe(0);
  });

  it('to a bank account it does not have is a 404 naming destination', async () => {
    const { account } = await seller();
    const other = await seller();
    const error = await stripe.payouts.create({ amount: 500, currency: 'eur', destination: other.bank.id },
      { stripeAccount: account.id }).catch((caught) => caught);
    expect(error).toMatchObject({ statusCode: 404, code: 'resource_missing', param: 'destination' });
    expect(await payoutRows(account.id)).toBe(0);
  });

  it('lists only its own payouts', async () => {
    const { account } = await seller();
    const listed = await stripe.payouts.list({}, { stripeAccount: account.id });
    expect(listed).toMatchObject({ object: 'list', data: [], has_more: false, url: '/v1/payouts' });
  });
});

describe('bad payout parameters', () => {
  it.each([
    [{ currency: 'usd' }, 'amount'],
    [{ amount: 100 }, 'currency'],
    [{ amount: 0, currency: 'usd' }, 'amount'],
    [{ amount: 100, currency: 'usd', method: 'instant' }, 'method'],
  ] as const)('%o is refused naming %s', async (params, param) => {
    const error = await stripe.payouts.create(params as Stripe.PayoutCreateParams).catch((caught) => caught);
    expect(error).toMatchObject({ statusCode: 400, param });
    const rows = await penny.pool.query('SELECT 1 FROM payouts WHERE merchant_id = $1', [merchantId]);
    expect(rows.rows).toHaveLength(0);
  });
});
