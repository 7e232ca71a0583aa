import type { Queryable } from '../db/pool.js';
import { limits } from '../config.js';
import { entryHash, genesisHash, selectCanonicalEntries } from './ledger-chain.js';

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
    const seals = await db.query<{ position: bigint; entry_id: string; previous_hash: string; hash: string }>(
      `SELECT position, entry_id, previous_hash, hash FROM ledger_entry_seals
       WHERE position > $1 ORDER BY position LIMIT $2`,
      [position.toString(), sealPageSize],
    );
    const entries = await selectCanonicalEntries(db, seals.rows.map((seal) => seal.entry_id));
    for (const seal of seals.rows) {
      const failure = checkSeal(seal, position, previous, entries.get(seal.entry_id));
      if (failure !== undefined) return { sealsChecked: Number(position), head: null, failures: [failure] };
      position = seal.position;
      previous = seal.hash;
      if (seal.hash === anchor) anchorSeen = true;
    }
    if (seals.rows.length < sealPageSize) break;
  }
  const head = position === 0n ? null : { position: position.toString(), hash: previous };
  const failures: VerifyFailure[] = anchorSeen ? [] : [{
    check: 'anchor',
    message: `the published anchor ${anchor} is not in the recomputed chain: history was rewritten`,
  }];
  return { sealsChecked: Number(position), head, failures };
}

function checkSeal(
  seal: { position: bigint; entry_id: string; previous_hash: string; hash: string },
  lastPosition: bigint,
  previous: string,
  entry: Parameters<typeof entryHash>[1] | undefined,
): VerifyFailure | undefined {
  const at = { entry: seal.entry_id, position: seal.position.toString() };
  if (seal.position !== lastPosition + 1n) {
    return { check: 'chain', ...at, message: `seal positions jump from ${lastPosition} to ${seal.position}` };
  }
  if (seal.previous_hash !== previous) {
    return { check: 'chain', ...at, message: `entry ${seal.entry_id} does not link to the seal before it` };
  }
  if (entry === undefined) {
    return { check: 'chain', ...at, message: `sealed entry ${seal.entry_id} is missing` };
  }
  if (entryHash(previous, entry) !== seal.hash) {
    return { check: 'chain', ...at, message: `entry ${seal.entry_id} differs from what was sealed` };
  }
  return undefined;
}

/** Every entry: at least two postings, balanced per currency and phase, at the entry's time. */
async function checkEntriesBalance(db: Queryable): Promise<VerifyFailure[]> {
  const result = await db.query<{ entry_id: string; problem: string }>(
    `SELECT entry_id, 'does not balance in ' || currency AS problem
     FROM ledger_postings GROUP BY entry_id, currency, phase
     HAVING sum(CASE direction WHEN 'debit' THEN amount_minor ELSE -amount_minor END) <> 0
     UNION ALL
     SELECT e.id, 'has fewer than two postings' FROM ledger_entries e
     WHERE (SELECT count(*) FROM ledger_postings p WHERE p.entry_id = e.id) < 2
     UNION ALL
     SELECT p.entry_id, 'has a posting whose effective_at differs from the entry''s'
     FROM ledger_postings p JOIN ledger_entries e ON e.id = p.entry_id
     WHERE p.effective_at <> e.effective_at
     ORDER BY entry_id LIMIT 10`,
  );
  return result.rows.map((row) => ({
    check: 'entry_balance' as const,
    entry: row.entry_id,
    message: `entry ${row.entry_id} ${row.problem}`,
  }));
}

/**
 * Invariant 3: every posting's currency is its account's. Accounts are not hashed into the chain,
 * so this is what catches an account's currency changed behind Penny's back.
 */
async function checkPostingCurrencies(db: Queryable): Promise<VerifyFailure[]> {
  const result = await db.query<{ account_id: string; entry_id: string; posting_currency: string;
    account_currency: string | null }>(
    `SELECT p.account_id, min(p.entry_id) AS entry_id, p.currency AS posting_currency, a.currency AS account_currency
     FROM ledger_postings p LEFT JOIN ledger_accounts a ON a.id = p.account_id
     WHERE a.id IS NULL OR a.currency <> p.currency
     GROUP BY p.account_id, p.currency, a.currency
     ORDER BY p.account_id LIMIT 10`,
  );
  return result.rows.map((row) => ({
    check: 'currency' as const,
    account: row.account_id,
    entry: row.entry_id,
    message: row.account_currency === null
      ? `account ${row.account_id} does not exist, yet entry ${row.entry_id} posts to it`
      : `account ${row.account_id} is in ${row.account_currency}, yet entry ${row.entry_id} posts to it in ${row.posting_currency}`,
  }));
}

/** Invariant 5: every stored balance (row plus unfolded balance changes) equals the sum of the account's postings. */
export async function checkStoredBalances(
  db: Queryable,
): Promise<{ accountsChecked: number; failures: VerifyFailure[] }> {
  const result = await db.query<{ account_id: string; checked: bigint; stored: string; summed: string }>(
    `WITH summed AS (
       SELECT account_id,
         coalesce(sum(amount_minor) FILTER (WHERE direction = 'debit' AND phase = 'posted'), 0) AS dp,
         coalesce(sum(amount_minor) FILTER (WHERE direction = 'credit' AND phase = 'posted'), 0) AS cp,
         coalesce(sum(CASE phase WHEN 'pending' THEN amount_minor WHEN 'release' THEN -amount_minor END)
           FILTER (WHERE direction = 'debit' AND phase <> 'posted'), 0) AS dpend,
         coalesce(sum(CASE phase WHEN 'pending' THEN amount_minor WHEN 'release' THEN -amount_minor END)
           FILTER (WHERE direction = 'credit' AND phase <> 'posted'), 0) AS cpend
       FROM ledger_postings GROUP BY account_id
     ),
     compared AS (
       SELECT b.account_id,
         format('%s/%s/%s/%s', b.debits_posted, b.credits_posted, b.debits_pending, b.credits_pending) AS stored,
         format('%s/%s/%s/%s', coalesce(s.dp, 0), coalesce(s.cp, 0), coalesce(s.dpend, 0),
                coalesce(s.cpend, 0)) AS summed
       FROM ledger_current_balances b LEFT JOIN summed s ON s.account_id = b.account_id
     )
     SELECT account_id, (SELECT count(*) FROM compared) AS checked, stored, summed FROM compared
     WHERE stored <> summed
     UNION ALL
     SELECT NULL, (SELECT count(*) FROM compared), NULL, NULL
     ORDER BY account_id NULLS LAST LIMIT 11`,
  );
  const accountsChecked = Number(result.rows.at(-1)?.checked ?? 0n);
  const failures = result.rows.filter((row) => row.account_id !== null).slice(0, 10).map((row) => ({
    check: 'stored_balance' as const,
    account: row.account_id,
    message: `account ${row.account_id}: stored balance ${row.stored} (debits/credits posted, ` +
      `debits/credits pending) but its postings sum to ${row.summed}`,
  }));
  return { accountsChecked, failures };
}

async function checkLimits(db: Queryable): Promise<VerifyFailure[]> {
  const result = await db.query<{ id: string; balance_limit: string }>(
    `SELECT a.id, a.balance_limit FROM ledger_accounts a
     JOIN ledger_current_balances b ON b.account_id = a.id
     WHERE (a.balance_limit = 'debits_must_not_exceed_credits'
            AND b.debits_posted + b.debits_pending > b.credits_posted)
        OR (a.balance_limit = 'credits_must_not_exceed_debits'
            AND b.credits_posted + b.credits_pending > b.debits_posted)
     ORDER BY a.id LIMIT 10`,
  );
  return result.rows.map((row) => ({
    check: 'limit' as const,
    account: row.id,
    message: `account ${row.id} breaks its limit ${row.balance_limit}`,
  }));
}

async function checkSealLag(db: Queryable): Promise<VerifyFailure[]> {
  const result = await db.query<{ count: bigint; oldest: string | null }>(
    `SELECT count(*) AS count, min(e.created_at) AS oldest FROM ledger_entries e
     WHERE NOT EXISTS (SELECT 1 FROM ledger_entry_seals s WHERE s.entry_id = e.id)
       AND e.created_at < now() - make_interval(secs => $1)`,
    [limits.sealLagSecondsMax],
  );
  const row = result.rows[0];
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
  const result = await db.query<{ entry_id: string; problem: string }>(
    `WITH open AS (
       SELECT h.id FROM ledger_entries h
       WHERE h.kind = 'hold' AND h.expires_at IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM ledger_entries r WHERE r.hold_entry_id = h.id))
     (SELECT id AS entry_id, 'unlisted' AS problem FROM open
       WHERE NOT EXISTS (SELECT 1 FROM ledger_open_holds o WHERE o.entry_id = open.id) ORDER BY id LIMIT 10)
     UNION ALL
     (SELECT entry_id, 'not open' FROM ledger_open_holds o
       WHERE NOT EXISTS (SELECT 1 FROM open WHERE open.id = o.entry_id) ORDER BY entry_id LIMIT 10)`,
  );
  return result.rows.map((row) => ({
    check: 'open_holds' as const,
    entry: row.entry_id,
    message: row.problem === 'unlisted'
      ? `hold ${row.entry_id} is open with an expiry but missing from ledger_open_holds, so it would never expire`
      : `ledger_open_holds lists ${row.entry_id}, which is not an open hold with an expiry`,
  }));
}
