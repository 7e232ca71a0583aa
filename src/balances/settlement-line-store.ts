import { named, type Queryable } from '../db/pool.js';

/**
 * The SQL of settled lines a settlement pull could not apply (the capture not booked yet), one
 * function per statement.
 */
export interface UnbookedLineRow {
  readonly connector: string;
  readonly merchantReference: string;
  readonly availableOn: string;
  readonly suspenseCurrency: string | null;
  readonly suspenseMinor: bigint | null;
}

/**
 * Serializes, for the caller's transaction, what touches the settlement of these PSP references: a
 * pull applying their lines and the booking of the capture they name. One statement takes every
 * lock, in the order given (the caller sorts, so two transactions never wait on each other in a
 * circle): one round trip however many references.
 */
export async function lockSettlementReferences(db: Queryable, key: { connector: string;
  references: readonly string[] }): Promise<void> {
  await db.query(named(`SELECT count(pg_advisory_xact_lock(hashtext('penny:settlement_line:' || $1 || ':' || reference)))
     FROM (SELECT reference FROM unnest($2::text[]) WITH ORDINALITY AS given (reference, position)
           ORDER BY position) AS ordered`),
  [key.connector, key.references]);
}

export async function insertUnbookedLine(db: Queryable, line: { connector: string; reference: string;
  availableOn: string }): Promise<void> {
  await db.query(named(`INSERT INTO settlement_unbooked_lines (connector, merchant_reference, available_on)
     VALUES ($1, $2, $3) ON CONFLICT (connector, merchant_reference) DO NOTHING`),
  [line.connector, line.reference, line.availableOn]);
}

/** Records what a posted PSP payout left in suspense for the line (once: the first posting stands). */
export async function updateUnbookedLineSuspense(db: Queryable, line: { connector: string; reference: string;
  currency: string; suspenseMinor: bigint }): Promise<void> {
  await db.query(named(`UPDATE settlement_unbooked_lines SET suspense_currency = $3, suspense_minor = $4
     WHERE connector = $1 AND merchant_reference = $2 AND suspense_minor IS NULL`),
  [line.connector, line.reference, line.currency, line.suspenseMinor.toString()]);
}

export async function selectUnbookedLines(db: Queryable, key: { connector: string; references: readonly string[] }):
Promise<UnbookedLineRow[]> {
  const result = await db.query(named(`SELECT * FROM settlement_unbooked_lines
     WHERE connector = $1 AND merchant_reference = ANY($2::text[]) ORDER BY merchant_reference`),
  [key.connector, key.references]);
  return result.rows.map((row: Record<string, unknown>) => ({
    connector: row.connector as string, merchantReference: row.merchant_reference as string,
    availableOn: row.available_on as string, suspenseCurrency: row.suspense_currency as string | null,
    suspenseMinor: row.suspense_minor as bigint | null,
  }));
}
