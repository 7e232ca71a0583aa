import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startTestSandboxPsp, type TestSandboxPsp } from '../support/sandbox-psp.js';
import { callSandbox, capturedCharge } from './psp-test-helpers.js';

/** `penny sandbox-psp dispute`, `dispute-decide` and `report --format camt053 --account` (run from dist/). */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = path.join(root, 'dist', 'src', 'cli', 'penny.js');
let database: TestDatabase;
let sandbox: TestSandboxPsp;
let dataDirectory: string;

beforeAll(async () => {
  database = await createTestDatabase();
  sandbox = await startTestSandboxPsp(database.url);
  dataDirectory = await fs.mkdtemp(path.join(os.tmpdir(), 'penny-dispute-cli-'));
});

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, 'sandbox-psp', ...args], { env: { PATH: process.env.PATH,
      HOME: process.env.HOME, DATABASE_URL: database.url, PENNY_DATA_DIR: dataDirectory, PENNY_LOG_LEVEL: 'warn',
      PENNY_SANDBOX_PSP_URL: sandbox.url } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('penny sandbox-psp dispute', () => {
  it('opens a dispute on a charge named by Penny\'s reference and prints it as JSON', async () => {
    const charge = await capturedCharge(sandbox, { amountMinor: 2000 });
    const result = await run(['dispute', charge.reference, '--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ kind: 'chargeback', outcome: 'needs_response',
      reference: charge.reference, amount_minor: 2000, reason: 'fraudulent', fee_minor: 1500 });
  });

  it('takes a PSP reference, --reason and --amount, and says what it did in text', async () => {
    const charge = await capturedCharge(sandbox, { amountMinor: 2000 });
    const result = await run(['dispute', charge.pspReference, '--reason', 'duplicate', '--amount', '700']);
    expect(result.code).toBe(0);
    expect(result.stdout)
      .toMatch(/^Dispute sbx_\S+ opened on sbx_\S+: 700 EUR, duplicate, needs_response \(fee 1500\)\.$/m);
  });

  it('fails with exit 1 and one JSON error when the charge is disputed already', async () => {
    const charge = await capturedCharge(sandbox);
    await run(['dispute', charge.reference]);
    const result = await run(['dispute', charge.reference, '--json']);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toEqual({ error: { type: 'invalid_request_error', code: 'sandbox_invalid_state',
      message: expect.stringContaining('disputed again') } });
  });

  it('fails with exit 1 for a charge the sandbox does not know', async () => {
    const result = await run(['dispute', 'ch_nothing', '--json']);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout).error.code).toBe('resource_missing');
  });

  it('is wrong usage (exit 2) with a reason Stripe does not know, or an amount that is no number', async () => {
    const reason = await run(['dispute', 'ch_x', '--reason', 'bored', '--json']);
    expect(reason.code).toBe(2);
    expect(JSON.parse(reason.stdout).error.code).toBe('usage_invalid');
    expect((await run(['dispute', 'ch_x', '--amount', '12.5'])).code).toBe(2);
  });
});

describe('penny sandbox-psp dispute-decide', () => {
  it('decides a dispute that needs a response', async () => {
    const charge = await capturedCharge(sandbox);
    const opened = JSON.parse((await run(['dispute', charge.reference, '--json'])).stdout) as { psp_reference: string };
    const result = await run(['dispute-decide', opened.psp_reference, '--outcome', 'lost', '--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ psp_reference: opened.psp_reference, outcome: 'lost' });
    expect((await sandbox.connector.lookup({ reference: charge.reference })).at(-1)?.outcome).toBe('lost');
  });

  it('fails with exit 1 on a dispute already decided', async () => {
    const charge = await capturedCharge(sandbox);
    const opened = JSON.parse((await run(['dispute', charge.reference, '--json'])).stdout) as { psp_reference: string };
    await run(['dispute-decide', opened.psp_reference, '--outcome', 'won']);
    const again = await run(['dispute-decide', opened.psp_reference, '--outcome', 'lost', '--json']);
    expect(again.code).toBe(1);
    expect(JSON.parse(again.stdout).error.code).toBe('sandbox_invalid_state');
  });

  it('is wrong usage (exit 2) without --outcome', async () => {
    expect((await run(['dispute-decide', 'sbx_x'])).code).toBe(2);
  });
});

describe('penny sandbox-psp report --format camt053 --account', () => {
  it('prints the statement of the account a paid payout went to', async () => {
    const reference = `po_cli${Date.now()}`;
    await callSandbox(sandbox, 'POST', '/v1/payouts', { reference, amount_minor: 4321, currency: 'EUR',
      destination: '000123456789' }, `payout:${reference}`);
    const sender = sandbox.sender(undefined);
    const started = Date.now();
    while ((await sandbox.connector.lookup({ reference }))[0]?.outcome !== 'paid' && Date.now() - started < 10_000) {
      await sender.resolvePending();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const day = new Date().toISOString().slice(0, 10);
    const result = await run(['report', '--date', day, '--format', 'camt053', '--account', '000123456789']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`<Ustrd>SANDBOX PAYOUT ${reference}</Ustrd>`);
    expect(result.stdout).toContain('43.21');
  });
});
