import { named, type Queryable } from '../db/pool.js';

/** The SQL of dashboard sessions (migrations 0040 and 0047), one function per statement. */
export interface SessionRow {
  /** null for the operator's session. */
  readonly merchantId: string | null;
  readonly merchantName: string | null;
  readonly expiresAt: string;
}

/**
 * A merchant's session names the key it was opened with (`keyId`); the operator's, the digest of
 * the operator key it was opened with (`operatorKeyDigest`), never the key.
 */
export async function insertSession(db: Queryable, session: { tokenDigest: Buffer; merchantId: string | null;
  keyId: string | null; operatorKeyDigest: Buffer | null; lifetimeSeconds: number }): Promise<void> {
  await db.query(named(`INSERT INTO dashboard_sessions (token_digest, merchant_id, key_id, operator_key_digest,
     expires_at) VALUES ($1, $2, $3, $4, clock_timestamp() + $5::integer * interval '1 second')`),
  [session.tokenDigest, session.merchantId, session.keyId, session.operatorKeyDigest, session.lifetimeSeconds]);
}

/**
 * The live session with this digest: not expired (on the database's own clock, not Penny's
 * controlled one) and, for a merchant's, opened with a key that is still unrevoked; for the
 * operator's, opened with the current operator key (its digest is `operatorKeyDigest`; a session
 * with none, from before migration 0047, is not live).
 */
export async function selectLiveSession(db: Queryable, tokenDigest: Buffer, operatorKeyDigest: Buffer):
Promise<SessionRow | undefined> {
  const result = await db.query<{ merchant_id: string | null; merchant_name: string | null; expires_at: string }>(
    named(`SELECT s.merchant_id, m.name AS merchant_name, s.expires_at FROM dashboard_sessions s
     LEFT JOIN merchant_api_keys k ON k.merchant_id = s.merchant_id AND k.id = s.key_id
     LEFT JOIN merchants m ON m.id = s.merchant_id
     WHERE s.token_digest = $1 AND s.expires_at > clock_timestamp()
       AND (CASE WHEN s.merchant_id IS NULL THEN s.operator_key_digest = $2
                 ELSE k.revoked_at IS NULL END)`), [tokenDigest, operatorKeyDigest]);
  const row = result.rows[0];
  return row === undefined ? undefined
    : { merchantId: row.merchant_id, merchantName: row.merchant_name, expiresAt: row.expires_at };
}

export async function deleteSession(db: Queryable, tokenDigest: Buffer): Promise<void> {
  await db.query(named('DELETE FROM dashboard_sessions WHERE token_digest = $1'), [tokenDigest]);
}

/** Removes up to `batchMax` expired sessions (run at sign-in, so the table never grows unbounded). */
export async function deleteExpiredSessions(db: Queryable, batchMax: number): Promise<void> {
  await db.query(named(`DELETE FROM dashboard_sessions WHERE token_digest IN (
     SELECT token_digest FROM dashboard_sessions WHERE expires_at <= clock_timestamp() LIMIT $1)`), [batchMax]);
}
