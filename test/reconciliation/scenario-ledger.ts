import type { Queryable } from '../../src/db/pool.js';

/**
 * The ledger side of a reconciliation scenario (test/reconciliation/scenarios/): the items Penny
 * collected, as `reconciliation_items` rows. Collecting them from real payments (charges, refunds,
 * disputes, payouts) is tested in recon-run.test.ts; a scenario starts from what was collected, so
 * its items can be exactly what the case needs (two items booked for one payment, for one).
 */
export interface ScenarioItem {
  readonly kind: 'capture' | 'refund' | 'chargeback' | 'chargeback_reversed' | 'payout';
  readonly reference: string;
  readonly alternate_reference?: string | null;
  readonly merchant_id: string;
  readonly owner_id: string;
  readonly connector: string;
  readonly psp_reference?: string | null;
  readonly currency: string;
  /** Signed as the PSP's line shows it: a capture positive; a refund, chargeback or payout negative. */
  readonly gross_minor: number;
  /** The PSP fee Penny expected (booked at capture, or the dispute fee). */
  readonly fee_minor: number;
  /** 'YYYY-MM-DD', the UTC day Penny booked it. */
  readonly day: string;
}

/** Inserts the items in their order (ids ascending: the first is the one a PSP line names first). */
export async function seedScenarioLedger(db: Queryable, items: readonly ScenarioItem[]): Promise<void> {
  for (const item of items) {
    await db.query(`INSERT INTO reconciliation_items (kind, reference, alternate_reference, merchant_id, owner_id,
         connector, psp_reference, currency, gross_minor, fee_minor, day, due_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, penny_business_days_after($11::date, 3))`,
    [item.kind, item.reference, item.alternate_reference ?? null, item.merchant_id, item.owner_id, item.connector,
      item.psp_reference ?? null, item.currency, BigInt(item.gross_minor).toString(), BigInt(item.fee_minor).toString(),
      item.day]);
  }
}
