import fs from 'node:fs/promises';
import type pg from 'pg';
import type { Logger } from 'pino';
import { limits } from '../config.js';
import { withTransaction } from '../db/pool.js';
import { entryHash, genesisHash, selectCanonicalEntries } from './ledger-chain.js';

/**
 * The sealer chains committed entries shortly after they commit, in batches, so writers never
 * wait on the chain. One sealer runs at a time (an advisory lock); entries are chained in the
 * order of their sequence among those waiting, and the order is recorded by `position`.
 */
const sealerLockKey = 0x50454e4e59; // "PENNY"

export interface SealResult {
  readonly sealed: number;
  /** Seal-queue rows consumed (one per posting statement); 0 when nothing waited. */
  readonly statements: number;
  readonly head: { readonly position: bigint; readonly hash: string } | undefined;
}

export async function sealBatch(pool: pg.Pool): Promise<SealResult> {
  return withTransaction(pool, async (client) => {
    const locked = await client.query<{ locked: boolean }>(
      'SELECT pg_try_advisory_xact_lock($1) AS locked', [sealerLockKey]);
    if (locked.rows[0]?.locked !== true) return { sealed: 0, statements: 0, head: undefined };
    // The oldest queue rows, as many as name at most the batch limit of entries (but always the
    // oldest, whatever its size); an entry named by two rows (postings added by a later statement)
    // or sealed already is skipped.
    const queued = await client.query<{ id: string }>(
      `SELECT id FROM (
         SELECT id, row_number() OVER (ORDER BY id) AS position,
                sum(cardinality(entry_ids)) OVER (ORDER BY id) AS through
         FROM (SELECT id, entry_ids FROM ledger_unsealed_statements ORDER BY id LIMIT $1) oldest
       ) counted WHERE position = 1 OR through <= $1`,
      [limits.sealBatchEntriesMax],
    );
    const queueIds = queued.rows.map((row) => row.id);
    const waiting = await client.query<{ entry_id: string }>(
      `SELECT e.id AS entry_id FROM ledger_entries e
       WHERE e.id IN (SELECT unnest(entry_ids) FROM ledger_unsealed_statements WHERE id = ANY($1::bigint[]))
         AND NOT EXISTS (SELECT 1 FROM ledger_entry_seals s WHERE s.entry_id = e.id)
       ORDER BY e.sequence`,
      [queueIds],
    );
    const head = await client.query<{ position: bigint; hash: string }>(
      'SELECT position, hash FROM ledger_entry_seals ORDER BY position DESC LIMIT 1');
    let position = head.rows[0]?.position ?? 0n;
    let previous = head.rows[0]?.hash ?? genesisHash;
    if (waiting.rows.length === 0) {
      await deleteQueued(client, queueIds);
      const unchanged = position === 0n ? undefined : { position, hash: previous };
      return { sealed: 0, statements: queueIds.length, head: unchanged };
    }
    const ids = waiting.rows.map((row) => row.entry_id);
    const entries = await selectCanonicalEntries(client, ids);
    const seals = ids.map((id) => {
      const entry = entries.get(id);
      if (entry === undefined) throw new Error(`entry ${id} waits for a seal but does not exist`);
      position += 1n;
      const seal = { position, entryId: id, previousHash: previous, hash: entryHash(previous, entry) };
      previous = seal.hash;
      return seal;
    });
    await client.query(
      `INSERT INTO ledger_entry_seals (position, entry_id, previous_hash, hash)
       SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[])`,
      [seals.map((seal) => seal.position.toString()), seals.map((seal) => seal.entryId),
        seals.map((seal) => seal.previousHash), seals.map((seal) => seal.hash)],
    );
    await deleteQueued(client, queueIds);
    const sealed = seals.length;
    return { sealed, statements: queueIds.length, head: { position, hash: previous } };
  });
}

async function deleteQueued(client: pg.PoolClient, queueIds: readonly string[]): Promise<void> {
  if (queueIds.length === 0) return;
  await client.query('DELETE FROM ledger_unsealed_statements WHERE id = ANY($1::bigint[])', [queueIds]);
}

/** Seals until nothing waits (bounded), then publishes the head: a log line and the anchor file. */
export async function sealPending(
  pool: pg.Pool,
  options: { logger?: Logger | undefined; anchorFile?: string | undefined; batchesMax?: number },
): Promise<SealResult> {
  let total = 0;
  let statements = 0;
  let last: SealResult = { sealed: 0, statements: 0, head: undefined };
  for (let batch = 0; batch < (options.batchesMax ?? 100); batch += 1) {
    last = await sealBatch(pool);
    total += last.sealed;
    statements += last.statements;
    if (last.statements === 0) break;
  }
  if (total > 0 && last.head !== undefined) await publishHead(last.head, options);
  return { sealed: total, statements, head: last.head };
}

async function publishHead(
  head: { position: bigint; hash: string },
  options: { logger?: Logger | undefined; anchorFile?: string | undefined },
): Promise<void> {
  options.logger?.info({ ledger_chain_position: head.position.toString(), ledger_chain_hash: head.hash },
    'ledger chain head');
  if (options.anchorFile === undefined) return;
  const line = JSON.stringify({ position: head.position.toString(), hash: head.hash, at: new Date().toISOString() });
  await fs.appendFile(options.anchorFile, `${line}\n`);
}
