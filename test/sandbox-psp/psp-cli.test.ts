import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import { configureClock } from '../../src/clock.js';
import { freePort } from '../global-setup.js';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/** `penny sandbox-psp settle|report` (asking the running sandbox) and the clock route, over real payments. */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = path.join(root, 'dist', 'src', 'cli', 'penny.js');
let penny: ServedLedger;
let stripe: Stripe;
let dataDirectory: string;
const today = new Date().toISOString().slice(0, 10);

beforeAll(async () => {
  penny = await serveTestLedger();
  const created = await penny.merchants.createMerchant('Settlement Shop');
  stripe = penny.stripeFor(created.secretKey);
  dataDirectory = await fs.mkdtemp(path.join(os.tmpdir(), 'penny-psp-cli-'));
  await stripe.paymentIntents.create({ amount: 10_000, currency: 'eur', payment_method: 'pm_card_visa', confirm: true });
  const refunded = await stripe.paymentIntents.create({ amount: 5000, currency: 'eur', payment_method: 'pm_card_visa',
    confirm: true });
  await stripe.refunds.create({ payment_intent: refunded.id, amount: 1000 });
});

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME,
      DATABASE_URL: penny.url, PENNY_DATA_DIR: dataDirectory, PENNY_LOG_LEVEL: 'warn',
      PENNY_SANDBOX_PSP_URL: penny.sandbox.url } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

type Row = Record<string, string>;

describe('penny sandbox-psp report', () => {
  it('prints the day\'s Adyen settlement details report, read by header name, without a payout while the day is open', async () => {
    const result = await run(['sandbox-psp', 'report', '--date', today, '--currency', 'EUR']);
    expect(result.code).toBe(0);
    const rows = parse(result.stdout, { columns: true }) as Row[];
    expect(rows.filter((row) => row.Type === 'Settled').map((row) => row['Gross Credit (GC)']))
      .toEqual(['100.00', '50.00']);
    expect(rows.filter((row) => row.Type === 'Refunded').map((row) => row['Gross Debit (GC)'])).toEqual(['10.00']);
    // The sandbox has not closed the day: no payout is made, so none is reported (see the settle test).
    expect(rows.find((row) => row.Type === 'MerchantPayout')).toBeUndefined();
  });

  it('plants a wrong fee on request', async () => {
    const result = await run(['sandbox-psp', 'report', '--date', today, '--plant', 'wrong_fee']);
    const rows = parse(result.stdout, { columns: true }) as Row[];
    expect(rows.find((row) => row.Type === 'Settled')?.['Interchange (NC)']).not.toBe('1.20');
  });

  it('refuses an unknown discrepancy with exit 1 and the list', async () => {
    const result = await run(['sandbox-psp', 'report', '--date', today, '--plant', 'eaten_by_dog']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('missing_line');
  });

  it('settles the day once: one payout per currency, shown on the camt.053 statement', async () => {
    const first = await run(['sandbox-psp', 'settle', '--date', today, '--json']);
    expect(first.code).toBe(0);
    const settled = JSON.parse(first.stdout) as { payouts: { amount_minor: number; reference: string }[] };
    expect(settled.payouts.map((payout) => payout.amount_minor)).toEqual([13_660]);
    const again = JSON.parse((await run(['sandbox-psp', 'settle', '--date', today, '--json'])).stdout) as typeof settled;
    expect(again.payouts).toEqual(settled.payouts);
    // Closed, the day's report names its payout: the batch's net (2% + 0.20: 2.20 on 100.00, 1.20 on 50.00)…
    const report = parse((await run(['sandbox-psp', 'report', '--date', today, '--currency', 'EUR'])).stdout,
      { columns: true }) as Row[];
    expect(report.find((row) => row.Type === 'MerchantPayout')?.['Net Debit (NC)']).toBe('136.60');
    // …and a planted wrong fee reaches it.
    const planted = parse((await run(['sandbox-psp', 'report', '--date', today, '--currency', 'EUR', '--plant',
      'wrong_fee'])).stdout, { columns: true }) as Row[];
    expect(planted.find((row) => row.Type === 'MerchantPayout')?.['Net Debit (NC)']).toBe('136.53');
    const statement = await run(['sandbox-psp', 'report', '--date', today, '--format', 'camt053']);
    expect(statement.stdout).toContain(`SANDBOX PAYOUT ${settled.payouts[0]?.reference}`);
    expect(statement.stdout).toContain('136.60');
  });
});

describe('penny sandbox-psp serve', () => {
  it('serves with a fault profile from flags, shown by GET /control/faults', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [bin, 'sandbox-psp', '--seed', '3', '--latency', '1-2',
      '--rate', 'error_503=0.5', 'timeout_after=0.25'], { env: { PATH: process.env.PATH, HOME: process.env.HOME,
      DATABASE_URL: penny.url, PENNY_DATA_DIR: dataDirectory, PENNY_LOG_LEVEL: 'warn',
      PENNY_SANDBOX_PSP_PORT: String(port) } });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    try {
      let profile: Record<string, unknown> | undefined;
      for (let attempt = 0; attempt < 200 && profile === undefined; attempt += 1) {
        profile = await fetch(`http://127.0.0.1:${port}/control/faults`)
          .then(async (response) => await response.json() as Record<string, unknown>, () => undefined);
        if (profile === undefined) await new Promise((resolve) => setTimeout(resolve, 25));
      }
      expect(profile).toMatchObject({ seed: 3, latency_ms: { min: 1, max: 2 },
        rates: { error_503: 0.5, timeout_after: 0.25 } });
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });
});

describe('chargebacks and batch fees', () => {
  it('a chargeback booked at the sandbox is a Chargeback row with its fee in Markup, and a Fee row on request',
    async () => {
      const [captured] = (await penny.pool.query<{ psp_reference: string }>(`SELECT psp_reference
        FROM sandbox_psp_operations WHERE kind = 'authorize' AND amount_minor = 10000`)).rows;
      const response = await fetch(`${penny.sandbox.url}/control/chargebacks`, { method: 'POST',
        headers: { 'content-type': 'application/json' }, body: JSON.stringify({ psp_reference: captured?.psp_reference }) });
      expect(response.status).toBe(200);
      const result = await run(['sandbox-psp', 'report', '--date', today, '--currency', 'EUR', '--batch-fee', '100']);
      const rows = parse(result.stdout, { columns: true }) as Row[];
      expect(rows.find((row) => row.Type === 'Chargeback')).toMatchObject({ 'Gross Debit (GC)': '100.00',
        'Markup (NC)': '15.00', 'Net Debit (NC)': '115.00' });
      expect(rows.find((row) => row.Type === 'Fee')).toMatchObject({ 'Psp Reference': '', 'Net Debit (NC)': '1.00' });
      // 136.60 − 115.00 − 1.00
      expect(rows.find((row) => row.Type === 'MerchantPayout')?.['Net Debit (NC)']).toBe('20.60');
    });
});

describe('the controlled clock', () => {
  it('is refused while the clock is the system clock', async () => {
    const response = await penny.request({ method: 'POST', url: '/v1/test_helpers/clock/advance', body: { by: '3d' } });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('clock_not_controlled');
  });

  it('moves forward by a duration when controlled, and refuses a bad duration', async () => {
    configureClock('controlled');
    try {
      const moved = await penny.request({ method: 'POST', url: '/v1/test_helpers/clock/advance', body: { by: '3d' } });
      expect(moved.status).toBe(200);
      expect(moved.body.offset_ms).toBe(3 * 86_400_000);
      expect(Date.parse(moved.body.now as string) - Date.now()).toBeGreaterThan(3 * 86_400_000 - 60_000);
      const bad = await penny.request({ method: 'POST', url: '/v1/test_helpers/clock/advance', body: { by: '-1d' } });
      expect(bad.status).toBe(400);
      expect(bad.body.error.param).toBe('by');
    } finally {
      configureClock('system');
    }
  });

  it('needs the operator key', async () => {
    const response = await penny.request({ method: 'POST', url: '/v1/test_helpers/clock/advance', body: { by: '3d' },
      headers: { authorization: 'Bearer nope' } });
    expect(response.status).toBe(401);
  });
});
