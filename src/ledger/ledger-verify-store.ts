import type { Queryable } from '../db/pool.js';

/**
 * Every SQL statement of the verifier's checks (the chain's own are in ledger-chain-store.ts),
 * one function per statement. Each reads the raw tables with a plain SELECT and returns what it
 * found, at most a page of it; ledger-verify.ts decides what is a failure and says so.
 */
export interface EntryProblemRow {
  readonly entryId: string;
  readonly problem: string;
}

/** Entries that do not balance per currency and phase, have fewer than two postings, or differ in time. */
export async function selectUnbalancedEntries(db: Queryable): Promise<EntryProblemRow[]> {
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
  return result.rows.map(toEntryProblem);
}

export interface CurrencyMismatchRow {
  readonly accountId: string;
  readonly entryId: string;
  readonly postingCurrency: string;
  /** Null when the account does not exist. */
  readonly accountCurrency: string | null;
}

/** Postings whose currency is not their account's, or whose account does not exist. */
export async function selectCurrencyMismatches(db: Queryable): Promise<CurrencyMismatchRow[]> {
  const result = await db.query<{ account_id: string; entry_id: string; posting_currency: string;
    account_currency: string | null }>(
    `SELECT p.account_id, min(p.entry_id) AS entry_id, p.currency AS posting_currency, a.currency AS account_currency
     FROM ledger_postings p LEFT JOIN ledger_accounts a ON a.id = p.account_id
     WHERE a.id IS NULL OR a.currency <> p.currency
     GROUP BY p.account_id, p.currency, a.currency
     ORDER BY p.account_id LIMIT 10`,
  );
  return result.rows.map((row) => ({
    accountId: row.account_id, entryId: row.entry_id, postingCurrency: row.posting_currency,
    accountCurrency: row.account_currency,
  }));
}

/**
 * Stored balances (row plus unfolded balance changes) against the sums of postings, as
 * `debits posted/credits posted/debits pending/credits pending` texts: the accounts that differ,
 * then one row with a null account; every row carries the number of accounts compared.
 */
export interface StoredBalanceRow {
  readonly accountId: string | null;
  readonly checked: bigint;
  readonly stored: string | null;
  readonly summed: string | null;
}

export async function selectStoredBalanceMismatches(db: Queryable): Promise<StoredBalanceRow[]> {
  const result = await db.query<{ account_id: string | null; checked: bigint; stored: string | null;
    summed: string | null }>(
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
  return result.rows.map((row) => ({
    accountId: row.account_id, checked: row.checked, stored: row.stored, summed: row.summed,
  }));
}

export interface LimitBreachRow {
  readonly accountId: string;
  readonly limit: string;
}

/** Accounts whose balance breaks their limit. */
export async function selectLimitBreaches(db: Queryable): Promise<LimitBreachRow[]> {
  const result = await db.query<{ id: string; balance_limit: string }>(
    `SELECT a.id, a.balance_limit FROM ledger_accounts a
     JOIN ledger_current_balances b ON b.account_id = a.id
     WHERE (a.balance_limit = 'debits_must_not_exceed_credits'
            AND b.debits_posted + b.debits_pending > b.credits_posted)
        OR (a.balance_limit = 'credits_must_not_exceed_debits'
            AND b.credits_posted + b.credits_pending > b.debits_posted)
     ORDER BY a.id LIMIT 10`,
  );
  return result.rows.map((row) => ({ accountId: row.id, limit: row.balance_limit }));
}

/** How many entries created more than `ageSeconds` ago are not sealed, and when the oldest was. */
export async function selectUnsealedOlderThan(
  db: Queryable,
  ageSeconds: number,
): Promise<{ count: bigint; oldest: string | null } | undefined> {
  const result = await db.query<{ count: bigint; oldest: string | null }>(
    `SELECT count(*) AS count, min(e.created_at) AS oldest FROM ledger_entries e
     WHERE NOT EXISTS (SELECT 1 FROM ledger_entry_seals s WHERE s.entry_id = e.id)
       AND e.created_at < now() - make_interval(secs => $1)`,
    [ageSeconds],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : { count: row.count, oldest: row.oldest };
}

/**
 * Open holds with an expiry missing from ledger_open_holds (`unlisted`), and rows of
 * ledger_open_holds that are not such a hold (`not open`), at most ten of each.
 */
export async function selectOpenHoldMismatches(db: Queryable): Promise<EntryProblemRow[]> {
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
  return result.rows.map(toEntryProblem);
}

function toEntryProblem(row: { entry_id: string; problem: string }): EntryProblemRow {
  return { entryId: row.entry_id, problem: row.problem };
}
