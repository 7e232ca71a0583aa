import { Readable } from 'node:stream';
import type Stripe from 'stripe';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { advanceClock, configureClock, nowMs } from '../../src/clock.js';
import { limits } from '../../src/config.js';
import { ReconciliationImports } from '../../src/reconciliation/recon-import.js';
import { payOutSettlementBatches } from '../../src/sandbox-psp/psp-settlement.js';
import { operatorKey } from '../support/app.js';
import { serveTestLedger, settlementOf, settlementPullWithPlant, type ServedLedger } from '../support/stripe.js';

/**
 * What an operator does with breaks, through the API: each break carries the entry Penny
 * proposes; approving it posts that entry once and resolves the break for good; a break with no
 * entry is ignored with a reason; breaks are announced to the merchant concerned and counted on
 * `GET /metrics`. Each test has a Penny of its own and works on today.
 */
let penny: ServedLedger;

afterAll(() => {
  configureClock('system');
});

// Each test starts its controlled clock at the wall clock: Penny's records are dated by the
// database, so a clock a test moved days ahead would make the next test's lines late.
beforeEach(async () => {
  configureClock('controlled');
  penny = await serveTestLedger();
});

function today(): string {
  return new Date(nowMs()).toISOString().slice(0, 10);
}

function daysAfter(day: string, days: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

async function operator(method: 'GET' | 'POST', url: string, payload?: object) {
  const response = await penny.app.inject({ method, url, headers: { authorization: `Bearer ${operatorKey}` },
    ...(payload === undefined ? {} : { payload }) });
  const json = String(response.headers['content-type'] ?? '').startsWith('application/json');
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a JSON answer read by the test
  return { status: response.statusCode, body: (json ? response.json() : undefined) as any, text: response.body };
}

async function importText(text: string, filename: string, source: string): Promise<void> {
  await new ReconciliationImports(penny.pool).importFile({ body: Readable.from([Buffer.from(text, 'utf8')]), filename,
    source });
}

/**
 * A merchant's USD capture of `amount` (and one of 1000 after it), the day settled and paid out,
 * and its report imported with `plant` (each planted on the first capture it can take).
 */
async function settledDay(amount: number, plant: string[]): Promise<{ merchantId: string; stripe: Stripe;
  chargeId: string }> {
  const created = await penny.merchants.createMerchant('Breaks Shop');
  const stripe = penny.stripeFor(created.secretKey);
  const intent = await stripe.paymentIntents.create({ amount, currency: 'usd', payment_method: 'pm_card_visa',
    confirm: true });
  await stripe.paymentIntents.create({ amount: 1000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true });
  const day = today();
  await payOutSettlementBatches(penny.pool, day);
  const query = `currency=USD${plant.length === 0 ? '' : `&plant=${plant.join(',')}`}`;
  const csv = await (await fetch(`${penny.sandbox.url}/v1/settlement_reports/${day}?${query}`)).text();
  await importText(csv, 'report.csv', 'sandbox');
  return { merchantId: created.merchant.id, stripe, chargeId: intent.latest_charge as string };
}

async function receivable(ownerId: string): Promise<bigint> {
  const accounts = await penny.balances.accounts.accountsFor(penny.pool, { ownerId, currency: 'USD' });
  const [account] = await penny.ledger.getAccounts([accounts.psp_receivable]);
  return (account?.balances.debitsPosted ?? 0n) - (account?.balances.creditsPosted ?? 0n);
}

describe('a fee_mismatch break', () => {
  it('proposes the fee true-up, and approving it posts it once and brings the PSP receivable to zero', async () => {
    const shop = await settledDay(6400, ['wrong_fee']);
    const day = today();
    // The day closes, and the settlement pull posts the PSP's payout of the batch as the report says.
    advanceClock(86_400_000);
    await settlementPullWithPlant(penny, day, ['wrong_fee']);
    const run = await operator('POST', '/v1/reconciliation/runs', { as_of: today() });
    expect(run.status).toBe(201);
    const fee = (run.body.breaks as { type: string }[]).find((row) => row.type === 'fee_mismatch') as
      Record<string, unknown> | undefined;
    expect(fee).toMatchObject({ object: 'reconciliation.break', leg: 'ledger_psp', status: 'open', currency: 'USD',
      internal_ref: shop.chargeId, expected_minor: 148, actual_minor: 155, difference_minor: 7,
      merchant: shop.merchantId,
      proposed_repair: { currency: 'USD', owner: shop.merchantId, postings: [
        { role: 'psp_fees', direction: 'debit', amount_minor: 7 },
        { role: 'psp_receivable', direction: 'credit', amount_minor: 7 }] } });
    expect(await receivable(shop.merchantId)).toBe(7n);

    const repaired = await operator('POST', `/v1/reconciliation/breaks/${String(fee?.id)}/repair`);
    const again = await operator('POST', `/v1/reconciliation/breaks/${String(fee?.id)}/repair`);

    expect(repaired.status).toBe(200);
    expect(repaired.body).toMatchObject({ status: 'resolved', resolution: 'repaired',
      repair: { object: 'ledger.entry', external_reference: `penny:recon_repair:${String(fee?.id)}` } });
    expect(repaired.body.repair_entry).toBe(repaired.body.repair.id);
    expect(again.body.repair.id).toBe(repaired.body.repair.id);
    expect(await receivable(shop.merchantId)).toBe(0n);
    const rerun = await operator('POST', '/v1/reconciliation/runs', { as_of: today() });
    expect(rerun.body.breaks).toEqual([]);
    expect((await operator('GET', `/v1/reconciliation/breaks/${String(fee?.id)}`)).body.status).toBe('resolved');
  });

  it('is announced to the merchant as reconciliation.break_opened, and counted on GET /metrics by type and age', async () => {
    const shop = await settledDay(5000, ['wrong_fee']);
    await operator('POST', '/v1/reconciliation/runs', { as_of: today() });

    const events = await shop.stripe.events.list({ type: 'reconciliation.break_opened' });
    const metrics = await operator('GET', '/metrics');

    const types = events.data.map((event) => (event.data.object as unknown as { type: string }).type);
    expect(types).toEqual(['fee_mismatch']);
    expect(metrics.text).toMatch(/penny_reconciliation_breaks_open\{type="fee_mismatch",age="under_1d"\} 1/);
  });
});

describe('a break Penny proposes no entry for', () => {
  it('is refused a repair with 400, ignored with a reason, answered again for the same reason, and refused with 409 for another', async () => {
    await settledDay(3000, ['missing_line']);
    advanceClock(10 * 86_400_000);
    const run = await operator('POST', '/v1/reconciliation/runs', { as_of: today() });
    const missing = (run.body.breaks as { type: string; id: string; proposed_repair: unknown }[])
      .find((row) => row.type === 'missing_in_psp_report');
    expect(missing?.proposed_repair).toBeNull();

    const repair = await operator('POST', `/v1/reconciliation/breaks/${missing?.id ?? ''}/repair`);
    const ignored = await operator('POST', `/v1/reconciliation/breaks/${missing?.id ?? ''}/ignore`,
      { reason: 'the acquirer confirmed it settles next week' });
    const repeated = await operator('POST', `/v1/reconciliation/breaks/${missing?.id ?? ''}/ignore`,
      { reason: 'the acquirer confirmed it settles next week' });
    const twice = await operator('POST', `/v1/reconciliation/breaks/${missing?.id ?? ''}/ignore`, { reason: 'again' });

    expect(repair.status).toBe(400);
    expect(repair.body.error).toMatchObject({ code: 'reconciliation_break_not_repairable', param: 'id' });
    expect(ignored.body).toMatchObject({ status: 'ignored', ignored_reason: 'the acquirer confirmed it settles next week' });
    // The same request again (a retry after a lost answer) answers the ignored break; another is refused.
    expect(repeated.status).toBe(200);
    expect(repeated.body).toEqual(ignored.body);
    expect(twice.status).toBe(409);
    expect(twice.body.error.code).toBe('reconciliation_break_closed');
  });
});

describe('the reconciliation API', () => {
  it('refuses a day that is not one, a day to come, and an unknown break, with Stripe-style errors', async () => {
    const badDay = await operator('POST', '/v1/reconciliation/runs', { as_of: '2026-02-30' });
    const tomorrow = await operator('POST', '/v1/reconciliation/runs', { as_of: daysAfter(today(), 1) });
    const unknown = await operator('GET', '/v1/reconciliation/breaks/rbrk_0000000000000000000000000000');

    expect(badDay.status).toBe(400);
    expect(badDay.body.error).toMatchObject({ code: 'parameter_invalid', param: 'as_of' });
    expect(tomorrow.status).toBe(400);
    expect(tomorrow.body.error).toMatchObject({ code: 'parameter_invalid', param: 'as_of' });
    expect((await operator('GET', '/v1/reconciliation/runs')).body.data).toEqual([]);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ code: 'resource_missing' });
  });

  it('lists runs newest first and breaks by status', async () => {
    await settledDay(2000, ['wrong_fee']);
    const first = await operator('POST', '/v1/reconciliation/runs', { as_of: today() });
    const second = await operator('POST', '/v1/reconciliation/runs', { as_of: today() });

    const runs = await operator('GET', '/v1/reconciliation/runs?limit=2');
    const open = await operator('GET', '/v1/reconciliation/breaks?status=open');

    expect(runs.body.data.map((run: { id: string }) => run.id)).toEqual([second.body.id, first.body.id]);
    expect(open.body.data.map((row: { type: string }) => row.type)).toEqual(['fee_mismatch']);
  });
});

describe('a repaired bank break', () => {
  it('pairs with nothing later: the late payout it was opens missing_in_bank, repaired once the pull booked it', async () => {
    const created = await penny.merchants.createMerchant('Late Report Shop');
    await penny.stripeFor(created.secretKey).paymentIntents.create({ amount: 5000, currency: 'usd',
      payment_method: 'pm_card_visa', confirm: true });
    const day = today();
    await payOutSettlementBatches(penny.pool, day);
    const statement = await (await fetch(`${penny.sandbox.url}/v1/bank_statements/${day}?currency=USD`)).text();
    await importText(statement, 'camt.xml', 'sandbox-bank');
    const operatorAccounts = await penny.balances.accounts.operatorAccountsFor(penny.pool, 'USD');
    const postedOf = async (id: string) => {
      const [account] = await penny.ledger.getAccounts([id]);
      return (account?.balances.debitsPosted ?? 0n) - (account?.balances.creditsPosted ?? 0n);
    };
    advanceClock(10 * 86_400_000);
    const first = await operator('POST', '/v1/reconciliation/runs', { as_of: today() });
    const unexpected = (first.body.breaks as { type: string; id: string; actual_minor: number }[])
      .find((row) => row.type === 'unexpected_bank_entry');
    await operator('POST', `/v1/reconciliation/breaks/${unexpected?.id ?? ''}/repair`);
    const bankAfterFirst = await postedOf(operatorAccounts.operator_bank);
    const csv = await (await fetch(`${penny.sandbox.url}/v1/settlement_reports/${day}?currency=USD`)).text();
    await importText(csv, 'report.csv', 'sandbox');

    advanceClock(86_400_000);
    const second = await operator('POST', '/v1/reconciliation/runs', { as_of: today() });
    const missing = (second.body.breaks as { type: string; id: string; expected_minor: number }[])
      .find((row) => row.type === 'missing_in_bank');
    // The payout is not booked yet: the bank never held it, there is nothing to take back out.
    const early = await operator('POST', `/v1/reconciliation/breaks/${missing?.id ?? ''}/repair`);
    const bankBeforePull = await postedOf(operatorAccounts.operator_bank);
    await settlementOf(penny).pull({ connectorId: 'sandbox', day });
    const repaired = await operator('POST', `/v1/reconciliation/breaks/${missing?.id ?? ''}/repair`);

    expect(bankAfterFirst).toBe(BigInt(unexpected?.actual_minor ?? 0));
    expect(missing?.expected_minor).toBe(unexpected?.actual_minor);
    expect(early).toMatchObject({ status: 409, body: { error: { code: 'reconciliation_payout_not_booked' } } });
    expect(bankBeforePull).toBe(bankAfterFirst);
    expect(repaired.status).toBe(200);
    // The bank holds the payout once, suspense nothing, the merchant's receivable is paid.
    expect(await postedOf(operatorAccounts.operator_bank)).toBe(BigInt(unexpected?.actual_minor ?? 0));
    expect(await postedOf(operatorAccounts.settlement_suspense)).toBe(0n);
    expect(await receivable(created.merchant.id)).toBe(0n);
  });

  /** A bank entry paying a PSP payout the pull booked, whose report never reached reconciliation: its break. */
  async function unexpectedEntryOfBookedPayout(name: string, statementAsBanked = (xml: string) => xml) {
    const created = await penny.merchants.createMerchant(name);
    await penny.stripeFor(created.secretKey).paymentIntents.create({ amount: 5000, currency: 'usd',
      payment_method: 'pm_card_visa', confirm: true });
    const day = today();
    await payOutSettlementBatches(penny.pool, day);
    const statement = await (await fetch(`${penny.sandbox.url}/v1/bank_statements/${day}?currency=USD`)).text();
    await importText(statementAsBanked(statement), `camt-${name}.xml`, 'sandbox-bank');
    const operatorAccounts = await penny.balances.accounts.operatorAccountsFor(penny.pool, 'USD');
    const bank = async () => {
      const [account] = await penny.ledger.getAccounts([operatorAccounts.operator_bank]);
      return (account?.balances.debitsPosted ?? 0n) - (account?.balances.creditsPosted ?? 0n);
    };
    advanceClock(86_400_000);
    // The pull books the payout in the operator's bank; its report never reaches reconciliation.
    await settlementOf(penny).pull({ connectorId: 'sandbox', day });
    const bankBooked = await bank();
    advanceClock(10 * 86_400_000);
    const first = await operator('POST', '/v1/reconciliation/runs', { as_of: today() });
    const unexpected = (first.body.breaks as { type: string; id: string; actual_minor: number }[])
      .find((row) => row.type === 'unexpected_bank_entry');
    return { day, bank, bankBooked, id: unexpected?.id ?? '', actualMinor: unexpected?.actual_minor ?? -1 };
  }

  it('is refused for a bank entry naming a payout the pull booked, which its report, imported, then pairs', async () => {
    const entry = await unexpectedEntryOfBookedPayout('Unreported Payout Shop');
    const refused = await operator('POST', `/v1/reconciliation/breaks/${entry.id}/repair`);
    const bankAfterRefusal = await entry.bank();
    const csv = await (await fetch(`${penny.sandbox.url}/v1/settlement_reports/${entry.day}?currency=USD`)).text();
    await importText(csv, 'report.csv', 'sandbox');
    advanceClock(86_400_000);
    await operator('POST', '/v1/reconciliation/runs', { as_of: today() });

    expect(entry.bankBooked).toBe(BigInt(entry.actualMinor));
    expect(refused).toMatchObject({ status: 409, body: { error: { code: 'reconciliation_payout_booked' } } });
    expect(bankAfterRefusal).toBe(entry.bankBooked);
    expect((await operator('GET', `/v1/reconciliation/breaks/${entry.id}`)).body)
      .toMatchObject({ status: 'resolved', resolution: 'matched' });
  });

  it('is refused for a bank entry naming a payout the pull booked cut short, as banks cut remittance texts', async () => {
    const entry = await unexpectedEntryOfBookedPayout('Cut Short Payout Shop',
      (xml) => xml.replace(/SANDBOX PAYOUT (batch-\d+-)USD/g, 'SANDBOX PAYOUT $1U'));
    const refused = await operator('POST', `/v1/reconciliation/breaks/${entry.id}/repair`);
    expect(refused).toMatchObject({ status: 409, body: { error: { code: 'reconciliation_payout_booked' } } });
    expect(await entry.bank()).toBe(entry.bankBooked);
  });

  it('is refused for a bank entry when more PSP payouts were booked around its day than the check reads', async () => {
    // An earlier payout booked within the window, read first (oldest first), the entry's own not read.
    await unexpectedEntryOfBookedPayout('Crowded Payout Shop A');
    const entry = await unexpectedEntryOfBookedPayout('Crowded Payout Shop B');
    const mutable = limits as { reconciliationBookedPayoutsReadMax: number };
    const readMax = mutable.reconciliationBookedPayoutsReadMax;
    mutable.reconciliationBookedPayoutsReadMax = 0;
    try {
      const refused = await operator('POST', `/v1/reconciliation/breaks/${entry.id}/repair`);
      expect(refused).toMatchObject({ status: 409, body: { error: { code: 'reconciliation_payout_booked' } } });
      expect(await entry.bank()).toBe(entry.bankBooked);
    } finally {
      mutable.reconciliationBookedPayoutsReadMax = readMax;
    }
  });
});
