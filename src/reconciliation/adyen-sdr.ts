import { Readable } from 'node:stream';
import { readDay } from './recon-dates.js';
import { decimalToMinor, readCurrencyCode } from './decimal-minor.js';
import { at, fileProblem } from './recon-problem.js';
import type { ParsedItem, ReconRecord } from './recon-records.js';
import { column, csvRows, type CsvRow } from './csv-rows.js';

/**
 * Adyen's Settlement details report (reconciliation.md §2), which the sandbox PSP publishes too:
 * a CSV read by header name (the column set is configurable), every journal type kept as written
 * (`Settled`, `Refunded`, `Chargeback`, `MerchantPayout`, `Fee`, `Balancetransfer`, …; a type
 * Penny does not know is kept for the matcher to report, never dropped). Debit and credit are
 * separate unsigned columns: a line's amount is Net Credit − Net Debit in the net currency, its
 * gross Gross Credit − Gross Debit in the gross currency, its fee the sum of the four fee columns.
 *
 * External id: `Merchant Account|Batch Number|Type|Psp Reference|Modification Reference`. A
 * capture, its refund and its chargeback are lines of their own; a batch's Fee and MerchantPayout
 * lines (no PSP reference) are told apart by their Modification Reference.
 */
export const adyenSdrRequiredColumns: readonly string[] = [
  'Merchant Account', 'Psp Reference', 'Merchant Reference', 'Type', 'Modification Reference',
  'Gross Currency', 'Gross Debit (GC)', 'Gross Credit (GC)', 'Net Currency', 'Net Debit (NC)', 'Net Credit (NC)',
  'Batch Number', 'Creation Date',
];

const feeColumns = ['Commission (NC)', 'Markup (NC)', 'Scheme Fees (NC)', 'Interchange (NC)'];

export async function* readAdyenSdr(input: Readable, file: string): AsyncGenerator<ParsedItem> {
  const rows = csvRows(input, { file, required: adyenSdrRequiredColumns, what: 'the Adyen settlement details report' });
  for await (const row of rows) yield { kind: 'record', record: sdrRecord(row, file) };
}

/** The lines of a report held in memory (settlement's pull of a small daily report). */
export async function readAdyenSdrText(text: string, file: string): Promise<ReconRecord[]> {
  if (text.trim() === '') return [];
  const records: ReconRecord[] = [];
  for await (const item of readAdyenSdr(Readable.from([Buffer.from(text, 'utf8')]), file)) {
    if (item.kind === 'record') records.push(item.record);
  }
  return records;
}

function sdrRecord(row: CsvRow, file: string): ReconRecord {
  const where = (field: string) => ({ file, line: row.line, field });
  const required = (field: string): string => {
    const value = column(row, field);
    if (value === '') throw fileProblem(where(field), 'is empty');
    return value;
  };
  const type = required('Type');
  const batch = required('Batch Number');
  if (!/^\d+$/.test(batch)) throw fileProblem(where('Batch Number'), `"${batch.slice(0, 40)}" is not a batch number`);
  const netCurrency = at(where('Net Currency'), () => readCurrencyCode(required('Net Currency')));
  const grossCurrencyText = column(row, 'Gross Currency');
  const grossCurrency = grossCurrencyText === '' ? null : at(where('Gross Currency'), () => readCurrencyCode(grossCurrencyText));
  const money = (field: string, currency: string): bigint | null => {
    const text = column(row, field);
    return text === '' ? null : at(where(field), () => decimalToMinor(text, currency, { separator: '.', signed: false }));
  };
  const netCredit = money('Net Credit (NC)', netCurrency);
  const netDebit = money('Net Debit (NC)', netCurrency);
  const grossCredit = grossCurrency === null ? null : money('Gross Credit (GC)', grossCurrency);
  const grossDebit = grossCurrency === null ? null : money('Gross Debit (GC)', grossCurrency);
  const fees = feeColumns.map((field) => money(field, netCurrency));
  const creationDay = at(where('Creation Date'), () => readDay(required('Creation Date')));
  const bookingText = column(row, 'Booking Date');
  const bookingDay = bookingText === '' ? creationDay : at(where('Booking Date'), () => readDay(bookingText));
  const merchantAccount = column(row, 'Merchant Account');
  const pspReference = column(row, 'Psp Reference');
  const modificationReference = column(row, 'Modification Reference');
  const references: Record<string, string> = {};
  for (const name of ['Company Account', 'Merchant Account', 'Modification Reference', 'Modification Merchant Reference',
    'Payment Method', 'Payment Method Variant', 'Exchange Rate', 'Dispute Reference', 'ARN', 'Merchant Order Reference']) {
    const value = column(row, name);
    if (value !== '') references[name] = value;
  }
  return {
    kind: 'psp_line',
    line: row.line,
    externalId: [merchantAccount, batch, type, pspReference, modificationReference].join('|'),
    type,
    currency: netCurrency,
    amountMinor: (netCredit ?? 0n) - (netDebit ?? 0n),
    grossMinor: grossCredit === null && grossDebit === null ? null : (grossCredit ?? 0n) - (grossDebit ?? 0n),
    grossCurrency,
    feeMinor: fees.every((fee) => fee === null) ? null : fees.reduce<bigint>((sum, fee) => sum + (fee ?? 0n), 0n),
    bookingDate: bookingDay,
    valueDate: null,
    pspReference: pspReference === '' ? null : pspReference,
    merchantReference: column(row, 'Merchant Reference') || null,
    batchKey: `${merchantAccount}#${batch}`,
    // The payout's description is what the bank shows (reconciliation.md §2).
    remittanceText: type === 'MerchantPayout' && modificationReference !== '' ? modificationReference : null,
    counterpartyName: null,
    counterpartyAccount: null,
    status: null,
    reversal: false,
    statementPosition: null,
    references,
    raw: row,
  };
}
