import type Stripe from 'stripe';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { advanceClock, configureClock } from '../../src/clock.js';
import { ReconciliationImports } from '../../src/reconciliation/recon-import.js';
import { listReportFileAttempts, releaseReportFile } from '../../src/settlement/held-reports.js';
import type { SettlementService } from '../../src/settlement/settlement-service.js';
import { startAdyenStub, type AdyenStub } from '../support/adyen-stub.js';
import { freshDay, today } from '../support/days.js';
import { serveTestLedger, settlementOf, type ServedLedger } from '../support/stripe.js';
import { postedOnNormalSide } from '../support/ledger-balances.js';

/**
 * Settlement of an Adyen-routed merchant's captures in the default `settlement` availability mode:
 * Adyen's Settlement details report reaches Penny as a file (downloaded on REPORT_AVAILABLE, or
 * imported), and the settlement-pull worker reads it as it reads the sandbox's pulled report: its
 * Settled lines make their charges available as of the report's day, its MerchantPayout is posted
 * to the operator's bank, each once however often the report arrives. The merchant's Adyen price
 * is 1.2% + 0.11, so a 20.00 EUR capture books a PSP fee of 0.35 and nets 19.65. Each test works
 * on a day and a batch of its own.
 */
let penny: ServedLedger;
let stub: AdyenStub;
let stripe: Stripe;
let merchantId: string;
let settlement: SettlementService;

const header = 'Company Account,Merchant Account,Psp Reference,Merchant Reference,Payment Method,Creation Date,'
  + 'TimeZone,Type,Modification Reference,Gross Currency,Gross Debit (GC),Gross Credit (GC),Exchange Rate,'
  + 'Net Currency,Net Debit (NC),Net Credit (NC),Commission (NC),Markup (NC),Scheme Fees (NC),Interchange (NC),'
  + 'Payment Method Variant,Modification Merchant Reference,Batch Number';

beforeAll(async () => {
  configureClock('controlled');
  stub = await startAdyenStub({ timeoutMs: 300 });
  penny = await serveTestLedger({ routing: { adyenTimeoutMs: 300 } });
  settlement = settlementOf(penny);
  const created = await penny.merchants.createMerchant('Adyen Settled Shop');
  merchantId = created.merchant.id;
  stripe = penny.stripeFor(created.secretKey);
  const routed = await penny.request({ method: 'POST', url: `/v1/merchants/${merchantId}/connector`, body: {
    connector: 'adyen', merchant_account: stub.merchantAccount, api_key: stub.apiKey, hmac_key: stub.hmacKeyHex,
    endpoint: stub.url, fee_basis_points: 120, fee_fixed_minor: 11 } });
  expect(routed.status).toBe(200);
});

afterAll(() => {
  configureClock('system');
});

async function deliver(): Promise<void> {
  for (const body of stub.takeNotifications()) {
    const response = await fetch(`http://127.0.0.1:${penny.port}/v1/connectors/adyen/webhooks`, { method: 'POST',
      headers: { 'content-type': 'application/json' }, body });
    expect(response.status).toBe(200);
  }
  for (let round = 0; round < 10 && await penny.inbox.processDue() > 0; round += 1);
}

/** A 20.00 EUR payment (or `amount` of `currency`) captured on Adyen: its charge, attempt and Adyen pspReference. */
async function captured(amount = 2000, currency = 'eur') {
  const intent = await stripe.paymentIntents.create({ amount, currency, payment_method: 'pm_card_visa', confirm: true });
  await deliver();
  const attempt = await penny.pool.query<{ id: string }>('SELECT id FROM payment_attempts WHERE payment_intent_id = $1',
    [intent.id]);
  const charge = await penny.pool.query<{ psp_reference: string }>('SELECT psp_reference FROM charges WHERE id = $1',
    [intent.latest_charge]);
  return { chargeId: String(intent.latest_charge), attemptId: String(attempt.rows[0]?.id),
    psp: String(charge.rows[0]?.psp_reference) };
}

/**
 * Adyen's report of batch `batch` on the current day: each payment's Settled line (gross, fee and
 * net as Adyen writes them, decimals of the currency) and the batch's MerchantPayout of their nets.
 */
function report(batch: number, lines: { payment: { attemptId: string; psp: string }; gross: string; fee: string;
  net: string }[], payout: string, options: { currency?: string; merchantAccount?: string;
  payoutReferences?: string[] } = {}): string {
  const currency = options.currency ?? 'EUR';
  const account = options.merchantAccount ?? stub.merchantAccount;
  const at = `${today()} 10:00:00`;
  const rows = lines.map(({ payment, gross, fee, net }) => ['PennyCo', account, payment.psp, payment.attemptId, 'visa',
    at, 'CET', 'Settled', payment.psp, currency, '', gross, '1', currency, '', net, fee, '', '', '', 'visacredit', '',
    String(batch)].join(','));
  for (const reference of options.payoutReferences ?? [`PAYOUT-${batch}`]) {
    rows.push(['PennyCo', account, '', '', '', at, 'CET', 'MerchantPayout', reference, currency, '', '', '1',
      currency, payout, '', '', '', '', '', '', reference, String(batch)].join(','));
  }
  return `${header}\n${rows.join('\n')}\n`;
}

async function imported(csv: string, filename: string) {
  return new ReconciliationImports(penny.pool).importFile({ body: Readable.from([Buffer.from(csv, 'utf8')]),
    filename, source: `adyen-${stub.merchantAccount.toLowerCase()}` });
}

async function chargeTransaction(chargeId: string) {
  const { data } = await stripe.balanceTransactions.list({ source: chargeId, type: 'charge' });
  const [transaction] = data;
  if (transaction === undefined) throw new Error(`no balance transaction for ${chargeId}`);
  return transaction;
}

function posted(accountId: string): Promise<bigint> {
  return postedOnNormalSide(penny.ledger, accountId);
}

async function receivable(currency = 'EUR'): Promise<bigint> {
  const accounts = await penny.balances.accounts.accountsFor(penny.pool, { ownerId: merchantId, currency });
  return posted(accounts.psp_receivable);
}

async function operatorBank(currency = 'EUR'): Promise<bigint> {
  return posted((await penny.balances.accounts.operatorAccountsFor(penny.pool, currency)).operator_bank);
}

async function payoutEntries(batch: number, account = stub.merchantAccount): Promise<number> {
  const result = await penny.pool.query('SELECT 1 FROM ledger_entries WHERE external_reference = $1',
    [`penny:psp_payout:adyen:${account}:PAYOUT-${batch}`]);
  return result.rows.length;
}

/** Runs `body` while posting any PSP payout whose reference contains `marker` fails, as a broken batch would. */
async function failingPayouts(marker: string, body: () => Promise<void>): Promise<void> {
  await penny.pool.query(`CREATE FUNCTION test_fail_payout() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN RAISE EXCEPTION 'payout not posted'; END $$`);
  await penny.pool.query(`CREATE TRIGGER test_fail_payout BEFORE INSERT ON ledger_entries FOR EACH ROW
    WHEN (NEW.external_reference LIKE '%${marker}%') EXECUTE FUNCTION test_fail_payout()`);
  try {
    await body();
  } finally {
    await penny.pool.query('DROP TRIGGER test_fail_payout ON ledger_entries');
    await penny.pool.query('DROP FUNCTION test_fail_payout()');
  }
}

/** What settlement recorded of its failed attempts at reading a file (undefined: none, or read since). */
async function attemptsOf(fileId: string) {
  const result = await penny.pool.query<{ status: string; attempt_count: number; last_error: string }>(
    'SELECT status, attempt_count, last_error FROM settlement_report_file_attempts WHERE file_id = $1', [fileId]);
  return result.rows[0];
}

async function wasRead(fileId: string): Promise<boolean> {
  return (await penny.pool.query('SELECT 1 FROM settlement_report_files WHERE file_id = $1', [fileId])).rows.length > 0;
}

async function expectTrialBalanceZero(): Promise<void> {
  const trial = await penny.request({ method: 'GET', url: '/v1/ledger/trial_balance' });
  for (const currency of trial.body.currencies as { currency: string; difference: number }[]) {
    expect(currency.difference, currency.currency).toBe(0);
  }
}

describe('Adyen\'s Settlement details report, imported, in the settlement availability mode', () => {
  it('makes each charge of its Settled lines available as of the report\'s day', async () => {
    const day = freshDay();
    const payment = await captured();
    expect((await chargeTransaction(payment.chargeId)).status).toBe('pending');
    await imported(report(9101, [{ payment, gross: '20.00', fee: '0.35', net: '19.65' }], '19.65'),
      'settlement_detail_report_batch_9101.csv');
    await settlement.pullClosedDays();
    const transaction = await chargeTransaction(payment.chargeId);
    expect(transaction.status).toBe('available');
    expect(transaction.available_on).toBe(Date.parse(`${day}T00:00:00.000Z`) / 1000);
  });

  it('books its MerchantPayout to the operator\'s bank once, paying what Adyen owed for the batch', async () => {
    freshDay();
    const first = await captured();
    const second = await captured();
    const receivableBefore = await receivable();
    const bankBefore = await operatorBank();
    await imported(report(9102, [{ payment: first, gross: '20.00', fee: '0.35', net: '19.65' },
      { payment: second, gross: '20.00', fee: '0.35', net: '19.65' }], '39.30'), 'settlement_detail_report_batch_9102.csv');
    await settlement.pullClosedDays();
    expect(await payoutEntries(9102)).toBe(1);
    expect(await operatorBank() - bankBefore).toBe(3930n);
    expect(receivableBefore - await receivable()).toBe(3930n);
    await expectTrialBalanceZero();
    // Reconciliation agrees: the lines match what Penny booked, the payout waits for its bank entry.
    const run = await penny.request({ method: 'POST', url: '/v1/reconciliation/runs', body: { as_of: today() } });
    expect(run.status).toBe(201);
    const refs = [first.chargeId, first.attemptId, second.chargeId, second.attemptId, 'PAYOUT-9102'];
    expect((run.body.breaks as { type: string; internal_ref: string | null; external_ref: string | null }[])
      .filter((row) => refs.some((ref) => `${row.internal_ref} ${row.external_ref}`.includes(ref)))).toEqual([]);
  });

  it('changes nothing when the same report is imported again, as the same bytes or re-exported', async () => {
    freshDay();
    const payment = await captured();
    const csv = report(9103, [{ payment, gross: '20.00', fee: '0.35', net: '19.65' }], '19.65');
    await imported(csv, 'settlement_detail_report_batch_9103.csv');
    await settlement.pullClosedDays();
    const bank = await operatorBank();
    const owed = await receivable();
    const again = await imported(csv, 'settlement_detail_report_batch_9103.csv');
    expect(again.already_known).toBe(true);
    const reexported = await imported(csv.replace(/\n/g, '\r\n'), 'settlement_detail_report_batch_9103 (1).csv');
    expect(reexported.already_known).toBe(false);
    await settlement.pullClosedDays();
    await settlement.pullClosedDays();
    expect(await payoutEntries(9103)).toBe(1);
    expect(await operatorBank()).toBe(bank);
    expect(await receivable()).toBe(owed);
    expect((await chargeTransaction(payment.chargeId)).status).toBe('available');
    const read = await penny.pool.query('SELECT 1 FROM settlement_report_files WHERE file_id IN ($1, $2)',
      [again.id, reexported.id]);
    expect(read.rows).toHaveLength(2);
    await expectTrialBalanceZero();
  });

  it('settles, once, the report the report-downloads worker downloaded on Adyen\'s REPORT_AVAILABLE', async () => {
    const day = freshDay();
    const payment = await captured();
    const bankBefore = await operatorBank();
    const csv = report(9104, [{ payment, gross: '20.00', fee: '0.35', net: '19.65' }], '19.65');
    const announce = async (url: string) => {
      const body = stub.sign([{ pspReference: url.split('/').at(-1) ?? '', merchantAccountCode: stub.merchantAccount,
        merchantReference: '', eventCode: 'REPORT_AVAILABLE', success: 'true', reason: url }]);
      const response = await fetch(`http://127.0.0.1:${penny.port}/v1/connectors/adyen/webhooks`, { method: 'POST',
        headers: { 'content-type': 'application/json' }, body });
      expect(response.status).toBe(200);
      await penny.reportDownloads?.runDue();
    };
    await announce(stub.publishReport('settlement_detail_report_batch_9104.csv', csv));
    await settlement.pullClosedDays();
    const transaction = await chargeTransaction(payment.chargeId);
    expect(transaction.status).toBe('available');
    expect(transaction.available_on).toBe(Date.parse(`${day}T00:00:00.000Z`) / 1000);
    // Announced again under another name (Adyen's regenerated report), and imported by hand too.
    await announce(stub.publishReport('settlement_detail_report_batch_19104.csv', csv));
    await imported(csv.replace(/\n/g, '\r\n'), 'settlement_detail_report_batch_9104.csv');
    await settlement.pullClosedDays();
    expect(await payoutEntries(9104)).toBe(1);
    expect(await operatorBank() - bankBefore).toBe(1965n);
    await expectTrialBalanceZero();
  });

  it('reads amounts in Adyen\'s exponent into ISO minor units: an ISK batch in krónur with two decimals', async () => {
    freshDay();
    // 1000 ISK (Stripe's hundredths): a fee of 1.2% (12) + 11, net 977 ISK.
    const payment = await captured(100_000, 'isk');
    const receivableBefore = await receivable('ISK');
    const bankBefore = await operatorBank('ISK');
    await imported(report(9105, [{ payment, gross: '1000.00', fee: '23.00', net: '977.00' }], '977.00',
      { currency: 'ISK' }), 'settlement_detail_report_batch_9105.csv');
    await settlement.pullClosedDays();
    expect((await chargeTransaction(payment.chargeId)).status).toBe('available');
    expect(await operatorBank('ISK') - bankBefore).toBe(977n);
    expect(receivableBefore - await receivable('ISK')).toBe(977n);
    await expectTrialBalanceZero();
  });

  it('books nothing for a report of a merchant account that is not one of Penny\'s', async () => {
    freshDay();
    const payment = await captured();
    await imported(report(9106, [{ payment, gross: '20.00', fee: '0.35', net: '19.65' }], '19.65',
      { merchantAccount: 'SomeoneElsesAccount' }), 'settlement_detail_report_batch_9106.csv');
    await settlement.pullClosedDays();
    expect(await payoutEntries(9106, 'SomeoneElsesAccount')).toBe(0);
    expect((await chargeTransaction(payment.chargeId)).status).toBe('pending');
  });

  it('settles a newer report while more than twenty older ones keep failing, each retried later', async () => {
    freshDay();
    const failing: string[] = [];
    await failingPayouts(':BROKEN-92', async () => {
      for (let batch = 9201; batch <= 9221; batch += 1) {
        const file = await imported(report(batch, [], '1.00', { payoutReferences: [`BROKEN-${batch}`] }),
          `settlement_detail_report_batch_${batch}.csv`);
        failing.push(file.id);
      }
      const payment = await captured();
      const good = await imported(report(9222, [{ payment, gross: '20.00', fee: '0.35', net: '19.65' }], '19.65'),
        'settlement_detail_report_batch_9222.csv');
      await settlement.pullClosedDays();
      await settlement.pullClosedDays();
      expect((await chargeTransaction(payment.chargeId)).status).toBe('available');
      expect(await payoutEntries(9222)).toBe(1);
      expect(await wasRead(good.id)).toBe(true);
      for (const fileId of failing) {
        expect(await attemptsOf(fileId)).toMatchObject({ status: 'retrying', attempt_count: 1 });
      }
    });
  });

  it('holds a report that keeps failing for an operator after its last attempt, and reads it no more', async () => {
    freshDay();
    await failingPayouts(':BROKEN-9301', async () => {
      const file = await imported(report(9301, [], '1.00', { payoutReferences: ['BROKEN-9301'] }),
        'settlement_detail_report_batch_9301.csv');
      await settlement.pullClosedDays();
      // Not due again before its backoff has passed.
      await settlement.pullClosedDays();
      expect(await attemptsOf(file.id)).toMatchObject({ status: 'retrying', attempt_count: 1 });
      for (let tick = 0; tick < 12; tick += 1) {
        advanceClock(6 * 3_600_000);
        await settlement.pullClosedDays();
      }
      expect(await attemptsOf(file.id)).toMatchObject({ status: 'held', attempt_count: 10,
        last_error: expect.stringContaining('payout not posted') as unknown });
      expect(await wasRead(file.id)).toBe(false);
    });
  });

  it('reads a held report again on the next tick once an operator releases it, and lists it until then', async () => {
    freshDay();
    const payment = await captured();
    const file = await imported(report(9311, [{ payment, gross: '20.00', fee: '0.35', net: '19.65' }], '19.65'),
      'settlement_detail_report_batch_9311.csv');
    // Held as after its last attempt (the cause, say a connector account, fixed since).
    await penny.pool.query(`INSERT INTO settlement_report_file_attempts (file_id, status, attempt_count, last_error)
       VALUES ($1, 'held', 10, 'payout not posted')`, [file.id]);
    await settlement.pullClosedDays();
    expect(await wasRead(file.id)).toBe(false);
    expect((await listReportFileAttempts(penny.pool)).attempts.find((attempt) => attempt.fileId === file.id))
      .toMatchObject({ status: 'held', attemptCount: 10, lastError: 'payout not posted', nextAttemptAt: null,
        updatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/) as unknown });

    await releaseReportFile(penny.pool, file.id);
    await settlement.pullClosedDays();
    expect(await wasRead(file.id)).toBe(true);
    expect(await payoutEntries(9311)).toBe(1);
    expect(await attemptsOf(file.id)).toBeUndefined();
    expect((await listReportFileAttempts(penny.pool)).attempts.map((attempt) => attempt.fileId)).not.toContain(file.id);
  });

  it('refuses to release a report whose reading never failed, naming the file', async () => {
    await expect(releaseReportFile(penny.pool, 'rfile_never_failed')).rejects.toMatchObject({
      code: 'resource_missing', param: 'file' });
  });

  it('leaves a report whose batch has two MerchantPayout lines unread, held with the reason', async () => {
    freshDay();
    const payment = await captured();
    const file = await imported(report(9401, [{ payment, gross: '20.00', fee: '0.35', net: '19.65' }], '19.65',
      { payoutReferences: ['PAYOUT-9401', 'PAYOUT-9401-B'] }), 'settlement_detail_report_batch_9401.csv');
    await settlement.pullClosedDays();
    expect(await wasRead(file.id)).toBe(false);
    expect(await attemptsOf(file.id)).toMatchObject({ status: 'held', attempt_count: 1,
      last_error: expect.stringContaining('2 MerchantPayout lines') as unknown });
    expect(await payoutEntries(9401)).toBe(0);
    // Its Settled line is applied, as a pull applies a batch whose payout it cannot read.
    expect((await chargeTransaction(payment.chargeId)).status).toBe('available');
  });

  it('applies the other batches of a report whose one batch has no payout Penny can read', async () => {
    freshDay();
    const broken = await captured();
    const fine = await captured(3000, 'usd');
    const eur = report(9403, [{ payment: broken, gross: '20.00', fee: '0.35', net: '19.65' }], '19.65',
      { payoutReferences: ['PAYOUT-9403', 'PAYOUT-9403-B'] });
    const usd = report(9404, [{ payment: fine, gross: '30.00', fee: '0.47', net: '29.53' }], '29.53', { currency: 'USD' });
    const file = await imported(eur + usd.slice(usd.indexOf('\n') + 1), 'settlement_detail_report_batch_9403.csv');
    await settlement.pullClosedDays();
    expect(await attemptsOf(file.id)).toMatchObject({ status: 'held' });
    expect(await payoutEntries(9404)).toBe(1);
    expect((await chargeTransaction(fine.chargeId)).status).toBe('available');
  });

  it('leaves a report whose MerchantPayout has no reference unread, held with the reason', async () => {
    freshDay();
    const payment = await captured();
    const file = await imported(report(9402, [{ payment, gross: '20.00', fee: '0.35', net: '19.65' }], '19.65',
      { payoutReferences: [''] }), 'settlement_detail_report_batch_9402.csv');
    await settlement.pullClosedDays();
    expect(await wasRead(file.id)).toBe(false);
    expect(await attemptsOf(file.id)).toMatchObject({ status: 'held', attempt_count: 1 });
  });

  it('makes a capture named by its charge in one report and by its attempt in another available once', async () => {
    freshDay();
    const payment = await captured();
    const accounts = await penny.balances.accounts.accountsFor(penny.pool, { ownerId: merchantId, currency: 'EUR' });
    const availableBefore = await posted(accounts.merchant_available);
    await imported(report(9501, [{ payment: { ...payment, attemptId: payment.chargeId }, gross: '20.00', fee: '0.35',
      net: '19.65' }], '19.65'), 'settlement_detail_report_batch_9501.csv');
    await imported(report(9502, [{ payment, gross: '20.00', fee: '0.35', net: '19.65' }], '19.65'),
      'settlement_detail_report_batch_9502.csv');
    await settlement.pullClosedDays();
    expect((await chargeTransaction(payment.chargeId)).status).toBe('available');
    const availability = await penny.pool.query('SELECT 1 FROM ledger_entries WHERE external_reference = $1',
      [`penny:charge:${payment.chargeId}:available`]);
    expect(availability.rows).toHaveLength(1);
    // The charge's net (2000 − Penny's fee), once.
    const transaction = await chargeTransaction(payment.chargeId);
    expect(await posted(accounts.merchant_available) - availableBefore).toBe(BigInt(transaction.net));
    await expectTrialBalanceZero();
  });
});
