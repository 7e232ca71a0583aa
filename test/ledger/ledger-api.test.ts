import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestLedger, type TestLedger } from '../support/app.js';

/**
 * The ledger API as a specification, through the in-process HTTP server on a real database.
 * Each test makes its own accounts; refusals are checked against the tables (nothing written).
 */
let penny: TestLedger;

beforeAll(async () => {
  penny = await createTestLedger();
});

type Json = Record<string, unknown>;
type AccountType = 'asset' | 'liability' | 'equity' | 'revenue' | 'expense';
type Direction = 'debit' | 'credit';

let referenceCounter = 0;
/** A fresh external reference, unique within the file's database. */
function reference(label: string): string {
  referenceCounter += 1;
  return `${label}-${referenceCounter}`;
}

async function createAccount(type: AccountType, extra: Json = {}): Promise<string> {
  const response = await penny.request({
    method: 'POST', url: '/v1/ledger/accounts', body: { currency: 'USD', type, ...extra },
  });
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  return response.body.id as string;
}

function leg(account: string, direction: Direction, amount: unknown, extra: Json = {}): Json {
  return { account, direction, amount, ...extra };
}

function postEntry(body: Json) {
  return penny.request({ method: 'POST', url: '/v1/ledger/entries', body });
}

/** Posts an entry that must succeed; returns its presented body. */
async function transfer(debit: string, credit: string, amount: number, extra: Json = {}) {
  const response = await postEntry({
    external_reference: reference('transfer'),
    postings: [leg(debit, 'debit', amount), leg(credit, 'credit', amount)],
    ...extra,
  });
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  return response.body;
}

/** A pending entry (hold) moving `amount` from `debit` to `credit`. */
function hold(debit: string, credit: string, amount: number, extra: Json = {}) {
  return transfer(debit, credit, amount, { pending: true, ...extra });
}

/** A customer wallet (liability) holding `amount`, funded from a cash asset account. */
async function fundedWallet(amount: number, extra: Json = {}): Promise<{ wallet: string; cash: string }> {
  const cash = await createAccount('asset');
  const wallet = await createAccount('liability', extra);
  await transfer(cash, wallet, amount);
  return { wallet, cash };
}

async function balancesOf(account: string) {
  const response = await penny.request({ method: 'GET', url: `/v1/ledger/accounts/${account}` });
  expect(response.status).toBe(200);
  return response.body.balances;
}

async function countRows(table: 'ledger_entries' | 'ledger_postings' | 'ledger_accounts'): Promise<bigint> {
  const result = await penny.pool.query<{ count: bigint }>(`SELECT count(*) AS count FROM ${table}`);
  return result.rows[0]?.count ?? -1n;
}

async function countWrites(): Promise<{ entries: bigint; postings: bigint }> {
  return { entries: await countRows('ledger_entries'), postings: await countRows('ledger_postings') };
}

describe('accounts', () => {
  it('creates an account with the documented shape and zero balances', async () => {
    const response = await penny.request({
      method: 'POST', url: '/v1/ledger/accounts',
      body: { currency: 'USD', type: 'liability', code: 'wallet-shape', owner: 'cus_shape', metadata: { tier: 'gold' } },
    });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({
      object: 'ledger.account',
      id: expect.stringMatching(/^lacc_[A-Za-z0-9]{8,64}$/),
      currency: 'USD',
      type: 'liability',
      normal_balance: 'credit',
      code: 'wallet-shape',
      owner: 'cus_shape',
      limit: null,
      metadata: { tier: 'gold' },
      balances: {
        posted: 0, pending: 0, available: 0,
        debits_posted: 0, credits_posted: 0, debits_pending: 0, credits_pending: 0,
      },
      created_at: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/),
    });
    const fetched = await penny.request({ method: 'GET', url: `/v1/ledger/accounts/${response.body.id}` });
    expect(fetched.body).toEqual(response.body);
  });

  it('gives asset accounts a debit normal balance', async () => {
    const id = await createAccount('asset');
    const response = await penny.request({ method: 'GET', url: `/v1/ledger/accounts/${id}` });
    expect(response.body.normal_balance).toBe('debit');
  });

  it('normalises a lowercase currency to upper case', async () => {
    const response = await penny.request({
      method: 'POST', url: '/v1/ledger/accounts', body: { currency: 'eur', type: 'asset' },
    });
    expect(response.status).toBe(200);
    expect(response.body.currency).toBe('EUR');
    const stored = await penny.pool.query('SELECT currency FROM ledger_accounts WHERE id = $1', [response.body.id]);
    expect(stored.rows[0]?.currency).toBe('EUR');
  });

  it('refuses an unknown currency with 400 currency_invalid and writes nothing', async () => {
    const before = await countRows('ledger_accounts');
    const response = await penny.request({
      method: 'POST', url: '/v1/ledger/accounts', body: { currency: 'ABC', type: 'asset' },
    });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: 'currency_invalid', param: 'currency' });
    expect(await countRows('ledger_accounts')).toBe(before);
  });

  it.each(['code', 'owner'])('refuses an empty %s with 400 parameter_invalid_string and creates nothing', async (field) => {
    const before = await penny.pool.query('SELECT count(*) AS count FROM ledger_accounts');
    const response = await penny.request({
      method: 'POST', url: '/v1/ledger/accounts', body: { currency: 'USD', type: 'asset', [field]: '' },
    });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: 'parameter_invalid_string', param: field });
    expect(await penny.pool.query('SELECT count(*) AS count FROM ledger_accounts')).toMatchObject(
      { rows: before.rows });
  });

  it('refuses an unknown field with 400 parameter_unknown naming it', async () => {
    const before = await countRows('ledger_accounts');
    const response = await penny.request({
      method: 'POST', url: '/v1/ledger/accounts', body: { currency: 'USD', type: 'asset', colour: 'blue' },
    });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ type: 'invalid_request_error', code: 'parameter_unknown', param: 'colour' });
    expect(await countRows('ledger_accounts')).toBe(before);
  });

  it('refuses an account without a type with 400 parameter_missing', async () => {
    const before = await countRows('ledger_accounts');
    const response = await penny.request({ method: 'POST', url: '/v1/ledger/accounts', body: { currency: 'USD' } });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: 'parameter_missing', param: 'type' });
    expect(await countRows('ledger_accounts')).toBe(before);
  });

  it('refuses a second account with the same code for the same owner with 409 account_code_taken', async () => {
    await createAccount('liability', { owner: 'cus_dup', code: 'main' });
    const before = await countRows('ledger_accounts');
    const response = await penny.request({
      method: 'POST', url: '/v1/ledger/accounts',
      body: { currency: 'USD', type: 'liability', owner: 'cus_dup', code: 'main' },
    });
    expect(response.status).toBe(409);
    expect(response.body.error).toMatchObject({ code: 'account_code_taken', param: 'code' });
    expect(await countRows('ledger_accounts')).toBe(before);
  });

  it('allows the same code for a different owner', async () => {
    await createAccount('liability', { owner: 'cus_code_a', code: 'shared-code' });
    const response = await penny.request({
      method: 'POST', url: '/v1/ledger/accounts',
      body: { currency: 'USD', type: 'liability', owner: 'cus_code_b', code: 'shared-code' },
    });
    expect(response.status).toBe(200);
  });

  it('answers 404 account_not_found for an unknown account', async () => {
    const response = await penny.request({ method: 'GET', url: '/v1/ledger/accounts/lacc_doesnotexist0000' });
    expect(response.status).toBe(404);
    expect(response.body.error.code).toBe('account_not_found');
  });

  it('lists accounts newest first and pages through every account exactly once', async () => {
    const owner = 'cus_paging';
    const created: string[] = [];
    for (let index = 0; index < 25; index += 1) created.push(await createAccount('liability', { owner }));

    const seen: string[] = [];
    const pages: { size: number; hasMore: boolean }[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 5; page += 1) {
      const after = cursor === undefined ? '' : `&starting_after=${cursor}`;
      const response = await penny.request({ method: 'GET', url: `/v1/ledger/accounts?owner=${owner}&limit=10${after}` });
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ object: 'list', url: '/v1/ledger/accounts' });
      const ids = (response.body.data as { id: string }[]).map((account) => account.id);
      seen.push(...ids);
      pages.push({ size: ids.length, hasMore: response.body.has_more });
      if (!response.body.has_more) break;
      cursor = ids.at(-1);
    }
    expect(pages).toEqual([{ size: 10, hasMore: true }, { size: 10, hasMore: true }, { size: 5, hasMore: false }]);
    expect(seen).toEqual([...created].reverse());
  });

  it.each([0, 101])('refuses a list limit of %s with 400', async (limit) => {
    const response = await penny.request({ method: 'GET', url: `/v1/ledger/accounts?limit=${limit}` });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: 'parameter_invalid_integer', param: 'limit' });
  });
});

describe('accounts under an Idempotency-Key', () => {
  let keyCounter = 0;
  function key(): string {
    keyCounter += 1;
    return `ledger-account-key-${keyCounter}-${Date.now()}`;
  }

  function createWithKey(idempotencyKey: string, body: Json) {
    return penny.request({
      method: 'POST', url: '/v1/ledger/accounts', body, headers: { 'idempotency-key': idempotencyKey },
    });
  }

  it('replays the first answer byte for byte to a retry and creates one account', async () => {
    const idempotencyKey = key();
    const body = { currency: 'USD', type: 'asset', metadata: { purpose: 'retry' } };
    const before = await countRows('ledger_accounts');
    const first = await createWithKey(idempotencyKey, body);
    const retry = await createWithKey(idempotencyKey, body);
    expect(first.status).toBe(200);
    expect(retry.status).toBe(200);
    expect(retry.body).toEqual(first.body);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    expect(await countRows('ledger_accounts')).toBe(before + 1n);
  });

  it('creates one account when the same key arrives on many connections at once', async () => {
    const idempotencyKey = key();
    const body = { currency: 'EUR', type: 'liability', owner: 'cus_concurrent_key' };
    const before = await countRows('ledger_accounts');
    const responses = await Promise.all(Array.from({ length: 8 }, () => createWithKey(idempotencyKey, body)));
    const answered = responses.filter((response) => response.status === 200);
    const busy = responses.filter((response) => response.status === 409);
    expect(answered.length + busy.length).toBe(8);
    expect(new Set(answered.map((response) => response.body.id)).size).toBe(1);
    for (const response of busy) expect(response.body.error.code).toBe('idempotency_key_in_use');
    expect(await countRows('ledger_accounts')).toBe(before + 1n);
  });

  it('refuses the key with other parameters with 400 idempotency_key_reused and creates nothing', async () => {
    const idempotencyKey = key();
    expect((await createWithKey(idempotencyKey, { currency: 'USD', type: 'asset' })).status).toBe(200);
    const before = await countRows('ledger_accounts');
    const reused = await createWithKey(idempotencyKey, { currency: 'USD', type: 'expense' });
    expect(reused.status).toBe(400);
    expect(reused.body.error).toMatchObject({ type: 'idempotency_error', code: 'idempotency_key_reused' });
    expect(await countRows('ledger_accounts')).toBe(before);
  });

  it('stores nothing under the key for a request refused for its parameters, so a corrected retry runs', async () => {
    const idempotencyKey = key();
    const refused = await createWithKey(idempotencyKey, { currency: 'usd dollars', type: 'asset' });
    expect(refused.status).toBe(400);
    const corrected = await createWithKey(idempotencyKey, { currency: 'USD', type: 'asset' });
    expect(corrected.status).toBe(200);
  });
});

describe('entries', () => {
  it('creates an entry with the documented shape', async () => {
    const cash = await createAccount('asset');
    const wallet = await createAccount('liability');
    const response = await postEntry({
      external_reference: 'shape-1',
      description: 'Top-up',
      metadata: { order: '42' },
      postings: [leg(cash, 'debit', 1250), leg(wallet, 'credit', 1250, { currency: 'usd' })],
    });
    expect(response.status).toBe(200);
    const timestamp = expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
    const id = response.body.id as string;
    const posting = (account: string, direction: Direction) => ({
      object: 'ledger.posting', id: expect.any(Number), entry: id, account, currency: 'USD', direction,
      phase: 'posted', amount: 1250, must_not_overdraw: false, effective_at: response.body.effective_at,
    });
    expect(response.body).toEqual({
      object: 'ledger.entry',
      id: expect.stringMatching(/^lent_[A-Za-z0-9]{8,64}$/),
      external_reference: 'shape-1',
      kind: 'standard',
      status: 'posted',
      description: 'Top-up',
      metadata: { order: '42' },
      effective_at: timestamp,
      created_at: timestamp,
      expires_at: null,
      hold: null,
      reverses: null,
      resolved_by: null,
      postings: [posting(cash, 'debit'), posting(wallet, 'credit')],
    });
    const fetched = await penny.request({ method: 'GET', url: `/v1/ledger/entries/${id}` });
    expect(fetched.body).toEqual(response.body);
    expect(await balancesOf(wallet)).toMatchObject({ posted: 1250, available: 1250, credits_posted: 1250 });
    expect(await balancesOf(cash)).toMatchObject({ posted: 1250, debits_posted: 1250 });
  });

  it('returns the original entry for a replay with the same body and writes nothing new', async () => {
    const cash = await createAccount('asset');
    const wallet = await createAccount('liability');
    const body = { external_reference: reference('replay'), postings: [leg(cash, 'debit', 300), leg(wallet, 'credit', 300)] };
    const first = await postEntry(body);
    expect(first.status).toBe(200);
    const before = await countWrites();
    const second = await postEntry(body);
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
    expect(second.body.postings).toEqual(first.body.postings);
    expect(await countWrites()).toEqual(before);
    expect(await balancesOf(wallet)).toMatchObject({ posted: 300 });
  });

  it('treats the same body with its keys in another order as a replay', async () => {
    const cash = await createAccount('asset');
    const wallet = await createAccount('liability');
    const externalReference = reference('replay-order');
    const first = await postEntry({ external_reference: externalReference, postings: [leg(cash, 'debit', 5), leg(wallet, 'credit', 5)] });
    const second = await postEntry({
      postings: [{ amount: 5, direction: 'debit', account: cash }, { amount: 5, direction: 'credit', account: wallet }],
      external_reference: externalReference,
    });
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
  });

  it('refuses a reused reference with a different body with 409 reference_conflict and writes nothing', async () => {
    const cash = await createAccount('asset');
    const wallet = await createAccount('liability');
    const externalReference = reference('conflict');
    await postEntry({ external_reference: externalReference, postings: [leg(cash, 'debit', 100), leg(wallet, 'credit', 100)] });
    const before = await countWrites();
    const response = await postEntry({
      external_reference: externalReference, postings: [leg(cash, 'debit', 101), leg(wallet, 'credit', 101)],
    });
    expect(response.status).toBe(409);
    expect(response.body.error).toMatchObject({ code: 'reference_conflict', param: 'external_reference' });
    expect(await countWrites()).toEqual(before);
    expect(await balancesOf(wallet)).toMatchObject({ posted: 100 });
  });

  it.each([
    { amount: 1.5, code: 'parameter_invalid_integer' },
    { amount: '100', code: 'parameter_invalid_integer' },
    { amount: 0, code: 'amount_too_small' },
    { amount: -5, code: 'amount_too_small' },
    { amount: 2 ** 53, code: 'amount_too_large' },
  ])('refuses an amount of $amount with 400 $code and writes nothing', async ({ amount, code }) => {
    const cash = await createAccount('asset');
    const wallet = await createAccount('liability');
    const before = await countWrites();
    const response = await postEntry({
      external_reference: reference('amount'), postings: [leg(cash, 'debit', amount), leg(wallet, 'credit', amount)],
    });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code, param: 'postings[0][amount]' });
    expect(await countWrites()).toEqual(before);
  });

  // JSON.parse reads each as the integer beside it, so without the raw text they would be taken.
  it.each([['100.0', 100], ['1e3', 1000], ['1E+3', 1000], ['1.5e2', 150], ['2500e-1', 250]])(
    'refuses an amount written %s with 400 parameter_invalid_integer and writes nothing', async (written, value) => {
      const cash = await createAccount('asset');
      const wallet = await createAccount('liability');
      const before = await countWrites();
      const response = await penny.request({ method: 'POST', url: '/v1/ledger/entries', body:
        `{"external_reference": "${reference('written')}", "postings": [
          {"account": "${cash}", "direction": "debit", "amount": ${value}},
          {"account": "${wallet}", "direction": "credit", "amount": ${written}}]}` });
      expect(response.status).toBe(400);
      expect(response.body.error).toMatchObject({ code: 'parameter_invalid_integer', param: 'postings[1][amount]' });
      expect(await countWrites()).toEqual(before);
    });

  it('refuses a batch with an amount written 1e2 in its second entry, naming it, and writes none of it', async () => {
    const cash = await createAccount('asset');
    const wallet = await createAccount('liability');
    const before = await countWrites();
    const entry = (amount: string) => `{"external_reference": "${reference('batch-written')}", "postings": [
      {"account": "${cash}", "direction": "debit", "amount": ${amount}},
      {"account": "${wallet}", "direction": "credit", "amount": 100}]}`;
    const response = await penny.request({ method: 'POST', url: '/v1/ledger/entries/batch',
      body: `{"entries": [${entry('100')}, ${entry('1e2')}]}` });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: 'parameter_invalid_integer',
      param: 'entries[1][postings][0][amount]' });
    expect(await countWrites()).toEqual(before);
  });

  it('reads digits, dots and exponents inside strings as text, not as amounts', async () => {
    const cash = await createAccount('asset');
    const wallet = await createAccount('liability');
    const description = 'v1.5 \\" 2e3 "3.0" 4.0';
    const response = await postEntry({
      external_reference: reference('strings'), description, metadata: { rate: '1.0e2' },
      effective_at: '2024-01-02T03:04:05.678Z', postings: [leg(cash, 'debit', 250), leg(wallet, 'credit', 250)],
    });
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    expect(response.body).toMatchObject({ description, metadata: { rate: '1.0e2' } });
    expect(response.body.postings.map((posting: Json) => posting.amount)).toEqual([250, 250]);
  });

  it('refuses an entry whose debits and credits differ with 400 unbalanced_entry and writes nothing', async () => {
    const cash = await createAccount('asset');
    const wallet = await createAccount('liability');
    const before = await countWrites();
    const response = await postEntry({
      external_reference: reference('unbalanced'), postings: [leg(cash, 'debit', 100), leg(wallet, 'credit', 99)],
    });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: 'unbalanced_entry', param: 'postings' });
    expect(await countWrites()).toEqual(before);
    expect(await balancesOf(wallet)).toMatchObject({ posted: 0, credits_posted: 0 });
  });

  it('refuses an unbalanced entry whose postings name their currency before touching the database', async () => {
    const cash = await createAccount('asset');
    const wallet = await createAccount('liability');
    const before = await countWrites();
    const response = await postEntry({
      external_reference: reference('unbalanced-known'),
      postings: [leg(cash, 'debit', 100, { currency: 'USD' }), leg(wallet, 'credit', 99, { currency: 'USD' })],
    });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: 'unbalanced_entry', param: 'postings' });
    expect(await countWrites()).toEqual(before);
  });

  it('refuses a posting to an unknown account with 404 account_not_found naming the posting', async () => {
    const cash = await createAccount('asset');
    const before = await countWrites();
    const response = await postEntry({
      external_reference: reference('unknown-account'),
      postings: [leg(cash, 'debit', 100), leg('lacc_doesnotexist0000', 'credit', 100)],
    });
    expect(response.status).toBe(404);
    expect(response.body.error).toMatchObject({ code: 'account_not_found', param: 'postings[1][account]' });
    expect(await countWrites()).toEqual(before);
  });

  it('keeps a given effective_at to the microsecond', async () => {
    const cash = await createAccount('asset');
    const wallet = await createAccount('liability');
    const effectiveAt = '2026-01-02T03:04:05.123456Z';
    const created = await transfer(cash, wallet, 10, { effective_at: effectiveAt });
    expect(created.effective_at).toBe(effectiveAt);
    expect(created.postings.map((posting: Json) => posting.effective_at)).toEqual([effectiveAt, effectiveAt]);
    const fetched = await penny.request({ method: 'GET', url: `/v1/ledger/entries/${created.id}` });
    expect(fetched.body.effective_at).toBe(effectiveAt);
  });

  it('refuses an effective_at that is not a real date with 400 and writes nothing', async () => {
    const cash = await createAccount('asset');
    const wallet = await createAccount('liability');
    const before = await countWrites();
    const response = await postEntry({
      external_reference: reference('feb-30'), effective_at: '2026-02-30T00:00:00Z',
      postings: [leg(cash, 'debit', 10), leg(wallet, 'credit', 10)],
    });
    expect(await countWrites()).toEqual(before);
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: 'parameter_invalid_timestamp', param: 'effective_at' });
  });

  it('creates every entry of a batch of three', async () => {
    const cash = await createAccount('asset');
    const wallet = await createAccount('liability');
    const before = await countWrites();
    const entries = [100, 200, 300].map((amount) => ({
      external_reference: reference('batch'), postings: [leg(cash, 'debit', amount), leg(wallet, 'credit', amount)],
    }));
    const response = await penny.request({ method: 'POST', url: '/v1/ledger/entries/batch', body: { entries } });
    expect(response.status).toBe(200);
    expect(response.body.object).toBe('list');
    expect(response.body.data.map((entry: Json) => entry.external_reference))
      .toEqual(entries.map((entry) => entry.external_reference));
    expect(new Set(response.body.data.map((entry: Json) => entry.id)).size).toBe(3);
    const after = await countWrites();
    expect(after.entries - before.entries).toBe(3n);
    expect(after.postings - before.postings).toBe(6n);
    expect(await balancesOf(wallet)).toMatchObject({ posted: 600 });
  });

  it('writes none of a batch whose third entry is unbalanced, naming entries[2]', async () => {
    const cash = await createAccount('asset');
    const wallet = await createAccount('liability');
    const before = await countWrites();
    const entries = [
      { external_reference: reference('batch-bad'), postings: [leg(cash, 'debit', 100), leg(wallet, 'credit', 100)] },
      { external_reference: reference('batch-bad'), postings: [leg(cash, 'debit', 200), leg(wallet, 'credit', 200)] },
      { external_reference: reference('batch-bad'), postings: [leg(cash, 'debit', 300), leg(wallet, 'credit', 299)] },
    ];
    const response = await penny.request({ method: 'POST', url: '/v1/ledger/entries/batch', body: { entries } });
    expect(await countWrites()).toEqual(before);
    expect(await balancesOf(wallet)).toMatchObject({ posted: 0, credits_posted: 0 });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('unbalanced_entry');
    expect(response.body.error.param).toMatch(/^entries\[2\]/);
  });

  it('returns the same entries for a batch retried identically and writes nothing new', async () => {
    const cash = await createAccount('asset');
    const wallet = await createAccount('liability');
    const entries = [1, 2, 3].map((amount) => ({
      external_reference: reference('batch-retry'), postings: [leg(cash, 'debit', amount), leg(wallet, 'credit', amount)],
    }));
    const first = await penny.request({ method: 'POST', url: '/v1/ledger/entries/batch', body: { entries } });
    expect(first.status).toBe(200);
    const before = await countWrites();
    const second = await penny.request({ method: 'POST', url: '/v1/ledger/entries/batch', body: { entries } });
    expect(second.status).toBe(200);
    expect(second.body.data.map((entry: Json) => entry.id)).toEqual(first.body.data.map((entry: Json) => entry.id));
    expect(await countWrites()).toEqual(before);
    expect(await balancesOf(wallet)).toMatchObject({ posted: 6 });
  });

  it('accepts a multi-currency entry in which each currency balances', async () => {
    const usdCash = await createAccount('asset');
    const usdWallet = await createAccount('liability');
    const eurCash = await createAccount('asset', { currency: 'EUR' });
    const eurWallet = await createAccount('liability', { currency: 'EUR' });
    const response = await postEntry({
      external_reference: reference('multi-currency'),
      postings: [
        leg(usdCash, 'debit', 1000), leg(usdWallet, 'credit', 1000),
        leg(eurCash, 'debit', 920), leg(eurWallet, 'credit', 920),
      ],
    });
    expect(response.status).toBe(200);
    const created = response.body;
    expect(created.postings.map((posting: Json) => [posting.account, posting.currency, posting.amount])).toEqual([
      [usdCash, 'USD', 1000], [usdWallet, 'USD', 1000], [eurCash, 'EUR', 920], [eurWallet, 'EUR', 920],
    ]);
    expect(await balancesOf(usdWallet)).toMatchObject({ posted: 1000 });
    expect(await balancesOf(eurWallet)).toMatchObject({ posted: 920 });
  });
});

describe('holds', () => {
  it('shows a pending entry as pending and lowers available, not posted, on the debited account', async () => {
    const { wallet } = await fundedWallet(1000);
    const merchant = await createAccount('liability');
    const created = await hold(wallet, merchant, 300);
    expect(created).toMatchObject({ kind: 'hold', status: 'pending', resolved_by: null });
    expect(created.postings.map((posting: Json) => posting.phase)).toEqual(['pending', 'pending']);
    expect(await balancesOf(wallet)).toMatchObject({ posted: 1000, available: 700, debits_pending: 300 });
    expect(await balancesOf(merchant)).toMatchObject({ posted: 0, available: 0, credits_pending: 300 });
  });

  it('posts a hold in full: the hold becomes posted and the amount moves', async () => {
    const { wallet } = await fundedWallet(1000);
    const merchant = await createAccount('liability');
    const created = await hold(wallet, merchant, 300);
    const posted = await penny.request({ method: 'POST', url: `/v1/ledger/entries/${created.id}/post` });
    expect(posted.status).toBe(200);
    expect(posted.body).toMatchObject({ kind: 'hold_post', hold: created.id });
    const fetched = await penny.request({ method: 'GET', url: `/v1/ledger/entries/${created.id}` });
    expect(fetched.body).toMatchObject({ status: 'posted', resolved_by: posted.body.id });
    expect(await balancesOf(wallet)).toMatchObject({ posted: 700, available: 700, pending: 0, debits_pending: 0 });
    expect(await balancesOf(merchant)).toMatchObject({ posted: 300, pending: 0, credits_pending: 0 });
  });

  it('posts part of a two-posting hold and releases the rest', async () => {
    const { wallet } = await fundedWallet(1000);
    const merchant = await createAccount('liability');
    const created = await hold(wallet, merchant, 1000);
    const posted = await penny.request({
      method: 'POST', url: `/v1/ledger/entries/${created.id}/post`, body: { amount: 600 },
    });
    expect(posted.status).toBe(200);
    const phases = posted.body.postings.map((posting: Json) => [posting.phase, posting.amount]);
    expect(phases).toEqual(expect.arrayContaining([['release', 1000], ['release', 1000], ['posted', 600], ['posted', 600]]));
    expect(phases).toHaveLength(4);
    expect(await balancesOf(wallet)).toMatchObject({ posted: 400, available: 400, debits_pending: 0 });
    expect(await balancesOf(merchant)).toMatchObject({ posted: 600, credits_pending: 0 });
  });

  it('refuses to post part of a hold with an amount written 6e2, and writes nothing', async () => {
    const { wallet } = await fundedWallet(1000);
    const merchant = await createAccount('liability');
    const created = await hold(wallet, merchant, 1000);
    const before = await countWrites();
    const posted = await penny.request({
      method: 'POST', url: `/v1/ledger/entries/${created.id}/post`, body: '{"amount": 6e2}',
    });
    expect(posted.status).toBe(400);
    expect(posted.body.error).toMatchObject({ code: 'parameter_invalid_integer', param: 'amount' });
    expect(await countWrites()).toEqual(before);
  });

  it('replays a post retried under its Idempotency-Key instead of refusing it as already posted', async () => {
    const { wallet } = await fundedWallet(1000);
    const merchant = await createAccount('liability');
    const created = await hold(wallet, merchant, 1000);
    const post = () => penny.request({
      method: 'POST', url: `/v1/ledger/entries/${created.id}/post`, body: { amount: 400 },
      headers: { 'idempotency-key': `post-${created.id}` },
    });
    const first = await post();
    const before = await countWrites();
    const retry = await post();
    expect(first.status).toBe(200);
    expect(retry.status).toBe(200);
    expect(retry.body).toEqual(first.body);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(await countWrites()).toEqual(before);
    expect(await balancesOf(merchant)).toMatchObject({ posted: 400 });
  });

  it('replays a void retried under its Idempotency-Key instead of refusing it as already voided', async () => {
    const { wallet } = await fundedWallet(1000);
    const merchant = await createAccount('liability');
    const created = await hold(wallet, merchant, 300);
    const voidHold = () => penny.request({
      method: 'POST', url: `/v1/ledger/entries/${created.id}/void`,
      headers: { 'idempotency-key': `void-${created.id}` },
    });
    const first = await voidHold();
    const retry = await voidHold();
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ kind: 'hold_void', hold: created.id });
    expect(retry.status).toBe(200);
    expect(retry.body).toEqual(first.body);
    expect(await balancesOf(wallet)).toMatchObject({ posted: 1000, available: 1000, debits_pending: 0 });
  });

  it('posts a hold once when the same post arrives with its key on many connections at once', async () => {
    const { wallet } = await fundedWallet(1000);
    const merchant = await createAccount('liability');
    const created = await hold(wallet, merchant, 500);
    const responses = await Promise.all(Array.from({ length: 8 }, () => penny.request({
      method: 'POST', url: `/v1/ledger/entries/${created.id}/post`,
      headers: { 'idempotency-key': `post-race-${created.id}` },
    })));
    const answered = responses.filter((response) => response.status === 200);
    expect(answered.length).toBeGreaterThan(0);
    expect(new Set(answered.map((response) => response.body.id)).size).toBe(1);
    for (const response of responses.filter((each) => each.status !== 200)) {
      expect(response.status).toBe(409);
      expect(response.body.error.code).toBe('idempotency_key_in_use');
    }
    expect(await balancesOf(merchant)).toMatchObject({ posted: 500 });
  });

  it('refuses to post a hold twice with 409 hold_already_posted', async () => {
    const { wallet } = await fundedWallet(1000);
    const merchant = await createAccount('liability');
    const created = await hold(wallet, merchant, 300);
    await penny.request({ method: 'POST', url: `/v1/ledger/entries/${created.id}/post` });
    const before = await countWrites();
    const again = await penny.request({ method: 'POST', url: `/v1/ledger/entries/${created.id}/post` });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('hold_already_posted');
    expect(await countWrites()).toEqual(before);
    expect(await balancesOf(merchant)).toMatchObject({ posted: 300 });
  });

  it('refuses to post a voided hold with 409 hold_already_voided', async () => {
    const { wallet } = await fundedWallet(1000);
    const merchant = await createAccount('liability');
    const created = await hold(wallet, merchant, 300);
    const voided = await penny.request({ method: 'POST', url: `/v1/ledger/entries/${created.id}/void` });
    expect(voided.status).toBe(200);
    expect(await balancesOf(wallet)).toMatchObject({ posted: 1000, available: 1000, debits_pending: 0 });
    const posted = await penny.request({ method: 'POST', url: `/v1/ledger/entries/${created.id}/post` });
    expect(posted.status).toBe(409);
    expect(posted.body.error.code).toBe('hold_already_voided');
    expect(await balancesOf(merchant)).toMatchObject({ posted: 0 });
  });

  it('refuses to post more than is held with 400 amount_exceeds_hold', async () => {
    const { wallet } = await fundedWallet(1000);
    const merchant = await createAccount('liability');
    const created = await hold(wallet, merchant, 300);
    const before = await countWrites();
    const response = await penny.request({
      method: 'POST', url: `/v1/ledger/entries/${created.id}/post`, body: { amount: 301 },
    });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: 'amount_exceeds_hold', param: 'amount' });
    expect(await countWrites()).toEqual(before);
    const fetched = await penny.request({ method: 'GET', url: `/v1/ledger/entries/${created.id}` });
    expect(fetched.body.status).toBe('pending');
  });

  it('refuses to post an entry that is not a hold with 400 entry_not_a_hold', async () => {
    const cash = await createAccount('asset');
    const wallet = await createAccount('liability');
    const created = await transfer(cash, wallet, 50);
    const before = await countWrites();
    const response = await penny.request({ method: 'POST', url: `/v1/ledger/entries/${created.id}/post` });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('entry_not_a_hold');
    expect(await countWrites()).toEqual(before);
  });

  it('expires a hold past its expires_at, releasing it, and then refuses to post it with 409 hold_expired', async () => {
    const { wallet } = await fundedWallet(1000);
    const merchant = await createAccount('liability');
    const created = await hold(wallet, merchant, 400, { expires_at: new Date(Date.now() + 1500).toISOString() });
    expect(await balancesOf(wallet)).toMatchObject({ available: 600 });
    await sleep(1700);
    expect(await penny.ledger.expireDueHolds()).toBeGreaterThanOrEqual(1);
    const fetched = await penny.request({ method: 'GET', url: `/v1/ledger/entries/${created.id}` });
    expect(fetched.body.status).toBe('expired');
    expect(await balancesOf(wallet)).toMatchObject({ posted: 1000, available: 1000, debits_pending: 0 });
    expect(await balancesOf(merchant)).toMatchObject({ posted: 0, credits_pending: 0 });
    const posted = await penny.request({ method: 'POST', url: `/v1/ledger/entries/${created.id}/post` });
    expect(posted.status).toBe(409);
    expect(posted.body.error.code).toBe('hold_expired');
  });

  it('lists a hold with an expiry as open until it is posted, voided or expired', async () => {
    const { wallet } = await fundedWallet(1000);
    const merchant = await createAccount('liability');
    const open = async (id: string) =>
      (await penny.pool.query('SELECT 1 FROM ledger_open_holds WHERE entry_id = $1', [id])).rowCount;
    const later = { expires_at: new Date(Date.now() + 3_600_000).toISOString() };
    const toPost = await hold(wallet, merchant, 100, later);
    const toVoid = await hold(wallet, merchant, 100, later);
    const noExpiry = await hold(wallet, merchant, 100);
    expect([await open(toPost.id), await open(toVoid.id), await open(noExpiry.id)]).toEqual([1, 1, 0]);
    await penny.request({ method: 'POST', url: `/v1/ledger/entries/${toPost.id}/post`, body: { amount: 60 } });
    await penny.request({ method: 'POST', url: `/v1/ledger/entries/${toVoid.id}/void` });
    expect([await open(toPost.id), await open(toVoid.id)]).toEqual([0, 0]);
  });

  it('drops a listed hold that is no longer open instead of revisiting it', async () => {
    const { wallet } = await fundedWallet(1000);
    const merchant = await createAccount('liability');
    const created = await hold(wallet, merchant, 100);
    await penny.request({ method: 'POST', url: `/v1/ledger/entries/${created.id}/void` });
    await penny.pool.query(`INSERT INTO ledger_open_holds (entry_id, expires_at) VALUES ($1, now() - interval '1 day')`,
      [created.id]);
    await penny.ledger.expireDueHolds();
    expect((await penny.pool.query('SELECT 1 FROM ledger_open_holds WHERE entry_id = $1', [created.id])).rowCount)
      .toBe(0);
  });

  it('counts a hold against a guarded account so a later debit beyond the rest is refused', async () => {
    const { wallet } = await fundedWallet(1000, { limit: 'debits_must_not_exceed_credits' });
    const merchant = await createAccount('liability');
    await hold(wallet, merchant, 800);
    const before = await countWrites();
    const response = await postEntry({
      external_reference: reference('guarded'), postings: [leg(wallet, 'debit', 300), leg(merchant, 'credit', 300)],
    });
    expect(response.status).toBe(409);
    expect(response.body.error.code).toBe('insufficient_funds');
    expect(await countWrites()).toEqual(before);
    expect(await balancesOf(wallet)).toMatchObject({ posted: 1000, available: 200 });
  });
});

describe('reversals', () => {
  it('reverses an entry with a mirrored reversal entry that points at it, restoring balances', async () => {
    const cash = await createAccount('asset');
    const wallet = await createAccount('liability');
    const original = await transfer(cash, wallet, 700);
    const response = await penny.request({ method: 'POST', url: `/v1/ledger/entries/${original.id}/reverse` });
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ object: 'ledger.entry', kind: 'reversal', reverses: original.id, status: 'posted' });
    expect(response.body.id).not.toBe(original.id);
    const legs = (postings: Json[]) => postings.map((posting) => [posting.account, posting.direction, posting.amount]);
    expect(legs(response.body.postings)).toEqual(expect.arrayContaining([[cash, 'credit', 700], [wallet, 'debit', 700]]));
    expect(response.body.postings).toHaveLength(2);
    expect(await balancesOf(wallet)).toMatchObject({ posted: 0, available: 0 });
    expect(await balancesOf(cash)).toMatchObject({ posted: 0 });
  });

  it('refuses to reverse an entry a second time with 409 entry_already_reversed', async () => {
    const cash = await createAccount('asset');
    const wallet = await createAccount('liability');
    const original = await transfer(cash, wallet, 700);
    const first = await penny.request({ method: 'POST', url: `/v1/ledger/entries/${original.id}/reverse` });
    expect(first.status).toBe(200);
    const before = await countWrites();
    const second = await penny.request({
      method: 'POST', url: `/v1/ledger/entries/${original.id}/reverse`, body: { external_reference: reference('rev-again') },
    });
    expect(second.status).toBe(409);
    expect(second.body.error.code).toBe('entry_already_reversed');
    expect(await countWrites()).toEqual(before);
    expect(await balancesOf(wallet)).toMatchObject({ posted: 0 });
  });

  it('refuses to reverse a pending hold with 400 entry_not_reversible', async () => {
    const { wallet } = await fundedWallet(1000);
    const merchant = await createAccount('liability');
    const created = await hold(wallet, merchant, 300);
    const before = await countWrites();
    const response = await penny.request({ method: 'POST', url: `/v1/ledger/entries/${created.id}/reverse` });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('entry_not_reversible');
    expect(await countWrites()).toEqual(before);
  });
});

describe('balances and history', () => {
  it('shows the balance as of an instant between two entries as only the first', async () => {
    const cash = await createAccount('asset');
    const wallet = await createAccount('liability');
    await transfer(cash, wallet, 100, { effective_at: '2025-03-01T00:00:00Z' });
    await transfer(cash, wallet, 50, { effective_at: '2025-03-03T00:00:00Z' });
    const between = await penny.request({
      method: 'GET', url: `/v1/ledger/accounts/${wallet}/balance?as_of=2025-03-02T00:00:00Z`,
    });
    expect(between.status).toBe(200);
    expect(between.body).toMatchObject({
      object: 'ledger.balance', account: wallet, currency: 'USD', as_of: '2025-03-02T00:00:00Z',
      posted: 100, credits_posted: 100,
    });
    const after = await penny.request({
      method: 'GET', url: `/v1/ledger/accounts/${wallet}/balance?as_of=2025-03-04T00:00:00Z`,
    });
    expect(after.body.posted).toBe(150);
  });

  it('lists an account\'s postings newest first and pages with starting_after', async () => {
    const cash = await createAccount('asset');
    const wallet = await createAccount('liability');
    await transfer(cash, wallet, 1, { effective_at: '2025-04-01T00:00:00Z' });
    await transfer(cash, wallet, 2, { effective_at: '2025-04-03T00:00:00Z' });
    await transfer(cash, wallet, 3, { effective_at: '2025-04-02T00:00:00Z' });
    const first = await penny.request({ method: 'GET', url: `/v1/ledger/accounts/${wallet}/postings?limit=2` });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ object: 'list', has_more: true });
    expect(first.body.data.map((posting: Json) => posting.amount)).toEqual([2, 3]);
    expect(first.body.data.every((posting: Json) => posting.account === wallet)).toBe(true);
    const cursor = first.body.data.at(-1).id as number;
    const second = await penny.request({
      method: 'GET', url: `/v1/ledger/accounts/${wallet}/postings?limit=2&starting_after=${cursor}`,
    });
    expect(second.status).toBe(200);
    expect(second.body.has_more).toBe(false);
    expect(second.body.data.map((posting: Json) => posting.amount)).toEqual([1]);
  });

  it('refuses a postings cursor too large to be a posting id with 400', async () => {
    const wallet = await createAccount('liability');
    const response = await penny.request({
      method: 'GET', url: `/v1/ledger/accounts/${wallet}/postings?starting_after=9999999999999999999`,
    });
    expect(response.status).toBe(400);
    expect(response.body.error.param).toBe('starting_after');
  });

  it('filters entries by account and by effective time, from inclusive and to exclusive', async () => {
    const cash = await createAccount('asset');
    const wallet = await createAccount('liability');
    const other = await createAccount('liability');
    await transfer(cash, wallet, 1, { effective_at: '2025-06-01T00:00:00Z' });
    const inRange = await transfer(cash, wallet, 2, { effective_at: '2025-06-02T00:00:00Z' });
    await transfer(cash, other, 3, { effective_at: '2025-06-02T12:00:00Z' });
    await transfer(cash, wallet, 4, { effective_at: '2025-06-03T00:00:00Z' });
    const response = await penny.request({
      method: 'GET', url: `/v1/ledger/entries?account=${wallet}&from=2025-06-02T00:00:00Z&to=2025-06-03T00:00:00Z`,
    });
    expect(response.status).toBe(200);
    expect(response.body.data.map((entry: Json) => entry.id)).toEqual([inRange.id]);
    const all = await penny.request({ method: 'GET', url: `/v1/ledger/entries?account=${wallet}` });
    expect(all.body.data.map((entry: { postings: Json[] }) => entry.postings[0]?.amount)).toEqual([4, 2, 1]);
  });

  it('keeps the trial balance at zero difference per currency through entries, holds and reversals', async () => {
    const isolated = await createTestLedger();
    const call = (method: string, url: string, body?: unknown) => isolated.request({ method, url, body });
    const open = async (currency: string, type: AccountType) =>
      (await call('POST', '/v1/ledger/accounts', { currency, type })).body.id as string;
    const book = async (debit: string, credit: string, amount: number, extra: Json = {}) => {
      const response = await call('POST', '/v1/ledger/entries', {
        external_reference: reference('trial'), postings: [leg(debit, 'debit', amount), leg(credit, 'credit', amount)], ...extra,
      });
      expect(response.status, JSON.stringify(response.body)).toBe(200);
      return response.body.id as string;
    };
    const usdCash = await open('USD', 'asset');
    const usdWallet = await open('USD', 'liability');
    const usdFees = await open('USD', 'revenue');
    const eurCash = await open('EUR', 'asset');
    const eurWallet = await open('EUR', 'liability');
    await book(usdCash, usdWallet, 5000, { effective_at: '2025-01-01T00:00:00Z' });
    await book(eurCash, eurWallet, 3000, { effective_at: '2025-01-01T00:00:00Z' });
    const early = await book(usdWallet, usdFees, 100, { effective_at: '2025-02-01T00:00:00Z' });
    const toPost = await book(usdWallet, usdFees, 700, { pending: true });
    expect((await call('POST', `/v1/ledger/entries/${toPost}/post`, { amount: 500 })).status).toBe(200);
    const toVoid = await book(eurWallet, eurCash, 900, { pending: true });
    expect((await call('POST', `/v1/ledger/entries/${toVoid}/void`)).status).toBe(200);
    await book(eurWallet, eurCash, 250, { pending: true });
    expect((await call('POST', `/v1/ledger/entries/${early}/reverse`)).status).toBe(200);

    const now = await call('GET', '/v1/ledger/trial_balance');
    expect(now.status).toBe(200);
    expect(now.body.object).toBe('ledger.trial_balance');
    const byCurrency = new Map((now.body.currencies as Json[]).map((row) => [row.currency, row]));
    expect([...byCurrency.keys()].sort()).toEqual(['EUR', 'USD']);
    expect(byCurrency.get('USD')).toMatchObject({ debits_posted: 5000 + 100 + 500 + 100, credits_posted: 5700, difference: 0 });
    expect(byCurrency.get('EUR')).toMatchObject({ debits_posted: 3000, credits_posted: 3000, difference: 0 });
    expect(byCurrency.get('EUR')).toMatchObject({ debits_pending: 250, credits_pending: 250 });

    const past = await call('GET', '/v1/ledger/trial_balance?as_of=2025-01-15T00:00:00Z');
    expect(past.status).toBe(200);
    expect(past.body.as_of).toBe('2025-01-15T00:00:00Z');
    const pastUsd = (past.body.currencies as Json[]).find((row) => row.currency === 'USD');
    expect(pastUsd).toMatchObject({ debits_posted: 5000, credits_posted: 5000, difference: 0 });
  });
});

describe('insufficient funds', () => {
  it('refuses a debit beyond a guarded account\'s balance with 409 insufficient_funds and writes nothing', async () => {
    const { wallet } = await fundedWallet(100, { limit: 'debits_must_not_exceed_credits' });
    const merchant = await createAccount('liability');
    const before = await countWrites();
    const response = await postEntry({
      external_reference: reference('nsf'), postings: [leg(wallet, 'debit', 150), leg(merchant, 'credit', 150)],
    });
    expect(response.status).toBe(409);
    expect(response.body.error.code).toBe('insufficient_funds');
    expect(await countWrites()).toEqual(before);
    expect(await balancesOf(wallet)).toMatchObject({ posted: 100, debits_posted: 0 });
    expect(await balancesOf(merchant)).toMatchObject({ posted: 0 });
  });

  it('refuses a must_not_overdraw posting beyond available on an unlimited account with 409', async () => {
    const { wallet } = await fundedWallet(100);
    const merchant = await createAccount('liability');
    const before = await countWrites();
    const response = await postEntry({
      external_reference: reference('overdraw'),
      postings: [leg(wallet, 'debit', 150, { must_not_overdraw: true }), leg(merchant, 'credit', 150)],
    });
    expect(response.status).toBe(409);
    expect(response.body.error.code).toBe('insufficient_funds');
    expect(await countWrites()).toEqual(before);
    expect(await balancesOf(wallet)).toMatchObject({ posted: 100 });
  });

  it('allows the same posting beyond available without must_not_overdraw', async () => {
    const { wallet } = await fundedWallet(100);
    const merchant = await createAccount('liability');
    const response = await postEntry({
      external_reference: reference('overdraw-allowed'),
      postings: [leg(wallet, 'debit', 150), leg(merchant, 'credit', 150)],
    });
    expect(response.status).toBe(200);
    expect(await balancesOf(wallet)).toMatchObject({ posted: -50 });
  });
});
