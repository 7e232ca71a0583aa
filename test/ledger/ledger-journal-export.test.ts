import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { limits } from '../../src/config.js';
import { exportJournal, journalAccountName, type JournalFormat } from '../../src/ledger/ledger-journal-export.js';
import { LedgerReports } from '../../src/ledger/ledger-reports.js';
import { decimalToMinor } from '../../src/reconciliation/decimal-minor.js';
import { createTestLedger, type TestLedger } from '../support/app.js';

/**
 * `penny report journal`'s export on a real database: hledger reads it and its balance report
 * agrees with Penny's trial balance to the minor unit; the beancount file has valid account
 * names, declarations and balanced transactions. The export reads two rows per query here, so
 * every page boundary is crossed.
 */
const hledger = spawnSync('hledger', ['--version'], { encoding: 'utf8' }).status === 0;
if (!hledger) {
  process.stderr.write('ledger-journal-export.test.ts: hledger is not installed, so the hledger check is skipped; '
    + 'install the Debian package hledger (apt-get install -y hledger), as .ci/run does.\n');
}

let penny: TestLedger;
const mutableLimits = limits as unknown as {
  ledgerReportRowsPerQueryMax: number; ledgerJournalEntriesPerQueryMax: number };
const saved = { ...mutableLimits };
const ids: Record<string, string> = {};
let holdId = '';
let holdPostId = '';
let voidedHoldId = '';

type Json = Record<string, unknown>;
let counter = 0;

async function request(url: string, body: Json): Promise<Json> {
  const response = await penny.request({ method: 'POST', url, body });
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  return response.body as Json;
}

async function account(name: string, type: string, currency: string, code?: string): Promise<void> {
  ids[name] = (await request('/v1/ledger/accounts', { type, currency, ...(code === undefined ? {} : { code }) })).id as string;
}

async function move(debit: string, credit: string, amount: number, at: string, extra: Json = {}): Promise<string> {
  counter += 1;
  return (await request('/v1/ledger/entries', {
    external_reference: `journal-${counter}`, effective_at: at,
    postings: [{ account: ids[debit], direction: 'debit', amount }, { account: ids[credit], direction: 'credit', amount }],
    ...extra,
  })).id as string;
}

beforeAll(async () => {
  penny = await createTestLedger();
  mutableLimits.ledgerReportRowsPerQueryMax = 2;
  mutableLimits.ledgerJournalEntriesPerQueryMax = 2;
  await account('cash', 'asset', 'USD', 'bank:operating/€ main');
  await account('capital', 'equity', 'USD', 'owner capital');
  await account('wallet', 'liability', 'USD', '2nd wallet');
  await account('revenue', 'revenue', 'USD', 'penny_revenue');
  await account('fees', 'expense', 'USD');
  await account('yenCash', 'asset', 'JPY');
  await account('yenWallet', 'liability', 'JPY');
  await account('dinarCash', 'asset', 'KWD');
  await account('dinarCapital', 'equity', 'KWD');
  await move('cash', 'capital', 1_000_000, '2026-02-27T23:59:59.999999Z', { description: 'Seed; capital "A"\nsecond line' });
  await move('cash', 'wallet', 12_345, '2026-03-01T10:00:00Z');
  await move('wallet', 'revenue', 299, '2026-03-01T10:00:01Z');
  await move('fees', 'cash', 31, '2026-03-02T00:00:00Z', { description: 'a back\\slash' });
  await move('yenCash', 'yenWallet', 98_765, '2026-03-02T12:00:00Z');
  await move('dinarCash', 'dinarCapital', 1_250, '2026-03-03T08:00:00Z');
  holdId = await move('wallet', 'cash', 1_000, '2026-03-04T09:00:00Z', { pending: true });
  holdPostId = (await request(`/v1/ledger/entries/${holdId}/post`, { amount: 600 })).id as string;
  voidedHoldId = await move('wallet', 'cash', 50, '2026-03-04T10:00:00Z', { pending: true });
  await request(`/v1/ledger/entries/${voidedHoldId}/void`, {});
});

afterAll(() => {
  Object.assign(mutableLimits, saved);
});

async function journal(format: JournalFormat, range: { from?: string; to?: string } = {}): Promise<string> {
  let text = '';
  for await (const chunk of exportJournal(penny.pool, { format, ...range })) text += chunk;
  return text;
}

/** Penny's trial balance as `account name|currency` → debits − credits, and per currency. */
async function pennyNets(): Promise<{ accounts: Map<string, bigint>; currencies: Map<string, bigint> }> {
  const accounts = new Map<string, bigint>();
  const currencies = new Map<string, bigint>();
  for await (const line of new LedgerReports(penny.pool).trialBalanceLines({ asOf: undefined, totals: true })) {
    const net = line.debitsPosted - line.creditsPosted;
    if (line.line === 'total') {
      currencies.set(line.currency, net);
    } else if (net !== 0n) {
      accounts.set(`${journalAccountName({ id: line.account, type: line.type, code: line.code })}|${line.currency}`, net);
    }
  }
  return { accounts, currencies };
}

describe('the hledger export', () => {
  const title = 'opens in hledger (strict), whose balance report agrees with the trial balance to the minor unit';
  it.skipIf(!hledger)(hledger ? title : `${title} (skipped: install the Debian package hledger)`,
    async () => {
      const directory = await fs.mkdtemp(path.join(os.tmpdir(), 'penny-journal-'));
      try {
        const file = path.join(directory, 'penny.journal');
        await fs.writeFile(file, await journal('hledger'));
        const { stdout } = await promisify(execFile)('hledger',
          ['-f', file, '--strict', 'balance', '--flat', '--no-total', '--layout=bare', '-O', 'csv']);
        const rows = stdout.trim().split('\n').slice(1).map((line) => JSON.parse(`[${line}]`) as string[]);
        const accounts = new Map<string, bigint>();
        const currencies = new Map<string, bigint>();
        for (const [name = '', currency = '', amount = ''] of rows) {
          const minor = decimalToMinor(amount, currency, { separator: '.', signed: true });
          if (minor !== 0n) accounts.set(`${name}|${currency}`, minor);
          currencies.set(currency, (currencies.get(currency) ?? 0n) + minor);
        }
        const expected = await pennyNets();
        expect(accounts).toEqual(expected.accounts);
        expect(currencies).toEqual(expected.currencies);
        expect(accounts.get(`${journalAccountName({ id: ids.cash as string, type: 'asset', code: 'bank:operating/€ main' })}|USD`))
          .toBe(1_000_000n + 12_345n - 31n - 600n);
      } finally {
        await fs.rm(directory, { recursive: true, force: true });
      }
    });

  it('writes a hold\'s post with its posted amount only, and leaves the hold and a voided hold out', async () => {
    const text = await journal('hledger');
    expect(text).not.toContain(`(${holdId})`);
    expect(text).not.toContain(`(${voidedHoldId})`);
    const post = text.split('\n\n').find((block) => block.includes(`(${holdPostId})`)) ?? '';
    expect(post.split('\n').filter((line) => /^ {4}[A-Z]/.test(line)).map((line) => line.trim().split(/\s{2,}/)[1]))
      .toEqual(['6.00 USD', '-6.00 USD']);
  });

  it('keeps a description on its line: a ";" would start a comment, a newline a new line', async () => {
    const text = await journal('hledger');
    expect(text).toContain('Seed, capital "A" second line\n');
  });

  it('takes only the entries effective in [from, to)', async () => {
    const text = await journal('hledger', { from: '2026-03-01T10:00:00Z', to: '2026-03-02T00:00:00Z' });
    const headers = text.split('\n').filter((line) => /^\d{4}-\d{2}-\d{2} \*/.test(line));
    expect(headers).toHaveLength(2);
    expect(headers.every((line) => line.startsWith('2026-03-01'))).toBe(true);
  });
});

describe('the beancount export', () => {
  const accountName = /^(Assets|Liabilities|Equity|Income|Expenses)(:[A-Z][A-Za-z0-9-]*)+$/;

  it('names every account validly, opens it no later than its first posting and declares each commodity', async () => {
    const lines = (await journal('beancount')).split('\n');
    const opened = new Map<string, string>();
    const commodities = new Set<string>();
    for (const line of lines) {
      const open = /^(\d{4}-\d{2}-\d{2}) open (\S+) ([A-Z]{3})$/.exec(line);
      if (open !== null) {
        expect(open[2]).toMatch(accountName);
        opened.set(open[2] as string, open[1] as string);
      }
      const commodity = /^\d{4}-\d{2}-\d{2} commodity ([A-Z]{3})$/.exec(line);
      if (commodity !== null) commodities.add(commodity[1] as string);
    }
    let date = '';
    let postings = 0;
    for (const line of lines) {
      const header = /^(\d{4}-\d{2}-\d{2}) \* /.exec(line);
      if (header !== null) date = header[1] as string;
      const posting = /^ {2}([A-Z]\S*) {2}(-?\d+(?:\.\d+)?) ([A-Z]{3})$/.exec(line);
      if (posting === null) continue;
      postings += 1;
      expect(posting[1]).toMatch(accountName);
      expect(opened.get(posting[1] as string) ?? '9999', line).toBeTruthy();
      expect((opened.get(posting[1] as string) ?? '9999') <= date, `${posting[1]} opened after ${date}`).toBe(true);
      expect(commodities.has(posting[3] as string)).toBe(true);
    }
    expect(postings).toBe(14);
    expect(opened.size).toBeGreaterThanOrEqual(9);
  });

  it('writes transactions that balance in each currency, with quoted, escaped narrations', async () => {
    const blocks = (await journal('beancount')).split('\n\n').filter((block) => /^\d{4}-\d{2}-\d{2} \* /.test(block));
    expect(blocks).toHaveLength(7);
    for (const block of blocks) {
      const [header = ''] = block.split('\n');
      expect(header).toMatch(/^\d{4}-\d{2}-\d{2} \* "(?:[^"\\]|\\.)*"$/);
      const sums = new Map<string, bigint>();
      for (const line of block.split('\n')) {
        const posting = /^ {2}[A-Z]\S* {2}(-?\d+(?:\.\d+)?) ([A-Z]{3})$/.exec(line);
        if (posting === null) continue;
        const currency = posting[2] as string;
        sums.set(currency, (sums.get(currency) ?? 0n) + decimalToMinor(posting[1] as string, currency, { separator: '.', signed: true }));
      }
      expect(sums.size, block).toBeGreaterThan(0);
      for (const sum of sums.values()) expect(sum, block).toBe(0n);
    }
    expect(blocks.some((block) => block.startsWith('2026-02-27 * "Seed; capital \\"A\\" second line"'))).toBe(true);
    expect(blocks.some((block) => block.includes('"a back\\\\slash"'))).toBe(true);
  });
});

describe('journalAccountName', () => {
  it('makes a valid name of any code: words capitalized, odd characters dropped, a leading digit prefixed', () => {
    expect(journalAccountName({ id: 'lacc_aZ09', type: 'revenue', code: 'penny_revenue' })).toBe('Income:Penny-Revenue:Lacc-aZ09');
    expect(journalAccountName({ id: 'lacc_x', type: 'liability', code: '2nd wallet' })).toBe('Liabilities:C2nd-Wallet:Lacc-x');
    expect(journalAccountName({ id: 'lacc_x', type: 'asset', code: '€€€' })).toBe('Assets:Uncoded:Lacc-x');
    expect(journalAccountName({ id: 'lacc_x', type: 'expense', code: null })).toBe('Expenses:Uncoded:Lacc-x');
  });
});
