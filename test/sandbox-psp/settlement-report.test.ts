import { parse } from 'csv-parse/sync';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { currencyExponent } from '../../src/money/currency.js';
import { feeMinor } from '../../src/money/fee.js';
import {
  chargebackFeeMinor,
  pspFeeBreakdown,
  settlementDetailsReport,
  type SettledOperation,
  type SettlementBatchInput,
} from '../../src/sandbox-psp/settlement-report.js';

// The documented long-standing 33-column layout (reconciliation.md §2), written out on purpose.
const documentedHeader = [
  'Company Account', 'Merchant Account', 'Psp Reference', 'Merchant Reference', 'Payment Method',
  'Creation Date', 'TimeZone', 'Type', 'Modification Reference', 'Gross Currency', 'Gross Debit (GC)',
  'Gross Credit (GC)', 'Exchange Rate', 'Net Currency', 'Net Debit (NC)', 'Net Credit (NC)',
  'Commission (NC)', 'Markup (NC)', 'Scheme Fees (NC)', 'Interchange (NC)', 'Payment Method Variant',
  'Modification Merchant Reference', 'Batch Number', 'Reserved4', 'Reserved5', 'Reserved6', 'Reserved7',
  'Reserved8', 'Reserved9', 'Reserved10', 'Booking Date', 'Booking Date TimeZone', 'Metadata',
];

const priceList = { basisPoints: 290, fixedMinor: 30n };

function operation(kind: SettledOperation['kind'], reference: string, amountMinor: bigint, currency = 'USD'):
  SettledOperation {
  return {
    pspReference: `psp_${reference}_${kind}`,
    merchantReference: reference,
    kind,
    amountMinor,
    currency,
    paymentMethod: 'visa',
    createdAt: '2024-05-01T10:15:30.250Z',
  };
}

function batch(overrides: Partial<SettlementBatchInput> = {}): SettlementBatchInput {
  return {
    companyAccount: 'SandboxCompany',
    merchantAccount: 'SandboxMerchant',
    batchNumber: 7,
    settlementDate: '2024-05-02',
    currency: 'USD',
    priceList,
    operations: [
      operation('capture', 'ch_1', 1000n),
      operation('capture', 'ch_2', 5000n),
      operation('refund', 're_1', 200n),
    ],
    ...overrides,
  };
}

type SdrRecord = Record<string, string>;

function readSdr(csv: string): SdrRecord[] {
  return parse(csv, { columns: true }) as SdrRecord[];
}

function readHeader(csv: string): string[] {
  return (parse(csv, { to_line: 1 }) as string[][])[0] ?? [];
}

/** Minor units from an SDR decimal cell, by integer arithmetic; an empty cell is 0. */
function minor(record: SdrRecord, column: string): bigint {
  const text = record[column] ?? '';
  if (text === '') return 0n;
  const exponent = currencyExponent(record['Net Currency'] ?? '');
  const [whole = '', fraction = ''] = text.split('.');
  expect(fraction.length).toBe(exponent);
  return BigInt(`${whole}${fraction}`);
}

const signedGrossMinor = (r: SdrRecord): bigint => minor(r, 'Gross Credit (GC)') - minor(r, 'Gross Debit (GC)');
const signedNetMinor = (r: SdrRecord): bigint => minor(r, 'Net Credit (NC)') - minor(r, 'Net Debit (NC)');
const feesMinor = (r: SdrRecord): bigint => minor(r, 'Commission (NC)') + minor(r, 'Markup (NC)')
  + minor(r, 'Scheme Fees (NC)') + minor(r, 'Interchange (NC)');

function only<T>(items: readonly T[]): T {
  expect(items).toHaveLength(1);
  return items[0] as T;
}

const rowsOfType = (records: SdrRecord[], type: string): SdrRecord[] => records.filter((r) => r['Type'] === type);
const rowsFor = (records: SdrRecord[], reference: string): SdrRecord[] =>
  records.filter((r) => r['Merchant Reference'] === reference);

const operationArbitrary = fc.record({
  kind: fc.constantFrom<SettledOperation['kind']>('capture', 'capture', 'refund', 'chargeback'),
  amountMinor: fc.bigInt({ min: 1n, max: 10_000_000n }),
});

describe('settlementDetailsReport: the file', () => {
  it('writes exactly the documented 33-column Adyen header', () => {
    expect(readHeader(settlementDetailsReport(batch()).csv)).toEqual(documentedHeader);
  });

  it('writes a Settled row per capture with the gross, its fee split and the net', () => {
    const settled = only(rowsFor(readSdr(settlementDetailsReport(batch()).csv), 'ch_1'));
    // 1000 × 2.90% = 29, + 30 fixed = 59: commission 30; 29 → interchange 17, scheme 7, markup 5.
    expect(settled).toMatchObject({
      'Type': 'Settled',
      'Gross Credit (GC)': '10.00',
      'Gross Debit (GC)': '',
      'Commission (NC)': '0.30',
      'Interchange (NC)': '0.17',
      'Scheme Fees (NC)': '0.07',
      'Markup (NC)': '0.05',
      'Net Credit (NC)': '9.41',
      'Net Debit (NC)': '',
    });
  });

  it('writes a Refunded row whose net debit equals its gross debit, with no fee', () => {
    const refunded = only(rowsFor(readSdr(settlementDetailsReport(batch()).csv), 're_1'));
    expect(refunded).toMatchObject({
      'Type': 'Refunded',
      'Gross Debit (GC)': '2.00',
      'Net Debit (NC)': '2.00',
      'Commission (NC)': '',
      'Markup (NC)': '',
      'Scheme Fees (NC)': '',
      'Interchange (NC)': '',
    });
  });

  it('writes a Chargeback row whose net debit adds the 1500-minor-unit chargeback fee, held in Markup', () => {
    expect(chargebackFeeMinor).toBe(1500n);
    const input = batch({ operations: [operation('capture', 'ch_1', 5000n), operation('chargeback', 'ch_1', 1000n)] });
    const chargeback = only(rowsOfType(readSdr(settlementDetailsReport(input).csv), 'Chargeback'));
    expect(chargeback).toMatchObject({
      'Gross Debit (GC)': '10.00',
      'Markup (NC)': '15.00',
      'Net Debit (NC)': '25.00',
    });
  });

  it('writes a capture smaller than its fee as a net debit', () => {
    const input = batch({ operations: [operation('capture', 'ch_1', 10n), operation('capture', 'ch_2', 5000n)] });
    const settled = only(rowsFor(readSdr(settlementDetailsReport(input).csv), 'ch_1'));
    expect(settled).toMatchObject({ 'Gross Credit (GC)': '0.10', 'Net Credit (NC)': '', 'Net Debit (NC)': '0.20' });
  });

  it('fills the batch columns, references and UTC dates on every operation row', () => {
    const records = readSdr(settlementDetailsReport(batch()).csv);
    const refunded = only(rowsFor(records, 're_1'));
    expect(refunded).toMatchObject({
      'Company Account': 'SandboxCompany',
      'Merchant Account': 'SandboxMerchant',
      'Psp Reference': 'psp_re_1_refund',
      'Modification Reference': 'psp_re_1_refund',
      'Payment Method': 'visa',
      'Payment Method Variant': 'visa',
      'Creation Date': '2024-05-01 10:15:30',
      'TimeZone': 'UTC',
      'Gross Currency': 'USD',
      'Net Currency': 'USD',
      'Exchange Rate': '1',
      'Batch Number': '7',
      'Booking Date': '2024-05-02 23:59:59',
      'Booking Date TimeZone': 'UTC',
    });
  });

  it('ends with a MerchantPayout row that has no PSP reference and names the payout', () => {
    const report = settlementDetailsReport(batch());
    const last = readSdr(report.csv).at(-1);
    expect(report.payoutReference).toBe('batch-7-USD');
    expect(last).toMatchObject({
      'Type': 'MerchantPayout',
      'Psp Reference': '',
      'Modification Reference': 'batch-7-USD',
      'Modification Merchant Reference': 'batch-7-USD',
      // 941 + 4825 (5000 − 175) − 200
      'Net Debit (NC)': '55.66',
    });
    expect(report.payoutAmountMinor).toBe(5566n);
  });

  it('collects a batch that nets negative from the operator: a MerchantPayout of Net Credit', () => {
    const input = batch({ operations: [operation('capture', 'ch_1', 1000n), operation('refund', 're_1', 5000n)] });
    const report = settlementDetailsReport(input);
    const [payout] = rowsOfType(readSdr(report.csv), 'MerchantPayout');
    // The capture nets 1000 − (2.9% + 30) = 941, the refund −5000.
    expect(payout?.['Net Credit (NC)']).toBe('40.59');
    expect(payout?.['Net Debit (NC)']).toBe('');
    expect(report.payoutAmountMinor).toBe(-4059n);
  });

  it.each([
    ['JPY', 1000n, '1000'],
    ['USD', 1000n, '10.00'],
    ['KWD', 1000n, '1.000'],
  ])('formats %s amounts with the currency exponent', (currency, amountMinor, text) => {
    const input = batch({ currency, operations: [operation('refund', 're_1', amountMinor, currency),
      operation('capture', 'ch_1', 100_000n, currency)] });
    expect(only(rowsFor(readSdr(settlementDetailsReport(input).csv), 're_1'))['Gross Debit (GC)']).toBe(text);
  });

  it('returns the rows it wrote', () => {
    const report = settlementDetailsReport(batch());
    expect(report.rows.map((row) => [row.type, row.merchantReference]))
      .toEqual(readSdr(report.csv).map((r) => [r['Type'], r['Merchant Reference']]));
  });

  it('makes Net = Gross − fees on every operation row (property)', () => {
    fc.assert(fc.property(fc.array(operationArbitrary, { maxLength: 12 }), (drawn) => {
      const operations = drawn.map((d, i) => operation(d.kind, `ref_${i}`, d.amountMinor));
      const records = readSdr(settlementDetailsReport(batch({ operations })).csv);
      for (const r of records.filter((record) => record['Type'] !== 'MerchantPayout')) {
        expect(signedNetMinor(r)).toBe(signedGrossMinor(r) - feesMinor(r));
      }
    }));
  });

  it('makes the MerchantPayout equal the sum of its batch, paid or collected (property)', () => {
    fc.assert(fc.property(fc.array(operationArbitrary, { maxLength: 12 }), (drawn) => {
      const operations = drawn.map((d, i) => operation(d.kind, `ref_${i}`, d.amountMinor));
      const report = settlementDetailsReport(batch({ operations }));
      const records = readSdr(report.csv);
      const batchNetMinor = records.filter((r) => r['Type'] !== 'MerchantPayout')
        .reduce((sum, r) => sum + signedNetMinor(r), 0n);
      const payouts = rowsOfType(records, 'MerchantPayout');
      expect(report.payoutAmountMinor).toBe(batchNetMinor);
      if (batchNetMinor > 0n) expect(minor(only(payouts), 'Net Debit (NC)')).toBe(batchNetMinor);
      if (batchNetMinor < 0n) expect(minor(only(payouts), 'Net Credit (NC)')).toBe(-batchNetMinor);
      if (batchNetMinor === 0n) expect(payouts).toEqual([]);
    }));
  });
});

describe('settlementDetailsReport: planted discrepancies', () => {
  const clean = settlementDetailsReport(batch());
  const cleanRow = (reference: string): SdrRecord => only(rowsFor(readSdr(clean.csv), reference));

  it('missing_line drops the row, and the payout follows the file', () => {
    const report = settlementDetailsReport(batch({ discrepancies: [{ kind: 'missing_line', merchantReference: 'ch_2' }] }));
    expect(rowsFor(readSdr(report.csv), 'ch_2')).toEqual([]);
    expect(report.payoutAmountMinor).toBe(clean.payoutAmountMinor - 4825n);
  });

  it('wrong_fee adds 7 minor units to Interchange and takes them from Net', () => {
    const report = settlementDetailsReport(batch({ discrepancies: [{ kind: 'wrong_fee', merchantReference: 'ch_2' }] }));
    const row = only(rowsFor(readSdr(report.csv), 'ch_2'));
    expect(minor(row, 'Interchange (NC)')).toBe(minor(cleanRow('ch_2'), 'Interchange (NC)') + 7n);
    expect(signedNetMinor(row)).toBe(signedNetMinor(cleanRow('ch_2')) - 7n);
    expect(report.payoutAmountMinor).toBe(clean.payoutAmountMinor - 7n);
  });

  it('duplicate_line writes the row twice, and the payout counts both', () => {
    const report = settlementDetailsReport(batch({ discrepancies: [{ kind: 'duplicate_line', merchantReference: 'ch_2' }] }));
    const rows = rowsFor(readSdr(report.csv), 'ch_2');
    expect(rows).toEqual([cleanRow('ch_2'), cleanRow('ch_2')]);
    expect(report.payoutAmountMinor).toBe(clean.payoutAmountMinor + 4825n);
  });

  it('changed_currency writes the row in EUR, outside the USD payout', () => {
    const report = settlementDetailsReport(batch({ discrepancies: [{ kind: 'changed_currency', merchantReference: 'ch_2' }] }));
    const row = only(rowsFor(readSdr(report.csv), 'ch_2'));
    expect(row).toMatchObject({ 'Gross Currency': 'EUR', 'Net Currency': 'EUR', 'Gross Credit (GC)': '50.00' });
    expect(report.payoutAmountMinor).toBe(clean.payoutAmountMinor - 4825n);
  });

  it('changed_currency writes a EUR batch\'s row in USD', () => {
    const operations = [operation('capture', 'ch_1', 1000n, 'EUR')];
    const report = settlementDetailsReport(batch({ currency: 'EUR', operations, discrepancies: [{ kind: 'changed_currency' }] }));
    expect(only(rowsFor(readSdr(report.csv), 'ch_1'))['Net Currency']).toBe('USD');
  });

  it('changed_amount adds 100 minor units to gross and net', () => {
    const report = settlementDetailsReport(batch({ discrepancies: [{ kind: 'changed_amount', merchantReference: 'ch_2' }] }));
    const row = only(rowsFor(readSdr(report.csv), 'ch_2'));
    expect(signedGrossMinor(row)).toBe(signedGrossMinor(cleanRow('ch_2')) + 100n);
    expect(signedNetMinor(row)).toBe(signedNetMinor(cleanRow('ch_2')) + 100n);
    expect(report.payoutAmountMinor).toBe(clean.payoutAmountMinor + 100n);
  });

  it('targets the first capture when no reference is named', () => {
    const report = settlementDetailsReport(batch({ discrepancies: [{ kind: 'missing_line' }] }));
    expect(rowsFor(readSdr(report.csv), 'ch_1')).toEqual([]);
    expect(report.planted).toEqual([{ kind: 'missing_line', merchantReference: 'ch_1' }]);
  });

  it('gives each unnamed discrepancy its own capture', () => {
    const report = settlementDetailsReport(batch({ discrepancies: [{ kind: 'missing_line' }, { kind: 'wrong_fee' }] }));
    expect(report.planted).toEqual([
      { kind: 'missing_line', merchantReference: 'ch_1' },
      { kind: 'wrong_fee', merchantReference: 'ch_2' },
    ]);
  });

  it('plants on a refund when its reference is named', () => {
    const report = settlementDetailsReport(batch({ discrepancies: [{ kind: 'changed_amount', merchantReference: 're_1' }] }));
    expect(only(rowsFor(readSdr(report.csv), 're_1'))['Gross Debit (GC)']).toBe('3.00');
    expect(report.planted).toEqual([{ kind: 'changed_amount', merchantReference: 're_1' }]);
  });

  it('plants nothing when none is asked for', () => {
    expect(clean.planted).toEqual([]);
  });

  it('throws for a reference that is not in the batch', () => {
    expect(() => settlementDetailsReport(batch({ discrepancies: [{ kind: 'missing_line', merchantReference: 'ch_404' }] })))
      .toThrow(/ch_404/);
  });

  it('throws when no capture is left for an unnamed discrepancy', () => {
    const operations = [operation('capture', 'ch_1', 1000n)];
    expect(() => settlementDetailsReport(batch({ operations, discrepancies: [{ kind: 'wrong_fee' }, { kind: 'wrong_fee' }] })))
      .toThrow(/no row left/);
  });
});

describe('settlementDetailsReport: programmer errors', () => {
  it('refuses an operation in another currency than the batch', () => {
    expect(() => settlementDetailsReport(batch({ operations: [operation('capture', 'ch_1', 1000n, 'EUR')] })))
      .toThrow(/batch currency/);
  });

  it.each([0n, -1n])('refuses an operation amount of %s', (amountMinor) => {
    expect(() => settlementDetailsReport(batch({ operations: [operation('capture', 'ch_1', amountMinor)] })))
      .toThrow(/positive amount/);
  });

  it('refuses an operation created after the settlement date', () => {
    const late = { ...operation('capture', 'ch_1', 1000n), createdAt: '2024-05-03T00:00:00Z' };
    expect(() => settlementDetailsReport(batch({ operations: [late] }))).toThrow(/created before/);
  });
});

describe('pspFeeBreakdown', () => {
  it('puts the fixed part in Commission and splits the rest 60/25/15, Markup taking the remainder', () => {
    // 10000 × 2.90% = 290: interchange 174, scheme 72 (72.5 floored), markup 44.
    expect(pspFeeBreakdown(10_000n, priceList)).toEqual({
      commissionMinor: 30n, interchangeMinor: 174n, schemeFeesMinor: 72n, markupMinor: 44n,
    });
  });

  it('sums exactly to feeMinor (property)', () => {
    fc.assert(fc.property(
      fc.bigInt({ min: 0n, max: 10n ** 15n }),
      fc.integer({ min: 0, max: 10_000 }),
      fc.bigInt({ min: 0n, max: 10_000n }),
      (amountMinor, basisPoints, fixedMinor) => {
        const prices = { basisPoints, fixedMinor };
        const parts = pspFeeBreakdown(amountMinor, prices);
        expect(parts.commissionMinor + parts.markupMinor + parts.schemeFeesMinor + parts.interchangeMinor)
          .toBe(feeMinor(amountMinor, prices));
        expect(Object.values(parts).every((part) => part >= 0n)).toBe(true);
      },
    ));
  });
});
