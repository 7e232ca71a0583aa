import Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import { IdempotencyService } from '../../src/idempotency/idempotency-service.js';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/** Connected accounts and the Stripe-Account header, driven by the official stripe SDK over HTTP. */
let penny: ServedLedger;
let stripe: Stripe;
let platformId: string;
let secretKey: string;
let otherStripe: Stripe;

beforeAll(async () => {
  penny = await serveTestLedger();
  const platform = await penny.merchants.createMerchant('Marketplace');
  platformId = platform.merchant.id;
  secretKey = platform.secretKey;
  stripe = penny.stripeFor(secretKey);
  otherStripe = penny.stripeFor((await penny.merchants.createMerchant('Other Marketplace')).secretKey);
});

async function rowCount(table: string): Promise<number> {
  const result = await penny.pool.query<{ count: bigint }>(`SELECT count(*) AS count FROM ${table}`);
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

async function eventsOf(type: string) {
  return (await stripe.events.list({ type, limit: 100 })).data;
}

describe('creating, reading, updating and listing connected accounts', () => {
  it('creates an account with Stripe\'s shape and test-mode values', async () => {
    const account = await stripe.accounts.create({
      type: 'custom', country: 'DE', email: 'seller@example.com',
      business_profile: { name: 'Seller GmbH', url: 'https://seller.example', mcc: '5734' },
      metadata: { seller: '7' },
      capabilities: { card_payments: { requested: true }, transfers: { requested: true } },
    });
    expect(account.id).toMatch(/^acct_[A-Za-z0-9]{24}$/);
    expect(account).toMatchObject({
      object: 'account', type: 'custom', country: 'DE', email: 'seller@example.com', default_currency: 'eur',
      charges_enabled: true, details_submitted: true, payouts_enabled: false, metadata: { seller: '7' },
      business_profile: { name: 'Seller GmbH', url: 'https://seller.example', mcc: '5734', support_email: null },
      capabilities: { card_payments: 'active', transfers: 'active' },
      requirements: { currently_due: ['external_account'], errors: [] },
      settings: { payouts: { schedule: { interval: 'manual', delay_days: 0 } } },
    });
    expect(await stripe.accounts.retrieve(account.id)).toEqual(account);
  });

  it('defaults the country to US and the payout schedule to manual', async () => {
    const account = await stripe.accounts.create({ type: 'express' });
    expect(account).toMatchObject({ type: 'express', country: 'US', default_currency: 'usd', email: null });
    expect(account.settings?.payouts?.schedule.interval).toBe('manual');
  });

  it('keeps a weekly or monthly payout schedule with its anchor', async () => {
    const weekly = await stripe.accounts.create({ type: 'custom',
      settings: { payouts: { schedule: { interval: 'weekly', weekly_anchor: 'friday' } } } });
    expect(weekly.settings?.payouts?.schedule).toMatchObject({ interval: 'weekly', weekly_anchor: 'friday' });
    const monthly = await stripe.accounts.update(weekly.id,
      { settings: { payouts: { schedule: { interval: 'monthly', monthly_anchor: 15 } } } });
    expect(monthly.settings?.payouts?.schedule).toMatchObject({ interval: 'monthly', monthly_anchor: 15 });
    expect(monthly.settings?.payouts?.schedule.weekly_anchor).toBeUndefined();
  });

  it('updates email, business profile and metadata, and emits account.updated with what changed', async () => {
    const account = await stripe.accounts.create({ type: 'custom', metadata: { a: '1', b: '2' } });
    const updated = await stripe.accounts.update(account.id, {
      email: 'new@example.com', business_profile: { name: 'Renamed' }, metadata: { a: '', c: '3' },
    });
    expect(updated).toMatchObject({ email: 'new@example.com', metadata: { b: '2', c: '3' } });
    expect(updated.business_profile?.name).toBe('Renamed');
    const event = (await eventsOf('account.updated')).find((item) =>
      (item.data.object as Stripe.Account).id === account.id);
    expect(event?.data.object).toEqual(updated);
    expect(event?.data.previous_attributes).toMatchObject({ email: null, metadata: { a: '1', b: '2' } });
  });

  it('names the account in its account.updated event (Connect\'s `account`), retrieved through the SDK', async () => {
    const account = await stripe.accounts.create({ type: 'custom' });
    await stripe.accounts.update(account.id, { metadata: { tier: 'gold' } });
    const event = (await eventsOf('account.updated')).find((item) =>
      (item.data.object as Stripe.Account).id === account.id);
    expect(event?.account).toBe(account.id);
    expect((await stripe.events.retrieve(event?.id as string)).account).toBe(account.id);
  });

  it('lists, with Stripe-Account, that account\'s own events only, and hides the others', async () => {
    const account = await stripe.accounts.create({ type: 'custom' });
    const other = await stripe.accounts.create({ type: 'custom' });
    await stripe.accounts.update(account.id, { metadata: { tier: 'gold' } });
    await stripe.accounts.update(other.id, { metadata: { tier: 'silver' } });
    const own = (await stripe.events.list({ limit: 100 }, { stripeAccount: account.id })).data;
    expect(own.length).toBeGreaterThan(0);
    expect(new Set(own.map((item) => item.account))).toEqual(new Set([account.id]));
    const others = (await eventsOf('account.updated')).find((item) => item.account === other.id);
    const hidden = await refusal(stripe.events.retrieve(others?.id as string, {}, { stripeAccount: account.id }));
    expect(hidden).toMatchObject({ statusCode: 404, code: 'resource_missing' });
  });

  it('lists the platform\'s accounts newest first, with cursor paging', async () => {
    const created = [];
    for (let index = 0; index < 3; index += 1) created.push(await stripe.accounts.create({ type: 'custom' }));
    const first = await stripe.accounts.list({ limit: 2 });
    expect(first.object).toBe('list');
    expect(first.data.map((account) => account.id)).toEqual([created[2]?.id, created[1]?.id]);
    expect(first.has_more).toBe(true);
    const next = await stripe.accounts.list({ limit: 1, starting_after: created[1]?.id });
    expect(next.data[0]?.id).toBe(created[0]?.id);
    const ids: string[] = [];
    await stripe.accounts.list({ limit: 3 }).autoPagingEach((account) => { ids.push(account.id); });
    expect(ids).toEqual(expect.arrayContaining(created.map((account) => account.id)));
  });

  it('does not list another platform\'s accounts', async () => {
    const foreign = await otherStripe.accounts.create({ type: 'custom' });
    const ids: string[] = [];
    await stripe.accounts.list({ limit: 100 }).autoPagingEach((account) => { ids.push(account.id); });
    expect(ids).not.toContain(foreign.id);
  });
});

describe('deleting connected accounts', () => {
  it('deletes an account that holds no money; afterwards it is missing', async () => {
    const account = await stripe.accounts.create({ type: 'custom' });
    expect(await stripe.accounts.del(account.id)).toEqual({ id: account.id, object: 'account', deleted: true });
    const error = await refusal(stripe.accounts.retrieve(account.id));
    expect(error).toMatchObject({ statusCode: 404, code: 'resource_missing', param: 'account' });
    const ids = (await stripe.accounts.list({ limit: 100 })).data.map((item) => item.id);
    expect(ids).not.toContain(account.id);
  });

  it('refuses to delete an account whose ledger accounts hold money', async () => {
    const account = await stripe.accounts.create({ type: 'custom' });
    // The seller's ledger account, as the balances work will book it: owned by the connected account.
    const seller = await penny.request({ method: 'POST', url: '/v1/ledger/accounts',
      body: { currency: 'USD', type: 'liability', owner: account.id } });
    const cash = await penny.request({ method: 'POST', url: '/v1/ledger/accounts',
      body: { currency: 'USD', type: 'asset' } });
    const entry = await penny.request({ method: 'POST', url: '/v1/ledger/entries', body: {
      external_reference: `test:${account.id}`,
      postings: [{ account: cash.body.id, direction: 'debit', amount: 500 },
        { account: seller.body.id, direction: 'credit', amount: 500 }] } });
    expect(entry.status).toBe(200);
    const error = await refusal(stripe.accounts.del(account.id));
    expect(error).toMatchObject({ statusCode: 400, code: 'account_balance_not_zero' });
    expect((await stripe.accounts.retrieve(account.id)).id).toBe(account.id);
  });

  it('answers another platform\'s account as missing, for every verb', async () => {
    const foreign = await otherStripe.accounts.create({ type: 'custom', email: 'secret@example.com' });
    // One request at a time: a promise made before its turn could reject with nothing awaiting it.
    const attempts = [() => stripe.accounts.retrieve(foreign.id),
      () => stripe.accounts.update(foreign.id, { email: 'x@y.z' }), () => stripe.accounts.del(foreign.id)];
    for (const attempt of attempts) {
      const error = await refusal(attempt());
      expect(error).toMatchObject({ statusCode: 404, code: 'resource_missing' });
      expect(error.message).not.toContain('secret@example.com');
    }
    expect((await otherStripe.accounts.retrieve(foreign.id)).email).toBe('secret@example.com');
  });
});

describe('bad input to accounts', () => {
  it('refuses a missing or unknown type, a bad country and an unknown parameter, writing nothing', async () => {
    const before = await rowCount('connected_accounts');
    const cases: [Stripe.AccountCreateParams, string, string][] = [
      [{}, 'parameter_missing', 'type'],
      [{ type: 'premium' as 'custom' }, 'parameter_invalid', 'type'],
      [{ type: 'custom', country: 'XX' }, 'country_code_invalid', 'country'],
      [{ type: 'custom', country: 'USA' }, 'parameter_invalid_string', 'country'],
      [{ type: 'custom', email: 'not an email' }, 'email_invalid', 'email'],
      [{ type: 'custom', business_type: 'company' }, 'parameter_unknown', 'business_type'],
      [{ type: 'custom', settings: { payouts: { schedule: { interval: 'weekly' } } } }, 'parameter_missing',
        'settings[payouts][schedule][weekly_anchor]'],
      [{ type: 'custom', settings: { payouts: { schedule: { interval: 'yearly' as 'daily' } } } }, 'parameter_invalid',
        'settings[payouts][schedule][interval]'],
      [{ type: 'custom', settings: { payouts: { schedule: { interval: 'monthly', monthly_anchor: 32 } } } },
        'parameter_invalid_integer', 'settings[payouts][schedule][monthly_anchor]'],
    ];
    for (const [params, code, param] of cases) {
      const error = await refusal(stripe.accounts.create(params));
      expect({ status: error.statusCode, code: error.code, param: error.param }).toEqual({ status: 400, code, param });
    }
    expect(await rowCount('connected_accounts')).toBe(before);
  });

  it('applies PaymentIntents\' metadata rules', async () => {
    const tooMany = Object.fromEntries(Array.from({ length: 51 }, (_, index) => [`k${index}`, 'v']));
    const error = await refusal(stripe.accounts.create({ type: 'custom', metadata: tooMany }));
    expect(error).toMatchObject({ statusCode: 400, code: 'metadata_invalid', param: 'metadata' });
    const longKey = await refusal(stripe.accounts.create({ type: 'custom', metadata: { ['k'.repeat(41)]: 'v' } }));
    expect(longKey).toMatchObject({ code: 'metadata_invalid' });
  });

  it('refuses a card number in the business profile, naming the field', async () => {
    const error = await refusal(stripe.accounts.create({ type: 'custom',
      business_profile: { name: 'Card 4242 4242 4242 4242' } }));
    expect(error).toMatchObject({ statusCode: 400, code: 'card_number_in_request', param: 'business_profile[name]' });
    expect(error.message).not.toContain('4242');
  });
});

describe('the Stripe-Account header', () => {
  it('makes GET /v1/account answer with the connected account (request option)', async () => {
    const account = await stripe.accounts.create({ type: 'custom', email: 'me@example.com' });
    const current = await stripe.accounts.retrieve(undefined as unknown as string, {}, { stripeAccount: account.id });
    expect(current).toEqual(await stripe.accounts.retrieve(account.id));
    expect((await stripe.accounts.retrieveCurrent()).id).toBe(platformId);
  });

  it('makes GET /v1/account answer with the connected account (client option)', async () => {
    const account = await stripe.accounts.create({ type: 'standard' });
    const asSeller = new Stripe(secretKey, { host: '127.0.0.1', port: penny.port, protocol: 'http',
      maxNetworkRetries: 0, stripeAccount: account.id });
    expect((await asSeller.accounts.retrieveCurrent()).id).toBe(account.id);
  });

  it('accepts the platform\'s own id as acting as itself', async () => {
    const current = await stripe.accounts.retrieveCurrent({}, { stripeAccount: platformId });
    expect(current.id).toBe(platformId);
  });

  it('answers another platform\'s account as a 404 naming Stripe-Account', async () => {
    const foreign = await otherStripe.accounts.create({ type: 'custom' });
    const error = await refusal(stripe.accounts.retrieveCurrent({}, { stripeAccount: foreign.id }));
    expect(error).toMatchObject({ statusCode: 404, code: 'resource_missing', param: 'Stripe-Account' });
  });

  it('answers a deleted account and a malformed id as the same 404', async () => {
    const account = await stripe.accounts.create({ type: 'custom' });
    await stripe.accounts.del(account.id);
    for (const id of [account.id, 'acct_1', 'not an id', `acct_${'x'.repeat(80)}`]) {
      const error = await refusal(stripe.accounts.retrieveCurrent({}, { stripeAccount: id }));
      expect(error).toMatchObject({ statusCode: 404, code: 'resource_missing', param: 'Stripe-Account' });
    }
  });

  it('is refused with a 400 on routes that cannot act as a connected account, which then run nothing', async () => {
    const account = await stripe.accounts.create({ type: 'custom' });
    const intents = await rowCount('payment_intents');
    const created = await refusal(stripe.paymentIntents.create({ amount: 1000, currency: 'usd' },
      { stripeAccount: account.id }));
    expect(created).toMatchObject({ statusCode: 400, code: 'stripe_account_unsupported', param: 'Stripe-Account' });
    expect(await rowCount('payment_intents')).toBe(intents);
    const listed = await refusal(stripe.paymentIntents.list({}, { stripeAccount: account.id }));
    expect(listed).toMatchObject({ statusCode: 400, code: 'stripe_account_unsupported' });
    const accounts = await refusal(stripe.accounts.create({ type: 'custom' }, { stripeAccount: account.id }));
    expect(accounts).toMatchObject({ statusCode: 400, code: 'stripe_account_unsupported' });
  });

  it('scopes idempotency keys per acting account', async () => {
    const account = await stripe.accounts.create({ type: 'custom' });
    const service = new IdempotencyService(penny.pool, () => ({ status: 500, body: {} }));
    let runs = 0;
    const work = async () => ({ status: 200, body: { run: (runs += 1) } });
    const request = { merchantId: platformId, key: 'shared-key', method: 'POST', path: '/v1/x', params: {} };
    const asPlatform = await service.run(request, work);
    const asSeller = await service.run({ ...request, accountId: account.id }, work);
    const replayed = await service.run({ ...request, accountId: account.id }, work);
    expect([asPlatform.body, asSeller.body, replayed.body]).toEqual(['{"run":1}', '{"run":2}', '{"run":2}']);
    expect(replayed.replayed).toBe(true);
    const described = await fetch(`http://127.0.0.1:${penny.port}/v1/idempotency_keys/shared-key`,
      { headers: { authorization: `Bearer ${secretKey}`, 'stripe-account': account.id } });
    expect(await described.json()).toMatchObject({ key: 'shared-key', state: 'completed', request_path: '/v1/x' });
  });
});
