import { readAdyenSdrText } from '../reconciliation/adyen-sdr.js';

/**
 * The lines of a PSP's settlement report that settlement acts on: which of Penny's references
 * settled, on which day, in which currency, and what each line netted, so the batch's
 * `MerchantPayout` (the PSP paying the batch to the operator's bank) can be split between the
 * merchants whose lines it pays. The report is read by reconciliation's one parser of the
 * Settlement details report (src/reconciliation/adyen-sdr.ts, Adyen's layout, which the sandbox PSP
 * publishes), so a report settlement accepts is one reconciliation can import, and a report it
 * cannot read is refused whole, naming the line and field. Reconciliation compares the amounts with
 * the ledger.
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
   * from) the batch's payout; a MerchantPayout's is negative, the money leaving the PSP.
   */
  readonly netMinor: bigint;
}

export async function parseSettlementReport(text: string, name = 'settlement report'): Promise<SettledLine[]> {
  const records = await readAdyenSdrText(text, name);
  return records.map((record) => ({
    type: record.type,
    merchantReference: record.merchantReference ?? '',
    pspReference: record.pspReference ?? '',
    modificationReference: record.references['Modification Reference'] ?? '',
    currency: record.currency,
    bookingDay: record.bookingDate ?? '',
    netMinor: record.amountMinor,
  }));
}
