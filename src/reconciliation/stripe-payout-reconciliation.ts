import type { Readable } from 'node:stream';
import { readDay } from './recon-dates.js';
import { decimalToMinor, readCurrencyCode } from './decimal-minor.js';
import { at, fileProblem } from './recon-problem.js';
import type { ParsedItem, ReconRecord } from './recon-records.js';
import { column, csvRows, type CsvRow } from './csv-rows.js';

/**
 * Stripe's itemized payout reconciliation report (`payout_reconciliation.itemized.5`,
 * reconciliation.md §1): one row per balance transaction an automatic payout settled. `gross`,
 * `fee` and `net` are major-unit decimal strings ("dollars for USD, yen for JPY"), read exactly
 * into minor units with the currency's exponent; `fee` is positive when paid, refunds and
 * disputes have a negative gross. The external id is `balance_transaction_id`.
 */
export const stripeRequiredColumns: readonly string[] = [
  'balance_transaction_id', 'currency', 'gross', 'fee', 'net', 'reporting_category', 'automatic_payout_id',
];

const referenceColumns = ['source_id', 'charge_id', 'payment_intent_id', 'invoice_id', 'subscription_id',
  'automatic_payout_effective_at_utc', 'automatic_payout_effective_at', 'description', 'connected_account_id',
  'destination_payment_id', 'customer_id', 'statement_descriptor', 'dispute_reason', 'payment_method_type'];

export async function* readStripePayoutReconciliation(input: Readable, file: string): AsyncGenerator<ParsedItem> {
  const rows = csvRows(input, { file, required: stripeRequiredColumns,
    what: 'the Stripe payout reconciliation report' });
  let checkedDates = false;
  for await (const row of rows) {
    if (!checkedDates) {
      checkedDates = true;
      if (row.header.position('created_utc') === undefined && row.header.position('created') === undefined) {
        throw fileProblem({ file, line: 1, field: 'created_utc' },
          'the Stripe payout reconciliation report lacks the column created_utc (or created)');
      }
    }
    yield { kind: 'record', record: stripeRecord(row, file) };
  }
}

function stripeRecord(row: CsvRow, file: string): ReconRecord {
  const where = (field: string) => ({ file, line: row.line, field });
  const required = (field: string): string => {
    const value = column(row, field);
    if (value === '') throw fileProblem(where(field), 'is empty');
    return value;
  };
  const id = required('balance_transaction_id');
  const currency = at(where('currency'), () => readCurrencyCode(required('currency')));
  const amount = (field: string): bigint =>
    at(where(field), () => decimalToMinor(required(field), currency, { separator: '.', signed: true }));
  const dateField = column(row, 'created_utc') === '' ? 'created' : 'created_utc';
  const bookingDate = at(where(dateField), () => readDay(required(dateField)));
  const availableField = column(row, 'available_on_utc') === '' ? 'available_on' : 'available_on_utc';
  const availableText = column(row, availableField);
  const references: Record<string, string> = {};
  for (const name of referenceColumns) {
    const value = column(row, name);
    if (value !== '') references[name] = value;
  }
  const [grossMinor, feeMinor, netMinor] = [amount('gross'), amount('fee'), amount('net')];
  const sourceId = column(row, 'source_id');
  return {
    kind: 'psp_line',
    line: row.line,
    externalId: id,
    type: required('reporting_category'),
    currency,
    amountMinor: netMinor,
    grossMinor,
    grossCurrency: currency,
    feeMinor,
    bookingDate,
    valueDate: availableText === '' ? null : at(where(availableField), () => readDay(availableText)),
    pspReference: sourceId === '' ? null : sourceId,
    merchantReference: column(row, 'charge_id') || null,
    batchKey: required('automatic_payout_id'),
    remittanceText: null,
    counterpartyName: column(row, 'customer_name') || column(row, 'connected_account_name') || null,
    counterpartyAccount: column(row, 'connected_account_id') || null,
    status: null,
    reversal: false,
    statementPosition: null,
    references,
    raw: row,
  };
}
