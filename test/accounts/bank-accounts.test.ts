import Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/** Connected accounts' bank accounts (external accounts), driven by the official stripe SDK over HTTP. */
let penny: ServedLedger;
let stripe: Stripe;
let otherStripe: Stripe;

beforeAll(async () => {
  penny = await serveTestLedger();
  stripe = penny.stripeFor((await penny.merchants.createMerchant('Marketplace')).secretKey);
  otherStripe = penny.stripeFor((await penny.merchants.createMerchant('Other Marketplace')).secretKey);
});

const iban = 'DE89370400440532013000';

function germanAccount(accountNumber = iban): Stripe.AccountCreateExternalAccountParams {
  return { external_account: { object: 'bank_account', country: 'DE', currency: 'eur', account_number: accountNumber,
    account_holder_name: 'Erika Mustermann', account_holder_type: 'individual' } };
}

function usAccount(accountNumber = '000123456789', routingNumber = '110000000'):
Stripe.AccountCreateExternalAccountParams {
  return { external_account: { object: 'bank_account', country: 'US', currency: 'usd', account_number: accountNumber,
    routing_number: routingNumber } };
}

async function seller(): Promise<Stripe.Account> {
  return stripe.accounts.create({ type: 'custom', country: 'DE' });
}

async function bankCount(): Promise<number> {
  const result = await penny.pool.query<{ count: bigint }>('SELECT count(*) AS count FROM bank_accounts');
  return Number(result.rows[0]?.count);
}

async function refusal(promise: Promise<unknown>): Promise<Stripe.errors.StripeError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(Stripe.errors.StripeError);
    return error as Stripe.errors.StripeError;
  }
  throw new Error('expected a refusal, but it was accepted');
}

describe('adding bank accounts', () => {
  it('adds a valid IBAN with Stripe\'s BankAccount shape, the first in its currency being the default', async () => {
    const account = await seller();
    const bank = await stripe.accounts.createExternalAccount(account.id, germanAccount()) as Stripe.BankAccount;
    expect(bank.id).toMatch(/^ba_[A-Za-z0-9]{24}$/);
    expect(bank).toMatchObject({
      object: 'bank_account', account: account.id, country: 'DE', currency: 'eur', last4: '3000',
      bank_name: 'COMMERZBANK AG', status: 'new', default_for_currency: true, routing_number: null,
      account_holder_name: 'Erika Mustermann', account_holder_type: 'individual', metadata: {},
    });
    expect(bank.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(await stripe.accounts.retrieveExternalAccount(account.id, bank.id)).toEqual(bank);
  });

  it('accepts an IBAN written with spaces and in lower case', async () => {
    const account = await seller();
    const bank = await stripe.accounts.createExternalAccount(account.id,
      germanAccount('de89 3704 0044 0532 0130 00')) as Stripe.BankAccount;
    expect(bank.last4).toBe('3000');
  });

  it('adds a US account with a valid ABA routing number', async () => {
    const account = await stripe.accounts.create({ type: 'custom', country: 'US' });
    const bank = await stripe.accounts.createExternalAccount(account.id, usAccount()) as Stripe.BankAccount;
    expect(bank).toMatchObject({ country: 'US', currency: 'usd', last4: '6789', routing_number: '110000000',
      bank_name: 'STRIPE TEST BANK' });
  });

  it('makes the account payable and emits account.external_account.created and account.updated', async () => {
    const account = await seller();
    expect(account.payouts_enabled).toBe(false);
    const bank = await stripe.accounts.createExternalAccount(account.id, germanAccount()) as Stripe.BankAccount;
    const updated = await stripe.accounts.retrieve(account.id);
    expect(updated).toMatchObject({ payouts_enabled: true, requirements: { currently_due: [] } });
    const created = (await stripe.events.list({ type: 'account.external_account.created', limit: 100 })).data;
    expect(created.find((event) => (event.data.object as Stripe.BankAccount).id === bank.id)?.data.object)
      .toEqual(bank);
    const accountEvents = (await stripe.events.list({ type: 'account.updated', limit: 100 })).data
      .filter((event) => (event.data.object as Stripe.Account).id === account.id);
    expect(accountEvents[0]?.data.previous_attributes).toMatchObject({ payouts_enabled: false });
  });

  it('gives the same number the same fingerprint, and another number another', async () => {
    const first = await seller();
    const second = await seller();
    const a = await stripe.accounts.createExternalAccount(first.id, germanAccount()) as Stripe.BankAccount;
    const b = await stripe.accounts.createExternalAccount(second.id, germanAccount()) as Stripe.BankAccount;
    const c = await stripe.accounts.createExternalAccount(second.id,
      germanAccount('DE02120300000000202051')) as Stripe.BankAccount;
    expect(a.fingerprint).toBe(b.fingerprint);
    expect(c.fingerprint).not.toBe(a.fingerprint);
  });

  it('never shows or stores the number: only last4, a keyed fingerprint and sealed text', async () => {
    const account = await stripe.accounts.create({ type: 'custom', country: 'US' });
    const number = '987654321012';
    const bank = await stripe.accounts.createExternalAccount(account.id, usAccount(number)) as Stripe.BankAccount;
    expect(JSON.stringify(bank)).not.toContain(number);
    const { createHash } = await import('node:crypto');
    expect(bank.fingerprint).not.toBe(createHash('sha256').update(number).digest('hex').slice(0, 16));
    const row = await penny.pool.query('SELECT * FROM bank_accounts WHERE id = $1', [bank.id]);
    const stored = JSON.stringify(row.rows[0]);
    expect(stored).not.toContain(number);
    expect(stored).not.toContain('98765432');
    expect(row.rows[0].account_number_ciphertext).toMatch(/^v1:/);
    const events = await penny.pool.query('SELECT data::text AS data FROM events');
    for (const event of events.rows) expect(event.data).not.toContain(number);
  });

  it('is not refused by the card-number filter for a Luhn-valid account number', async () => {
    const account = await stripe.accounts.create({ type: 'custom', country: 'US' });
    // 4242424242424242 passes Luhn and has Visa's prefix: in a bank-account field it is no card number.
    const bank = await stripe.accounts.createExternalAccount(account.id,
      usAccount('4242424242424242')) as Stripe.BankAccount;
    expect(bank.last4).toBe('4242');
  });
});

describe('refusing bad bank accounts, writing nothing', () => {
  const cases: [string, Stripe.AccountCreateExternalAccountParams, number, string, string][] = [
    ['an IBAN with a changed digit', germanAccount('DE89370400440532013001'), 400, 'account_number_invalid',
      'external_account[account_number]'],
    ['an IBAN of the wrong length', germanAccount('DE8937040044053201300'), 400, 'account_number_invalid',
      'external_account[account_number]'],
    ['an IBAN of another country', germanAccount('FR1420041010050500013M02606'), 400, 'account_number_invalid',
      'external_account[account_number]'],
    ['a US routing number with a bad checksum', usAccount('000123456789', '110000001'), 400,
      'routing_number_invalid', 'external_account[routing_number]'],
    ['a US routing number of 8 digits', usAccount('000123456789', '11000000'), 400, 'routing_number_invalid',
      'external_account[routing_number]'],
    ['a US account number of 3 digits', usAccount('123'), 400, 'account_number_invalid',
      'external_account[account_number]'],
    ['a US account number of 18 digits', usAccount('123456789012345678'), 400, 'account_number_invalid',
      'external_account[account_number]'],
    ['a US account without a routing number', { external_account: { object: 'bank_account', country: 'US',
      account_number: '000123456789' } }, 400, 'parameter_missing', 'external_account[routing_number]'],
    ['a US account in eur', { external_account: { object: 'bank_account', country: 'US', currency: 'eur',
      account_number: '000123456789', routing_number: '110000000' } }, 400, 'currency_invalid',
    'external_account[currency]'],
    ['an unknown country', { external_account: { object: 'bank_account', country: 'XX',
      account_number: '000123456789' } }, 400, 'country_code_invalid', 'external_account[country]'],
    ['an unknown parameter', { external_account: { object: 'bank_account', country: 'DE', account_number: iban,
      bic: 'COBADEFFXXX' } as Stripe.AccountCreateExternalAccountParams.BankAccount }, 400, 'parameter_unknown',
    'external_account[bic]'],
    ['a token', { external_account: 'btok_123' }, 400, 'parameter_invalid', 'external_account'],
  ];
  for (const [name, params, status, code, param] of cases) {
    it(`refuses ${name}`, async () => {
      const account = await stripe.accounts.create({ type: 'custom' });
      const before = await bankCount();
      const error = await refusal(stripe.accounts.createExternalAccount(account.id, params));
      expect({ status: error.statusCode, code: error.code, param: error.param }).toEqual({ status, code, param });
      expect(error.message).not.toContain('0532013');
      expect(await bankCount()).toBe(before);
    });
  }

  it('refuses a bank account for another platform\'s account as missing', async () => {
    const foreign = await otherStripe.accounts.create({ type: 'custom', country: 'DE' });
    const error = await refusal(stripe.accounts.createExternalAccount(foreign.id, germanAccount()));
    expect(error).toMatchObject({ statusCode: 404, code: 'resource_missing' });
    expect((await otherStripe.accounts.listExternalAccounts(foreign.id)).data).toEqual([]);
  });
});

describe('listing, updating and deleting bank accounts', () => {
  it('lists an account\'s bank accounts newest first, filtered by object', async () => {
    const account = await seller();
    const first = await stripe.accounts.createExternalAccount(account.id, germanAccount());
    const second = await stripe.accounts.createExternalAccount(account.id, germanAccount('DE02120300000000202051'));
    const listed = await stripe.accounts.listExternalAccounts(account.id, { object: 'bank_account', limit: 10 });
    expect(listed.data.map((bank) => bank.id)).toEqual([second.id, first.id]);
    expect(listed.url).toBe(`/v1/accounts/${account.id}/external_accounts`);
    expect((await stripe.accounts.listExternalAccounts(account.id, { object: 'card' })).data).toEqual([]);
    const paged = await stripe.accounts.listExternalAccounts(account.id, { limit: 1, starting_after: second.id });
    expect(paged.data.map((bank) => bank.id)).toEqual([first.id]);
  });

  it('moves the default for a currency with default_for_currency, on create or update', async () => {
    const account = await seller();
    const first = await stripe.accounts.createExternalAccount(account.id, germanAccount());
    const second = await stripe.accounts.createExternalAccount(account.id,
      { ...germanAccount('DE02120300000000202051'), default_for_currency: true }) as Stripe.BankAccount;
    expect(second.default_for_currency).toBe(true);
    expect((await stripe.accounts.retrieveExternalAccount(account.id, first.id) as Stripe.BankAccount)
      .default_for_currency).toBe(false);
    const back = await stripe.accounts.updateExternalAccount(account.id, first.id,
      { default_for_currency: true }) as Stripe.BankAccount;
    expect(back.default_for_currency).toBe(true);
    expect((await stripe.accounts.retrieveExternalAccount(account.id, second.id) as Stripe.BankAccount)
      .default_for_currency).toBe(false);
  });

  it('updates the holder\'s name and metadata', async () => {
    const account = await seller();
    const bank = await stripe.accounts.createExternalAccount(account.id, germanAccount());
    const updated = await stripe.accounts.updateExternalAccount(account.id, bank.id,
      { account_holder_name: 'Erika Musterfrau', metadata: { iban_checked: 'yes' } }) as Stripe.BankAccount;
    expect(updated).toMatchObject({ account_holder_name: 'Erika Musterfrau', metadata: { iban_checked: 'yes' },
      last4: '3000' });
  });

  it('refuses to delete the default for a currency while others exist, then deletes it once it is alone', async () => {
    const account = await seller();
    const first = await stripe.accounts.createExternalAccount(account.id, germanAccount());
    const second = await stripe.accounts.createExternalAccount(account.id, germanAccount('DE02120300000000202051'));
    const error = await refusal(stripe.accounts.deleteExternalAccount(account.id, first.id));
    expect(error).toMatchObject({ statusCode: 400, code: 'bank_account_is_default' });
    expect(await stripe.accounts.deleteExternalAccount(account.id, second.id))
      .toMatchObject({ id: second.id, object: 'bank_account', deleted: true });
    expect(await stripe.accounts.deleteExternalAccount(account.id, first.id))
      .toMatchObject({ id: first.id, deleted: true });
    expect((await stripe.accounts.listExternalAccounts(account.id)).data).toEqual([]);
    expect((await stripe.accounts.retrieve(account.id)).payouts_enabled).toBe(false);
    const missing = await refusal(stripe.accounts.retrieveExternalAccount(account.id, first.id));
    expect(missing).toMatchObject({ statusCode: 404, code: 'resource_missing' });
  });
});
