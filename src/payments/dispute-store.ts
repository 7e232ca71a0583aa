import { selectPage, type PageRows } from '../db/pages.js';
import { clockNowSql, clockOffsetParameter } from '../db/clock-sql.js';
import { named, type Queryable } from '../db/pool.js';

/** The SQL of disputes, one function per statement. Amounts in ledger minor units. */
export type DisputeStatus = 'needs_response' | 'under_review' | 'won' | 'lost';

export interface DisputeRow {
  readonly merchantId: string;
  readonly id: string;
  readonly chargeId: string;
  readonly paymentIntentId: string;
  readonly connector: string;
  readonly pspReference: string;
  readonly amountMinor: bigint;
  readonly feeMinor: bigint;
  readonly currency: string;
  readonly reason: string;
  readonly status: DisputeStatus;
  readonly evidence: Record<string, string>;
  readonly metadata: Record<string, string>;
  readonly createdAt: string;
}

/** Opens the dispute of a PSP chargeback once; answers undefined when it exists already. */
export async function insertDispute(db: Queryable, dispute: Omit<DisputeRow, 'evidence' | 'metadata' | 'createdAt'
  | 'status'>): Promise<DisputeRow | undefined> {
  const result = await db.query(named(`INSERT INTO disputes (merchant_id, id, charge_id, payment_intent_id, connector,
       psp_reference, amount_minor, fee_minor, currency, reason, status, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'needs_response', ${clockNowSql(11)}, ${clockNowSql(11)})
     ON CONFLICT (connector, psp_reference) DO NOTHING RETURNING *`),
  [dispute.merchantId, dispute.id, dispute.chargeId, dispute.paymentIntentId, dispute.connector, dispute.pspReference,
    dispute.amountMinor.toString(), dispute.feeMinor.toString(), dispute.currency, dispute.reason,
    clockOffsetParameter()]);
  return result.rows[0] === undefined ? undefined : toDispute(result.rows[0]);
}

export async function selectDisputeByPspReference(db: Queryable, key: { connector: string; pspReference: string },
  options = { forUpdate: false }): Promise<DisputeRow | undefined> {
  const result = await db.query(named(`SELECT * FROM disputes WHERE connector = $1 AND psp_reference = $2
     ${options.forUpdate ? 'FOR UPDATE' : ''}`), [key.connector, key.pspReference]);
  return result.rows[0] === undefined ? undefined : toDispute(result.rows[0]);
}

export async function selectDispute(db: Queryable, key: { merchantId: string; id: string },
  options = { forUpdate: false }): Promise<DisputeRow | undefined> {
  const result = await db.query(named(`SELECT * FROM disputes WHERE merchant_id = $1 AND id = $2
     ${options.forUpdate ? 'FOR UPDATE' : ''}`), [key.merchantId, key.id]);
  return result.rows[0] === undefined ? undefined : toDispute(result.rows[0]);
}

export function selectDisputePage(db: Queryable, query: { merchantId: string; limit: number;
  startingAfter: string | undefined; endingBefore: string | undefined; chargeId: string | undefined;
  paymentIntentId: string | undefined; createdGte: string | undefined; createdLte: string | undefined }):
Promise<PageRows<DisputeRow>> {
  return selectPage(db, 'disputes', { ...query,
    equals: { charge_id: query.chargeId, payment_intent_id: query.paymentIntentId } }, toDispute);
}

export async function updateDispute(db: Queryable, dispute: Pick<DisputeRow, 'merchantId' | 'id'>,
  change: { status?: DisputeStatus; evidence?: Record<string, string>; metadata?: Record<string, string> }):
Promise<DisputeRow> {
  const result = await db.query(named(`UPDATE disputes SET status = coalesce($3, status),
       evidence = coalesce($4::jsonb, evidence), metadata = coalesce($5::jsonb, metadata),
       updated_at = ${clockNowSql(6)}
     WHERE merchant_id = $1 AND id = $2 RETURNING *`),
  [dispute.merchantId, dispute.id, change.status ?? null,
    change.evidence === undefined ? null : JSON.stringify(change.evidence),
    change.metadata === undefined ? null : JSON.stringify(change.metadata), clockOffsetParameter()]);
  return toDispute(result.rows[0]);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
function toDispute(row: any): DisputeRow {
  if (row === undefined) throw new Error('expected a disputes row');
  return {
    merchantId: row.merchant_id, id: row.id, chargeId: row.charge_id, paymentIntentId: row.payment_intent_id,
    connector: row.connector, pspReference: row.psp_reference, amountMinor: row.amount_minor, feeMinor: row.fee_minor,
    currency: row.currency, reason: row.reason, status: row.status, evidence: row.evidence, metadata: row.metadata,
    createdAt: row.created_at,
  };
}
