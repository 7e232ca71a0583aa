import { named, type Queryable } from '../db/pool.js';

/** The SQL of merchants and their keys, one function per statement. */
export interface MerchantRow {
  readonly id: string;
  readonly name: string;
  readonly createdAt: string;
}

export interface ApiKeyRow {
  readonly id: string;
  readonly merchantId: string;
  readonly prefix: string;
  readonly last4: string;
  readonly createdAt: string;
  readonly revokedAt: string | null;
}

export async function insertMerchant(db: Queryable, id: string, name: string): Promise<MerchantRow> {
  const result = await db.query<{ id: string; name: string; created_at: string }>(
    named('INSERT INTO merchants (id, name) VALUES ($1, $2) RETURNING id, name, created_at'),
    [id, name],
  );
  const row = result.rows[0];
  if (row === undefined) throw new Error('INSERT … RETURNING returned no row');
  return { id: row.id, name: row.name, createdAt: row.created_at };
}

export async function selectMerchant(db: Queryable, id: string): Promise<MerchantRow | undefined> {
  const result = await db.query<{ id: string; name: string; created_at: string }>(
    named('SELECT id, name, created_at FROM merchants WHERE id = $1'), [id]);
  const row = result.rows[0];
  return row === undefined ? undefined : { id: row.id, name: row.name, createdAt: row.created_at };
}

/** Merchants newest first, after a cursor (index merchants_list): the operator's pages. */
export async function selectMerchantPage(db: Queryable, query: { limit: number; startingAfter: string | undefined }):
Promise<MerchantRow[]> {
  const result = await db.query<{ id: string; name: string; created_at: string }>(
    named(`SELECT id, name, created_at FROM merchants
     WHERE ($2::text IS NULL OR (created_at, id) < (SELECT created_at, id FROM merchants WHERE id = $2))
     ORDER BY created_at DESC, id DESC LIMIT $1`), [query.limit, query.startingAfter ?? null]);
  return result.rows.map((row) => ({ id: row.id, name: row.name, createdAt: row.created_at }));
}

export async function insertApiKey(
  db: Queryable,
  key: { id: string; merchantId: string; digest: Buffer; prefix: string; last4: string },
): Promise<void> {
  await db.query(
    named(`INSERT INTO merchant_api_keys (merchant_id, id, key_digest, prefix, last4)
     VALUES ($1, $2, $3, $4, $5)`),
    [key.merchantId, key.id, key.digest, key.prefix, key.last4],
  );
}

/** The merchant whose unrevoked key has this digest, and the key's id. */
export async function selectMerchantByKeyDigest(
  db: Queryable,
  digest: Buffer,
): Promise<{ merchant: MerchantRow; keyId: string } | undefined> {
  const result = await db.query<{ id: string; name: string; created_at: string; key_id: string }>(
    named(`SELECT m.id, m.name, m.created_at, k.id AS key_id FROM merchant_api_keys k JOIN merchants m ON m.id = k.merchant_id
     WHERE k.key_digest = $1 AND k.revoked_at IS NULL`),
    [digest],
  );
  const row = result.rows[0];
  return row === undefined ? undefined
    : { merchant: { id: row.id, name: row.name, createdAt: row.created_at }, keyId: row.key_id };
}

export async function selectApiKeys(db: Queryable, merchantId: string): Promise<ApiKeyRow[]> {
  const result = await db.query(
    named(`SELECT id, merchant_id, prefix, last4, created_at, revoked_at FROM merchant_api_keys
     WHERE merchant_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1000`),
    [merchantId],
  );
  return result.rows.map((row) => ({
    id: row.id, merchantId: row.merchant_id, prefix: row.prefix, last4: row.last4,
    createdAt: row.created_at, revokedAt: row.revoked_at,
  }));
}

/** The channel on which a revoked key's id is announced (NOTIFY), for other processes' caches. */
export const keyRevocationChannel = 'penny_api_key_revoked';

/** Revokes a key; returns the key as it is now, or undefined when there is no such key. */
export async function revokeApiKey(db: Queryable, id: string): Promise<ApiKeyRow | undefined> {
  const result = await db.query(
    // Every Penny process listening on the channel forgets the key when this commits.
    named(`WITH revoked AS (
       UPDATE merchant_api_keys SET revoked_at = clock_timestamp()
       WHERE id = $1 AND revoked_at IS NULL
       RETURNING id, merchant_id, prefix, last4, created_at, revoked_at),
     notified AS (SELECT pg_notify('${keyRevocationChannel}', id) FROM revoked)
     SELECT id, merchant_id, prefix, last4, created_at, revoked_at FROM revoked, (SELECT count(*) FROM notified) n
     UNION ALL
     SELECT id, merchant_id, prefix, last4, created_at, revoked_at FROM merchant_api_keys
     WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM revoked)`),
    [id],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : {
    id: row.id, merchantId: row.merchant_id, prefix: row.prefix, last4: row.last4,
    createdAt: row.created_at, revokedAt: row.revoked_at,
  };
}

/** Penny's processing fee for a merchant: basis points of the captured amount plus a fixed part. */
export interface MerchantPricing {
  readonly basisPoints: number;
  readonly fixedMinor: bigint;
}

/** Penny's processing fee for a merchant with no pricing row: 2.9% + 30 minor units. */
export const defaultPricing: MerchantPricing = { basisPoints: 290, fixedMinor: 30n };

export async function selectMerchantPricing(
  db: Queryable,
  merchantId: string,
): Promise<MerchantPricing> {
  const result = await db.query<{ fee_basis_points: number; fee_fixed_minor: bigint }>(
    named('SELECT fee_basis_points, fee_fixed_minor FROM merchant_pricing WHERE merchant_id = $1'), [merchantId]);
  const row = result.rows[0];
  return row === undefined ? { ...defaultPricing }
    : { basisPoints: row.fee_basis_points, fixedMinor: row.fee_fixed_minor };
}

/**
 * Sets a merchant's pricing (from its next capture on); a part left undefined keeps its current
 * value (or the default). Undefined when there is no such merchant.
 */
export async function setMerchantPricing(
  db: Queryable,
  merchantId: string,
  change: { basisPoints: number | undefined; fixedMinor: bigint | undefined },
): Promise<MerchantPricing | undefined> {
  // One statement: a part left out keeps the row's value as it is under the row's lock.
  const result = await db.query<{ fee_basis_points: number; fee_fixed_minor: bigint }>(
    `INSERT INTO merchant_pricing (merchant_id, fee_basis_points, fee_fixed_minor)
     SELECT id, coalesce($2::integer, $4::integer), coalesce($3::bigint, $5::bigint) FROM merchants WHERE id = $1
     ON CONFLICT (merchant_id) DO UPDATE SET
       fee_basis_points = coalesce($2::integer, merchant_pricing.fee_basis_points),
       fee_fixed_minor = coalesce($3::bigint, merchant_pricing.fee_fixed_minor)
     RETURNING fee_basis_points, fee_fixed_minor`,
    [merchantId, change.basisPoints ?? null, change.fixedMinor?.toString() ?? null, defaultPricing.basisPoints,
      defaultPricing.fixedMinor.toString()]);
  const row = result.rows[0];
  return row === undefined ? undefined : { basisPoints: row.fee_basis_points, fixedMinor: row.fee_fixed_minor };
}

/** Subscribes this connection to key revocations (a NOTIFY on keyRevocationChannel as each commits). */
export async function listenForKeyRevocations(db: Queryable): Promise<void> {
  await db.query(`LISTEN ${keyRevocationChannel}`);
}
