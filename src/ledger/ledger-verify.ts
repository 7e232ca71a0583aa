import type { Queryable } from '../db/pool.js';
import { limits } from '../config.js';
import { entryHash, genesisHash, selectCanonicalEntries } from './ledger-chain.js';
import { selectSealsAfter, type Seal } from './ledger-chain-store.js';
import {
  selectCurrencyMismatches, selectLimitBreaches, selectOpenHoldMismatches, selectStoredBalanceMismatches,
  selectUnbalancedEntries, selectUnsealedOlderThan, type StoredBalanceRow,
} from './ledger-verify-store.js';

/**
 * Recomputes what the ledger claims, from the raw rows: the hash chain, every entry's balance,
 * every stored balance against its postings, and the accounts' limits. It reads with plain
 * SELECTs, so it catches rows changed behind Penny's back (for example with triggers disabled).
 */
export interface VerifyFailure {
  readonly check: 'chain' | 'entry_balance' | 'currency' | 'stored_balance' | 'limit' | 'seal_lag' | 'anchor'
    | 'open_holds';
  readonly message: string;
  readonly entry?: string;
  readonly account?: string;
  readonly position?: string;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly sealsChecked: number;
  readonly accountsChecked: number;
  readonly head: { readonly position: string; readonly hash: string } | null;
  readonly failures: readonly VerifyFailure[];
}

const sealPageSize = 1000;

export async function verifyLedger(
  db: Queryable,
  options: { anchor?: string | undefined } = {},
): Promise<VerifyReport> {
  const chain = await verifyChain(db, options.anchor);
  const balances = await checkStoredBalances(db);
  const failures = [
    ...chain.failures,
    ...(await checkEntriesBalance(db)),
    ...(await checkPostingCurrencies(db)),
    ...balances.failures,
    ...(await checkLimits(db)),
    ...(await checkSealLag(db)),
    ...(await checkOpenHolds(db)),
  ];
  return {
    ok: failures.length === 0,
    sealsChecked: chain.sealsChecked,
    accountsChecked: balances.accountsChecked,
    head: chain.head,
    failures,
  };
}

interface ChainResult {
  readonly sealsChecked: number;
  readonly head: VerifyReport['head'];
  readonly failures: VerifyFailure[];
}

/** Walks the seals in position order, recomputing each hash; stops at the first that differs. */
async function verifyChain(db: Queryable, anchor: string | undefined): Promise<ChainResult> {
  let previous = genesisHash;
  let position = 0n;
  let anchorSeen = anchor === undefined;
  for (let page = 0; ; page += 1) {
    const seals = await selectSealsAfter(db, position, sealPageSize);
    const entries = await selectCanonicalEntries(db, seals.map((seal) => seal.entryId));
    for (const seal of seals) {
      const failure = checkSeal(seal, position, previous, entries.get(seal.entryId));
      if (failure !== undefined) return { sealsChecked: Number(position), head: null, failures: [failure] };
      position = seal.position;
      previous = seal.hash;
      if (seal.hash === anchor) anchorSeen = true;
    }
    if (seals.length < sealPageSize) break;
  }
  const head = position === 0n ? null : { position: position.toString(), hash: previous };
  const failures: VerifyFailure[] = anchorSeen ? [] : [{
    check: 'anchor',
    message: `the published anchor ${anchor} is not in the recomputed chain: history was rewritten`,
  }];
  return { sealsChecked: Number(position), head, failures };
}

function checkSeal(
  seal: Seal,
  lastPosition: bigint,
  previous: string,
  entry: Parameters<typeof entryHash>[1] | undefined,
): VerifyFailure | undefined {
  const at = { entry: seal.entryId, position: seal.position.toString() };
  if (seal.position !== lastPosition + 1n) {
    return { check: 'chain', ...at, message: `seal positions jump from ${lastPosition} to ${seal.position}` };
  }
  if (seal.previousHash !== previous) {
    return { check: 'chain', ...at, message: `entry ${seal.entryId} does not link to the seal before it` };
  }
  if (entry === undefined) {
    return { check: 'chain', ...at, message: `sealed entry ${seal.entryId} is missing` };
  }
  if (entryHash(previous, entry) !== seal.hash) {
    return { check: 'chain', ...at, message: `entry ${seal.entryId} differs from what was sealed` };
  }
  return undefined;
}

/** Every entry: at least two postings, balanced per currency and phase, at the entry's time. */
async function checkEntriesBalance(db: Queryable): Promise<VerifyFailure[]> {
  const rows = await selectUnbalancedEntries(db);
  return rows.map((row) => ({
    check: 'entry_balance' as const,
    entry: row.entryId,
    message: `entry ${row.entryId} ${row.problem}`,
  }));
}

/**
 * Invariant 3: every posting's currency is its account's. Accounts are not hashed into the chain,
 * so this is what catches an account's currency changed behind Penny's back.
 */
async function checkPostingCurrencies(db: Queryable): Promise<VerifyFailure[]> {
  const rows = await selectCurrencyMismatches(db);
  return rows.map((row) => ({
    check: 'currency' as const,
    account: row.accountId,
    entry: row.entryId,
    message: row.accountCurrency === null
      ? `account ${row.accountId} does not exist, yet entry ${row.entryId} posts to it`
      : `account ${row.accountId} is in ${row.accountCurrency}, yet entry ${row.entryId} posts to it in ${row.postingCurrency}`,
  }));
}

/** Invariant 5: every stored balance (row plus unfolded balance changes) equals the sum of the account's postings. */
export async function checkStoredBalances(
  db: Queryable,
): Promise<{ accountsChecked: number; failures: VerifyFailure[] }> {
  const rows = await selectStoredBalanceMismatches(db);
  const accountsChecked = Number(rows.at(-1)?.checked ?? 0n);
  const differing = rows.filter((row): row is StoredBalanceRow & { accountId: string } => row.accountId !== null);
  const failures = differing.slice(0, 10).map((row) => ({
    check: 'stored_balance' as const,
    account: row.accountId,
    message: `account ${row.accountId}: stored balance ${row.stored} (debits/credits posted, ` +
      `debits/credits pending) but its postings sum to ${row.summed}`,
  }));
  return { accountsChecked, failures };
}

async function checkLimits(db: Queryable): Promise<VerifyFailure[]> {
  const rows = await selectLimitBreaches(db);
  return rows.map((row) => ({
    check: 'limit' as const,
    account: row.accountId,
    message: `account ${row.accountId} breaks its limit ${row.limit}`,
  }));
}

async function checkSealLag(db: Queryable): Promise<VerifyFailure[]> {
  const row = await selectUnsealedOlderThan(db, limits.sealLagSecondsMax);
  if (row === undefined || row.count === 0n) return [];
  return [{
    check: 'seal_lag',
    message: `${row.count} entries older than ${limits.sealLagSecondsMax}s are not sealed ` +
      `(oldest created ${row.oldest}); is the sealer running?`,
  }];
}

/**
 * The expiry worker's list of open holds matches the entries: every open hold with an expiry is
 * listed (an unlisted one would never expire by itself), and nothing else is.
 */
async function checkOpenHolds(db: Queryable): Promise<VerifyFailure[]> {
  const rows = await selectOpenHoldMismatches(db);
  return rows.map((row) => ({
    check: 'open_holds' as const,
    entry: row.entryId,
    message: row.problem === 'unlisted'
      ? `hold ${row.entryId} is open with an expiry but missing from ledger_open_holds, so it would never expire`
      : `ledger_open_holds lists ${row.entryId}, which is not an open hold with an expiry`,
  }));
}
