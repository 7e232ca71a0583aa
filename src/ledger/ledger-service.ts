import assert from 'node:assert/strict';
import type pg from 'pg';
import { limits } from '../config.js';
import { withTransaction, type Queryable } from '../db/pool.js';
import { PennyError } from '../errors.js';
import { nowIso, nowMs } from '../clock.js';
import { newId } from '../ids.js';
import { paramName } from '../validation.js';
import {
  accountNotFound, entryNotFound, fromDatabaseError, holdAlreadyResolved, isDatabaseError,
  isUniqueViolation, referenceConflict,
} from './ledger-errors.js';
import * as store from './ledger-store.js';
import { selectChainHead } from './ledger-chain-store.js';
import type {
  Account, Balances, CreateAccountCommand, CreateEntryCommand, Entry, EntryKind, Posting,
} from './ledger-types.js';
import { fingerprint } from './ledger-validation.js';

/** References Penny writes itself start with this; clients may not use it (see validation). */
export const internalReferencePrefix = 'penny:';

export interface CreatedEntries {
  readonly entries: readonly Entry[];
  /** True when every entry already existed (an idempotent replay). */
  readonly replayed: boolean;
}

export interface Page<T> {
  readonly data: readonly T[];
  readonly hasMore: boolean;
}

/**
 * The ledger: accounts, entries, holds, reversals and balances. Every invariant is also enforced
 * by the database (0001_ledger.sql); this service validates first so that refusals name the
 * parameter, and translates what the database refuses.
 */
export class LedgerService {
  /** Account id → currency. Safe to cache: the database refuses any change of an account's currency. */
  private readonly accountCurrencies = new Map<string, string>();

  constructor(private readonly pool: pg.Pool) {}

  /**
   * Fills in each posting's currency from its account, so the insert needs no look-up of its own;
   * the database still checks that the two agree. Unknown accounts stay null and are refused.
   */
  private async withCurrencies(rows: readonly store.EntryRow[], db: Queryable = this.pool): Promise<store.EntryRow[]> {
    const missing = new Set<string>();
    for (const row of rows) {
      for (const posting of row.postings) {
        if (posting.currency === null && !this.accountCurrencies.has(posting.accountId)) missing.add(posting.accountId);
      }
    }
    if (missing.size > 0) {
      const found = await store.selectAccountCurrencies(db, [...missing]);
      for (const [id, currency] of found) this.rememberCurrency(id, currency);
    }
    return rows.map((row) => ({
      ...row,
      postings: row.postings.map((posting) => posting.currency !== null ? posting : {
        ...posting, currency: this.accountCurrencies.get(posting.accountId) ?? null,
      }),
    }));
  }

  private rememberCurrency(id: string, currency: string): void {
    if (this.accountCurrencies.size >= limits.accountCurrencyCacheEntriesMax) {
      const oldest = this.accountCurrencies.keys().next().value;
      if (oldest !== undefined) this.accountCurrencies.delete(oldest);
    }
    this.accountCurrencies.set(id, currency);
  }

  async createAccount(command: CreateAccountCommand): Promise<Account> {
    return this.createAccountAnswer(this.pool, command);
  }

  /**
   * An account created and read back on `db` (the caller's transaction, when the answer is stored
   * with it under an idempotency key). A code its owner already uses is account_code_taken.
   */
  async createAccountAnswer(db: Queryable, command: CreateAccountCommand): Promise<Account> {
    const id = newId('lacc');
    try {
      await store.insertAccount(db, id, command);
    } catch (error) {
      if (isUniqueViolation(error, 'ledger_accounts_owner_code')) {
        throw new PennyError({
          code: 'account_code_taken',
          param: 'code',
          message: `An account with code "${command.code}" already exists for this owner in ${command.currency}.`,
        });
      }
      throw error;
    }
    this.rememberCurrency(id, command.currency);
    const [account] = await store.selectAccounts(db, [id]);
    if (account === undefined) throw new Error(`account ${id} was inserted but cannot be read back`);
    return account;
  }

  /**
   * An account created on the caller's connection, inside its transaction, for a caller that
   * creates it together with rows of its own (a merchant's accounts with their roles).
   */
  async createAccountIn(db: Queryable, command: CreateAccountCommand): Promise<string> {
    const id = newId('lacc');
    await store.insertAccount(db, id, command);
    return id;
  }

  /** Several accounts in one read (those that exist). */
  getAccounts(ids: readonly string[]): Promise<Account[]> {
    return ids.length === 0 ? Promise.resolve([]) : store.selectAccounts(this.pool, ids);
  }

  async getAccount(id: string): Promise<Account> {
    const [account] = await store.selectAccounts(this.pool, [id]);
    if (account === undefined) throw accountNotFound(id, 'id');
    return account;
  }

  async listAccounts(query: store.AccountListQuery): Promise<Page<Account>> {
    if (query.startingAfter !== undefined && !(await store.accountExists(this.pool, query.startingAfter))) {
      throw accountNotFound(query.startingAfter, 'starting_after');
    }
    return toPage(await store.selectAccountPage(this.pool, query), query.limit);
  }

  /** One entry: one statement, one round trip. A replay returns the original entry. */
  async createEntry(command: CreateEntryCommand): Promise<CreatedEntries> {
    const rows = await this.withCurrencies([toEntryRow(command)]);
    try {
      return await this.createEntries(rows, this.pool);
    } catch (error) {
      throw await this.explainInsertFailure(error, { rows, batch: false });
    }
  }

  /**
   * Entries written on the caller's connection, inside the caller's transaction: how payments
   * post their entries atomically with their own state. Replays and conflicts behave as for
   * createEntry.
   */
  async createEntriesIn(db: Queryable, commands: readonly CreateEntryCommand[]): Promise<CreatedEntries> {
    const rows = await this.withCurrencies(commands.map(toEntryRow), db);
    try {
      return await this.createEntries(rows, db);
    } catch (error) {
      throw await this.explainInsertFailure(error, { rows, batch: rows.length > 1 });
    }
  }

  /**
   * Up to 1,000 entries, all or nothing, in one transaction (one statement), so a refusal of any
   * entry is explained here, around the whole transaction.
   */
  async createEntryBatch(commands: readonly CreateEntryCommand[]): Promise<CreatedEntries> {
    assert.ok(commands.length >= 1 && commands.length <= limits.ledgerBatchEntriesMax);
    const rows = await this.withCurrencies(commands.map(toEntryRow));
    try {
      return await withTransaction(this.pool, (client) => this.createEntries(rows, client));
    } catch (error) {
      throw await this.explainInsertFailure(error, { rows, batch: rows.length > 1 });
    }
  }

  private async createEntries(rows: readonly store.EntryRow[], db: Queryable): Promise<CreatedEntries> {
    const inserted = await store.insertEntries(db, rows);
    if (inserted.size === rows.length) {
      return { entries: rows.map((row) => toEntry(row, inserted.get(row.id))), replayed: false };
    }
    const existing = await this.assertReplaysMatch(db, { rows, inserted, batch: rows.length > 1 });
    const earlier = await store.selectEntries(db, [...existing.values()]);
    const byId = new Map(earlier.map((entry) => [entry.id, entry]));
    const entries = rows.map((row) => {
      const found = inserted.get(row.id);
      return found === undefined ? byId.get(existing.get(row.externalReference) as string) : toEntry(row, found);
    });
    return { entries: entries as Entry[], replayed: inserted.size === 0 };
  }

  /** Every skipped entry must be the same request as the one that used its reference first. */
  private async assertReplaysMatch(db: Queryable, request: {
    rows: readonly store.EntryRow[];
    inserted: ReadonlyMap<string, store.InsertedEntry>;
    batch: boolean;
  }): Promise<Map<string, string>> {
    const { rows, inserted, batch } = request;
    const skipped = rows.filter((row) => !inserted.has(row.id));
    const found = await store.selectFingerprints(db, skipped.map((row) => row.externalReference));
    const existing = new Map<string, string>();
    for (const row of skipped) {
      const earlier = found.get(row.externalReference);
      assert.ok(earlier !== undefined, 'an entry was skipped without an earlier one to conflict with');
      if (earlier.requestFingerprint !== row.requestFingerprint) {
        const index = rows.indexOf(row);
        const param = batch ? paramName(paramName('entries', index), 'external_reference') : 'external_reference';
        throw referenceConflict(row.externalReference, param);
      }
      existing.set(row.externalReference, earlier.id);
    }
    return existing;
  }

  /** Turns a refusal by the database into an error that names the request's parameter. */
  private async explainInsertFailure(error: unknown,
    request: { rows: readonly store.EntryRow[]; batch: boolean }) {
    const { rows, batch } = request;
    const mapped = fromDatabaseError(error);
    if (mapped === undefined || !isDatabaseError(error)) return error;
    const prefix = (index: number) => (batch ? paramName('entries', index) : '');
    const postingParam = (field: string) => {
      for (const [index, row] of rows.entries()) {
        const position = row.postings.findIndex((posting) => posting.accountId === error.detail);
        if (position >= 0) return paramName(paramName(paramName(prefix(index), 'postings'), position), field);
      }
      return undefined;
    };
    if (mapped.code === 'account_not_found' || mapped.code === 'currency_mismatch') {
      const field = mapped.code === 'account_not_found' ? 'account' : 'currency';
      return new PennyError({ code: mapped.code, param: postingParam(field) ?? 'postings', message: mapped.message });
    }
    const index = rows.findIndex((row) => error.detail?.includes(row.id));
    if (batch && index >= 0) {
      return new PennyError({ code: mapped.code, param: paramName(prefix(index), 'postings'), message: mapped.message });
    }
    return mapped;
  }

  async getEntry(id: string, db: Queryable = this.pool): Promise<Entry> {
    const [entry] = await store.selectEntries(db, [id]);
    if (entry === undefined) throw entryNotFound(id);
    return entry;
  }

  /** The hash chain's last seal (position and hash), or undefined before the first. */
  chainHead(): Promise<{ position: bigint; hash: string } | undefined> {
    return selectChainHead(this.pool);
  }

  /** Entries by their external references, with the entries that resolve holds among them. */
  entriesByReferences(references: readonly string[]): Promise<Entry[]> {
    return references.length === 0 ? Promise.resolve([]) : store.selectEntriesByReferences(this.pool, references);
  }

  async listEntries(query: store.EntryListQuery): Promise<Page<Entry>> {
    if (query.account !== undefined && !(await store.accountExists(this.pool, query.account))) {
      throw accountNotFound(query.account);
    }
    if (query.startingAfter !== undefined) {
      const [cursor] = await store.selectEntries(this.pool, [query.startingAfter]);
      if (cursor === undefined) throw entryNotFound(query.startingAfter, 'starting_after');
    }
    return toPage(await store.selectEntryPage(this.pool, query), query.limit);
  }

  async listPostings(query: store.PostingListQuery): Promise<Page<Posting>> {
    await this.getAccount(query.account);
    return toPage(await store.selectPostingPage(this.pool, query), query.limit);
  }

  async balanceAsOf(accountId: string, asOf: string): Promise<{ account: Account; balances: Balances }> {
    const account = await this.getAccount(accountId);
    return { account, balances: await store.selectBalanceAsOf(this.pool, accountId, asOf) };
  }

  async trialBalance(asOf: string | undefined): Promise<store.TrialBalanceRow[]> {
    return store.selectTrialBalance(this.pool, asOf);
  }

  /** Posts a hold in full, or in part (two-posting holds) with the remainder released. */
  async postHold(holdId: string, amountMinor: bigint | undefined, db: Queryable = this.pool): Promise<Entry> {
    const hold = await this.loadOpenHold(holdId, db);
    const postings = hold.postings.map((posting) => ({ ...posting, phase: 'posted' as const }));
    if (amountMinor !== undefined) {
      if (hold.postings.length !== 2) {
        throw new PennyError({
          code: 'partial_post_unsupported',
          param: 'amount',
          message: 'Only a hold of two postings can be posted in part; post it in full or void it.',
        });
      }
      const held = hold.postings[0]?.amountMinor ?? 0n;
      if (amountMinor > held) {
        throw new PennyError({
          code: 'amount_exceeds_hold',
          param: 'amount',
          message: `The hold is for ${held}; at most that can be posted.`,
        });
      }
      postings.forEach((posting, index) => { postings[index] = { ...posting, amountMinor }; });
    }
    return this.resolveHold(hold, 'hold_post', postings, db);
  }

  async voidHold(holdId: string, db: Queryable = this.pool): Promise<Entry> {
    return this.resolveHold(await this.loadOpenHold(holdId, db), 'hold_void', [], db);
  }

  /** Expires every due hold (bounded per call); returns how many it expired. */
  async expireDueHolds(): Promise<number> {
    const ids = await store.selectExpiredHoldIds(this.pool, limits.holdExpiryBatchMax, nowIso());
    let expired = 0;
    for (const id of ids) {
      const [hold] = await store.selectEntries(this.pool, [id]);
      if (hold === undefined || hold.resolution !== null) {
        // Listed but not open (the list was edited by hand): dropped, so it never fills a batch.
        await store.forgetOpenHold(this.pool, id);
        continue;
      }
      await this.resolveHold(hold, 'hold_expiry', []).then(() => { expired += 1; }, (error: unknown) => {
        if (!(error instanceof PennyError)) throw error;
      });
    }
    return expired;
  }

  /** The caller's connection is used throughout, so a request holding one never waits for a second. */
  private async loadOpenHold(holdId: string, db: Queryable = this.pool): Promise<Entry> {
    const hold = await this.getEntry(holdId, db);
    if (hold.kind !== 'hold') {
      throw new PennyError({ code: 'entry_not_a_hold', param: 'id', message: `Entry ${holdId} is not a hold.` });
    }
    if (hold.resolution !== null) throw holdAlreadyResolved(holdId, hold.resolution.kind);
    if (hold.expiresAt !== null && Date.parse(hold.expiresAt) <= nowMs()) {
      await this.resolveHold(hold, 'hold_expiry', []).catch((error: unknown) => {
        if (!(error instanceof PennyError)) throw error;
      });
      throw holdAlreadyResolved(holdId, 'hold_expiry');
    }
    return hold;
  }

  /**
   * Writes the one entry that resolves a hold: it releases the hold's postings and posts what is
   * posted. The unique index on hold_entry_id lets exactly one resolution exist.
   */
  private async resolveHold(
    hold: Entry,
    kind: EntryKind,
    posted: readonly Posting[],
    db: Queryable = this.pool,
  ): Promise<Entry> {
    const release = hold.postings.map((posting) => ({ ...posting, phase: 'release' as const }));
    const row: store.EntryRow = {
      id: newId('lent'),
      externalReference: `${internalReferencePrefix}resolution:${hold.id}`,
      requestFingerprint: fingerprint({ hold: hold.id, kind }),
      kind,
      holdEntryId: hold.id,
      reversesEntryId: null,
      description: null,
      metadata: {},
      effectiveAt: null,
      expiresAt: null,
      postings: [...release, ...posted].map(toPostingRow),
    };
    try {
      const inserted = await store.insertEntries(db, [row]);
      const found = inserted.get(row.id);
      if (found !== undefined) return toEntry(row, found);
    } catch (error) {
      if (!isUniqueViolation(error, 'ledger_entries_one_resolution_per_hold')) {
        throw fromDatabaseError(error) ?? error;
      }
    }
    const current = await this.getEntry(hold.id);
    assert.ok(current.resolution !== null, 'a hold resolution was refused but the hold is open');
    throw holdAlreadyResolved(hold.id, current.resolution.kind);
  }

  /** A correction: a new entry mirroring the posted postings of another, pointing at it. */
  async reverseEntry(
    id: string,
    options: { externalReference: string | undefined; description: string | undefined },
  ): Promise<CreatedEntries> {
    const original = await this.getEntry(id);
    const posted = original.postings.filter((posting) => posting.phase === 'posted');
    if (posted.length === 0) {
      throw new PennyError({
        code: 'entry_not_reversible',
        param: 'id',
        message: `Entry ${id} posts nothing to reverse (a hold is voided, not reversed).`,
      });
    }
    const externalReference = options.externalReference ?? `${internalReferencePrefix}reversal:${id}`;
    const row: store.EntryRow = {
      id: newId('lent'),
      externalReference,
      requestFingerprint: fingerprint({ reverses: id, external_reference: externalReference,
        description: options.description ?? null }),
      kind: 'reversal',
      holdEntryId: null,
      reversesEntryId: id,
      description: options.description ?? `Reversal of ${id}`,
      metadata: {},
      effectiveAt: null,
      expiresAt: null,
      postings: posted.map((posting) => toPostingRow({
        ...posting, direction: posting.direction === 'debit' ? 'credit' : 'debit',
      })),
    };
    try {
      return await this.createPrepared(row);
    } catch (error) {
      if (!isUniqueViolation(error, 'ledger_entries_one_reversal_per_entry')) throw fromDatabaseError(error) ?? error;
      // A concurrent identical request may have won the race on the reversal index rather than on
      // the reference: the same request is a replay, a different one a conflict.
      const earlier = (await store.selectFingerprints(this.pool, [externalReference])).get(externalReference);
      if (earlier?.requestFingerprint === row.requestFingerprint) {
        return { entries: [await this.getEntry(earlier.id)], replayed: true };
      }
      throw new PennyError({ code: 'entry_already_reversed', param: 'id', message: `Entry ${id} was already reversed.` });
    }
  }

  private async createPrepared(row: store.EntryRow): Promise<CreatedEntries> {
    const inserted = await store.insertEntries(this.pool, [row]);
    const found = inserted.get(row.id);
    if (found !== undefined) return { entries: [toEntry(row, found)], replayed: false };
    const existing = await this.assertReplaysMatch(this.pool, { rows: [row], inserted, batch: false });
    return { entries: [await this.getEntry(existing.get(row.externalReference) as string)], replayed: true };
  }

  /**
   * Folds balance-change rows into balance rows, a transaction per round, until a round finds
   * nothing (at most compactionRoundsMax rounds); returns how many rows it folded. A round may
   * fold fewer than a full batch while more wait (it also stops at 20,000 accounts), so only an
   * empty round ends the tick early.
   */
  async compactBalances(): Promise<number> {
    let folded = 0;
    for (let round = 0; round < limits.compactionRoundsMax; round += 1) {
      const foldedNow = await store.compactBalances(this.pool, limits.compactionBatchRowsMax);
      folded += foldedNow;
      if (foldedNow === 0) break;
    }
    return folded;
  }
}

function toEntryRow(command: CreateEntryCommand): store.EntryRow {
  return {
    id: newId('lent'),
    externalReference: command.externalReference,
    requestFingerprint: command.requestFingerprint,
    kind: command.pending ? 'hold' : 'standard',
    holdEntryId: null,
    reversesEntryId: null,
    description: command.description ?? null,
    metadata: command.metadata,
    effectiveAt: command.effectiveAt ?? null,
    expiresAt: command.expiresAt ?? null,
    postings: command.postings.map((posting) => ({
      accountId: posting.account,
      currency: posting.currency ?? null,
      direction: posting.direction,
      phase: command.pending ? 'pending' : 'posted',
      amountMinor: posting.amountMinor,
      mustNotOverdraw: posting.mustNotOverdraw,
    })),
  };
}

function toPostingRow(posting: Posting): store.PostingRow {
  return {
    accountId: posting.accountId,
    currency: posting.currency,
    direction: posting.direction,
    phase: posting.phase,
    amountMinor: posting.amountMinor,
    mustNotOverdraw: false,
  };
}

function toEntry(row: store.EntryRow, inserted: store.InsertedEntry | undefined): Entry {
  assert.ok(inserted !== undefined);
  assert.equal(inserted.postings.length, row.postings.length, 'every posting was written');
  return {
    id: row.id,
    sequence: inserted.sequence,
    externalReference: row.externalReference,
    kind: row.kind,
    holdEntryId: row.holdEntryId,
    reversesEntryId: row.reversesEntryId,
    description: row.description,
    metadata: row.metadata,
    effectiveAt: inserted.effectiveAt,
    expiresAt: inserted.expiresAt,
    createdAt: inserted.createdAt,
    resolution: null,
    postings: inserted.postings,
  };
}

function toPage<T>(rows: readonly T[], limit: number): Page<T> {
  return { data: rows.slice(0, limit), hasMore: rows.length > limit };
}
