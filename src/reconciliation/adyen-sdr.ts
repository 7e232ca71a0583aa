import { Readable } from 'node:stream';
import { readDay } from './recon-dates.js';
import { decimalToMinor, readCurrencyCode } from './decimal-minor.js';
import { at, fileProblem } from './recon-problem.js';
import type { ParsedItem, ReconRecord } from './recon-records.js';
import { csvRows, type CsvHeader, type CsvRow } from './csv-rows.js';

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

/** Where an SDR's columns stand in a file: found once per header, -1 for a column the file lacks. */
interface SdrPositions {
  readonly type: number;
  readonly batch: number;
  readonly netCurrency: number;
  readonly grossCurrency: number;
  readonly netCredit: number;
  readonly netDebit: number;
  readonly grossCredit: number;
  readonly grossDebit: number;
  readonly fees: readonly (readonly [string, number])[];
  readonly creationDate: number;
  readonly bookingDate: number;
  readonly merchantAccount: number;
  readonly pspReference: number;
  readonly merchantReference: number;
  readonly modificationReference: number;
  readonly references: readonly (readonly [string, number])[];
}

const referenceColumns = ['Company Account', 'Merchant Account', 'Modification Reference', 'Modification Merchant Reference',
  'Payment Method', 'Payment Method Variant', 'Exchange Rate', 'Dispute Reference', 'ARN', 'Merchant Order Reference'];

const positionsByHeader = new WeakMap<CsvHeader, SdrPositions>();

function sdrPositions(header: CsvHeader): SdrPositions {
  let positions = positionsByHeader.get(header);
  if (positions === undefined) {
    const of = (name: string) => header.position(name) ?? -1;
    positions = {
      type: of('Type'), batch: of('Batch Number'), netCurrency: of('Net Currency'), grossCurrency: of('Gross Currency'),
      netCredit: of('Net Credit (NC)'), netDebit: of('Net Debit (NC)'), grossCredit: of('Gross Credit (GC)'),
      grossDebit: of('Gross Debit (GC)'), fees: feeColumns.map((name) => [name, of(name)] as const),
      creationDate: of('Creation Date'), bookingDate: of('Booking Date'), merchantAccount: of('Merchant Account'),
      pspReference: of('Psp Reference'), merchantReference: of('Merchant Reference'),
      modificationReference: of('Modification Reference'),
      references: referenceColumns.map((name) => [name, of(name)] as const).filter(([, position]) => position >= 0),
    };
    positionsByHeader.set(header, positions);
  }
  return positions;
}

/** A column's value by position; '' for a column the file lacks. */
function valueAt(row: CsvRow, position: number): string {
  return position < 0 ? '' : row.values[position] as string;
}

function sdrRecord(row: CsvRow, file: string): ReconRecord {
  const positions = sdrPositions(row.header);
  const where = (field: string) => ({ file, line: row.line, field });
  const required = (position: number, field: string): string => {
    const value = valueAt(row, position);
    if (value === '') throw fileProblem(where(field), 'is empty');
    return value;
  };
  const type = required(positions.type, 'Type');
  const batch = required(positions.batch, 'Batch Number');
  if (!/^\d+$/.test(batch)) throw fileProblem(where('Batch Number'), `"${batch.slice(0, 40)}" is not a batch number`);
  const netCurrency = at(where('Net Currency'), () => readCurrencyCode(required(positions.netCurrency, 'Net Currency')));
  const grossCurrencyText = valueAt(row, positions.grossCurrency);
  const grossCurrency = grossCurrencyText === '' ? null : at(where('Gross Currency'), () => readCurrencyCode(grossCurrencyText));
  const money = (position: number, field: string, currency: string): bigint | null => {
    const text = valueAt(row, position);
    return text === '' ? null : at(where(field), () => decimalToMinor(text, currency, { separator: '.', signed: false }));
  };
  const netCredit = money(positions.netCredit, 'Net Credit (NC)', netCurrency);
  const netDebit = money(positions.netDebit, 'Net Debit (NC)', netCurrency);
  const grossCredit = grossCurrency === null ? null : money(positions.grossCredit, 'Gross Credit (GC)', grossCurrency);
  const grossDebit = grossCurrency === null ? null : money(positions.grossDebit, 'Gross Debit (GC)', grossCurrency);
  let feeMinor: bigint | null = null;
  for (const [field, position] of positions.fees) {
    const fee = money(position, field, netCurrency);
    if (fee !== null) feeMinor = (feeMinor ?? 0n) + fee;
  }
  const creationDay = at(where('Creation Date'), () => readDay(required(positions.creationDate, 'Creation Date')));
  const bookingText = valueAt(row, positions.bookingDate);
  const bookingDay = bookingText === '' ? creationDay : at(where('Booking Date'), () => readDay(bookingText));
  const merchantAccount = valueAt(row, positions.merchantAccount);
  const pspReference = valueAt(row, positions.pspReference);
  const modificationReference = valueAt(row, positions.modificationReference);
  const references: Record<string, string> = {};
  for (const [name, position] of positions.references) {
    const value = row.values[position] as string;
    if (value !== '') references[name] = value;
  }
  return {
    kind: 'psp_line',
    line: row.line,
    externalId: `${merchantAccount}|${batch}|${type}|${pspReference}|${modificationReference}`,
    type,
    currency: netCurrency,
    amountMinor: (netCredit ?? 0n) - (netDebit ?? 0n),
    grossMinor: grossCredit === null && grossDebit === null ? null : (grossCredit ?? 0n) - (grossDebit ?? 0n),
    grossCurrency,
    feeMinor,
    bookingDate: bookingDay,
    valueDate: null,
    pspReference: pspReference === '' ? null : pspReference,
    merchantReference: valueAt(row, positions.merchantReference) || null,
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
