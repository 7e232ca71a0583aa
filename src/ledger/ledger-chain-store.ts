import type pg from 'pg';
import { named, type Queryable } from '../db/pool.js';

/**
 * Every SQL statement of the hash chain, one function per statement: the entries in their
 * canonical form, the seals, and the queue of statements waiting for the sealer. The sealer and
 * the verifier decide; this file never decides anything.
 */
export interface CanonicalEntry {
  readonly id: string;
  readonly external_reference: string;
  readonly kind: string;
  readonly effective_at: string;
  readonly expires_at: string | null;
  readonly hold: string | null;
  readonly reverses: string | null;
  readonly description: string | null;
  readonly metadata: Record<string, string>;
  readonly postings: readonly CanonicalPosting[];
}

/** Amounts are decimal strings: exact whatever a raw row holds, even beyond 2^53. */
export interface CanonicalPosting {
  readonly account: string;
  readonly currency: string;
  readonly direction: string;
  readonly phase: string;
  readonly amount: string;
  readonly effective_at: string;
  readonly must_not_overdraw: boolean;
}

export interface Seal {
  readonly position: bigint;
  readonly entryId: string;
  readonly previousHash: string;
  readonly hash: string;
}

/**
 * Reads entries in the canonical form, straight from the tables (the verifier must not trust any
 * derived copy): every column that carries meaning, so an edit to any of them breaks the chain.
 */
export async function selectCanonicalEntries(
  db: Queryable,
  ids: readonly string[],
): Promise<Map<string, CanonicalEntry>> {
  const result = await db.query<{ entry: CanonicalEntry }>(
    named(`SELECT json_build_object(
       'id', e.id, 'external_reference', e.external_reference, 'kind', e.kind,
       'effective_at', ${utcText('e.effective_at')}, 'expires_at', ${utcText('e.expires_at')},
       'hold', e.hold_entry_id, 'reverses', e.reverses_entry_id,
       'description', e.description, 'metadata', e.metadata,
       'postings', coalesce((SELECT json_agg(json_build_object('account', p.account_id,
           'currency', p.currency, 'direction', p.direction, 'phase', p.phase,
           'amount', p.amount_minor::text, 'effective_at', ${utcText('p.effective_at')},
           'must_not_overdraw', p.must_not_overdraw))
         FROM ledger_postings p WHERE p.entry_id = e.id), '[]'::json)) AS entry
     FROM ledger_entries e WHERE e.id = ANY($1::text[])`),
    [ids],
  );
  return new Map(result.rows.map((row) => [row.entry.id, row.entry]));
}

/** UTC ISO 8601 with microseconds, computed by PostgreSQL (a JS Date keeps milliseconds). */
function utcText(column: string): string {
  return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
}

/** The seals after a position, in position order, at most `limit`. */
export async function selectSealsAfter(db: Queryable, position: bigint, limit: number): Promise<Seal[]> {
  const seals = await db.query<{ position: bigint; entry_id: string; previous_hash: string; hash: string }>(
    named(`SELECT position, entry_id, previous_hash, hash FROM ledger_entry_seals
       WHERE position > $1 ORDER BY position LIMIT $2`),
    [position.toString(), limit],
  );
  return seals.rows.map((row) => ({
    position: row.position, entryId: row.entry_id, previousHash: row.previous_hash, hash: row.hash,
  }));
}

/** The last seal, if any. */
export async function selectChainHead(db: Queryable): Promise<{ position: bigint; hash: string } | undefined> {
  const head = await db.query<{ position: bigint; hash: string }>(
    named('SELECT position, hash FROM ledger_entry_seals ORDER BY position DESC LIMIT 1'));
  const row = head.rows[0];
  return row === undefined ? undefined : { position: row.position, hash: row.hash };
}

/** Takes the transaction-scoped advisory lock `key` if it is free; false if another holds it. */
export async function tryAdvisoryXactLock(client: pg.PoolClient, key: number): Promise<boolean> {
  const locked = await client.query<{ locked: boolean }>(
    named('SELECT pg_try_advisory_xact_lock($1) AS locked'), [key]);
  return locked.rows[0]?.locked === true;
}

/**
 * The ids of the oldest seal-queue rows, as many as name at most `entriesMax` entries (but always
 * the oldest, whatever its size).
 */
export async function selectQueuedStatementIds(client: pg.PoolClient, entriesMax: number): Promise<string[]> {
  const queued = await client.query<{ id: string }>(
    named(`SELECT id FROM (
         SELECT id, row_number() OVER (ORDER BY id) AS position,
                sum(cardinality(entry_ids)) OVER (ORDER BY id) AS through
         FROM (SELECT id, entry_ids FROM ledger_unsealed_statements ORDER BY id LIMIT $1) oldest
       ) counted WHERE position = 1 OR through <= $1`),
    [entriesMax],
  );
  return queued.rows.map((row) => row.id);
}

/** The entries these queue rows name that are not sealed yet, once each, in sequence order. */
export async function selectUnsealedEntryIds(client: pg.PoolClient, queueIds: readonly string[]): Promise<string[]> {
  const waiting = await client.query<{ entry_id: string }>(
    named(`SELECT e.id AS entry_id FROM ledger_entries e
       WHERE e.id IN (SELECT unnest(entry_ids) FROM ledger_unsealed_statements WHERE id = ANY($1::bigint[]))
         AND NOT EXISTS (SELECT 1 FROM ledger_entry_seals s WHERE s.entry_id = e.id)
       ORDER BY e.sequence`),
    [queueIds],
  );
  return waiting.rows.map((row) => row.entry_id);
}

export async function insertSeals(client: pg.PoolClient, seals: readonly Seal[]): Promise<void> {
  await client.query(
    named(`INSERT INTO ledger_entry_seals (position, entry_id, previous_hash, hash)
       SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[])`),
    [seals.map((seal) => seal.position.toString()), seals.map((seal) => seal.entryId),
      seals.map((seal) => seal.previousHash), seals.map((seal) => seal.hash)],
  );
}

export async function deleteQueuedStatements(client: pg.PoolClient, queueIds: readonly string[]): Promise<void> {
  await client.query(named('DELETE FROM ledger_unsealed_statements WHERE id = ANY($1::bigint[])'), [queueIds]);
}
