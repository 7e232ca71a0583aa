import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rootFallbackDirectory } from '../../src/db/embedded-postgres.js';
import { LedgerService } from '../../src/ledger/ledger-service.js';
import { parseCreateEntry } from '../../src/ledger/ledger-validation.js';
import { pennyBin } from '../support/child-penny.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * `penny report …` as a user runs it: the built bin, in its own process, straight on the
 * database. Exit 0 on success, 1 on a failure it explains, 2 on wrong usage.
 */
interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function penny(args: string[], databaseUrl = database.url): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [pennyBin, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME,
      DATABASE_URL: databaseUrl, PENNY_DATA_DIR: dataDirectory, PENNY_OPERATOR_KEY: 'op_cli_test_0123456789abcdefghij' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

let database: TestDatabase;
let dataDirectory: string;
let cash: string;
let owed: string;

beforeAll(async () => {
  database = await createTestDatabase();
  dataDirectory = await fs.mkdtemp(path.join('/var/tmp', 'penny-report-cli-'));
  const ledger = new LedgerService(database.pool);
  const account = async (type: 'asset' | 'liability') => (await ledger.createAccount({ currency: 'EUR', type,
    code: undefined, owner: undefined, metadata: {}, limit: undefined })).id;
  cash = await account('asset');
  owed = await account('liability');
  for (const [index, day] of ['01', '02', '03'].entries()) {
    await ledger.createEntry(parseCreateEntry({
      external_reference: `report-cli-${index}`,
      effective_at: `2026-04-${day}T12:00:00Z`,
      postings: [
        { account: cash, direction: 'debit', amount: 100 + index },
        { account: owed, direction: 'credit', amount: 100 + index },
      ],
    }, { amountMaxMinor: 1_000_000n }));
  }
});

afterAll(async () => {
  await fs.rm(dataDirectory, { recursive: true, force: true });
  await fs.rm(rootFallbackDirectory(path.join(dataDirectory, 'embedded', 'postgres')), { recursive: true, force: true });
});

describe('penny report trial-balance', () => {
  it('prints every account and the currency\'s total as CSV', async () => {
    const run = await penny(['report', 'trial-balance', '--format', 'csv']);
    expect(run.code, run.stderr).toBe(0);
    const rows = parse(run.stdout, { columns: true }) as Record<string, string>[];
    expect(rows.map((row) => [row.line, row.account, row.debits_posted, row.credits_posted])).toEqual([
      ...[[cash, '3.03', '0.00'], [owed, '0.00', '3.03']].sort().map((line) => ['account', ...line]),
      ['total', '', '3.03', '3.03'],
    ]);
  });

  it('prints one JSON document with --json, as of an instant', async () => {
    const run = await penny(['report', 'trial-balance', '--as-of', '2026-04-02T12:00:00Z', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.accounts).toHaveLength(2);
    expect(report.currencies).toEqual([{ currency: 'EUR', accounts: 2, debits_posted: 201, credits_posted: 201,
      difference: 0, debit_balance: 201, credit_balance: 201 }]);
  });

  it('exits 1 when a currency does not balance, its one JSON document carrying the error', async () => {
    const tampered = await createTestDatabase();
    const ledger = new LedgerService(tampered.pool);
    const account = async (type: 'asset' | 'liability') => (await ledger.createAccount({ currency: 'USD', type,
      code: undefined, owner: undefined, metadata: {}, limit: undefined })).id;
    const created = await ledger.createEntry(parseCreateEntry({ external_reference: 'to-tamper', postings: [
      { account: await account('asset'), direction: 'debit', amount: 500 },
      { account: await account('liability'), direction: 'credit', amount: 500 },
    ] }, { amountMaxMinor: 1_000_000n }));
    const client = await tampered.pool.connect();
    try {
      // Behind Penny's back: the debit alone is changed, its triggers off.
      await client.query('BEGIN');
      await client.query('SET LOCAL session_replication_role = replica');
      await client.query(`UPDATE ledger_postings SET amount_minor = 5 WHERE entry_id = $1 AND direction = 'debit'`,
        [created.entries[0]?.id]);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    const run = await penny(['report', 'trial-balance', '--as-of', '2100-01-01T00:00:00Z', '--json'], tampered.url);
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout);
    expect(report.error).toMatchObject({ code: 'check_failed', message: 'Debits and credits differ in USD.' });
    expect(report.currencies).toEqual([expect.objectContaining({ currency: 'USD', difference: -495 })]);
    expect(run.stderr).toContain('Debits and credits differ in USD.');
  });

  it('treats a malformed --as-of as wrong usage (exit 2)', async () => {
    const run = await penny(['report', 'trial-balance', '--as-of', 'yesterday']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('ISO 8601');
  });
});

describe('penny report statement', () => {
  it('prints the period\'s opening balance, postings and closing balance as one JSON document', async () => {
    const run = await penny(['report', 'statement', owed, '--from', '2026-04-02T00:00:00Z', '--to', '2026-04-04T00:00:00Z',
      '--json']);
    expect(run.code, run.stderr).toBe(0);
    const statement = JSON.parse(run.stdout);
    expect(statement).toMatchObject({ object: 'ledger.statement', account: owed, opening_balance: 100,
      closing_balance: 303, credits_posted: 203 });
    expect(statement.postings.map((line: { running_balance: number }) => line.running_balance)).toEqual([201, 303]);
  });

  it('prints CSV lines from the opening to the closing balance', async () => {
    const run = await penny(['report', 'statement', cash, '--from', '2026-04-01T00:00:00Z', '--to', '2026-04-02T00:00:00Z',
      '--format', 'csv']);
    expect(run.code, run.stderr).toBe(0);
    const rows = parse(run.stdout, { columns: true }) as Record<string, string>[];
    expect(rows.map((row) => [row.line, row.external_reference, row.amount, row.balance])).toEqual([
      ['opening', '', '', '0.00'], ['posting', 'report-cli-0', '1.00', '1.00'], ['closing', '', '', '1.00'],
    ]);
  });

  it('prints a readable statement without --format', async () => {
    const run = await penny(['report', 'statement', owed, '--from', '2026-04-01T00:00:00Z', '--to', '2026-05-01T00:00:00Z']);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines[1]).toBe('2026-04-01T00:00:00Z  opening balance  0.00');
    expect(lines.filter((line) => line.includes('report-cli-'))).toHaveLength(3);
    expect(lines.at(-1)).toBe('2026-05-01T00:00:00Z  closing balance  3.03');
  });

  it('needs --from and --to (exit 2 without them)', async () => {
    const run = await penny(['report', 'statement', cash, '--from', '2026-04-01T00:00:00Z']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--to');
  });
});

describe('penny report balance', () => {
  it('prints the balance as of an instant', async () => {
    const run = await penny(['report', 'balance', owed, '--as-of', '2026-04-01T12:00:00Z', '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ object: 'ledger.balance', account: owed, posted: 100 });
  });

  it('explains an unknown account, exit 1, with one JSON error object', async () => {
    const run = await penny(['report', 'balance', 'lacc_doesnotexist000', '--json']);
    expect(run.code).toBe(1);
    expect(JSON.parse(run.stdout)).toEqual({ error: expect.objectContaining({ code: 'account_not_found' }) });
  });
});

describe('penny report journal', () => {
  it('writes the journal for hledger on stdout', async () => {
    const run = await penny(['report', 'journal', '--format', 'hledger']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.match(/^2026-04-0\d \* /gm)).toHaveLength(3);
    expect(run.stdout).toContain(`    Assets:Uncoded:${cash.replace('lacc_', 'Lacc-')}  1.02 EUR\n`);
  });

  it('refuses a format it does not write (exit 2)', async () => {
    const run = await penny(['report', 'journal', '--format', 'csv']);
    expect(run.code).toBe(2);
  });
});
