import { parse } from 'csv-parse/sync';

/**
 * The lines of a PSP's settlement report that settlement acts on, read by header name from the
 * Settlement details report (Adyen's layout, which the sandbox PSP publishes): which of Penny's
 * references settled, on which day, in which currency. Amounts are left to reconciliation, which
 * compares them with the ledger; settlement only learns that captured funds are the merchant's.
 */
export interface SettledLine {
  readonly type: string;
  /** Penny's reference of the operation: a charge (ch_, a capture) or an attempt (pa_, captured at once). */
  readonly merchantReference: string;
  readonly pspReference: string;
  readonly currency: string;
  /** 'YYYY-MM-DD', the UTC day the line was booked. */
  readonly bookingDay: string;
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
  return records.map((record) => ({
    type: record.Type ?? '',
    merchantReference: record['Merchant Reference'] ?? '',
    pspReference: record['Psp Reference'] ?? '',
    currency: (record['Net Currency'] ?? '').toUpperCase(),
    bookingDay: (record['Booking Date'] ?? '').slice(0, 10),
  }));
}
