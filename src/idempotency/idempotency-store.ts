import { named, writeAtCommit, type Queryable } from '../db/pool.js';

/**
 * Every SQL statement of idempotency keys, one function per statement. The service never writes
 * SQL; this file never decides anything.
 */
export interface KeyIdentity {
  readonly merchantId: string;
  /** The connected account the request acted as (Stripe-Account), or '' for the merchant itself. */
  readonly accountId: string;
  readonly key: string;
}

export interface NewKey extends KeyIdentity {
  readonly method: string;
  readonly path: string;
  readonly fingerprint: string;
  readonly params: Record<string, unknown>;
}

export interface KeyRow {
  readonly requestMethod: string;
  readonly requestPath: string;
  readonly requestFingerprint: string;
  readonly requestParams: Record<string, unknown>;
  readonly recoveryPoint: string;
  readonly recoveryData: Record<string, unknown>;
  readonly responseStatus: number | null;
  readonly responseBody: string | null;
}

/** A key as operators and clients see it, with its times. */
export interface KeyDescriptionRow extends KeyRow {
  readonly createdAt: string;
  readonly completedAt: string | null;
}

export interface OpenedKey {
  /** Whether this connection now holds the key's lock. */
  readonly locked: boolean;
  /** The key, claimed (inserted) by this request; null when it existed or the lock was busy. */
  readonly inserted: KeyRow | null;
  /** The key, finished before this request came: replayed, with no lock taken. */
  readonly finished: FinishedKey | null;
}

interface KeyColumns {
  readonly request_method: string;
  readonly request_path: string;
  readonly request_fingerprint: string;
  readonly request_params: Record<string, unknown>;
  readonly recovery_point: string;
  readonly recovery_data: Record<string, unknown>;
  readonly response_status: number | null;
  readonly response_body: string | null;
}

const keyColumns = `request_method, request_path, request_fingerprint, request_params, recovery_point, recovery_data,
  response_status, response_body`;

/** The deferred-write slot of a request's key (one key per request, so one per transaction). */
const keySlot = 'idempotency_key';

/** The key's row, if it exists (and, with `finishedOnly`, is finished); read without any lock. */
export async function selectKey(db: Queryable, identity: KeyIdentity, options: { finishedOnly: boolean }):
Promise<KeyRow | undefined> {
  const result = await db.query<KeyColumns>(
    named(`SELECT ${keyColumns} FROM idempotency_keys WHERE merchant_id = $1 AND key = $2
       AND account_id = $4 AND (completed_at IS NOT NULL OR NOT $3)`),
    [identity.merchantId, identity.key, options.finishedOnly, identity.accountId]);
  const row = result.rows[0];
  return row === undefined ? undefined : toKeyRow(row);
}

export async function selectKeyDescription(db: Queryable, identity: KeyIdentity):
Promise<KeyDescriptionRow | undefined> {
  const result = await db.query<KeyColumns & { created_at: string; completed_at: string | null }>(
    named(`SELECT ${keyColumns}, created_at, completed_at FROM idempotency_keys
       WHERE merchant_id = $1 AND key = $2 AND account_id = $3`),
    [identity.merchantId, identity.key, identity.accountId]);
  const row = result.rows[0];
  return row === undefined ? undefined : { ...toKeyRow(row), createdAt: row.created_at, completedAt: row.completed_at };
}

/** A finished key: its row, and how long ago it finished by the database's clock (the reaper's). */
export interface FinishedKey {
  readonly row: KeyRow;
  readonly finishedAgoMs: number;
}

/**
 * One round trip for a request: a key already finished is returned as it is (no lock is taken);
 * otherwise the key's session-level advisory lock is tried and, once held, the key inserted unless
 * it exists.
 */
export async function lockAndInsertKey(db: Queryable, key: NewKey): Promise<OpenedKey> {
  const result = await db.query<{ locked: boolean | null; inserted: KeyColumns | null;
    finished: (KeyColumns & { finished_ago_ms: string }) | null }>(
    named(`WITH finished AS MATERIALIZED (
       SELECT ${keyColumns}, (extract(epoch FROM now() - completed_at) * 1000)::bigint::text AS finished_ago_ms
       FROM idempotency_keys
       WHERE merchant_id = $1 AND key = $2 AND account_id = $8 AND completed_at IS NOT NULL),
     lock AS MATERIALIZED (SELECT pg_try_advisory_lock(hashtextextended($7, 0)) AS locked
       WHERE NOT EXISTS (SELECT 1 FROM finished)),
     inserted AS (
       INSERT INTO idempotency_keys (merchant_id, key, request_method, request_path, request_fingerprint,
         request_params, account_id)
       SELECT $1, $2, $3, $4, $5, $6::jsonb, $8 FROM lock WHERE lock.locked
       ON CONFLICT (merchant_id, account_id, key) DO NOTHING
       RETURNING ${keyColumns})
     SELECT (SELECT locked FROM lock) AS locked, (SELECT row_to_json(i) FROM inserted i) AS inserted,
       (SELECT row_to_json(f) FROM finished f) AS finished`),
    [key.merchantId, key.key, key.method, key.path, key.fingerprint, JSON.stringify(key.params), lockName(key),
      key.accountId]);
  const opened = result.rows[0];
  if (opened === undefined) throw new Error('locking an idempotency key returned no row');
  if (opened.finished !== null) {
    return { locked: false, inserted: null,
      finished: { row: toKeyRow(opened.finished), finishedAgoMs: Number(opened.finished.finished_ago_ms) } };
  }
  return { locked: opened.locked === true, inserted: opened.inserted === null ? null : toKeyRow(opened.inserted),
    finished: null };
}

/** Inserts the key unless it exists, and returns its row either way (a new snapshot of it). */
export async function claimKey(db: Queryable, key: NewKey): Promise<KeyRow> {
  const result = await db.query<KeyColumns>(
    named(`WITH inserted AS (
       INSERT INTO idempotency_keys (merchant_id, key, request_method, request_path, request_fingerprint,
         request_params, account_id)
       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
       ON CONFLICT (merchant_id, account_id, key) DO NOTHING
       RETURNING *)
     SELECT * FROM inserted
     UNION ALL
     SELECT * FROM idempotency_keys WHERE merchant_id = $1 AND key = $2 AND account_id = $7
       AND NOT EXISTS (SELECT 1 FROM inserted)`),
    [key.merchantId, key.key, key.method, key.path, key.fingerprint, JSON.stringify(key.params), key.accountId],
  );
  const row = result.rows[0];
  if (row === undefined) throw new Error('an idempotency key was neither inserted nor found');
  return toKeyRow(row);
}

/** Deletes the key if no recovery point was saved and no response stored; true if it did. */
export async function deleteUnstartedKey(db: Queryable, identity: KeyIdentity): Promise<boolean> {
  const result = await db.query(
    named(`DELETE FROM idempotency_keys WHERE merchant_id = $1 AND key = $2 AND account_id = $3
       AND recovery_point = 'started' AND response_status IS NULL`),
    [identity.merchantId, identity.key, identity.accountId]);
  return result.rowCount === 1;
}

/**
 * Records the key's progress, deferred to the end of the transaction open on `db` (see
 * writeAtCommit); a later write of the key in the same transaction replaces it.
 */
export async function saveRecoveryPointAtCommit(db: Queryable, identity: KeyIdentity,
  recovery: { point: string; data: Record<string, unknown> }): Promise<void> {
  await writeAtCommit(db, keySlot, () => ({
    text: `UPDATE idempotency_keys SET recovery_point = $3, recovery_data = $4::jsonb, last_run_at = clock_timestamp()
           WHERE merchant_id = $1 AND key = $2 AND account_id = $5`,
    values: [identity.merchantId, identity.key, recovery.point, JSON.stringify(recovery.data), identity.accountId],
  }));
}

/** Stores the key's response and finishes it, deferred like saveRecoveryPointAtCommit. */
export async function saveResponseAtCommit(db: Queryable, identity: KeyIdentity,
  response: { status: number; storedBody: () => string }): Promise<void> {
  await writeAtCommit(db, keySlot, () => ({
    text: `UPDATE idempotency_keys SET response_status = $3, response_body = $4, recovery_point = 'finished',
             completed_at = clock_timestamp() WHERE merchant_id = $1 AND key = $2 AND account_id = $5`,
    values: [identity.merchantId, identity.key, response.status, response.storedBody(), identity.accountId],
  }));
}

/** Takes the key's session-level advisory lock if it is free; true if this connection now holds it. */
export async function tryLockKey(db: Queryable, identity: KeyIdentity): Promise<boolean> {
  const result = await db.query<{ locked: boolean }>(
    named('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked'), [lockName(identity)]);
  return result.rows[0]?.locked === true;
}

/** Releases the key's advisory lock, if this connection holds it. */
export async function unlockKey(db: Queryable, identity: KeyIdentity): Promise<void> {
  await db.query(named('SELECT pg_advisory_unlock(hashtextextended($1, 0))'), [lockName(identity)]);
}

/** Deletes at most `batchMax` keys finished more than `retentionHours` ago, oldest first. */
export async function deleteKeysFinishedBefore(db: Queryable, options: { retentionHours: number; batchMax: number }):
Promise<number> {
  const result = await db.query(
    `DELETE FROM idempotency_keys WHERE (merchant_id, account_id, key) IN (
       SELECT merchant_id, account_id, key FROM idempotency_keys
       WHERE completed_at IS NOT NULL AND completed_at < now() - make_interval(hours => $1)
       ORDER BY completed_at LIMIT $2)`,
    [options.retentionHours, options.batchMax]);
  return result.rowCount ?? 0;
}

/**
 * The advisory lock's name: one per merchant, acting account and key. The merchant's own keys keep
 * the name they had before keys were scoped per account, so processes of both versions exclude
 * each other during a rolling upgrade.
 */
function lockName(identity: KeyIdentity): string {
  return identity.accountId === '' ? `${identity.merchantId}:${identity.key}`
    : `${identity.merchantId}:${identity.accountId}:${identity.key}`;
}

function toKeyRow(row: KeyColumns): KeyRow {
  return {
    requestMethod: row.request_method,
    requestPath: row.request_path,
    requestFingerprint: row.request_fingerprint,
    requestParams: row.request_params,
    recoveryPoint: row.recovery_point,
    recoveryData: row.recovery_data,
    responseStatus: row.response_status,
    responseBody: row.response_body,
  };
}
