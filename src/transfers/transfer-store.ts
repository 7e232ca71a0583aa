import { selectPage, type PageRows } from '../db/pages.js';
import { named, type Queryable } from '../db/pool.js';

/** The SQL of transfers and their reversals, one function per statement. Amounts in minor units. */
export interface TransferRow {
  readonly merchantId: string;
  readonly id: string;
  readonly destination: string;
  readonly currency: string;
  readonly amountMinor: bigint;
  readonly amountReversedMinor: bigint;
  readonly sourceTransaction: string | null;
  /** A destination charge's transfer: the payment (py_) it made on the destination; null for a separate one. */
  readonly destinationPayment: string | null;
  readonly transferGroup: string | null;
  readonly description: string | null;
  readonly metadata: Record<string, string>;
  readonly ledgerEntryId: string;
  readonly createdAt: string;
}

export interface TransferReversalRow {
  readonly merchantId: string;
  readonly id: string;
  readonly transferId: string;
  readonly amountMinor: bigint;
  readonly metadata: Record<string, string>;
  /** The charge refund that reversed it (a refund's reverse_transfer), if any. */
  readonly sourceRefund: string | null;
  readonly ledgerEntryId: string;
  readonly createdAt: string;
}

export async function insertTransfer(db: Queryable, transfer: Omit<TransferRow, 'amountReversedMinor' | 'createdAt'>):
Promise<TransferRow> {
  const result = await db.query(named(`INSERT INTO transfers (merchant_id, id, destination, currency, amount_minor,
       source_transaction, transfer_group, description, metadata, ledger_entry_id, destination_payment)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11) RETURNING *`),
  [transfer.merchantId, transfer.id, transfer.destination, transfer.currency, transfer.amountMinor.toString(),
    transfer.sourceTransaction, transfer.transferGroup, transfer.description, JSON.stringify(transfer.metadata),
    transfer.ledgerEntryId, transfer.destinationPayment]);
  return toTransfer(result.rows[0]);
}

export async function selectTransfer(db: Queryable, key: { merchantId: string; id: string },
  options = { forUpdate: false }): Promise<TransferRow | undefined> {
  const result = await db.query(named(`SELECT * FROM transfers WHERE merchant_id = $1 AND id = $2
     ${options.forUpdate ? 'FOR UPDATE' : ''}`), [key.merchantId, key.id]);
  return result.rows[0] === undefined ? undefined : toTransfer(result.rows[0]);
}

/** The transfer a destination charge made at its capture, locked for the caller's transaction when asked. */
export async function selectDestinationTransferOfCharge(db: Queryable, key: { merchantId: string; chargeId: string },
  options = { forUpdate: false }): Promise<TransferRow | undefined> {
  const result = await db.query(named(`SELECT * FROM transfers
     WHERE merchant_id = $1 AND source_transaction = $2 AND destination_payment IS NOT NULL
     ${options.forUpdate ? 'FOR UPDATE' : ''}`), [key.merchantId, key.chargeId]);
  return result.rows[0] === undefined ? undefined : toTransfer(result.rows[0]);
}

/** What a transfer's reversals made by charge refunds (reverse_transfer) took back. */
export async function selectReversedByRefunds(db: Queryable, transfer: Pick<TransferRow, 'merchantId' | 'id'>):
Promise<bigint> {
  const result = await db.query<{ total: bigint }>(named(`SELECT coalesce(sum(amount_minor), 0) AS total
     FROM transfer_reversals WHERE merchant_id = $1 AND transfer_id = $2 AND source_refund IS NOT NULL`),
  [transfer.merchantId, transfer.id]);
  return result.rows[0]?.total ?? 0n;
}

/** What earlier transfers passed on from a charge (named by any of `references`), net of their reversals. */
export async function selectTransferredFromSource(db: Queryable, key: { merchantId: string;
  references: readonly string[] }): Promise<bigint> {
  const result = await db.query<{ total: bigint }>(named(`SELECT coalesce(sum(amount_minor - amount_reversed_minor), 0)
       AS total FROM transfers WHERE merchant_id = $1 AND source_transaction = ANY($2::text[])`),
  [key.merchantId, key.references]);
  return result.rows[0]?.total ?? 0n;
}

export function selectTransferPage(db: Queryable, query: { merchantId: string; limit: number;
  startingAfter: string | undefined; endingBefore: string | undefined; destination: string | undefined;
  transferGroup: string | undefined; createdGte: string | undefined; createdLte: string | undefined }):
Promise<PageRows<TransferRow>> {
  return selectPage(db, 'transfers', { ...query,
    equals: { destination: query.destination, transfer_group: query.transferGroup } }, toTransfer);
}

export async function addTransferReversed(db: Queryable, transfer: Pick<TransferRow, 'merchantId' | 'id'>,
  amountMinor: bigint): Promise<TransferRow> {
  const result = await db.query(named(`UPDATE transfers SET amount_reversed_minor = amount_reversed_minor + $3
     WHERE merchant_id = $1 AND id = $2 RETURNING *`), [transfer.merchantId, transfer.id, amountMinor.toString()]);
  return toTransfer(result.rows[0]);
}

export async function insertTransferReversal(db: Queryable, reversal: Omit<TransferReversalRow, 'createdAt'>):
Promise<TransferReversalRow> {
  const result = await db.query(named(`INSERT INTO transfer_reversals (merchant_id, id, transfer_id, amount_minor,
       metadata, ledger_entry_id, source_refund) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7) RETURNING *`),
  [reversal.merchantId, reversal.id, reversal.transferId, reversal.amountMinor.toString(),
    JSON.stringify(reversal.metadata), reversal.ledgerEntryId, reversal.sourceRefund]);
  return toReversal(result.rows[0]);
}

/** A transfer's reversals, oldest first (at most 100: Stripe's embedded list page). */
export async function selectTransferReversals(db: Queryable, transfer: Pick<TransferRow, 'merchantId' | 'id'>):
Promise<TransferReversalRow[]> {
  const result = await db.query(named(`SELECT * FROM transfer_reversals WHERE merchant_id = $1 AND transfer_id = $2
     ORDER BY created_at, id LIMIT 100`), [transfer.merchantId, transfer.id]);
  return result.rows.map(toReversal);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
function toTransfer(row: any): TransferRow {
  if (row === undefined) throw new Error('expected a transfers row');
  return {
    merchantId: row.merchant_id, id: row.id, destination: row.destination, currency: row.currency,
    amountMinor: row.amount_minor, amountReversedMinor: row.amount_reversed_minor,
    sourceTransaction: row.source_transaction, destinationPayment: row.destination_payment ?? null,
    transferGroup: row.transfer_group, description: row.description,
    metadata: row.metadata, ledgerEntryId: row.ledger_entry_id, createdAt: row.created_at,
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
function toReversal(row: any): TransferReversalRow {
  if (row === undefined) throw new Error('expected a transfer_reversals row');
  return {
    merchantId: row.merchant_id, id: row.id, transferId: row.transfer_id, amountMinor: row.amount_minor,
    metadata: row.metadata, sourceRefund: row.source_refund ?? null, ledgerEntryId: row.ledger_entry_id,
    createdAt: row.created_at,
  };
}
