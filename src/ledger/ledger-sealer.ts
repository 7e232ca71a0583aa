import fs from 'node:fs/promises';
import type pg from 'pg';
import type { Logger } from 'pino';
import { limits } from '../config.js';
import { withTransaction } from '../db/pool.js';
import { entryHash, genesisHash, selectCanonicalEntries } from './ledger-chain.js';
import {
  deleteQueuedStatements, insertSeals, selectChainHead, selectQueuedStatementIds, selectUnsealedEntryIds,
  tryAdvisoryXactLock,
} from './ledger-chain-store.js';

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
    if (!(await tryAdvisoryXactLock(client, sealerLockKey))) return { sealed: 0, statements: 0, head: undefined };
    // The oldest queue rows, as many as name at most the batch limit of entries (but always the
    // oldest, whatever its size); an entry named by two rows (postings added by a later statement)
    // or sealed already is skipped.
    const queueIds = await selectQueuedStatementIds(client, limits.sealBatchEntriesMax);
    const ids = await selectUnsealedEntryIds(client, queueIds);
    const head = await selectChainHead(client);
    let position = head?.position ?? 0n;
    let previous = head?.hash ?? genesisHash;
    if (ids.length === 0) {
      await deleteQueued(client, queueIds);
      const unchanged = position === 0n ? undefined : { position, hash: previous };
      return { sealed: 0, statements: queueIds.length, head: unchanged };
    }
    const entries = await selectCanonicalEntries(client, ids);
    const seals = ids.map((id) => {
      const entry = entries.get(id);
      if (entry === undefined) throw new Error(`entry ${id} waits for a seal but does not exist`);
      position += 1n;
      const seal = { position, entryId: id, previousHash: previous, hash: entryHash(previous, entry) };
      previous = seal.hash;
      return seal;
    });
    await insertSeals(client, seals);
    await deleteQueued(client, queueIds);
    const sealed = seals.length;
    return { sealed, statements: queueIds.length, head: { position, hash: previous } };
  });
}

async function deleteQueued(client: pg.PoolClient, queueIds: readonly string[]): Promise<void> {
  if (queueIds.length === 0) return;
  await deleteQueuedStatements(client, queueIds);
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
