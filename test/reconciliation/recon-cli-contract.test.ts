import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/**
 * Issue 18's command-line contract, end to end, as a script would drive it: the built `penny` bin
 * against the test's database and its running sandbox PSP. Every command prints one JSON document
 * with `--json`, and fails with a non-zero exit and a message.
 */
const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'src', 'cli', 'penny.js');
let penny: ServedLedger;
let directory: string;
const today = new Date().toISOString().slice(0, 10);

beforeAll(async () => {
  penny = await serveTestLedger();
  directory = await fs.mkdtemp(path.join(os.tmpdir(), 'penny-recon-contract-'));
  const created = await penny.merchants.createMerchant('Contract Shop');
  const stripe = penny.stripeFor(created.secretKey);
  for (const amount of [6400, 2500]) {
    await stripe.paymentIntents.create({ amount, currency: 'usd', payment_method: 'pm_card_visa', confirm: true });
  }
});

function run(args: string[], environment: Record<string, string> = {}):
Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME,
      DATABASE_URL: penny.url, PENNY_DATA_DIR: directory, PENNY_LOG_LEVEL: 'silent',
      PENNY_SANDBOX_PSP_URL: penny.sandbox.url, ...environment } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function json(args: string[]) {
  const result = await run([...args, '--json']);
  expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0);
  return JSON.parse(result.stdout);
}

describe('reconciliation from the command line', () => {
  it('settles and reports with a planted wrong fee, imports, runs, lists, repairs, and runs clean again', async () => {
    // The PSP really keeps 7 more on the first capture: it pays the batch as its planted report says.
    const settled = await json(['sandbox-psp', 'settle', '--date', today, '--plant', 'wrong_fee']);
    expect(settled.payouts).toHaveLength(1);
    const report = await run(['sandbox-psp', 'report', '--date', today, '--format', 'sdr', '--currency', 'USD',
      '--plant', 'wrong_fee']);
    const statement = await run(['sandbox-psp', 'report', '--date', today, '--format', 'camt053', '--currency', 'USD']);
    await fs.writeFile(path.join(directory, 'sdr.csv'), report.stdout);
    await fs.writeFile(path.join(directory, 'camt.xml'), statement.stdout);

    const imported = await json(['recon', 'import', path.join(directory, 'sdr.csv'), '--source', 'sandbox']);
    const bank = await json(['recon', 'import', path.join(directory, 'camt.xml'), '--source', 'sandbox-bank']);
    const first = await json(['recon', 'run', '--date', today]);
    const open = await json(['recon', 'breaks', '--status', 'open']);
    const repaired = await json(['recon', 'repair', open.data[0].id, '--approve']);
    const ignoredAfter = await run(['recon', 'ignore', open.data[0].id, '--reason', 'repaired already', '--json']);
    const again = await json(['recon', 'run', '--date', today]);
    const after = await json(['recon', 'breaks', '--status', 'open']);

    expect(imported).toMatchObject({ format: 'adyen_sdr', already_known: false, records: { total: 3 } });
    expect(bank).toMatchObject({ format: 'camt053', version: '001.08', statement_count: 1 });
    // One difference, one break: the payout and the bank credit agree with the report.
    expect(first).toMatchObject({ object: 'reconciliation.run', as_of: today,
      counts: { matched: { ledger_psp: 2, psp_bank: 1 }, breaks_opened: { fee_mismatch: 1 } } });
    expect(first.breaks).toHaveLength(1);
    expect(open.data).toEqual([expect.objectContaining({ id: first.breaks[0].id, type: 'fee_mismatch',
      leg: 'ledger_psp', status: 'open', external_ref: expect.any(String), internal_ref: expect.stringMatching(/^ch_/),
      currency: 'USD', expected_minor: 148, actual_minor: 155, difference_minor: 7, run_id: first.id,
      opened_at: expect.any(String) })]);
    expect(repaired).toMatchObject({ status: 'resolved', resolution: 'repaired',
      repair: { external_reference: `penny:recon_repair:${String(open.data[0].id)}` } });
    expect(ignoredAfter.code).toBe(1);
    expect(JSON.parse(ignoredAfter.stdout).error.code).toBe('reconciliation_break_closed');
    expect(again).toMatchObject({ counts: { matched: { ledger_psp: 0, psp_bank: 0 }, breaks_opened: {} }, breaks: [] });
    expect(after.data).toEqual([]);
  });

  it('fails with exit 1 and one JSON error for a break that does not exist', async () => {
    const result = await run(['recon', 'repair', 'rbrk_00000000000000000000000000000000', '--approve', '--json']);

    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout).error).toMatchObject({ code: 'resource_missing' });
    expect(result.stderr).toContain('No such reconciliation break');
  });

  it('refuses a day that is not one with exit 1, naming the option', async () => {
    const result = await run(['recon', 'run', '--date', '2026-02-30', '--json']);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('--date');
  });

  it('says so with exit 1 when the sandbox PSP it must ask is not running', async () => {
    const result = await run(['sandbox-psp', 'settle', '--date', today],
      { PENNY_SANDBOX_PSP_URL: 'http://127.0.0.1:9' });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('does not answer');
  });
});
