import { Readable } from 'node:stream';
import { parse } from 'csv-parse/sync';
import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BankAccountVault } from '../../src/accounts/bank-accounts.js';
import { ConnectedAccounts } from '../../src/accounts/account-service.js';
import { advanceClock, configureClock } from '../../src/clock.js';
import { insertBalanceTransaction } from '../../src/balances/balance-store.js';
import { limits } from '../../src/config.js';
import { withTransaction } from '../../src/db/pool.js';
import { newId } from '../../src/ids.js';
import { createLogger } from '../../src/logger.js';
import { readStripePayoutReconciliation } from '../../src/reconciliation/stripe-payout-reconciliation.js';
import { ReportRuns } from '../../src/reporting/report-runs.js';
import { reportTypeDefinition } from '../../src/reporting/report-types.js';
import { alertsRaised } from '../support/alerts.js';
import { operatorKey, testPepper } from '../support/app.js';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/**
 * Stripe's Reports API through the official SDK: a run is created `pending`, the `report-runs`
 * worker executes it, and its result is a File whose `url` (Penny's own /v1/files/:id/contents)
 * serves the CSV to the merchant's secret key. Amounts are exact major-unit decimals; the payout
 * reconciliation CSV is read back by Penny's own reconciliation import.
 */
let penny: ServedLedger;
let worker: ReportRuns;

beforeAll(async () => {
  configureClock('controlled');
  penny = await serveTestLedger();
  worker = new ReportRuns(penny.pool, { accounts: new ConnectedAccounts(penny.pool, new BankAccountVault(testPepper)),
    publicUrl: () => `http://127.0.0.1:${penny.port}`, logger: createLogger('silent') });
});

afterAll(() => {
  configureClock('system');
});

type Row = Record<string, string>;

function available(balance: Stripe.Balance, currency = 'usd'): number {
  return balance.available.find((item) => item.currency === currency)?.amount ?? 0;
}

let days = 0;

/**
 * A merchant with two available charges and a refund paid out by one automatic payout, and a
 * charge after it that no payout has taken; the clock then moves a minute on, so every one of
 * them is inside the data available.
 */
async function merchantWithAutomaticPayout(name: string) {
  const created = await penny.merchants.createMerchant(name);
  const stripe = penny.stripeFor(created.secretKey);
  const charge = (amount: number) => stripe.paymentIntents.create({ amount, currency: 'usd',
    payment_method: 'pm_card_bypassPending', confirm: true });
  const first = await charge(10_000);
  await charge(2_550);
  const refund = await stripe.refunds.create({ payment_intent: first.id, amount: 1_234 });
  const funds = available(await stripe.balance.retrieve());
  days += 1;
  const payout = await penny.payouts.payOutAutomatically({ owner: { merchantId: created.merchant.id,
    accountId: created.merchant.id }, currency: 'USD', availableMinor: BigInt(funds),
  day: `2030-01-${String(days).padStart(2, '0')}` });
  if (payout === undefined) throw new Error('no automatic payout was made');
  const payoutAmount = Number(payout.amount);
  const later = await charge(777);
  advanceClock(60_000);
  return { stripe, secretKey: created.secretKey, merchantId: created.merchant.id, payout, payoutAmount, funds, refund,
    later };
}

/** The whole of the data available for a type, as its ReportType says. */
async function wholeInterval(stripe: Stripe, type: string) {
  const reportType = await stripe.reporting.reportTypes.retrieve(type);
  return { interval_start: reportType.data_available_start, interval_end: reportType.data_available_end };
}

/** Creates a run, has the worker execute it, and answers the run as the SDK then retrieves it. */
async function run(stripe: Stripe, params: Stripe.Reporting.ReportRunCreateParams,
  options: Stripe.RequestOptions = {}) {
  const created = await stripe.reporting.reportRuns.create(params, options);
  expect(created.status).toBe('pending');
  // Runs other tests left pending are claimed first (oldest first), two a round.
  for (let round = 0; round < 10; round += 1) {
    await worker.runDue();
    const ran = await stripe.reporting.reportRuns.retrieve(created.id, {}, options);
    if (ran.status !== 'pending') return ran;
  }
  throw new Error(`${created.id} is still pending`);
}

/** USD minor units as the dollars a report writes, counted by hand: -1234 → "-12.34". */
function dollars(minor: number): string {
  const magnitude = Math.abs(minor);
  return `${minor < 0 ? '-' : ''}${Math.trunc(magnitude / 100)}.${String(magnitude % 100).padStart(2, '0')}`;
}

async function download(url: string, secretKey: string, headers: Record<string, string> = {}): Promise<string> {
  const response = await fetch(url, { headers: { authorization: `Bearer ${secretKey}`, ...headers } });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/csv/);
  return response.text();
}

function rowsOf(csv: string): Row[] {
  return parse(csv, { columns: true }) as Row[];
}

describe('a payout reconciliation report run', () => {
  it('succeeds in the background with a CSV file of each transaction the automatic payout paid out', async () => {
    const { stripe, secretKey, payout, funds, later } = await merchantWithAutomaticPayout('Reconciled Shop');
    const done = await run(stripe, { report_type: 'payout_reconciliation.itemized.5',
      parameters: await wholeInterval(stripe, 'payout_reconciliation.itemized.5') });
    expect(done).toMatchObject({ object: 'reporting.report_run', status: 'succeeded', error: null,
      report_type: 'payout_reconciliation.itemized.5' });
    expect(done.succeeded_at).toEqual(expect.any(Number));
    const file = done.result as Stripe.File;
    expect(file).toMatchObject({ object: 'file', purpose: 'finance_report_run', type: 'csv',
      url: `http://127.0.0.1:${penny.port}/v1/files/${file.id}/contents` });
    expect(file.id).toMatch(/^file_/);
    expect(await stripe.files.retrieve(file.id)).toEqual(file);
    const csv = await download(file.url as string, secretKey);
    expect(Buffer.byteLength(csv)).toBe(file.size);
    expect(csv.split('\n')[0]).toBe(reportTypeDefinition('payout_reconciliation.itemized.5').defaultColumns.join(','));
    const rows = rowsOf(csv);
    expect(rows.map((row) => row.reporting_category).sort()).toEqual(['charge', 'charge', 'refund']);
    expect(rows.every((row) => row.automatic_payout_id === payout.id)).toBe(true);
    expect(rows.find((row) => row.reporting_category === 'refund')).toMatchObject({ gross: '-12.34', fee: '0.00',
      net: '-12.34', currency: 'usd' });
    expect(rows.find((row) => row.gross === '100.00')).toMatchObject({ fee: '3.20', net: '96.80' });
    const netMinor = rows.reduce((sum, row) => sum + BigInt(row.net?.replace('.', '') ?? '0'), 0n);
    expect(netMinor).toBe(BigInt(payout.amount));
    expect(BigInt(funds)).toBe(BigInt(payout.amount));
    expect(rows.some((row) => row.source_id === later.latest_charge)).toBe(false);
  });

  it('is read by Penny\'s own reconciliation import, every row a record with the amounts it wrote', async () => {
    const { stripe, secretKey, payout } = await merchantWithAutomaticPayout('Closed Loop Shop');
    const done = await run(stripe, { report_type: 'payout_reconciliation.itemized.5',
      parameters: await wholeInterval(stripe, 'payout_reconciliation.itemized.5') });
    const csv = await download((done.result as Stripe.File).url as string, secretKey);
    const written = rowsOf(csv);
    const records = [];
    for await (const item of readStripePayoutReconciliation(Readable.from([csv]), `${done.id}.csv`)) {
      if (item.kind === 'record') records.push(item.record);
    }
    expect(records.map((record) => ({ id: record.externalId, batch: record.batchKey, type: record.type,
      currency: record.currency, net: record.amountMinor, gross: record.grossMinor, fee: record.feeMinor })))
      .toEqual(written.map((row) => ({ id: row.balance_transaction_id, batch: payout.id, type: row.reporting_category,
        currency: 'USD', net: BigInt((row.net ?? '').replace('.', '')), gross: BigInt((row.gross ?? '').replace('.', '')),
        fee: BigInt((row.fee ?? '').replace('.', '')) })));
    expect(records.reduce((sum, record) => sum + record.amountMinor, 0n)).toBe(BigInt(payout.amount));
    const imported = await penny.app.inject({ method: 'POST',
      url: `/v1/reconciliation/files?source=penny_reports&format=stripe_payout_reconciliation&filename=${done.id}.csv`,
      payload: csv, headers: { authorization: `Bearer ${operatorKey}`, 'content-type': 'text/csv' } });
    expect(imported.statusCode).toBe(201);
    expect(imported.json()).toMatchObject({ format: 'stripe_payout_reconciliation',
      records: { total: written.length, new: written.length, conflicting: 0 } });
  });

  it('with parameters[payout] covers that automatic payout alone, and refuses a manual one', async () => {
    const { stripe, secretKey, payout } = await merchantWithAutomaticPayout('One Payout Shop');
    const interval = await wholeInterval(stripe, 'payout_reconciliation.itemized.5');
    const done = await run(stripe, { report_type: 'payout_reconciliation.itemized.5',
      parameters: { ...interval, payout: payout.id, columns: ['automatic_payout_id', 'net'] } });
    const rows = rowsOf(await download((done.result as Stripe.File).url as string, secretKey));
    expect(rows).toHaveLength(3);
    expect(new Set(rows.map((row) => row.automatic_payout_id))).toEqual(new Set([payout.id]));
    const manual = await stripe.payouts.create({ amount: 100, currency: 'usd' });
    await expect(stripe.reporting.reportRuns.create({ report_type: 'payout_reconciliation.itemized.5',
      parameters: { ...interval, payout: manual.id } })).rejects.toMatchObject({ statusCode: 400,
      param: 'parameters[payout]' });
  });
});

describe('the other report types', () => {
  it('balance_change_from_activity.itemized.3 lists every transaction of the interval but payouts, in the columns asked for', async () => {
    const { stripe, secretKey, later } = await merchantWithAutomaticPayout('Activity Shop');
    const done = await run(stripe, { report_type: 'balance_change_from_activity.itemized.3',
      parameters: { ...await wholeInterval(stripe, 'balance_change_from_activity.itemized.3'),
        columns: ['net', 'reporting_category', 'source_id', 'automatic_payout_id', 'invoice_id'] } });
    const csv = await download((done.result as Stripe.File).url as string, secretKey);
    expect(csv.split('\n')[0]).toBe('net,reporting_category,source_id,automatic_payout_id,invoice_id');
    const rows = rowsOf(csv);
    expect(rows.map((row) => row.reporting_category).sort()).toEqual(['charge', 'charge', 'charge', 'refund']);
    expect(rows.find((row) => row.source_id === later.latest_charge)).toMatchObject({ net: '7.24',
      automatic_payout_id: '', invoice_id: '' });
  });

  it('balance.summary.1 gives the starting balance, the activity, the payouts and the ending balance', async () => {
    const { stripe, secretKey, payoutAmount, funds } = await merchantWithAutomaticPayout('Summary Shop');
    const done = await run(stripe, { report_type: 'balance.summary.1',
      parameters: await wholeInterval(stripe, 'balance.summary.1') });
    const rows = rowsOf(await download((done.result as Stripe.File).url as string, secretKey));
    // The charge after the payout: 7.77 less Penny's fee of 0.53 (2.9 % rounded half up, and 0.30).
    const activity = funds + 724;
    expect(rows).toEqual([
      { category: 'starting_balance', description: 'Starting balance', net_amount: '0.00', currency: 'usd' },
      { category: 'activity', description: 'Activity', net_amount: dollars(activity), currency: 'usd' },
      { category: 'payouts', description: 'Less payouts', net_amount: dollars(-payoutAmount), currency: 'usd' },
      { category: 'ending_balance', description: 'Ending balance', net_amount: dollars(activity - payoutAmount),
        currency: 'usd' },
    ]);
  });

  it('payouts.itemized.3 lists each payout with its status and destination, times in the timezone asked for', async () => {
    const { stripe, secretKey, payout, payoutAmount } = await merchantWithAutomaticPayout('Payouts Shop');
    const done = await run(stripe, { report_type: 'payouts.itemized.3',
      parameters: { ...await wholeInterval(stripe, 'payouts.itemized.3'), timezone: 'Asia/Tokyo',
        columns: ['payout_id', 'effective_at_utc', 'effective_at', 'net', 'payout_status', 'payout_destination_id'] } });
    const rows = rowsOf(await download((done.result as Stripe.File).url as string, secretKey));
    expect(rows).toHaveLength(1);
    const [row] = rows;
    expect(row).toMatchObject({ payout_id: payout.id, net: dollars(-payoutAmount),
      payout_status: expect.any(String), payout_destination_id: payout.destination });
    const utc = Date.parse(`${row?.effective_at_utc?.replace(' ', 'T')}Z`);
    expect(row?.effective_at).toBe(new Date(utc + 9 * 3_600_000).toISOString().slice(0, 19).replace('T', ' '));
  });
});

describe('report types', () => {
  it('are listed with their data available, default columns and version', async () => {
    const created = await penny.merchants.createMerchant('Types Shop');
    const stripe = penny.stripeFor(created.secretKey);
    const list = await stripe.reporting.reportTypes.list();
    expect(list.data.map((type) => type.id)).toEqual(['balance.summary.1', 'balance_change_from_activity.itemized.3',
      'payouts.itemized.3', 'payout_reconciliation.itemized.5']);
    const type = list.data[3];
    expect(type).toMatchObject({ object: 'reporting.report_type', version: 5,
      default_columns: reportTypeDefinition('payout_reconciliation.itemized.5').defaultColumns });
    expect(type?.data_available_start).toBe(type!.data_available_start - (type!.data_available_start % 86_400));
    expect(type!.data_available_end).toBeGreaterThan(type!.data_available_start);
    await expect(stripe.reporting.reportTypes.retrieve('payout_reconciliation.by_id.itemized.4'))
      .rejects.toMatchObject({ statusCode: 404, code: 'resource_missing' });
  });
});

describe('creating a report run', () => {
  async function refusal(params: Record<string, unknown>) {
    const created = await penny.merchants.createMerchant('Refused Shop');
    const stripe = penny.stripeFor(created.secretKey);
    const interval = await wholeInterval(stripe, 'balance.summary.1');
    const parameters = params.parameters === undefined ? interval
      : { ...interval, ...(params.parameters as Record<string, unknown>) };
    return stripe.reporting.reportRuns.create({ report_type: 'balance.summary.1', ...params, parameters } as
      Stripe.Reporting.ReportRunCreateParams).then(() => undefined, (error: Stripe.errors.StripeError) => error);
  }

  it('records one run for one Idempotency-Key, a retry answered with the same run', async () => {
    const created = await penny.merchants.createMerchant('Retrying Shop');
    const stripe = penny.stripeFor(created.secretKey);
    const params = { report_type: 'balance.summary.1', parameters: await wholeInterval(stripe, 'balance.summary.1') };
    const first = await stripe.reporting.reportRuns.create(params, { idempotencyKey: 'report-once' });
    const again = await stripe.reporting.reportRuns.create(params, { idempotencyKey: 'report-once' });
    expect(again.id).toBe(first.id);
    expect((await stripe.reporting.reportRuns.list()).data.map((item) => item.id)).toEqual([first.id]);
  });

  it('refuses an unknown report type with 400 naming report_type', async () => {
    expect(await refusal({ report_type: 'balance.summary.9' })).toMatchObject({ statusCode: 400,
      type: 'StripeInvalidRequestError', param: 'report_type' });
  });

  it('refuses a parameter the type does not take with 400 naming it', async () => {
    expect(await refusal({ parameters: { payout: 'po_123456789' } })).toMatchObject({ statusCode: 400,
      code: 'parameter_unknown', param: 'parameters[payout]' });
  });

  it('refuses an interval that ends before it starts with 400 naming interval_end', async () => {
    expect(await refusal({ parameters: { interval_start: 1_900_000_000, interval_end: 1_800_000_000 } }))
      .toMatchObject({ statusCode: 400, param: 'parameters[interval_end]' });
  });

  it('refuses an interval past data_available_end with 400', async () => {
    const end = Math.floor(Date.now() / 1000) + 30 * 86_400 * 365;
    expect(await refusal({ parameters: { interval_end: end } })).toMatchObject({ statusCode: 400,
      param: 'parameters[interval_end]' });
  });

  it('refuses a column the type does not have, and an unknown time zone, with 400 naming them', async () => {
    expect(await refusal({ parameters: { columns: ['category', 'gross'] } })).toMatchObject({ statusCode: 400,
      param: 'parameters[columns][1]' });
    expect(await refusal({ parameters: { timezone: 'Mars/Olympus_Mons' } })).toMatchObject({ statusCode: 400,
      param: 'parameters[timezone]' });
  });
});

describe('a merchant', () => {
  it('sees only its own runs and files: another merchant\'s are 404', async () => {
    const { stripe, secretKey } = await merchantWithAutomaticPayout('Owner Shop');
    const done = await run(stripe, { report_type: 'balance.summary.1',
      parameters: await wholeInterval(stripe, 'balance.summary.1') });
    const file = done.result as Stripe.File;
    const other = await penny.merchants.createMerchant('Nosy Shop');
    const nosy = penny.stripeFor(other.secretKey);
    await expect(nosy.reporting.reportRuns.retrieve(done.id)).rejects.toMatchObject({ statusCode: 404 });
    await expect(nosy.files.retrieve(file.id)).rejects.toMatchObject({ statusCode: 404 });
    const stolen = await fetch(file.url as string, { headers: { authorization: `Bearer ${other.secretKey}` } });
    expect(stolen.status).toBe(404);
    expect((await nosy.reporting.reportRuns.list()).data).toEqual([]);
    const own = await stripe.reporting.reportRuns.list({ limit: 1 });
    expect(own).toMatchObject({ object: 'list', url: '/v1/reporting/report_runs' });
    expect(own.data.map((item) => item.id)).toEqual([done.id]);
    expect(await download(file.url as string, secretKey)).toContain('ending_balance');
  });

  it('lists its runs newest first, at most 100 a page', async () => {
    const created = await penny.merchants.createMerchant('Listing Shop');
    const stripe = penny.stripeFor(created.secretKey);
    const parameters = await wholeInterval(stripe, 'balance.summary.1');
    const first = await stripe.reporting.reportRuns.create({ report_type: 'balance.summary.1', parameters });
    const second = await stripe.reporting.reportRuns.create({ report_type: 'balance.summary.1', parameters });
    const page = await stripe.reporting.reportRuns.list({ limit: 1 });
    expect(page.data.map((item) => item.id)).toEqual([second.id]);
    expect(page.has_more).toBe(true);
    const next = await stripe.reporting.reportRuns.list({ limit: 1, starting_after: second.id });
    expect(next.data.map((item) => item.id)).toEqual([first.id]);
    await expect(stripe.reporting.reportRuns.list({ limit: 101 })).rejects.toMatchObject({ statusCode: 400,
      param: 'limit' });
  });
});

describe('a connected account', () => {
  it('reports on its own data with Stripe-Account, and the platform on it with parameters[connected_account]', async () => {
    const created = await penny.merchants.createMerchant('Platform Shop');
    const { secretKey } = created;
    const stripe = penny.stripeFor(secretKey);
    await stripe.paymentIntents.create({ amount: 5_000, currency: 'usd', payment_method: 'pm_card_bypassPending',
      confirm: true });
    const account = await stripe.accounts.create({ type: 'custom', country: 'US' });
    const transfer = await stripe.transfers.create({ amount: 1_500, currency: 'usd', destination: account.id });
    advanceClock(60_000);
    const interval = await wholeInterval(stripe, 'balance_change_from_activity.itemized.3');
    const columns = ['source_id', 'reporting_category', 'net'];
    const own = await run(stripe, { report_type: 'balance_change_from_activity.itemized.3',
      parameters: { ...interval, columns } }, { stripeAccount: account.id });
    const ownCsv = await download((own.result as Stripe.File).url as string, secretKey,
      { 'stripe-account': account.id });
    expect(rowsOf(ownCsv)).toEqual([{ source_id: expect.any(String), reporting_category: 'transfer', net: '15.00' }]);
    await expect(stripe.reporting.reportRuns.retrieve(own.id)).rejects.toMatchObject({ statusCode: 404 });
    const platform = await run(stripe, { report_type: 'balance_change_from_activity.itemized.3',
      parameters: { ...interval, columns, connected_account: account.id } });
    expect(await download((platform.result as Stripe.File).url as string, secretKey)).toBe(ownCsv);
    expect(transfer.destination).toBe(account.id);
  });
});

describe('a finished report run', () => {
  it('is announced by reporting.report_run.succeeded, carrying its file', async () => {
    const { stripe } = await merchantWithAutomaticPayout('Announced Shop');
    const done = await run(stripe, { report_type: 'balance.summary.1',
      parameters: await wholeInterval(stripe, 'balance.summary.1') });
    const events = await stripe.events.list({ type: 'reporting.report_run.succeeded' });
    expect(events.data).toHaveLength(1);
    expect(events.data[0]?.data.object).toMatchObject({ id: done.id, status: 'succeeded',
      result: { id: (done.result as Stripe.File).id, url: (done.result as Stripe.File).url } });
  });

  it('fails with its error and reporting.report_run.failed once an unexpected error has used up its attempts', async () => {
    const { stripe, secretKey } = await merchantWithAutomaticPayout('Broken Shop');
    const created = await stripe.reporting.reportRuns.create({ report_type: 'balance.summary.1',
      parameters: await wholeInterval(stripe, 'balance.summary.1') });
    // A stored time zone no longer known (as after a tz database update) makes every attempt throw.
    await penny.pool.query(`UPDATE report_runs SET parameters = jsonb_set(parameters, '{timezone}', '"Nowhere/Gone"')
      WHERE id = $1`, [created.id]);
    const alertsBefore = await alertsRaised('report_run_failed');
    // Every pending run is claimed and tried, this one among them, until its attempts are used up.
    for (let round = 0; round < 10 * limits.reportRunAttemptsMax; round += 1) {
      await worker.runDue();
      advanceClock(limits.reportRunLeaseMs);
    }
    // Read without the SDK: stripe-node takes any answer with a string `error` for an OAuth error,
    // and a failed ReportRun's `error` is a string (Stripe's shape), so its retrieve() rejects.
    const answer = await fetch(`http://127.0.0.1:${penny.port}/v1/reporting/report_runs/${created.id}`,
      { headers: { authorization: `Bearer ${secretKey}` } });
    expect(answer.status).toBe(200);
    expect(await answer.json()).toMatchObject({ id: created.id, status: 'failed', result: null,
      error: expect.stringContaining('could not produce this report') });
    await expect(stripe.reporting.reportRuns.retrieve(created.id)).rejects.toMatchObject({
      type: 'StripeOAuthError' });
    const events = await stripe.events.list({ type: 'reporting.report_run.failed' });
    expect(events.data.map((event) => (event.data.object as { id: string }).id)).toEqual([created.id]);
    expect(await alertsRaised('report_run_failed')).toBe(alertsBefore + 1);
  });
});

describe('an automatic payout', () => {
  it('lists the transactions it paid out, and its own, under Stripe\'s payout filter', async () => {
    const { stripe, payout, later } = await merchantWithAutomaticPayout('Filtered Shop');
    const listed = await stripe.balanceTransactions.list({ payout: payout.id, limit: 100 });
    expect(listed.data.map((transaction) => transaction.reporting_category).sort())
      .toEqual(['charge', 'charge', 'payout', 'refund']);
    expect(listed.data.some((transaction) => transaction.source === later.latest_charge)).toBe(false);
  });
});

describe('a long report', () => {
  it('is read page by page and written in parts, every row once and in order', async () => {
    const created = await penny.merchants.createMerchant('Busy Shop');
    const stripe = penny.stripeFor(created.secretKey);
    const merchantId = created.merchant.id;
    const count = limits.reportRowsPerQueryMax * 2 + 500;
    // Adjustments written straight through the balances' store: quicker than thousands of payments.
    await withTransaction(penny.pool, async (client) => {
      for (let index = 0; index < count; index += 1) {
        await insertBalanceTransaction(client, { merchantId, accountId: merchantId, id: newId('txn'),
          type: 'adjustment', reportingCategory: 'other_adjustment', sourceId: `adj_${String(index).padStart(6, '0')}`,
          currency: 'USD', amountMinor: BigInt(index + 1), feeMinor: 0n, feeDetails: [], status: 'available',
          availableOn: new Date().toISOString(), description: 'x'.repeat(120) });
      }
    });
    advanceClock(60_000);
    const done = await run(stripe, { report_type: 'balance_change_from_activity.itemized.3',
      parameters: await wholeInterval(stripe, 'balance_change_from_activity.itemized.3') });
    const file = done.result as Stripe.File;
    const parts = await penny.pool.query<{ parts: number }>('SELECT parts FROM files WHERE id = $1', [file.id]);
    expect(parts.rows[0]?.parts).toBeGreaterThan(1);
    const csv = await download(file.url as string, created.secretKey);
    expect(Buffer.byteLength(csv)).toBe(file.size);
    const rows = rowsOf(csv);
    expect(rows.map((row) => row.source_id)).toEqual(
      Array.from({ length: count }, (_, index) => `adj_${String(index).padStart(6, '0')}`));
    expect(rows.at(-1)?.net).toBe(dollars(count));
  });
});
