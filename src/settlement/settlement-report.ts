import { readAdyenSdrText } from '../reconciliation/adyen-sdr.js';

/**
 * The lines of a PSP's settlement report that settlement acts on: which of Penny's references
 * settled, on which day, in which currency. The report is read by reconciliation's one parser of
 * the Settlement details report (src/reconciliation/adyen-sdr.ts, Adyen's layout, which the
 * sandbox PSP publishes), so a report settlement accepts is one reconciliation can import; a
 * report it cannot read is refused with the line and field. Amounts are left to reconciliation,
 * which compares them with the ledger; settlement only learns that captured funds are the merchant's.
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

export async function parseSettlementReport(text: string, name = 'settlement report'): Promise<SettledLine[]> {
  const records = await readAdyenSdrText(text, name);
  return records.map((record) => ({
    type: record.type,
    merchantReference: record.merchantReference ?? '',
    pspReference: record.pspReference ?? '',
    currency: record.currency,
    bookingDay: record.bookingDate ?? '',
  }));
}
