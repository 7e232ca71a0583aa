import { parse } from 'csv-parse/sync';
import { currencyExponent, isCurrency } from '../money/currency.js';

/**
 * The lines of a PSP's settlement report that settlement acts on, read by header name from the
 * Settlement details report (Adyen's layout, which the sandbox PSP publishes): which of Penny's
 * references settled, on which day, in which currency, and what each line netted, so the batch's
 * `MerchantPayout` (the PSP paying the batch to the operator's bank) can be split between the
 * merchants whose lines it pays. Reconciliation compares the amounts with the ledger.
 */
export interface SettledLine {
  /** Settled, Refunded, Chargeback, ChargebackReversed, Fee, MerchantPayout, … */
  readonly type: string;
  /**
   * Penny's reference of the operation: a charge (ch_, a capture), an attempt (pa_, captured at
   * once), a refund (re_); a dispute's lines name the charge's capture.
   */
  readonly merchantReference: string;
  readonly pspReference: string;
  /** A MerchantPayout's reference (its batch), or the modification's own. */
  readonly modificationReference: string;
  readonly currency: string;
  /** 'YYYY-MM-DD', the UTC day the line was booked. */
  readonly bookingDay: string;
  /**
   * Net Credit − Net Debit in minor units of `currency`: what the line adds to (or, negative, takes
   * from) the batch's payout; a MerchantPayout's is negative, the money leaving the PSP. Undefined
   * when the figures cannot be read in the line's currency.
   */
  readonly netMinor: bigint | undefined;
}

const required = ['Type', 'Merchant Reference', 'Psp Reference', 'Net Currency', 'Booking Date'];

export function parseSettlementReport(text: string): SettledLine[] {
  if (text.trim() === '') return [];
  const records = parse(text, { columns: true, skip_empty_lines: true, trim: true }) as Record<string, string>[];
  const header = records[0] === undefined ? [] : Object.keys(records[0]);
  const missing = required.filter((column) => !header.includes(column));
  if (records.length > 0 && missing.length > 0) {
    throw new Error(`the settlement report lacks the columns ${missing.join(', ')}`);
  }
  return records.map((record) => {
    const currency = (record['Net Currency'] ?? '').toUpperCase();
    return {
      type: record.Type ?? '',
      merchantReference: record['Merchant Reference'] ?? '',
      pspReference: record['Psp Reference'] ?? '',
      modificationReference: record['Modification Reference'] ?? '',
      currency,
      bookingDay: (record['Booking Date'] ?? '').slice(0, 10),
      netMinor: netMinorOf(record, currency),
    };
  });
}

function netMinorOf(record: Record<string, string>, currency: string): bigint | undefined {
  if (!isCurrency(currency)) return undefined;
  const credit = decimalToMinor(record['Net Credit (NC)'] ?? '', currency);
  const debit = decimalToMinor(record['Net Debit (NC)'] ?? '', currency);
  if (credit === undefined || debit === undefined) return undefined;
  return credit - debit;
}

/**
 * A report's unsigned decimal amount ("10.00", "1000", "1.000") in minor units of the currency, by
 * integer arithmetic; empty is 0; more decimals than the currency has, or anything else, is undefined.
 */
export function decimalToMinor(text: string, currency: string): bigint | undefined {
  if (text === '') return 0n;
  const match = /^(\d+)(?:\.(\d+))?$/.exec(text);
  if (match === null) return undefined;
  const exponent = currencyExponent(currency);
  const fraction = match[2] ?? '';
  if (fraction.length > exponent) return undefined;
  return BigInt(match[1] ?? '0') * 10n ** BigInt(exponent) + BigInt(fraction.padEnd(exponent, '0') || '0');
}
