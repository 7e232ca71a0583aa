import { parse } from 'csv-parse/sync';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { limits } from '../../src/config.js';
import { createTestLedger, operatorKey, type TestLedger } from '../support/app.js';

/**
 * The ledger's reports through the operator API on a real database: statements, the trial
 * balance by account and the balance as of an instant, as JSON and as CSV (`?format=csv`).
 */
let penny: TestLedger;

beforeAll(async () => {
  penny = await createTestLedger();
});

/** The bound is a constant; tests lower it to see reports cross page boundaries. */
const mutableLimits = limits as unknown as { ledgerReportRowsPerQueryMax: number };
const rowsPerQuery: number = limits.ledgerReportRowsPerQueryMax;
afterEach(() => {
  mutableLimits.ledgerReportRowsPerQueryMax = rowsPerQuery;
});

type Json = Record<string, unknown>;
let counter = 0;

async function account(type: string, currency = 'USD', extra: Json = {}): Promise<string> {
  const response = await penny.request({ method: 'POST', url: '/v1/ledger/accounts', body: { currency, type, ...extra } });
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  return response.body.id as string;
}

/** An entry debiting `debit` and crediting `credit`, effective at `at`; returns its id. */
async function move(debit: string, credit: string, amount: number, at: string, extra: Json = {}): Promise<string> {
  counter += 1;
  const response = await penny.request({ method: 'POST', url: '/v1/ledger/entries', body: {
    external_reference: `report-${counter}`, effective_at: at,
    postings: [{ account: debit, direction: 'debit', amount }, { account: credit, direction: 'credit', amount }],
    ...extra,
  } });
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  return response.body.id as string;
}

function csv(text: string): Record<string, string>[] {
  return parse(text, { columns: true }) as Record<string, string>[];
}

/** A wallet (liability) with deposits on the 1st, 2nd, 3rd and 4th of March, and a withdrawal on the 3rd. */
async function walletWithHistory() {
  const cash = await account('asset');
  const wallet = await account('liability');
  await move(cash, wallet, 1000, '2026-03-01T10:00:00Z');
  await move(cash, wallet, 250, '2026-03-02T10:00:00Z');
  await move(wallet, cash, 100, '2026-03-03T10:00:00Z');
  await move(cash, wallet, 5, '2026-03-03T11:00:00Z');
  await move(cash, wallet, 7, '2026-03-04T00:00:00Z');
  return { cash, wallet };
}

const march2to4 = 'from=2026-03-02T00:00:00Z&to=2026-03-04T00:00:00Z';

describe('GET /v1/ledger/accounts/:id/statement', () => {
  it('gives the opening balance, the period\'s postings with running balances, and the closing balance', async () => {
    const { wallet } = await walletWithHistory();
    const response = await penny.request({ method: 'GET', url: `/v1/ledger/accounts/${wallet}/statement?${march2to4}` });
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    expect(response.body).toMatchObject({
      object: 'ledger.statement', account: wallet, currency: 'USD', normal_balance: 'credit',
      opening_balance: 1000, debits_posted: 100, credits_posted: 255, closing_balance: 1155,
    });
    const lines = response.body.postings.data as Json[];
    expect(lines.map((line) => [line.direction, line.amount, line.running_balance])).toEqual([
      ['credit', 250, 1250], ['debit', 100, 1150], ['credit', 5, 1155],
    ]);
    expect(lines[0]).toMatchObject({ effective_at: '2026-03-02T10:00:00.000000Z' });
    expect(lines[0]?.external_reference).toMatch(/^report-/);
    expect(response.body.postings.has_more).toBe(false);
  });

  it('pages with starting_after, the running balance carrying on from the page before', async () => {
    const { wallet } = await walletWithHistory();
    const url = `/v1/ledger/accounts/${wallet}/statement?from=2026-03-01T00:00:00Z&to=2026-03-05T00:00:00Z&limit=2`;
    const first = await penny.request({ method: 'GET', url });
    expect(first.body.postings.has_more).toBe(true);
    const last = first.body.postings.data.at(-1);
    const second = await penny.request({ method: 'GET', url: `${url}&starting_after=${last.posting}` });
    expect(second.status, JSON.stringify(second.body)).toBe(200);
    expect(first.body.postings.data.map((line: Json) => line.running_balance)).toEqual([1000, 1250]);
    expect(second.body.postings.data.map((line: Json) => line.running_balance)).toEqual([1150, 1155]);
    const third = await penny.request({ method: 'GET', url: `${url}&starting_after=${second.body.postings.data.at(-1).posting}` });
    expect(third.body.postings.data.map((line: Json) => line.running_balance)).toEqual([1162]);
    expect(third.body.postings.has_more).toBe(false);
  });

  it('leaves a hold out: its pending amount moves no posted balance', async () => {
    const cash = await account('asset');
    const wallet = await account('liability');
    await move(cash, wallet, 500, '2026-03-02T10:00:00Z');
    await move(wallet, cash, 200, '2026-03-02T11:00:00Z', { pending: true });
    const response = await penny.request({ method: 'GET', url: `/v1/ledger/accounts/${wallet}/statement?${march2to4}` });
    expect(response.body.postings.data).toHaveLength(1);
    expect(response.body.closing_balance).toBe(500);
  });

  it('streams the whole period as CSV, reading in pages of the bounded size', async () => {
    mutableLimits.ledgerReportRowsPerQueryMax = 2;
    const { wallet } = await walletWithHistory();
    const response = await penny.request({ method: 'GET',
      url: `/v1/ledger/accounts/${wallet}/statement?from=2026-03-01T00:00:00Z&to=2026-03-05T00:00:00Z&format=csv` });
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe('text/csv; charset=utf-8');
    const rows = csv(response.body as string);
    const columns = (row: Record<string, string>) =>
      [row.line, row.direction, row.amount_minor, row.amount, row.balance_minor, row.balance];
    expect(rows.map(columns)).toEqual([
      ['opening', '', '', '', '0', '0.00'],
      ['posting', 'credit', '1000', '10.00', '1000', '10.00'],
      ['posting', 'credit', '250', '2.50', '1250', '12.50'],
      ['posting', 'debit', '100', '1.00', '1150', '11.50'],
      ['posting', 'credit', '5', '0.05', '1155', '11.55'],
      ['posting', 'credit', '7', '0.07', '1162', '11.62'],
      ['closing', '', '', '', '1162', '11.62'],
    ]);
  });

  it('gives its snapshot\'s connection back to the pool when the reader of a CSV stream goes away', async () => {
    const cash = await account('asset');
    const wallet = await account('liability');
    const entries = Array.from({ length: 1000 }, (_, index) => ({
      external_reference: `abandoned-${index}`, effective_at: '2026-03-10T00:00:00Z',
      postings: [{ account: cash, direction: 'debit', amount: 1 }, { account: wallet, direction: 'credit', amount: 1 }],
    }));
    const batch = await penny.request({ method: 'POST', url: '/v1/ledger/entries/batch', body: { entries } });
    expect(batch.status).toBe(200);
    // One row per query: the 1,000 rows take far longer to read than the reader stays.
    mutableLimits.ledgerReportRowsPerQueryMax = 1;
    await penny.app.listen({ port: 0, host: '127.0.0.1' });
    const address = penny.app.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const controller = new AbortController();
    const response = await fetch(`http://127.0.0.1:${port}/v1/ledger/accounts/${wallet}/statement?`
      + 'from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z&format=csv',
    { headers: { authorization: `Bearer ${operatorKey}` }, signal: controller.signal });
    expect(response.status).toBe(200);
    await response.body?.getReader().read();
    expect(penny.pool.totalCount - penny.pool.idleCount).toBeGreaterThan(0);
    controller.abort();
    await expect.poll(() => penny.pool.totalCount - penny.pool.idleCount, { timeout: 10_000 }).toBe(0);
  });

  it('refuses a statement without a period', async () => {
    const { wallet } = await walletWithHistory();
    const response = await penny.request({ method: 'GET', url: `/v1/ledger/accounts/${wallet}/statement?from=2026-03-01T00:00:00Z` });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: 'parameter_missing', param: 'to' });
  });

  it('answers 404 for an unknown account, also in CSV', async () => {
    const response = await penny.request({ method: 'GET',
      url: `/v1/ledger/accounts/lacc_doesnotexist000/statement?${march2to4}&format=csv` });
    expect(response.status).toBe(404);
    expect(response.body.error).toMatchObject({ code: 'account_not_found' });
  });
});

describe('the trial balance by account', () => {
  it('lists each account\'s debits and credits in CSV with decimals, and a balanced total per currency', async () => {
    const cash = await account('asset', 'KWD');
    const equity = await account('equity', 'KWD', { code: 'capital' });
    const fees = await account('expense', 'KWD');
    await move(cash, equity, 10_000, '2026-03-01T10:00:00Z');
    await move(fees, cash, 1_250, '2026-03-02T10:00:00Z');
    const response = await penny.request({ method: 'GET', url: '/v1/ledger/trial_balance?format=csv' });
    expect(response.status).toBe(200);
    const rows = csv(response.body as string).filter((row) => row.currency === 'KWD');
    const byAccount = new Map(rows.map((row) => [row.account, row]));
    expect(byAccount.get(cash)).toMatchObject({ line: 'account', type: 'asset', debits_posted_minor: '10000',
      credits_posted_minor: '1250', debits_posted: '10.000', credits_posted: '1.250', debit_balance: '8.750',
      credit_balance: '0.000' });
    expect(byAccount.get(equity)).toMatchObject({ code: 'capital', credit_balance_minor: '10000', debit_balance_minor: '0' });
    expect(byAccount.get(fees)).toMatchObject({ debit_balance: '1.250' });
    const total = rows.find((row) => row.line === 'total');
    expect(total).toMatchObject({ accounts: '3', debits_posted_minor: '11250', credits_posted_minor: '11250',
      debit_balance_minor: '10000', credit_balance_minor: '10000' });
    expect(rows.at(-1)).toBe(total);
  });

  it('sums the postings up to as_of for a past instant', async () => {
    const cash = await account('asset', 'CHF');
    const wallet = await account('liability', 'CHF');
    await move(cash, wallet, 300, '2026-03-01T10:00:00Z');
    await move(cash, wallet, 40, '2026-03-03T10:00:00Z');
    const response = await penny.request({ method: 'GET', url: '/v1/ledger/trial_balance?format=csv&as_of=2026-03-02T00:00:00Z' });
    const row = csv(response.body as string).find((line) => line.account === wallet);
    expect(row).toMatchObject({ credits_posted_minor: '300', credit_balance: '3.00' });
  });

  it('pages the account lines as JSON with a cursor', async () => {
    mutableLimits.ledgerReportRowsPerQueryMax = 2;
    const cash = await account('asset', 'SEK');
    const wallets = [await account('liability', 'SEK'), await account('liability', 'SEK'), await account('liability', 'SEK')];
    for (const wallet of wallets) await move(cash, wallet, 100, '2026-03-01T10:00:00Z');
    const seen: Json[] = [];
    let startingAfter: string | undefined;
    for (let page = 0; page < 50; page += 1) {
      const response = await penny.request({ method: 'GET',
        url: `/v1/ledger/trial_balance/accounts?limit=3${startingAfter === undefined ? '' : `&starting_after=${startingAfter}`}` });
      expect(response.status, JSON.stringify(response.body)).toBe(200);
      seen.push(...response.body.data);
      if (!response.body.has_more) break;
      startingAfter = response.body.data.at(-1).account;
    }
    const sek = seen.filter((line) => line.currency === 'SEK');
    expect(sek.map((line) => line.account).sort()).toEqual([cash, ...wallets].sort());
    expect(new Set(seen.map((line) => line.account)).size).toBe(seen.length);
    expect(sek.find((line) => line.account === cash))
      .toMatchObject({ debits_posted: 300, debit_balance: 300, credit_balance: 0 });
  });
});

describe('GET /v1/ledger/accounts/:id/balance?format=csv', () => {
  it('gives the balance as of an instant, in minor units and decimals', async () => {
    const cash = await account('asset', 'JPY');
    const wallet = await account('liability', 'JPY');
    await move(cash, wallet, 1200, '2026-03-01T10:00:00Z');
    await move(cash, wallet, 34, '2026-03-05T10:00:00Z');
    const response = await penny.request({ method: 'GET',
      url: `/v1/ledger/accounts/${wallet}/balance?as_of=2026-03-02T00:00:00Z&format=csv` });
    expect(response.status).toBe(200);
    expect(csv(response.body as string)).toEqual([expect.objectContaining({
      account: wallet, currency: 'JPY', as_of: '2026-03-02T00:00:00Z', posted_minor: '1200', posted: '1200',
      available: '1200', credits_posted_minor: '1200',
    })]);
  });

  it('refuses a format it does not know', async () => {
    const cash = await account('asset');
    const response = await penny.request({ method: 'GET', url: `/v1/ledger/accounts/${cash}/balance?format=xlsx` });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ param: 'format' });
  });
});
