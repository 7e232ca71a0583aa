import { Readable } from 'node:stream';
import type Stripe from 'stripe';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { advanceClock, configureClock, nowMs } from '../../src/clock.js';
import { ReconciliationImports } from '../../src/reconciliation/recon-import.js';
import { pairsByIndex } from '../../src/reconciliation/recon-match-store.js';
import { ReconciliationRuns } from '../../src/reconciliation/recon-run.js';
import { payOutSettlementBatches } from '../../src/sandbox-psp/psp-settlement.js';
import type { SandboxWebhookSender } from '../../src/sandbox-psp/psp-webhooks.js';
import {
  deliverSandboxWebhooks, payOutPending, sandboxSenderOf, serveTestLedger, type ServedLedger,
} from '../support/stripe.js';

/**
 * A run against the real thing: payments through the official stripe package and the networked
 * sandbox PSP, the sandbox's own settlement report and bank statement imported as an operator
 * would, and the three-way match of what Penny booked, what the PSP reported and what the bank
 * received. Each test has a Penny and a sandbox of its own (a fresh database) and works on today
 * on the controlled clock, which Penny's records and the sandbox's lines are both dated by.
 */
let penny: ServedLedger;
let sender: SandboxWebhookSender;
let runs: ReconciliationRuns;
let imports: ReconciliationImports;

beforeAll(() => {
  configureClock('controlled');
});

beforeEach(async () => {
  penny = await serveTestLedger();
  sender = sandboxSenderOf(penny);
  runs = new ReconciliationRuns(penny.pool);
  imports = new ReconciliationImports(penny.pool);
});

afterAll(() => {
  configureClock('system');
});

function today(): string {
  return new Date(nowMs()).toISOString().slice(0, 10);
}

function dayAfter(day: string, days: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

async function merchant(name: string): Promise<{ id: string; stripe: Stripe }> {
  const created = await penny.merchants.createMerchant(name);
  return { id: created.merchant.id, stripe: penny.stripeFor(created.secretKey) };
}

async function charge(stripe: Stripe, amount: number, options: Partial<Stripe.PaymentIntentCreateParams> = {}) {
  return stripe.paymentIntents.create({ amount, currency: 'usd', payment_method: 'pm_card_visa', confirm: true,
    ...options });
}

/** The sandbox closes the day's batches and pays them out. */
async function closeDay(day: string): Promise<void> {
  await payOutSettlementBatches(penny.pool, day);
}

/** The n-th business day after `day` (Monday to Friday). */
function businessDaysAfter(day: string, days: number): string {
  let ms = Date.parse(`${day}T00:00:00Z`);
  for (let counted = 0; counted < days;) {
    ms += 86_400_000;
    const weekday = new Date(ms).getUTCDay();
    if (weekday !== 0 && weekday !== 6) counted += 1;
  }
  return new Date(ms).toISOString().slice(0, 10);
}

async function importText(text: string, filename: string, source: string) {
  return imports.importFile({ body: Readable.from([Buffer.from(text, 'utf8')]), filename, source });
}

/** The sandbox's USD settlement report of `day`, with planted discrepancies, imported as `sandbox`. */
async function importReport(day: string, plant: string[] = []) {
  const query = new URLSearchParams({ currency: 'USD', ...(plant.length === 0 ? {} : { plant: plant.join(',') }) });
  const csv = await (await fetch(`${penny.sandbox.url}/v1/settlement_reports/${day}?${query.toString()}`)).text();
  return importText(csv, `settlement_detail_report_${day}.csv`, 'sandbox');
}

/** The operator's USD statement of `day` at the sandbox bank, imported as `sandbox-bank`. */
async function importStatement(day: string) {
  const xml = await (await fetch(`${penny.sandbox.url}/v1/bank_statements/${day}?currency=USD`)).text();
  return importText(xml, `camt053_${day}.xml`, 'sandbox-bank');
}

interface BreakRow { type: string; leg: string; internal_ref: string | null; currency: string | null;
  expected_minor: bigint; actual_minor: bigint; difference_minor: bigint }

async function breaksOfRun(runId: string): Promise<BreakRow[]> {
  const result = await penny.pool.query<BreakRow>(`SELECT type, leg, internal_ref, currency, expected_minor,
     actual_minor, difference_minor FROM reconciliation_breaks WHERE run_id = $1 ORDER BY type, internal_ref`, [runId]);
  return result.rows;
}

/** Six charges of a merchant, the day closed, and its report imported with four planted discrepancies. */
async function plantedDay(name: string): Promise<{ day: string; intents: Stripe.PaymentIntent[] }> {
  const day = today();
  const shop = await merchant(name);
  const intents = [];
  for (const amount of [1000, 2000, 3000, 4000, 5000, 6000]) intents.push(await charge(shop.stripe, amount));
  await closeDay(day);
  await importReport(day, ['missing_line', 'wrong_fee', 'duplicate_line', 'changed_amount']);
  return { day, intents };
}

describe('a reconciliation run', () => {
  it('matches a clean day three ways: every capture, refund and payout to its PSP line, the batch to the bank', async () => {
    const day = today();
    const shop = await merchant('Clean Day Shop');
    const automatic = await charge(shop.stripe, 7000);
    const manual = await charge(shop.stripe, 4200, { capture_method: 'manual' });
    await shop.stripe.paymentIntents.capture(manual.id, { amount_to_capture: 4000 });
    await shop.stripe.refunds.create({ payment_intent: automatic.id, amount: 1000 });
    await closeDay(day);
    await importReport(day);
    await importStatement(day);

    const run = await runs.run({ asOf: dayAfter(day, 1) });

    expect(run.counts).toMatchObject({ items_collected: 3, matched: { ledger_psp: 3, psp_bank: 1 },
      pending: { ledger_psp: 0, psp_bank: 0 }, breaks_opened: {} });
    expect(await breaksOfRun(run.id)).toEqual([]);
  });

  it('run again adds nothing: the same day reconciled twice opens no break and matches nothing new', async () => {
    const day = today();
    const shop = await merchant('Twice Shop');
    await charge(shop.stripe, 2500);
    await closeDay(day);
    await importReport(day);
    await importStatement(day);
    const first = await runs.run({ asOf: dayAfter(day, 1) });

    const second = await runs.run({ asOf: dayAfter(day, 1) });

    expect(first.counts.matched.ledger_psp).toBe(1);
    expect(second.counts).toMatchObject({ items_collected: 0, lines_considered: 0, matched: { ledger_psp: 0,
      psp_bank: 0 }, breaks_opened: {} });
  });

  it('reports each planted discrepancy once, at the level where it arises', async () => {
    const { day, intents } = await plantedDay('Planted Shop');

    const run = await runs.run({ asOf: dayAfter(day, 10) });

    const charges = intents.map((intent) => intent.latest_charge as string);
    expect(await breaksOfRun(run.id)).toEqual([
      { type: 'amount_mismatch', leg: 'ledger_psp', internal_ref: charges[3], currency: 'USD', expected_minor: 4000n,
        actual_minor: 4100n, difference_minor: 100n },
      { type: 'duplicate_external', leg: 'ledger_psp', internal_ref: charges[2], currency: 'USD', expected_minor: 0n,
        actual_minor: 3000n, difference_minor: 3000n },
      { type: 'fee_mismatch', leg: 'ledger_psp', internal_ref: charges[1], currency: 'USD', expected_minor: 60n,
        actual_minor: 67n, difference_minor: 7n },
      // The sandbox paid the batch as it wrote it; no statement was imported, so the bank never saw it.
      { type: 'missing_in_bank', leg: 'psp_bank', internal_ref: null, currency: 'USD', expected_minor: expect.any(BigInt),
        actual_minor: 0n, difference_minor: expect.any(BigInt) },
      { type: 'missing_in_psp_report', leg: 'ledger_psp', internal_ref: charges[0], currency: 'USD', expected_minor: 1000n,
        actual_minor: 0n, difference_minor: -1000n },
    ]);
  });

  it('reports the same discrepancies when its reference pairs go through the items\' indexes (a long history)', async () => {
    const { day, intents } = await plantedDay('Planted History Shop');
    // Items of other days, none due by the run's day: a history ten times the run's lines and more.
    await penny.pool.query(`INSERT INTO reconciliation_items (kind, reference, merchant_id, owner_id, connector,
        currency, gross_minor, fee_minor, day, due_by)
      SELECT 'capture', 'ch_history' || i, 'acct_history', 'acct_history', 'sandbox', 'USD', 100, 0,
        '2099-01-01', '2099-01-06' FROM generate_series(1, 1000) i`);
    await penny.pool.query('ANALYZE reconciliation_items');

    const run = await runs.run({ asOf: dayAfter(day, 10) });

    const estimate = await penny.pool.query<{ items: string }>(
      `SELECT reltuples::bigint::text AS items FROM pg_class WHERE oid = 'reconciliation_items'::regclass`);
    expect(pairsByIndex(run.counts.lines_considered, Number(estimate.rows[0]?.items))).toBe(true);
    const charges = intents.map((intent) => intent.latest_charge as string);
    expect((await breaksOfRun(run.id)).map((row) => [row.type, row.internal_ref])).toEqual([
      ['amount_mismatch', charges[3]], ['duplicate_external', charges[2]], ['fee_mismatch', charges[1]],
      ['missing_in_bank', null], ['missing_in_psp_report', charges[0]],
    ]);
  });

  it('keeps an item inside its window pending, and opens its break from the 4th business day on', async () => {
    const day = today();
    const shop = await merchant('Window Shop');
    const intent = await charge(shop.stripe, 1500);
    await closeDay(day);

    const inside = await runs.run({ asOf: businessDaysAfter(day, 3) });
    const after = await runs.run({ asOf: dayAfter(businessDaysAfter(day, 3), 1) });

    expect(inside.counts.pending.ledger_psp).toBe(1);
    expect(await breaksOfRun(inside.id)).toEqual([]);
    expect(await breaksOfRun(after.id)).toEqual([{ type: 'missing_in_psp_report', leg: 'ledger_psp',
      internal_ref: intent.latest_charge, currency: 'USD', expected_minor: 1500n, actual_minor: 0n,
      difference_minor: -1500n }]);
  });

  it('resolves a missing_in_psp_report break by the match when the report arrives late', async () => {
    const day = today();
    const shop = await merchant('Late Shop');
    const intent = await charge(shop.stripe, 1800);
    await closeDay(day);
    const missing = await runs.run({ asOf: dayAfter(day, 6) });
    await importReport(day);

    const late = await runs.run({ asOf: dayAfter(day, 7) });

    const [opened] = await breaksOfRun(missing.id);
    expect(opened?.type).toBe('missing_in_psp_report');
    expect(late.counts.breaks_resolved_by_match).toBe(1);
    const status = await penny.pool.query('SELECT status, resolution FROM reconciliation_breaks WHERE run_id = $1',
      [missing.id]);
    expect(status.rows).toEqual([{ status: 'resolved', resolution: 'matched' }]);
    expect((await breaksOfRun(late.id)).map((row) => row.type)).toContain('missing_in_bank');
    expect(opened?.internal_ref).toBe(intent.latest_charge);
  });

  it('matches a merchant payout the PSP paid to its PaidOut line', async () => {
    const day = today();
    const shop = await merchant('Payout Line Shop');
    await charge(shop.stripe, 9000, { payment_method: 'pm_card_bypassPending' });
    const payout = await shop.stripe.payouts.create({ amount: 5000, currency: 'usd' });
    await payOutPending(penny, sender);
    expect((await shop.stripe.payouts.retrieve(payout.id)).status).toBe('paid');
    await closeDay(day);
    await importReport(day);
    await importStatement(day);

    const run = await runs.run({ asOf: dayAfter(day, 1) });

    expect(run.counts).toMatchObject({ matched: { ledger_psp: 2, psp_bank: 1 }, breaks_opened: {} });
  });

  it('dates what Penny booked by its own clock, as the PSP does: a week on the controlled clock, nothing is late', async () => {
    advanceClock(7 * 86_400_000);
    const day = today();
    const shop = await merchant('Week On Shop');
    const intent = await charge(shop.stripe, 9000, { payment_method: 'pm_card_bypassPending' });
    await shop.stripe.refunds.create({ payment_intent: intent.id, amount: 1000 });
    await shop.stripe.payouts.create({ amount: 5000, currency: 'usd' });
    await payOutPending(penny, sender);
    await closeDay(day);
    await importReport(day);
    await importStatement(day);

    const run = await runs.run({ asOf: dayAfter(day, 1) });

    expect(run.counts).toMatchObject({ matched: { ledger_psp: 3, psp_bank: 1 }, breaks_opened: {} });
    const items = await penny.pool.query<{ kind: string; day: string }>(
      'SELECT kind, day::text FROM reconciliation_items ORDER BY kind');
    expect(items.rows).toEqual([{ kind: 'capture', day }, { kind: 'payout', day }, { kind: 'refund', day }]);
  });

  it('matches a payout the PSP paid to its PaidOut line of that day, though Penny learned of it the next day', async () => {
    const day = today();
    const shop = await merchant('Late Webhook Shop');
    await charge(shop.stripe, 9000, { payment_method: 'pm_card_bypassPending' });
    const payout = await shop.stripe.payouts.create({ amount: 5000, currency: 'usd' });
    await deliverSandboxWebhooks(penny, sender);
    for (let step = 0; step < 3; step += 1) {
      advanceClock(1000);
      await sender.resolvePending();
    }
    // The PSP paid it today; its webhook reaches Penny after midnight, with a charge of the new day.
    advanceClock(86_400_000 - (nowMs() % 86_400_000) + 1000);
    await deliverSandboxWebhooks(penny, sender);
    expect((await shop.stripe.payouts.retrieve(payout.id)).status).toBe('paid');
    await charge(shop.stripe, 3000);
    await closeDay(day);
    await importReport(day);
    await importStatement(day);

    const run = await runs.run({ asOf: day });

    // The new day's charge is collected, and left to the runs of its own day: neither pending nor a break.
    expect(run.counts).toMatchObject({ items_collected: 3, matched: { ledger_psp: 2, psp_bank: 1 },
      pending: { ledger_psp: 0 }, breaks_opened: {} });
    const items = await penny.pool.query<{ kind: string; day: string }>(
      'SELECT kind, day::text FROM reconciliation_items ORDER BY kind, day');
    expect(items.rows).toEqual([{ kind: 'capture', day }, { kind: 'capture', day: dayAfter(day, 1) },
      { kind: 'payout', day: dayAfter(day, 1) }]);
  });

  it('matches a batch the PSP collected from the operator (it nets negative) to the bank\'s direct debit', async () => {
    const day = today();
    const shop = await merchant('Collected Shop');
    const intent = await charge(shop.stripe, 9000, { payment_method: 'pm_card_bypassPending' });
    await shop.stripe.payouts.create({ amount: 8000, currency: 'usd' });
    await payOutPending(penny, sender);
    await shop.stripe.refunds.create({ payment_intent: intent.id, amount: 5000 });
    await closeDay(day);
    await importReport(day);
    const statement = await importStatement(day);

    const run = await runs.run({ asOf: dayAfter(day, 1) });

    expect(statement.statements[0]).toMatchObject({ entries: 1 });
    expect(run.counts).toMatchObject({ matched: { ledger_psp: 3, psp_bank: 1 }, breaks_opened: {} });
  });
});
