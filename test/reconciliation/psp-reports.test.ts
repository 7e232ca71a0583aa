import { describe, expect, it } from 'vitest';
import { readAdyenSdr, readAdyenSdrText } from '../../src/reconciliation/adyen-sdr.js';
import { readStripePayoutReconciliation } from '../../src/reconciliation/stripe-payout-reconciliation.js';
import { settlementDetailsReport, type SettledOperation } from '../../src/sandbox-psp/settlement-report.js';
import { parseFixture, parseText } from './parse-support.js';

const sdrFixture = 'psp/adyen-sdr-batch-17.csv';

describe('Adyen settlement details report', () => {
  it('reads every journal type of a batch; the lines net to the payout, 67.89 EUR', async () => {
    const { records } = await parseFixture(readAdyenSdr, sdrFixture);
    expect(records.map((record) => record.type)).toEqual(['Settled', 'Settled', 'Refunded', 'Chargeback',
      'ChargebackReversed', 'Fee', 'MiscCosts', 'DepositCorrection', 'Balancetransfer', 'MerchantPayout']);
    const payout = records.at(-1);
    expect(payout).toMatchObject({ amountMinor: -6789n, currency: 'EUR', batchKey: 'PennyShopEUR#17',
      remittanceText: 'TX4412345678XT PennyShopEUR batch 17', pspReference: null });
    const lines = records.slice(0, -1).reduce((sum, record) => sum + record.amountMinor, 0n);
    expect(lines).toBe(6789n);
  });

  it('keeps gross, net and fee apart, with each amount in its own currency', async () => {
    const { records } = await parseFixture(readAdyenSdr, sdrFixture);
    expect(records[0]).toMatchObject({ kind: 'psp_line', line: 2, pspReference: '8815000000000001',
      merchantReference: 'ch_settled_1', grossMinor: 10000n, grossCurrency: 'EUR', amountMinor: 9760n, feeMinor: 240n,
      bookingDate: '2026-03-04', externalId: 'PennyShopEUR|17|Settled|8815000000000001|8815000000000001' });
    expect(records[1]).toMatchObject({ grossMinor: 1000n, grossCurrency: 'USD', amountMinor: 904n, currency: 'EUR', feeMinor: 16n,
      references: { 'Exchange Rate': '0.92' } });
    expect(records[3]).toMatchObject({ type: 'Chargeback', grossMinor: -4200n, amountMinor: -5700n, feeMinor: 1500n,
      references: { 'Dispute Reference': 'DR-3' } });
    expect(records[5]).toMatchObject({ type: 'Fee', amountMinor: -150n, feeMinor: null, grossMinor: null });
  });

  it('reads columns by header name, in any order', async () => {
    const text = 'Type,Net Currency,Net Credit (NC),Net Debit (NC),Batch Number,Creation Date,Merchant Account,Psp Reference,'
      + 'Merchant Reference,Modification Reference,Gross Currency,Gross Debit (GC),Gross Credit (GC)\n'
      + 'Settled,JPY,964,,3,2026-03-02 10:00:00,ShopJP,881,ch_jp,881,JPY,,1000\n';
    const { records } = await parseText(readAdyenSdr, text);
    expect(records[0]).toMatchObject({ type: 'Settled', amountMinor: 964n, grossMinor: 1000n, currency: 'JPY', batchKey: 'ShopJP#3' });
  });

  it('refuses a report without a mandatory column, naming it', async () => {
    const text = 'Merchant Account,Psp Reference,Type\nShop,1,Settled\n';
    await expect(parseText(readAdyenSdr, text, 'batch.csv')).rejects.toMatchObject({
      code: 'reconciliation_file_invalid', details: { file: 'batch.csv', line: 1 },
      message: expect.stringMatching(/lacks the columns Merchant Reference, Modification Reference/) });
  });

  it('refuses a bad amount, a bad date and a bad currency by line and column', async () => {
    const csv = (await import('node:fs')).readFileSync(new URL('../fixtures/reconciliation/psp/adyen-sdr-batch-17.csv',
      import.meta.url), 'utf8');
    const broken = (from: string, to: string) => csv.replace(from, to);
    await expect(parseText(readAdyenSdr, broken(',97.60,', ',97.6O,'))).rejects.toMatchObject({
      details: { line: 2, field: 'Net Credit (NC)' } });
    await expect(parseText(readAdyenSdr, broken(',97.60,', ',97.605,'))).rejects.toMatchObject({
      details: { line: 2, field: 'Net Credit (NC)' }, message: expect.stringMatching(/3 decimals; EUR has 2/) });
    await expect(parseText(readAdyenSdr, broken('2026-03-03 08:00:00', '2026-02-30 08:00:00'))).rejects.toMatchObject({
      details: { line: 4, field: 'Creation Date' }, message: expect.stringMatching(/no such day/) });
    await expect(parseText(readAdyenSdr, broken(',USD,,10.00,', ',US$,,10.00,'))).rejects.toMatchObject({
      details: { line: 3, field: 'Gross Currency' } });
  });

  it('refuses a row of the wrong width, naming its line', async () => {
    const text = 'Merchant Account,Psp Reference,Merchant Reference,Type,Modification Reference,Gross Currency,'
      + 'Gross Debit (GC),Gross Credit (GC),Net Currency,Net Debit (NC),Net Credit (NC),Batch Number,Creation Date\n'
      + 'Shop,1,ch_1,Settled,1,EUR,,1.00,EUR,,0.90,5,2026-03-02\nShop,2,ch_2\n';
    await expect(parseText(readAdyenSdr, text)).rejects.toMatchObject({ details: { line: 3, field: 'row' } });
  });

  it('reads what the sandbox PSP writes, planted discrepancies included', async () => {
    const operation = (kind: SettledOperation['kind'], reference: string, amountMinor: bigint): SettledOperation => ({
      pspReference: `psp_${reference}_${kind}`, merchantReference: reference, kind, amountMinor, currency: 'USD',
      paymentMethod: 'visa', createdAt: '2026-03-02T10:15:30.250Z' });
    const batch = settlementDetailsReport({ companyAccount: 'SandboxCompany', merchantAccount: 'SandboxMerchant', batchNumber: 7,
      settlementDate: '2026-03-03', currency: 'USD', priceList: { basisPoints: 290, fixedMinor: 30n },
      operations: [operation('capture', 'ch_1', 1000n), operation('capture', 'ch_2', 5000n), operation('refund', 'ch_1', 400n),
        operation('chargeback', 'ch_2', 2000n)],
      discrepancies: [{ kind: 'duplicate_line', merchantReference: 'ch_1' }], batchFeeMinor: 12n });
    const records = await readAdyenSdrText(batch.csv, 'sandbox batch 7');
    expect(records.map((record) => record.type))
      .toEqual(['Settled', 'Settled', 'Settled', 'Refunded', 'Chargeback', 'Fee', 'MerchantPayout']);
    expect(records.map((record) => record.amountMinor)).toEqual(batch.rows.map((row) =>
      (row.netCreditMinor ?? 0n) - (row.netDebitMinor ?? 0n)));
    expect(records.at(-1))
      .toMatchObject({ amountMinor: -batch.payoutAmountMinor, remittanceText: batch.payoutReference });
    // The duplicated line keeps its external id: the import numbers its occurrences.
    expect(records[0]?.externalId).toBe(records[1]?.externalId);
    expect(records[0]?.bookingDate).toBe('2026-03-03');
  });
});

describe('Stripe payout reconciliation report (payout_reconciliation.itemized.5)', () => {
  it('reads major-unit decimals exactly with each currency\'s exponent (USD 2, JPY 0, KWD 3)', async () => {
    const { records } = await parseFixture(readStripePayoutReconciliation, 'psp/stripe-payout-reconciliation.csv');
    expect(records.map((record) =>
      [record.externalId, record.currency, record.grossMinor, record.feeMinor, record.amountMinor]))
      .toEqual([
        ['txn_1Charge', 'USD', 2500n, 95n, 2405n],
        ['txn_1Refund', 'USD', -1000n, 0n, -1000n],
        ['txn_1Dispute', 'USD', -4200n, 1500n, -5700n],
        ['txn_1Radar', 'USD', -5n, 0n, -5n],
        ['txn_1Transfer', 'USD', -500n, 0n, -500n],
        ['txn_1Mystery', 'USD', 100n, 0n, 100n],
        ['txn_1ChargeJPY', 'JPY', 1000n, 36n, 964n],
        ['txn_1ChargeKWD', 'KWD', 1250n, 40n, 1210n],
      ]);
  });

  it('keeps the payout, the references, the dates and a category Penny does not know', async () => {
    const { records } = await parseFixture(readStripePayoutReconciliation, 'psp/stripe-payout-reconciliation.csv');
    expect(records[0]).toMatchObject({ batchKey: 'po_1PennyTestUSD', type: 'charge', pspReference: 'ch_1Charge',
      merchantReference: 'ch_1Charge', bookingDate: '2026-03-02', valueDate: '2026-03-04', counterpartyName: 'Jane Doe',
      references: { payment_intent_id: 'pi_1Charge', description: 'Order 1001' } });
    expect(records[4]).toMatchObject({ type: 'transfer', counterpartyAccount: 'acct_1Seller' });
    expect(records[5]?.type).toBe('climate_order_purchase');
    const usd = records.filter((record) => record.batchKey === 'po_1PennyTestUSD');
    expect(usd.reduce((sum, record) => sum + record.amountMinor, 0n)).toBe(-4700n);
  });

  it('refuses an amount with more decimals than the currency has (JPY 1000.5), naming line and column', async () => {
    const text = 'automatic_payout_id,balance_transaction_id,created_utc,currency,gross,fee,net,reporting_category\n'
      + 'po_1,txn_1,2026-03-02 10:00:00,jpy,1000.5,36,964.5,charge\n';
    await expect(parseText(readStripePayoutReconciliation, text, 'stripe.csv')).rejects.toMatchObject({
      details: { file: 'stripe.csv', line: 2, field: 'gross' } });
  });

  it('refuses a report without the payout column', async () => {
    const text = 'balance_transaction_id,created_utc,currency,gross,fee,net,reporting_category\n';
    await expect(parseText(readStripePayoutReconciliation, text))
      .rejects.toThrow(/lacks the column automatic_payout_id/);
  });
});
