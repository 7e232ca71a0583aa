import { named, type Queryable } from '../db/pool.js';
import type { AccountType, Direction } from './ledger-types.js';

/**
 * The SQL of the ledger's reports (trial balance by account, account statements, the journal
 * export). Every statement reads a bounded number of rows (its `limit`) and pages by a key the
 * caller passes back, so a report of any size is read in bounded memory. Only `posted` postings
 * count: holds' `pending` and `release` phases are not postings of the books. Decides nothing.
 */
export interface AccountTotalsRow {
  readonly id: string;
  readonly currency: string;
  readonly type: AccountType;
  readonly code: string | null;
  readonly owner: string | null;
  readonly debitsPosted: bigint;
  readonly creditsPosted: bigint;
}

/** The currencies of every account, in order. */
export async function selectCurrenciesInUse(db: Queryable): Promise<string[]> {
  const result = await db.query<{ currency: string }>(
    named('SELECT DISTINCT currency FROM ledger_accounts ORDER BY currency'),
  );
  return result.rows.map((row) => row.currency);
}

/**
 * One page of a currency's accounts that have posted anything, with their posted debits and
 * credits (now: the stored balances; as of an instant: summed from the postings up to it,
 * inclusive), ordered by id, after `afterId`.
 */
export async function selectAccountTotalsPage(db: Queryable, query: {
  readonly currency: string; readonly asOf: string | undefined; readonly afterId: string | undefined;
  readonly limit: number;
}): Promise<AccountTotalsRow[]> {
  const sums = query.asOf === undefined
    ? `SELECT b.debits_posted, b.credits_posted FROM ledger_current_balances b WHERE b.account_id = a.id`
    : `SELECT coalesce(sum(p.amount_minor) FILTER (WHERE p.direction = 'debit'), 0) AS debits_posted,
              coalesce(sum(p.amount_minor) FILTER (WHERE p.direction = 'credit'), 0) AS credits_posted
       FROM ledger_postings p
       WHERE p.account_id = a.id AND p.phase = 'posted' AND p.effective_at <= $4::timestamptz`;
  const result = await db.query({
    name: query.asOf === undefined ? 'ledger_report_account_totals_now' : 'ledger_report_account_totals_as_of',
    text: `SELECT a.id, a.currency, a.type, a.code, a.owner, s.debits_posted, s.credits_posted
     FROM ledger_accounts a
     CROSS JOIN LATERAL (${sums}) s
     WHERE a.currency = $1 AND ($2::text IS NULL OR a.id > $2)
       AND (s.debits_posted <> 0 OR s.credits_posted <> 0)
     ORDER BY a.id
     LIMIT $3`,
    values: query.asOf === undefined
      ? [query.currency, query.afterId ?? null, query.limit]
      : [query.currency, query.afterId ?? null, query.limit, query.asOf],
  });
  return result.rows.map((row) => ({
    id: row.id, currency: row.currency, type: row.type, code: row.code, owner: row.owner,
    debitsPosted: BigInt(row.debits_posted), creditsPosted: BigInt(row.credits_posted),
  }));
}

export interface PeriodSums {
  /** Posted before `from`. */
  readonly openingDebits: bigint;
  readonly openingCredits: bigint;
  /** Posted in [from, to). */
  readonly periodDebits: bigint;
  readonly periodCredits: bigint;
}

/** An account's posted sums before a period and within it ([from, to)). */
export async function selectPeriodSums(db: Queryable, accountId: string, from: string, to: string):
  Promise<PeriodSums> {
  const result = await db.query(
    named(`SELECT
       coalesce(sum(amount_minor) FILTER (WHERE direction = 'debit' AND effective_at < $2), 0) AS opening_debits,
       coalesce(sum(amount_minor) FILTER (WHERE direction = 'credit' AND effective_at < $2), 0) AS opening_credits,
       coalesce(sum(amount_minor) FILTER (WHERE direction = 'debit' AND effective_at >= $2), 0) AS period_debits,
       coalesce(sum(amount_minor) FILTER (WHERE direction = 'credit' AND effective_at >= $2), 0) AS period_credits
     FROM ledger_postings
     WHERE account_id = $1 AND phase = 'posted' AND effective_at < $3`),
    [accountId, from, to],
  );
  const row = result.rows[0];
  return {
    openingDebits: BigInt(row?.opening_debits ?? 0), openingCredits: BigInt(row?.opening_credits ?? 0),
    periodDebits: BigInt(row?.period_debits ?? 0), periodCredits: BigInt(row?.period_credits ?? 0),
  };
}

/** Where a statement page starts: after this posting (its effective instant and id). */
export interface PostingKey {
  readonly effectiveAt: string;
  readonly id: bigint;
}

/** The key of an account's posting, or undefined when the id is not a posting of that account. */
export async function selectPostingKey(db: Queryable, accountId: string, postingId: bigint):
  Promise<PostingKey | undefined> {
  const result = await db.query(
    named('SELECT effective_at, id FROM ledger_postings WHERE id = $1 AND account_id = $2'),
    [postingId.toString(), accountId],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : { effectiveAt: row.effective_at, id: BigInt(row.id) };
}

/** Posted debits and credits in [from, key] (the key's posting included): a page's running start. */
export async function selectSumsThrough(db: Queryable, accountId: string, from: string, key: PostingKey):
  Promise<{ debits: bigint; credits: bigint }> {
  const result = await db.query(
    named(`SELECT coalesce(sum(amount_minor) FILTER (WHERE direction = 'debit'), 0) AS debits,
            coalesce(sum(amount_minor) FILTER (WHERE direction = 'credit'), 0) AS credits
     FROM ledger_postings
     WHERE account_id = $1 AND phase = 'posted' AND effective_at >= $2
       AND (effective_at, id) <= ($3::timestamptz, $4::bigint)`),
    [accountId, from, key.effectiveAt, key.id.toString()],
  );
  return { debits: BigInt(result.rows[0]?.debits ?? 0), credits: BigInt(result.rows[0]?.credits ?? 0) };
}

export interface StatementPostingRow {
  readonly id: bigint;
  readonly entryId: string;
  readonly externalReference: string;
  readonly description: string | null;
  readonly effectiveAt: string;
  readonly direction: Direction;
  readonly amountMinor: bigint;
}

/** One page of an account's posted postings in [from, to), oldest first, after `after`. */
export async function selectStatementPostings(db: Queryable, query: {
  readonly accountId: string; readonly from: string; readonly to: string; readonly after: PostingKey | undefined;
  readonly limit: number;
}): Promise<StatementPostingRow[]> {
  const result = await db.query(
    named(`SELECT p.id, p.entry_id, e.external_reference, e.description, p.effective_at, p.direction, p.amount_minor
     FROM ledger_postings p
     JOIN ledger_entries e ON e.id = p.entry_id
     WHERE p.account_id = $1 AND p.phase = 'posted' AND p.effective_at >= $2 AND p.effective_at < $3
       AND ($4::timestamptz IS NULL OR (p.effective_at, p.id) > ($4::timestamptz, $5::bigint))
     ORDER BY p.effective_at, p.id
     LIMIT $6`),
    [query.accountId, query.from, query.to, query.after?.effectiveAt ?? null, query.after?.id.toString() ?? null,
      query.limit],
  );
  return result.rows.map((row) => ({
    id: BigInt(row.id), entryId: row.entry_id, externalReference: row.external_reference,
    description: row.description, effectiveAt: row.effective_at, direction: row.direction,
    amountMinor: BigInt(row.amount_minor),
  }));
}

export interface JournalAccountRow {
  readonly id: string;
  readonly currency: string;
  readonly type: AccountType;
  readonly code: string | null;
  /** The earlier of its creation and its first posting (an entry may be dated before the account). */
  readonly openedAt: string;
}

/** One page of accounts by id, after `afterId`, with the instant each must be open from. */
export async function selectJournalAccounts(db: Queryable, afterId: string | undefined, limit: number):
  Promise<JournalAccountRow[]> {
  const result = await db.query(
    named(`SELECT a.id, a.currency, a.type, a.code,
       least(a.created_at, (SELECT min(p.effective_at) FROM ledger_postings p WHERE p.account_id = a.id)) AS opened_at
     FROM ledger_accounts a
     WHERE ($1::text IS NULL OR a.id > $1)
     ORDER BY a.id
     LIMIT $2`),
    [afterId ?? null, limit],
  );
  return result.rows.map((row) => ({
    id: row.id, currency: row.currency, type: row.type, code: row.code, openedAt: row.opened_at,
  }));
}

export interface JournalEntryRow {
  readonly id: string;
  readonly sequence: bigint;
  readonly externalReference: string;
  readonly kind: string;
  readonly description: string | null;
  readonly effectiveAt: string;
  /** Its `posted` postings only, in id order; empty for a hold, a void or an expiry. */
  readonly postings: readonly JournalPostingRow[];
}

export interface JournalPostingRow {
  readonly accountId: string;
  readonly type: AccountType;
  readonly code: string | null;
  readonly direction: Direction;
  readonly amountMinor: bigint;
  readonly currency: string;
}

/** Where a journal page starts: after this entry (effective instant, sequence). */
export interface EntryKey {
  readonly effectiveAt: string;
  readonly sequence: bigint;
}

/** One page of entries in [from, to) in journal order (effective instant, sequence), after `after`. */
export async function selectJournalEntries(db: Queryable, query: {
  readonly from: string | undefined; readonly to: string | undefined; readonly after: EntryKey | undefined;
  readonly limit: number;
}): Promise<JournalEntryRow[]> {
  const result = await db.query(
    named(`SELECT e.id, e.sequence, e.external_reference, e.kind, e.description, e.effective_at,
       (SELECT json_agg(json_build_object('account_id', p.account_id, 'direction', p.direction,
          'amount_minor', p.amount_minor::text, 'currency', p.currency, 'type', a.type, 'code', a.code) ORDER BY p.id)
        FROM ledger_postings p JOIN ledger_accounts a ON a.id = p.account_id
        WHERE p.entry_id = e.id AND p.phase = 'posted') AS postings
     FROM ledger_entries e
     WHERE ($1::timestamptz IS NULL OR e.effective_at >= $1)
       AND ($2::timestamptz IS NULL OR e.effective_at < $2)
       AND ($3::timestamptz IS NULL OR (e.effective_at, e.sequence) > ($3::timestamptz, $4::bigint))
     ORDER BY e.effective_at, e.sequence
     LIMIT $5`),
    [query.from ?? null, query.to ?? null, query.after?.effectiveAt ?? null, query.after?.sequence.toString() ?? null,
      query.limit],
  );
  return result.rows.map((row) => ({
    id: row.id, sequence: BigInt(row.sequence), externalReference: row.external_reference, kind: row.kind,
    description: row.description, effectiveAt: row.effective_at,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- json_agg output
    postings: (row.postings ?? []).map((posting: any) => ({
      accountId: posting.account_id, type: posting.type, code: posting.code, direction: posting.direction,
      amountMinor: BigInt(posting.amount_minor), currency: String(posting.currency),
    })),
  }));
}

/** A report reads one snapshot: its pages never see an entry committed between two of them. */
export async function beginSnapshot(db: Queryable): Promise<void> {
  await db.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
}

export async function endSnapshot(db: Queryable): Promise<void> {
  await db.query('ROLLBACK');
}
