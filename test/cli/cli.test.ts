import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rootFallbackDirectory } from '../../src/db/embedded-postgres.js';
import { LedgerService } from '../../src/ledger/ledger-service.js';
import { parseCreateEntry } from '../../src/ledger/ledger-validation.js';
import { freePort } from '../global-setup.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/** The `penny` command as a user runs it: the built bin, in its own process. */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = path.join(root, 'dist', 'src', 'cli', 'penny.js');
const operatorKey = 'op_cli_test_0123456789abcdefghij';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function penny(args: string[], environment: Record<string, string | undefined>): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { env: cleanEnvironment(environment) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function cleanEnvironment(environment: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  for (const [key, value] of Object.entries(environment)) if (value !== undefined) base[key] = value;
  return base;
}

let database: TestDatabase;
let dataDirectory: string;
let environment: Record<string, string>;

beforeAll(async () => {
  database = await createTestDatabase();
  dataDirectory = await fs.mkdtemp(path.join('/var/tmp', 'penny-cli-'));
  // Each serve gets its own sandbox PSP port, so test files running at once never collide.
  environment = { DATABASE_URL: database.url, PENNY_DATA_DIR: dataDirectory, PENNY_OPERATOR_KEY: operatorKey,
    PENNY_SANDBOX_PSP_PORT: String(await freePort()) };
  const ledger = new LedgerService(database.pool);
  const cash = await ledger.createAccount({ currency: 'EUR', type: 'asset', code: undefined, owner: undefined, metadata: {}, limit: undefined });
  const owed = await ledger.createAccount({ currency: 'EUR', type: 'liability', code: undefined, owner: undefined, metadata: {}, limit: undefined });
  for (let index = 0; index < 3; index += 1) {
    await ledger.createEntry(parseCreateEntry({
      external_reference: `cli-${index}`,
      postings: [
        { account: cash.id, direction: 'debit', amount: 100 + index },
        { account: owed.id, direction: 'credit', amount: 100 + index },
      ],
    }, { amountMaxMinor: 1_000_000n }));
  }
});

afterAll(async () => {
  await fs.rm(dataDirectory, { recursive: true, force: true });
  // As root, the embedded test's database files live outside the (private) data directory.
  const postgresDirectory = rootFallbackDirectory(path.join(dataDirectory, 'embedded', 'postgres'));
  await fs.rm(postgresDirectory, { recursive: true, force: true });
});

describe('penny migrate', () => {
  it('reports an up-to-date database as JSON', async () => {
    const run = await penny(['migrate', '--json'], environment);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ applied: [] });
  });

  it('explains an unreachable database and exits 1', async () => {
    const run = await penny(['migrate'], { ...environment, DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^penny: .*ECONNREFUSED/);
    expect(run.stderr).toContain('DATABASE_URL');
  });
});

describe('penny ledger', () => {
  it('seals the committed entries and prints the chain head', async () => {
    const run = await penny(['ledger', 'seal', '--json'], environment);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ sealed: 3, head: { position: 3 } });
  });

  it('verifies an untouched ledger: chain, entries and balances', async () => {
    const run = await penny(['ledger', 'verify', '--json'], environment);
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.ok).toBe(true);
    expect(report.sealsChecked).toBe(3);
    expect(report.head.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('prints a readable report without --json', async () => {
    const run = await penny(['ledger', 'verify'], environment);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Ledger verified: 3 sealed entries/);
  });

  it('treats a malformed --anchor as wrong usage (exit 2), not as a rewritten history', async () => {
    const run = await penny(['ledger', 'verify', '--anchor', 'abc'], environment);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('64 lower-case hexadecimal digits');
  });

  it('prints the trial balance per currency with a zero difference', async () => {
    const run = await penny(['ledger', 'trial-balance', '--json'], environment);
    expect(run.code).toBe(0);
    const trial = JSON.parse(run.stdout);
    expect(trial.currencies).toHaveLength(1);
    expect(trial.currencies[0]).toMatchObject({ currency: 'EUR', debits_posted: 303, credits_posted: 303, difference: 0 });
  });

  it('checks stored balances against postings', async () => {
    const run = await penny(['ledger', 'check-balances', '--json'], environment);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ ok: true, accountsChecked: 2 });
  });

  it('fails verification, exit 1, when a posting was edited behind Penny\'s back', async () => {
    const { url, entryId } = await tamperedLedger();
    const run = await penny(['ledger', 'verify'], { ...environment, DATABASE_URL: url });
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(entryId);
  });

  it('with --json, a failed verification prints one object: the error and the report', async () => {
    const { url, entryId } = await tamperedLedger();
    const run = await penny(['ledger', 'verify', '--json'], { ...environment, DATABASE_URL: url });
    expect(run.code).toBe(1);
    const printed = onlyJsonObject(run.stdout);
    expect(printed.error).toMatchObject({ type: 'api_error', code: 'check_failed', message: expect.any(String) });
    expect(printed).toMatchObject({ ok: false });
    expect(JSON.stringify(printed.failures)).toContain(entryId);
  });
});

/** A sealed ledger of one entry whose posting was then edited with the triggers off. */
async function tamperedLedger(): Promise<{ url: string; entryId: string }> {
  const tampered = await createTestDatabase();
  const ledger = new LedgerService(tampered.pool);
  const cash = await ledger.createAccount({ currency: 'USD', type: 'asset', code: undefined, owner: undefined, metadata: {}, limit: undefined });
  const owed = await ledger.createAccount({ currency: 'USD', type: 'liability', code: undefined, owner: undefined, metadata: {}, limit: undefined });
  const created = await ledger.createEntry(parseCreateEntry({
    external_reference: 'to-tamper',
    postings: [{ account: cash.id, direction: 'debit', amount: 500 }, { account: owed.id, direction: 'credit', amount: 500 }],
  }, { amountMaxMinor: 1_000_000n }));
  const sealed = await penny(['ledger', 'seal', '--json'], { ...environment, DATABASE_URL: tampered.url });
  expect(sealed.code).toBe(0);
  const entryId = created.entries[0]?.id ?? '';
  const client = await tampered.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SET LOCAL session_replication_role = replica');
    await client.query('UPDATE ledger_postings SET amount_minor = 5 WHERE entry_id = $1', [entryId]);
    await client.query('COMMIT');
  } finally {
    client.release();
  }
  return { url: tampered.url, entryId };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON under test
type PrintedJson = Record<string, any>;

/** stdout holds exactly one JSON object (on one line), and nothing else. */
function onlyJsonObject(stdout: string): PrintedJson {
  const lines = stdout.split('\n').filter((line) => line !== '');
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0] ?? '') as PrintedJson;
}

/** The API's error shape: `{"error": {"type", "code", "message", …}}` and nothing beside it. */
function expectJsonError(stdout: string, code: string): void {
  const printed = onlyJsonObject(stdout);
  expect(Object.keys(printed)).toEqual(['error']);
  expect(printed.error).toMatchObject({ type: expect.any(String), code, message: expect.any(String) });
}

describe('failures with --json', () => {
  it('a failure the command explains prints one JSON error object on stdout and exits 1', async () => {
    const run = await penny(['keys', 'create', '--merchant', 'acct_doesnotexist00', '--json'], environment);
    expect(run.code).toBe(1);
    expectJsonError(run.stdout, 'resource_missing');
    expect(run.stderr).toContain('acct_doesnotexist00');
  });

  it('a missing required option prints one JSON error object and exits 2', async () => {
    const run = await penny(['merchants', 'create', '--json'], environment);
    expect(run.code).toBe(2);
    expectJsonError(run.stdout, 'usage_invalid');
    expect(JSON.parse(run.stdout).error.message).toContain('--name');
  });

  it('a malformed option value prints one JSON error object and exits 2', async () => {
    const run = await penny(['ledger', 'verify', '--anchor', 'abc', '--json'], environment);
    expect(run.code).toBe(2);
    expectJsonError(run.stdout, 'usage_invalid');
  });

  it('--json on a command that has no such option is wrong usage, answered in JSON, exit 2', async () => {
    const run = await penny(['clock', 'advance', '1d', '--json'], environment);
    expect(run.code).toBe(2);
    expectJsonError(run.stdout, 'usage_invalid');
  });

  it('an invalid configuration prints one JSON error object naming the variable and exits 1', async () => {
    const run = await penny(['migrate', '--json'], { ...environment, PORT: 'not-a-port' });
    expect(run.code).toBe(1);
    expectJsonError(run.stdout, 'invalid_configuration');
    expect(JSON.parse(run.stdout).error.param).toBe('PORT');
  });

  it('an unreachable database prints one JSON error object with the advice and exits 1', async () => {
    const run = await penny(['migrate', '--json'], { ...environment, DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
    expect(run.code).toBe(1);
    expectJsonError(run.stdout, 'command_failed');
    expect(JSON.parse(run.stdout).error.message).toContain('DATABASE_URL');
  });
});

describe('penny merchants and keys', () => {
  it('creates a merchant and prints its id and secret key once, as one JSON object', async () => {
    const run = await penny(['merchants', 'create', '--name', 'CLI Shop', '--json'], environment);
    expect(run.code).toBe(0);
    const created = JSON.parse(run.stdout);
    expect(created.id).toMatch(/^acct_/);
    expect(created.secret_key).toMatch(/^sk_test_[A-Za-z0-9]{32}$/);

    const listed = await penny(['keys', 'list', '--merchant', created.id, '--json'], environment);
    expect(listed.code).toBe(0);
    expect(listed.stdout).not.toContain(created.secret_key);
    expect(JSON.parse(listed.stdout).data[0].key).toBe(`sk_test_****${created.secret_key.slice(-4)}`);

    const revoked = await penny(['keys', 'revoke', created.key_id, '--json'], environment);
    expect(revoked.code).toBe(0);
    expect(JSON.parse(revoked.stdout).revoked_at).not.toBeNull();
  });

  it('shows and sets a merchant\'s pricing, refusing bad values as wrong usage', async () => {
    const created = JSON.parse((await penny(['merchants', 'create', '--name', 'Priced Shop', '--json'], environment)).stdout);
    const shown = await penny(['merchants', 'pricing', created.id, '--json'], environment);
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout)).toEqual({ merchant: created.id, fee_basis_points: 290, fee_fixed_minor: 30 });
    const set = await penny(['merchants', 'pricing', created.id, '--basis-points', '150', '--json'], environment);
    expect(JSON.parse(set.stdout)).toEqual({ merchant: created.id, fee_basis_points: 150, fee_fixed_minor: 30 });
    const again = await penny(['merchants', 'pricing', created.id], environment);
    expect(again.stdout).toContain('1.5% + 30');
    const fixed = await penny(['merchants', 'pricing', created.id, '--fixed-minor', '5', '--json'], environment);
    expect(JSON.parse(fixed.stdout)).toMatchObject({ fee_basis_points: 150, fee_fixed_minor: 5 });
    expect((await penny(['merchants', 'pricing', created.id, '--basis-points', '10001'], environment)).code).toBe(2);
    expect((await penny(['merchants', 'pricing', created.id, '--fixed-minor', '-1'], environment)).code).toBe(2);
    const unknown = await penny(['merchants', 'pricing', 'acct_doesnotexist00', '--fixed-minor', '5'], environment);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('No such merchant');
  });

  it('sets and shows a merchant\'s own payout schedule, manual until set, refusing wrong usage with 2', async () => {
    const created = JSON.parse((await penny(['merchants', 'create', '--name', 'Scheduled Shop', '--json'], environment))
      .stdout);
    const shown = await penny(['merchants', 'payout-schedule', created.id, '--json'], environment);
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout)).toEqual({ merchant: created.id, delay_days: 0, interval: 'manual' });
    const weekly = await penny(['merchants', 'payout-schedule', created.id, '--interval', 'weekly', '--weekly-anchor',
      'friday', '--json'], environment);
    expect(weekly.code).toBe(0);
    expect(JSON.parse(weekly.stdout)).toEqual({ merchant: created.id, delay_days: 0, interval: 'weekly',
      weekly_anchor: 'friday' });
    const monthly = await penny(['merchants', 'payout-schedule', created.id, '--interval', 'monthly',
      '--monthly-anchor', '31'], environment);
    expect(monthly.code).toBe(0);
    expect(monthly.stdout).toContain('monthly, on day 31');
    const stored = await database.pool.query('SELECT payout_interval, payout_weekly_anchor, payout_monthly_anchor ' +
      'FROM merchant_payout_schedules WHERE merchant_id = $1', [created.id]);
    expect(stored.rows).toEqual([{ payout_interval: 'monthly', payout_weekly_anchor: null, payout_monthly_anchor: 31 }]);
    for (const wrong of [['--interval', 'yearly'], ['--interval', 'weekly'], ['--interval', 'monthly'],
      ['--interval', 'daily', '--weekly-anchor', 'monday'], ['--interval', 'monthly', '--monthly-anchor', '32'],
      ['--weekly-anchor', 'funday']]) {
      const run = await penny(['merchants', 'payout-schedule', created.id, ...wrong, '--json'], environment);
      expect(run.code, wrong.join(' ')).toBe(2);
    }
    const unknown = await penny(['merchants', 'payout-schedule', 'acct_doesnotexist00', '--interval', 'daily',
      '--json'], environment);
    expect(unknown.code).toBe(1);
    expect(JSON.parse(unknown.stdout).error.code).toBe('resource_missing');
    const daily = await penny(['merchants', 'payout-schedule', created.id, '--interval', 'daily', '--json'], environment);
    expect(JSON.parse(daily.stdout)).toEqual({ merchant: created.id, delay_days: 0, interval: 'daily' });
  });

  it('sets and shows a merchant\'s own bank account, sealed, refusing bad numbers', async () => {
    const created = JSON.parse((await penny(['merchants', 'create', '--name', 'Banked Shop', '--json'], environment)).stdout);
    const none = await penny(['merchants', 'bank-account', created.id, '--json'], environment);
    expect(JSON.parse(none.stdout)).toEqual({ object: 'list', data: [] });
    const us = await penny(['merchants', 'bank-account', created.id, '--account-number', '000123456789',
      '--routing-number', '110000000', '--json'], environment);
    expect(us.code).toBe(0);
    expect(JSON.parse(us.stdout)).toMatchObject({ object: 'bank_account', account: created.id, country: 'US',
      currency: 'usd', last4: '6789', routing_number: '110000000', default_for_currency: true });
    expect(us.stdout).not.toContain('000123456789');
    const eur = await penny(['merchants', 'bank-account', created.id, '--iban', 'DE89 3704 0044 0532 0130 00'],
      environment);
    expect(eur.code).toBe(0);
    expect(eur.stdout).toContain('****3000');
    const replaced = await penny(['merchants', 'bank-account', created.id, '--iban', 'DE02120300000000202051',
      '--json'], environment);
    expect(JSON.parse(replaced.stdout)).toMatchObject({ currency: 'eur', last4: '2051' });
    const listed = JSON.parse((await penny(['merchants', 'bank-account', created.id, '--json'], environment)).stdout);
    expect(listed.data.map((bank: { last4: string }) => bank.last4)).toEqual(['2051', '6789']);
    const stored = await database.pool.query('SELECT account_number_ciphertext FROM bank_accounts WHERE account_id = $1',
      [created.id]);
    for (const row of stored.rows) expect(row.account_number_ciphertext).toMatch(/^v1:/);
    expect(JSON.stringify(stored.rows)).not.toMatch(/000123456789|0532013000|0000202051/);

    const badIban = await penny(['merchants', 'bank-account', created.id, '--iban', 'DE89370400440532013001', '--json'],
      environment);
    expect(badIban.code).toBe(1);
    expect(JSON.parse(badIban.stdout).error).toMatchObject({ code: 'account_number_invalid', param: '--iban' });
    const badRouting = await penny(['merchants', 'bank-account', created.id, '--account-number', '000123456789',
      '--routing-number', '110000001', '--json'], environment);
    expect(badRouting.code).toBe(1);
    expect(JSON.parse(badRouting.stdout).error).toMatchObject({ code: 'routing_number_invalid',
      param: '--routing-number' });
    const both = await penny(['merchants', 'bank-account', created.id, '--iban', 'DE89370400440532013000',
      '--account-number', '000123456789', '--json'], environment);
    expect(both.code).toBe(2);
    expect(JSON.parse(both.stdout).error.code).toBe('usage_invalid');
    expect((await penny(['merchants', 'bank-account', created.id, '--routing-number', '110000000'], environment)).code)
      .toBe(2);
    const unknown = await penny(['merchants', 'bank-account', 'acct_doesnotexist00', '--iban',
      'DE89370400440532013000', '--json'], environment);
    expect(unknown.code).toBe(1);
    expect(JSON.parse(unknown.stdout).error.code).toBe('resource_missing');
  });

  it('explains an unknown merchant and exits 1', async () => {
    const run = await penny(['keys', 'create', '--merchant', 'acct_doesnotexist00', '--json'], environment);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('acct_doesnotexist00');
  });

  it('exits 2 when --name is missing', async () => {
    const run = await penny(['merchants', 'create'], environment);
    expect(run.code).toBe(2);
  });
});

describe('usage and configuration', () => {
  it('exits 2 on an unknown command', async () => {
    const run = await penny(['no-such-command'], environment);
    expect(run.code).toBe(2);
  });

  it('exits 1 naming the variable when configuration is invalid', async () => {
    const run = await penny(['migrate'], { ...environment, PORT: 'not-a-port' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('PORT');
  });
});

describe('penny settlement pull', () => {
  it('reads a day\'s report and says what it settled, as one JSON object', async () => {
    const run = await penny(['settlement', 'pull', '--date', '2020-01-01', '--json'], environment);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ connector: 'sandbox', day: '2020-01-01', settled: 0,
      alreadyAvailable: 0, unmatched: 0, payouts: 0, payoutsAlreadyPosted: 0 });
  });

  it('refuses a malformed --date, naming it', async () => {
    const run = await penny(['settlement', 'pull', '--date', '1 March', '--json'], environment);
    expect(run.code).not.toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ error: { param: '--date' } });
  });
});

describe('penny settlement failed-reports and release', () => {
  it('lists the imported reports settlement failed to read, as a list object', async () => {
    const run = await penny(['settlement', 'failed-reports', '--json'], environment);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ object: 'list', data: expect.any(Array) as unknown,
      has_more: false });
  });

  it('refuses to release a file whose reading never failed: exit 1, resource_missing naming the file', async () => {
    const run = await penny(['settlement', 'release', 'rfile_unknown000000', '--json'], environment);
    expect(run.code).toBe(1);
    expect(JSON.parse(run.stdout)).toMatchObject({ error: { code: 'resource_missing', param: 'file' } });
  });
});

describe('penny serve', () => {
  it('exits 1, explaining, when its port is taken, instead of hanging with its workers running', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const run = await penny(['serve'], { ...environment, PORT: String(port),
        PENNY_SANDBOX_PSP_PORT: String(await freePort()) });
      expect(run.code).toBe(1);
      expect(run.stderr + run.stdout).toMatch(/EADDRINUSE|address already in use/i);
      expect(run.stderr).toContain('set PORT');
    } finally {
      taken.close();
    }
  }, 20_000);

  it('exits 1 naming PENNY_SANDBOX_PSP_FAULTS when its fault profile is malformed, before starting anything', async () => {
    const run = await penny(['serve'], { ...environment, PORT: String(await freePort()),
      PENNY_SANDBOX_PSP_FAULTS: '{"no_such_fault": 1}' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('PENNY_SANDBOX_PSP_FAULTS');
    expect(run.stderr).not.toMatch(/migrations applied|Penny is serving/);
  }, 20_000);

  it('serves health and readiness, logs a request id per line without the key, and stops on SIGTERM', async () => {
    const port = await freePort();
    const server = startServe({ ...environment, PORT: String(port) });
    try {
      await waitForHealth(port);
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect(ready.status).toBe(200);
      const accounts = await fetch(`http://127.0.0.1:${port}/v1/ledger/accounts`, {
        headers: { authorization: `Bearer ${operatorKey}` },
      });
      expect(accounts.status).toBe(200);
      expect(accounts.headers.get('request-id')).toMatch(/^req_/);
    } finally {
      server.process.kill('SIGTERM');
    }
    const code = await server.exited;
    expect(code).toBe(0);
    const lines = server.output().split('\n').filter((line) => line.includes('"url":"/v1/ledger/accounts"'));
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(JSON.parse(line).reqId).toMatch(/^req_/);
    expect(server.output()).not.toContain(operatorKey);
  });

  it('lets an in-flight request finish when told to stop', async () => {
    const port = await freePort();
    const server = startServe({ ...environment, PORT: String(port) });
    await waitForHealth(port);
    const entries = Array.from({ length: 1000 }, (_, index) => ({
      external_reference: `inflight-${port}-${index}`,
      postings: [
        { account: 'lacc_doesnotexist000', direction: 'debit', amount: 1 },
        { account: 'lacc_doesnotexist001', direction: 'credit', amount: 1 },
      ],
    }));
    const inFlight = fetch(`http://127.0.0.1:${port}/v1/ledger/entries/batch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${operatorKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ entries }),
    });
    await waitFor(() => server.output().includes('"url":"/v1/ledger/entries/batch"'));
    server.process.kill('SIGTERM');
    const response = await inFlight;
    expect(response.status).toBe(404);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('account_not_found');
    expect(await server.exited).toBe(0);
  });
});

describe('penny serve on the embedded PostgreSQL', () => {
  it('starts without DATABASE_URL, keeps its data across a restart, and stops the database on SIGTERM', async () => {
    const embeddedEnvironment = {
      PENNY_DATA_DIR: path.join(dataDirectory, 'embedded'),
      PENNY_PG_PORT: String(await freePort()),
      PENNY_OPERATOR_KEY: operatorKey,
      PENNY_SANDBOX_PSP_PORT: String(await freePort()),
    };
    const first = await serveUntilHealthy(embeddedEnvironment);
    const created = await fetch(`http://127.0.0.1:${first.port}/v1/ledger/accounts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${operatorKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ currency: 'JPY', type: 'asset', code: 'survives' }),
    });
    const account = (await created.json()) as { id: string };
    first.server.process.kill('SIGTERM');
    expect(await first.server.exited).toBe(0);
    expect(await portOpen(Number(embeddedEnvironment.PENNY_PG_PORT))).toBe(false);

    const second = await serveUntilHealthy(embeddedEnvironment);
    try {
      const again = await fetch(`http://127.0.0.1:${second.port}/v1/ledger/accounts/${account.id}`, {
        headers: { authorization: `Bearer ${operatorKey}` },
      });
      expect(again.status).toBe(200);
      expect(((await again.json()) as { code: string }).code).toBe('survives');
      // A second serve on the same data directory fails (its port is taken) and leaves the
      // running one's database alone: only the process owning the server stops it.
      const clash = startServe({ ...embeddedEnvironment, PORT: String(second.port) });
      expect(await clash.exited).toBe(1);
      const ready = await fetch(`http://127.0.0.1:${second.port}/readyz`);
      expect(ready.status).toBe(200);
    } finally {
      second.server.process.kill('SIGTERM');
    }
    expect(await second.server.exited).toBe(0);
    expect(await portOpen(Number(embeddedEnvironment.PENNY_PG_PORT))).toBe(false);
  }, 60_000);
});

async function serveUntilHealthy(serveEnvironment: Record<string, string>) {
  const port = await freePort();
  const server = startServe({ ...serveEnvironment, PORT: String(port) });
  await waitForHealth(port);
  return { port, server };
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

async function waitFor(condition: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 400 && !condition(); attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function startServe(serveEnvironment: Record<string, string>) {
  const child: ChildProcess = spawn(process.execPath, [bin, 'serve'], { env: cleanEnvironment(serveEnvironment) });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  child.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { process: child, exited, output: () => output };
}

async function waitForHealth(port: number): Promise<void> {
  for (let attempt = 0; attempt < 600; attempt += 1) {
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then((response) => response.ok, () => false);
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`penny serve did not answer on port ${port}`);
}
