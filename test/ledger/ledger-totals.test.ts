import { beforeAll, describe, expect, it } from 'vitest';
import { checkStoredBalances } from '../../src/ledger/ledger-verify.js';
import { createTestLedger, operatorKey, type TestLedger } from '../support/app.js';

/**
 * An account's totals (debits and credits since it was opened) are kept in a type that cannot
 * overflow: past 2^63-1 (about 1,025 postings of the largest amount on one side), they still post,
 * read exactly, and compact, so one account can never stop compaction for the whole ledger.
 */
let penny: TestLedger;

beforeAll(async () => {
  penny = await createTestLedger();
});

const maxAmount = Number.MAX_SAFE_INTEGER;
const bigintMax = 2n ** 63n - 1n;

async function openAccount(type: 'asset' | 'liability'): Promise<string> {
  const response = await penny.request({ method: 'POST', url: '/v1/ledger/accounts', body: { currency: 'USD', type } });
  expect(response.status).toBe(200);
  return response.body.id as string;
}

/** One entry of `n` maximal debits on `debit` and as many maximal credits on `credit`. */
function maximalEntry(reference: string, accounts: { debit: string; credit: string }, n = 50) {
  return { external_reference: reference, postings: [
    ...Array.from({ length: n }, () => ({ account: accounts.debit, direction: 'debit', amount: maxAmount })),
    ...Array.from({ length: n }, () => ({ account: accounts.credit, direction: 'credit', amount: maxAmount })),
  ] };
}

/** The account's balances as the API's raw JSON text has them (a parsed number would round). */
async function rawBalances(account: string): Promise<string> {
  const response = await penny.app.inject({ method: 'GET', url: `/v1/ledger/accounts/${account}`,
    headers: { authorization: `Bearer ${operatorKey}` } });
  expect(response.statusCode).toBe(200);
  return /"balances":(\{[^}]*\})/.exec(response.body)?.[1] ?? response.body;
}

async function storedTotals(account: string): Promise<{ debits: string; credits: string }> {
  const result = await penny.pool.query<{ debits: string; credits: string }>(`SELECT debits_posted::text AS debits,
     credits_posted::text AS credits FROM ledger_account_balances WHERE account_id = $1`, [account]);
  const row = result.rows[0];
  if (row === undefined) throw new Error(`no balance row for ${account}`);
  return row;
}

async function compactAll(): Promise<void> {
  let folded = 1;
  while (folded > 0) {
    const result = await penny.pool.query<{ folded: number }>('SELECT ledger_compact_balances(100000) AS folded');
    folded = result.rows[0]?.folded ?? 0;
  }
  expect((await penny.pool.query('SELECT 1 FROM ledger_balance_changes')).rows).toEqual([]);
}

describe('an account whose totals pass 2^63-1', () => {
  it('posts, compacts with the rest of the ledger, and reads exactly before and after', async () => {
    const cash = await openAccount('asset');
    const wallet = await openAccount('liability');
    const entries = 22;
    for (let index = 0; index < entries; index += 1) {
      const response = await penny.request({ method: 'POST', url: '/v1/ledger/entries',
        body: maximalEntry(`totals-${index}`, { debit: cash, credit: wallet }) });
      expect(response.status).toBe(200);
    }
    // Another account's posting after them: compaction must fold it too.
    const [other, otherWallet] = [await openAccount('asset'), await openAccount('liability')];
    const after = await penny.request({ method: 'POST', url: '/v1/ledger/entries', body: { external_reference: 'after',
      postings: [{ account: other, direction: 'debit', amount: 7 }, { account: otherWallet, direction: 'credit', amount: 7 }] } });
    expect(after.status).toBe(200);
    const total = BigInt(entries * 50) * BigInt(maxAmount);
    expect(total).toBeGreaterThan(bigintMax);
    const expected = `{"posted":${total},"pending":0,"available":${total},"debits_posted":${total},"credits_posted":0,`
      + '"debits_pending":0,"credits_pending":0}';
    expect(await rawBalances(cash)).toBe(expected);

    await compactAll();

    expect(await storedTotals(cash)).toEqual({ debits: total.toString(), credits: '0' });
    expect(await storedTotals(wallet)).toEqual({ debits: '0', credits: total.toString() });
    expect(await storedTotals(other)).toEqual({ debits: '7', credits: '0' });
    expect(await rawBalances(cash)).toBe(expected);
    expect((await checkStoredBalances(penny.pool)).failures).toEqual([]);
  });

  it('posts in one statement (a batch) whose sums on one account pass 2^63-1, and compacts', async () => {
    const cash = await openAccount('asset');
    const wallet = await openAccount('liability');
    const entries = Array.from({ length: 22 }, (_, index) =>
      maximalEntry(`totals-batch-${index}`, { debit: cash, credit: wallet }));
    const response = await penny.request({ method: 'POST', url: '/v1/ledger/entries/batch', body: { entries } });
    expect(response.status).toBe(200);
    const total = BigInt(22 * 50) * BigInt(maxAmount);
    await compactAll();
    expect(await storedTotals(wallet)).toEqual({ debits: '0', credits: total.toString() });
    expect((await checkStoredBalances(penny.pool)).failures).toEqual([]);
  });
});
