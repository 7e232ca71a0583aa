import assert from 'node:assert/strict';
import { named, type Queryable } from '../db/pool.js';
import type {
  Account, Balances, CreateAccountCommand, Direction, Entry, EntryKind, Posting, PostingPhase,
} from './ledger-types.js';

/**
 * Every SQL statement of the ledger's accounts, entries and balances, one function per statement
 * (the hash chain's are in ledger-chain-store.ts, the verifier's in ledger-verify-store.ts). The
 * service never writes SQL; this file never decides anything.
 */
export interface EntryRow {
  readonly id: string;
  readonly externalReference: string;
  readonly requestFingerprint: string;
  readonly kind: EntryKind;
  readonly holdEntryId: string | null;
  readonly reversesEntryId: string | null;
  readonly description: string | null;
  readonly metadata: Record<string, string>;
  readonly effectiveAt: string | null;
  readonly expiresAt: string | null;
  readonly postings: readonly PostingRow[];
}

export interface PostingRow {
  readonly accountId: string;
  /** Null only for an account that does not exist; the database then refuses the posting. */
  readonly currency: string | null;
  readonly direction: Direction;
  readonly phase: PostingPhase;
  readonly amountMinor: bigint;
  readonly mustNotOverdraw: boolean;
}

export async function insertAccount(db: Queryable, id: string, command: CreateAccountCommand): Promise<void> {
  await db.query(
    named(`INSERT INTO ledger_accounts (id, owner, currency, type, code, metadata, balance_limit)
     VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)`),
    [id, command.owner ?? null, command.currency, command.type, command.code ?? null,
      JSON.stringify(command.metadata), command.limit ?? null],
  );
}

const accountColumns = `a.id, a.owner, a.currency, a.type, a.code, a.metadata, a.balance_limit,
  a.created_at, b.debits_posted, b.credits_posted, b.debits_pending, b.credits_pending`;

export async function selectAccounts(db: Queryable, ids: readonly string[]): Promise<Account[]> {
  const result = await db.query(
    named(`SELECT ${accountColumns} FROM ledger_accounts a
     JOIN ledger_current_balances b ON b.account_id = a.id
     WHERE a.id = ANY($1::text[])`),
    [ids],
  );
  return result.rows.map(toAccount);
}

export interface AccountListQuery {
  readonly limit: number;
  readonly startingAfter: string | undefined;
  readonly owner: string | undefined;
  readonly currency: string | undefined;
  /** One account type (the dashboard's filter); all when absent. */
  readonly type?: string | undefined;
}

export async function selectAccountPage(db: Queryable, query: AccountListQuery): Promise<Account[]> {
  const result = await db.query(
    named(`SELECT ${accountColumns} FROM ledger_accounts a
     JOIN ledger_current_balances b ON b.account_id = a.id
     WHERE ($2::text IS NULL OR a.owner = $2)
       AND ($3::text IS NULL OR a.currency = $3)
       AND ($4::text IS NULL OR (a.created_at, a.id) <
            (SELECT created_at, id FROM ledger_accounts WHERE id = $4))
       AND ($5::text IS NULL OR a.type = $5)
     ORDER BY a.created_at DESC, a.id DESC
     LIMIT $1`),
    [query.limit + 1, query.owner ?? null, query.currency ?? null, query.startingAfter ?? null, query.type ?? null],
  );
  return result.rows.map(toAccount);
}

export async function accountExists(db: Queryable, id: string): Promise<boolean> {
  const result = await db.query(named('SELECT 1 FROM ledger_accounts WHERE id = $1'), [id]);
  return result.rowCount === 1;
}

/** Which of these account ids exist, with their currencies. */
export async function selectAccountCurrencies(db: Queryable, ids: readonly string[]): Promise<Map<string, string>> {
  const result = await db.query<{ id: string; currency: string }>(
    named('SELECT id, currency FROM ledger_accounts WHERE id = ANY($1::text[])'),
    [ids],
  );
  return new Map(result.rows.map((row) => [row.id, row.currency]));
}

/**
 * Inserts entries and their postings in one statement (one round trip). An entry whose external
 * reference exists already is skipped, with its postings; the ids of those inserted come back.
 */
export interface InsertedEntry {
  readonly id: string;
  readonly sequence: bigint;
  readonly effectiveAt: string;
  readonly createdAt: string;
  readonly expiresAt: string | null;
  readonly postings: readonly Posting[];
}

/** Where insertEntries writes: the ledger's tables, or (bench:ledger only) twins without triggers. */
export interface EntryTables {
  readonly entries: string;
  readonly postings: string;
}

const ledgerTables: EntryTables = { entries: 'ledger_entries', postings: 'ledger_postings' };

export async function insertEntries(
  db: Queryable,
  entries: readonly EntryRow[],
  tables: EntryTables = ledgerTables,
): Promise<Map<string, InsertedEntry>> {
  const postings = entries.flatMap((entry) => entry.postings.map((posting) => ({ entry, posting })));
  const result = await db.query({
    // Named, so each connection plans this statement once.
    name: tables === ledgerTables ? 'ledger_insert_entries' : `ledger_insert_entries_${tables.entries}`,
    text: `WITH entry_input AS (
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                            $7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[])
         AS t(id, external_reference, request_fingerprint, kind, hold_entry_id, reverses_entry_id,
              description, metadata, effective_at, expires_at)
     ),
     inserted AS (
       INSERT INTO ${tables.entries} (id, external_reference, request_fingerprint, kind, hold_entry_id,
         reverses_entry_id, description, metadata, effective_at, expires_at)
       SELECT id, external_reference, request_fingerprint, kind, hold_entry_id, reverses_entry_id,
         description, metadata::jsonb, coalesce(effective_at, now()), expires_at
       FROM entry_input
       ON CONFLICT (external_reference) DO NOTHING
       RETURNING id, effective_at, created_at, sequence, expires_at
     ),
     posting_input AS (
       SELECT * FROM unnest($11::text[], $12::text[], $13::text[], $14::text[], $15::text[],
                            $16::bigint[], $17::boolean[]) WITH ORDINALITY
         AS p(entry_id, account_id, currency, direction, phase, amount_minor, must_not_overdraw, ordinal)
     ),
     posted AS (
       INSERT INTO ${tables.postings} (entry_id, account_id, currency, direction, phase, amount_minor,
         must_not_overdraw, effective_at)
       SELECT p.entry_id, p.account_id, coalesce(p.currency, '???'), p.direction,
         p.phase, p.amount_minor, p.must_not_overdraw, i.effective_at
       FROM posting_input p
       JOIN inserted i ON i.id = p.entry_id
       ORDER BY p.ordinal
       RETURNING id, entry_id
     )
     SELECT i.id, i.effective_at, i.created_at, i.sequence, i.expires_at, g.posting_ids
     FROM inserted i
     JOIN (SELECT entry_id, array_agg(id::text ORDER BY id) AS posting_ids FROM posted GROUP BY entry_id) g
       ON g.entry_id = i.id`,
    values: [
      entries.map((entry) => entry.id),
      entries.map((entry) => entry.externalReference),
      entries.map((entry) => entry.requestFingerprint),
      entries.map((entry) => entry.kind),
      entries.map((entry) => entry.holdEntryId),
      entries.map((entry) => entry.reversesEntryId),
      entries.map((entry) => entry.description),
      entries.map((entry) => JSON.stringify(entry.metadata)),
      entries.map((entry) => entry.effectiveAt),
      entries.map((entry) => entry.expiresAt),
      postings.map((item) => item.entry.id),
      postings.map((item) => item.posting.accountId),
      postings.map((item) => item.posting.currency),
      postings.map((item) => item.posting.direction),
      postings.map((item) => item.posting.phase),
      postings.map((item) => item.posting.amountMinor.toString()),
      postings.map((item) => item.posting.mustNotOverdraw),
    ],
  });
  // Each entry's postings got their ids in the order they were sent (the insert is ordered by
  // ordinal), so the written postings are the sent ones with those ids; nothing is read back.
  const sent = new Map(entries.map((entry) => [entry.id, entry]));
  return new Map(result.rows.map((row) => {
    const entry = sent.get(row.id);
    assert.ok(entry !== undefined && entry.postings.length === row.posting_ids.length, 'every posting was written');
    return [row.id, {
      id: row.id,
      sequence: row.sequence,
      effectiveAt: row.effective_at,
      createdAt: row.created_at,
      expiresAt: row.expires_at,
      postings: entry.postings.map((posting, index): Posting => {
        assert.ok(posting.currency !== null, 'a posting without a currency is refused by the database');
        return {
          id: BigInt(row.posting_ids[index]), entryId: row.id, accountId: posting.accountId,
          currency: posting.currency, direction: posting.direction, phase: posting.phase,
          amountMinor: posting.amountMinor, mustNotOverdraw: posting.mustNotOverdraw, effectiveAt: row.effective_at,
        };
      }),
    }];
  }));
}

export async function selectFingerprints(
  db: Queryable,
  externalReferences: readonly string[],
): Promise<Map<string, { id: string; requestFingerprint: string }>> {
  const result = await db.query<{ id: string; external_reference: string; request_fingerprint: string }>(
    named(`SELECT id, external_reference, request_fingerprint FROM ledger_entries
     WHERE external_reference = ANY($1::text[])`),
    [externalReferences],
  );
  return new Map(result.rows.map((row) => [row.external_reference, {
    id: row.id, requestFingerprint: row.request_fingerprint,
  }]));
}

const entryColumns = `e.id, e.sequence, e.external_reference, e.kind, e.hold_entry_id,
  e.reverses_entry_id, e.description, e.metadata, e.effective_at, e.expires_at, e.created_at,
  r.id AS resolution_id, r.kind AS resolution_kind,
  (SELECT json_agg(json_build_object('id', p.id, 'account_id', p.account_id, 'currency', p.currency,
     'direction', p.direction, 'phase', p.phase, 'amount_minor', p.amount_minor,
     'must_not_overdraw', p.must_not_overdraw) ORDER BY p.id)
   FROM ledger_postings p WHERE p.entry_id = e.id) AS postings`;

export async function selectEntries(db: Queryable, ids: readonly string[]): Promise<Entry[]> {
  const result = await db.query(
    named(`SELECT ${entryColumns} FROM ledger_entries e
     LEFT JOIN ledger_entries r ON r.hold_entry_id = e.id
     WHERE e.id = ANY($1::text[])`),
    [ids],
  );
  return result.rows.map(toEntry);
}

/**
 * The entries with these external references, and the entries that resolve holds among them (a
 * hold's post or void), oldest first: a payment's entries, found by the references its bookings use.
 */
export async function selectEntriesByReferences(db: Queryable, references: readonly string[]): Promise<Entry[]> {
  const result = await db.query(
    named(`SELECT ${entryColumns} FROM ledger_entries e
     LEFT JOIN ledger_entries r ON r.hold_entry_id = e.id
     WHERE e.external_reference = ANY($1::text[])
        OR e.hold_entry_id IN (SELECT id FROM ledger_entries WHERE external_reference = ANY($1::text[]))
     ORDER BY e.effective_at, e.sequence`),
    [references],
  );
  return result.rows.map(toEntry);
}

export interface EntryListQuery {
  readonly limit: number;
  readonly startingAfter: string | undefined;
  readonly account: string | undefined;
  readonly from: string | undefined;
  readonly to: string | undefined;
}

/** Newest effective first; `from` is inclusive, `to` exclusive. */
export async function selectEntryPage(db: Queryable, query: EntryListQuery): Promise<Entry[]> {
  const result = await db.query(
    named(`SELECT ${entryColumns} FROM ledger_entries e
     LEFT JOIN ledger_entries r ON r.hold_entry_id = e.id
     WHERE ($2::text IS NULL OR e.id IN (
              SELECT entry_id FROM ledger_postings
              WHERE account_id = $2
                AND ($3::timestamptz IS NULL OR effective_at >= $3)
                AND ($4::timestamptz IS NULL OR effective_at < $4)))
       AND ($3::timestamptz IS NULL OR e.effective_at >= $3)
       AND ($4::timestamptz IS NULL OR e.effective_at < $4)
       AND ($5::text IS NULL OR (e.effective_at, e.sequence) <
            (SELECT effective_at, sequence FROM ledger_entries WHERE id = $5))
     ORDER BY e.effective_at DESC, e.sequence DESC
     LIMIT $1`),
    [query.limit + 1, query.account ?? null, query.from ?? null, query.to ?? null,
      query.startingAfter ?? null],
  );
  return result.rows.map(toEntry);
}

export interface PostingListQuery {
  readonly account: string;
  readonly limit: number;
  readonly startingAfter: bigint | undefined;
  readonly from: string | undefined;
  readonly to: string | undefined;
}

export async function selectPostingPage(db: Queryable, query: PostingListQuery): Promise<Posting[]> {
  const result = await db.query(
    named(`SELECT id, entry_id, account_id, currency, direction, phase, amount_minor, must_not_overdraw,
            effective_at
     FROM ledger_postings
     WHERE account_id = $1
       AND ($3::timestamptz IS NULL OR effective_at >= $3)
       AND ($4::timestamptz IS NULL OR effective_at < $4)
       AND ($5::bigint IS NULL OR (effective_at, id) <
            (SELECT effective_at, id FROM ledger_postings WHERE id = $5 AND account_id = $1))
     ORDER BY effective_at DESC, id DESC
     LIMIT $2`),
    [query.account, query.limit + 1, query.from ?? null, query.to ?? null,
      query.startingAfter?.toString() ?? null],
  );
  return result.rows.map((row) => ({
    id: row.id, entryId: row.entry_id, accountId: row.account_id, currency: row.currency,
    direction: row.direction, phase: row.phase, amountMinor: row.amount_minor,
    mustNotOverdraw: row.must_not_overdraw, effectiveAt: row.effective_at,
  }));
}

/** Balances from the postings themselves, as of an effective instant (inclusive). */
export async function selectBalanceAsOf(db: Queryable, accountId: string, asOf: string): Promise<Balances> {
  const result = await db.query(
    named(`SELECT ${postingSums} FROM ledger_postings WHERE account_id = $1 AND effective_at <= $2`),
    [accountId, asOf],
  );
  return toBalances(result.rows[0]);
}

const postingSums = `
  coalesce(sum(amount_minor) FILTER (WHERE direction = 'debit' AND phase = 'posted'), 0) AS debits_posted,
  coalesce(sum(amount_minor) FILTER (WHERE direction = 'credit' AND phase = 'posted'), 0) AS credits_posted,
  coalesce(sum(amount_minor) FILTER (WHERE direction = 'debit' AND phase = 'pending'), 0)
    - coalesce(sum(amount_minor) FILTER (WHERE direction = 'debit' AND phase = 'release'), 0) AS debits_pending,
  coalesce(sum(amount_minor) FILTER (WHERE direction = 'credit' AND phase = 'pending'), 0)
    - coalesce(sum(amount_minor) FILTER (WHERE direction = 'credit' AND phase = 'release'), 0) AS credits_pending`;

export interface TrialBalanceRow {
  readonly currency: string;
  readonly type: string;
  readonly accountCount: bigint;
  readonly balances: Balances;
}

/** Sums per currency and account type: from stored balances now, or from postings as of a time. */
export async function selectTrialBalance(db: Queryable, asOf: string | undefined): Promise<TrialBalanceRow[]> {
  const now = `SELECT a.currency, a.type, count(*) AS account_count,
      sum(b.debits_posted) AS debits_posted, sum(b.credits_posted) AS credits_posted,
      sum(b.debits_pending) AS debits_pending, sum(b.credits_pending) AS credits_pending
    FROM ledger_accounts a JOIN ledger_current_balances b ON b.account_id = a.id
    GROUP BY a.currency, a.type ORDER BY a.currency, a.type`;
  const past = `SELECT a.currency, a.type, count(DISTINCT a.id) AS account_count, ${postingSums}
    FROM ledger_accounts a JOIN ledger_postings p ON p.account_id = a.id
    WHERE p.effective_at <= $1
    GROUP BY a.currency, a.type ORDER BY a.currency, a.type`;
  const result = asOf === undefined ? await db.query(now) : await db.query(past, [asOf]);
  return result.rows.map((row) => ({
    currency: row.currency, type: row.type, accountCount: row.account_count, balances: toBalances(row),
  }));
}

/** Holds past their expiry by `nowIso` (Penny's clock, so a controlled clock's advance counts). */
export async function selectExpiredHoldIds(db: Queryable, limit: number, nowIso: string): Promise<string[]> {
  const result = await db.query<{ id: string }>(
    named(`SELECT entry_id AS id FROM ledger_open_holds WHERE expires_at <= $2
     ORDER BY expires_at LIMIT $1`),
    [limit, nowIso],
  );
  return result.rows.map((row) => row.id);
}

export async function forgetOpenHold(db: Queryable, id: string): Promise<void> {
  await db.query(named('DELETE FROM ledger_open_holds WHERE entry_id = $1'), [id]);
}

/** One compaction round: folds up to `rowsMax` balance-change rows (0016's ledger_compact_balances). */
export async function compactBalances(db: Queryable, rowsMax: number): Promise<number> {
  const result = await db.query<{ folded: number }>(
    named('SELECT ledger_compact_balances($1) AS folded'),
    [rowsMax],
  );
  return result.rows[0]?.folded ?? 0;
}

function toBalances(row: Record<string, bigint> | undefined): Balances {
  return {
    debitsPosted: row?.debits_posted ?? 0n,
    creditsPosted: row?.credits_posted ?? 0n,
    debitsPending: row?.debits_pending ?? 0n,
    creditsPending: row?.credits_pending ?? 0n,
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
function toAccount(row: any): Account {
  return {
    id: row.id, currency: row.currency, type: row.type, code: row.code, owner: row.owner,
    metadata: row.metadata, limit: row.balance_limit, createdAt: row.created_at,
    balances: toBalances(row),
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
function toEntry(row: any): Entry {
  const postings = toPostings(row.id, row.effective_at, row.postings);
  return {
    id: row.id, sequence: row.sequence, externalReference: row.external_reference, kind: row.kind,
    holdEntryId: row.hold_entry_id, reversesEntryId: row.reverses_entry_id,
    description: row.description, metadata: row.metadata, effectiveAt: row.effective_at,
    expiresAt: row.expires_at, createdAt: row.created_at,
    resolution: row.resolution_id === null ? null : { entryId: row.resolution_id, kind: row.resolution_kind },
    postings,
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- json_agg output
function toPostings(entryId: string, effectiveAt: string, rows: any[] | null): Posting[] {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- json_agg output
  return (rows ?? []).map((posting: any): Posting => ({
    id: BigInt(posting.id), entryId, accountId: posting.account_id,
    currency: posting.currency, direction: posting.direction, phase: posting.phase,
    amountMinor: BigInt(posting.amount_minor), mustNotOverdraw: posting.must_not_overdraw,
    effectiveAt,
  }));
}
