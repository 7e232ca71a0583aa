import { beforeAll, describe, expect, it } from 'vitest';
import { amountMaxSafeMinor } from '../../src/config.js';
import { PennyError } from '../../src/errors.js';
import { LedgerService } from '../../src/ledger/ledger-service.js';
import type { Account, AccountType, BalanceLimit, Direction } from '../../src/ledger/ledger-types.js';
import { parseCreateAccount, parseCreateEntry } from '../../src/ledger/ledger-validation.js';
import { checkStoredBalances } from '../../src/ledger/ledger-verify.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * Real concurrency: every racing request runs on its own PostgreSQL connection, at once. Each
 * test uses its own accounts in the file's database, and ends by checking every stored balance
 * against the postings.
 */
const connectionsMax = 60;
const rules = { amountMaxMinor: amountMaxSafeMinor };

let database: TestDatabase;
let ledger: LedgerService;

beforeAll(async () => {
  database = await createTestDatabase(connectionsMax);
  ledger = new LedgerService(database.pool);
  // Open the connections up front, so that the racing requests start together rather than
  // trickling in while the pool connects.
  await Promise.all(Array.from({ length: connectionsMax - 2 }, () => database.pool.query('SELECT 1')));
});

interface PostingSpec {
  readonly account: Account;
  readonly direction: Direction;
  readonly amount: number;
  readonly mustNotOverdraw?: boolean;
}

async function openAccount(type: AccountType, limit?: BalanceLimit): Promise<Account> {
  return ledger.createAccount(parseCreateAccount({ currency: 'USD', type, ...(limit ? { limit } : {}) }));
}

function entryBody(reference: string, postings: readonly PostingSpec[], options: { pending?: boolean } = {}) {
  return {
    external_reference: reference,
    ...(options.pending ? { pending: true } : {}),
    postings: postings.map((posting) => ({
      account: posting.account.id,
      direction: posting.direction,
      amount: posting.amount,
      ...(posting.mustNotOverdraw ? { must_not_overdraw: true } : {}),
    })),
  };
}

async function createEntry(reference: string, postings: readonly PostingSpec[], options: { pending?: boolean } = {}) {
  const created = await ledger.createEntry(parseCreateEntry(entryBody(reference, postings, options), rules));
  const [entry] = created.entries;
  if (entry === undefined) throw new Error('createEntry returned no entry');
  return { entry, replayed: created.replayed };
}

/** Moves `amount` from the outside world (an asset) into a liability account. */
async function fund(reference: string, bank: Account, wallet: Account, amount: number): Promise<void> {
  await createEntry(reference, [
    { account: bank, direction: 'debit', amount },
    { account: wallet, direction: 'credit', amount },
  ]);
}

type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly code: string };

/** The code of a refusal: a PennyError's code, else the SQLSTATE (a deadlock is `sql:40P01`). */
function failureCode(error: unknown): string {
  if (error instanceof PennyError) return error.code;
  if (typeof error === 'object' && error !== null && 'code' in error) return `sql:${String(error.code)}`;
  return `thrown:${String(error)}`;
}

/** Starts every task at once and waits for all of them, however each ends. */
async function race<T>(tasks: readonly (() => Promise<T>)[]): Promise<Outcome<T>[]> {
  const settled = await Promise.allSettled(tasks.map((task) => task()));
  return settled.map((result) => (result.status === 'fulfilled'
    ? { ok: true, value: result.value }
    : { ok: false, code: failureCode(result.reason) }));
}

/**
 * Like `race`, but lines the requests up first: a gate holds a SHARE lock on ledger_entries, so
 * every request does its reads and then waits at its insert; when all of them wait (or a few
 * seconds pass), the gate opens and they insert at the same instant. The narrowest windows (two
 * inserts of one key, both past the pre-check) then open in about half the races rather than in
 * a few percent.
 */
async function raceAtTheGate<T>(tasks: readonly (() => Promise<T>)[]): Promise<Outcome<T>[]> {
  const gate = await database.pool.connect();
  let open = true;
  try {
    await gate.query('BEGIN');
    await gate.query('LOCK TABLE ledger_entries IN SHARE MODE');
    let settled = false;
    const outcomes = race(tasks).finally(() => { settled = true; });
    const deadline = Date.now() + 5000;
    while (!settled && Date.now() < deadline && (await waitingAtTheGate()) < tasks.length) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await gate.query('COMMIT');
    open = false;
    return await outcomes;
  } finally {
    if (open) await gate.query('ROLLBACK').catch(() => undefined);
    gate.release();
  }
}

/**
 * Sessions of this database waiting for a lock. Asked outside the gate's transaction, whose view
 * of pg_stat_activity would stay frozen at its first read.
 */
async function waitingAtTheGate(): Promise<number> {
  const result = await database.pool.query<{ count: bigint }>(
    `SELECT count(*) AS count FROM pg_stat_activity
     WHERE datname = current_database() AND wait_event_type = 'Lock'`,
  );
  return Number(result.rows[0]?.count ?? 0n);
}

/** How many outcomes of each kind: `ok` or the refusal's code. */
function tally(outcomes: readonly Outcome<unknown>[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const outcome of outcomes) {
    const key = outcome.ok ? 'ok' : outcome.code;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** A credit-normal account's posted balance. */
function creditBalance(account: Account): bigint {
  return account.balances.creditsPosted - account.balances.debitsPosted;
}

/** A credit-normal account's available balance: posted less outgoing holds. */
function creditAvailable(account: Account): bigint {
  return creditBalance(account) - account.balances.debitsPending;
}

/** Samples an account's balance until stopped; for "never negative, even mid-race". */
function watch(accountId: string, measure: (account: Account) => bigint) {
  const seen: bigint[] = [];
  let running = true;
  const done = (async () => {
    while (running) seen.push(measure(await ledger.getAccount(accountId)));
  })();
  return {
    async stop(): Promise<bigint[]> {
      running = false;
      await done;
      return seen;
    },
  };
}

async function expectStoredBalancesExact(): Promise<void> {
  const report = await checkStoredBalances(database.pool);
  expect(report.failures).toEqual([]);
}

async function countDebits(accountId: string): Promise<bigint> {
  const result = await database.pool.query<{ count: bigint }>(
    `SELECT count(*) AS count FROM ledger_postings WHERE account_id = $1 AND direction = 'debit'`,
    [accountId],
  );
  return result.rows[0]?.count ?? -1n;
}

describe('ledger under concurrent writers', () => {
  it('lets exactly 10 of 50 concurrent 100-debits drain a limited account funded with 1000', async () => {
    const bank = await openAccount('asset');
    const wallet = await openAccount('liability', 'debits_must_not_exceed_credits');
    await fund('limit-race-fund', bank, wallet, 1000);

    const watcher = watch(wallet.id, creditBalance);
    const payout = (index: number) => createEntry(`limit-race-${index}`, [
      { account: wallet, direction: 'debit', amount: 100 },
      { account: bank, direction: 'credit', amount: 100 },
    ]);
    const outcomes = await raceAtTheGate(Array.from({ length: 50 }, (_, index) => () => payout(index)));
    const seen = await watcher.stop();

    expect(tally(outcomes)).toEqual({ ok: 10, insufficient_funds: 40 });
    expect(creditBalance(await ledger.getAccount(wallet.id))).toBe(0n);
    expect(seen.filter((balance) => balance < 0n)).toEqual([]);
    expect(await countDebits(wallet.id)).toBe(10n);
    await expectStoredBalancesExact();
  });

  it('lets exactly 10 of 50 concurrent guarded payouts drain an unlimited account funded with 1000', async () => {
    const bank = await openAccount('asset');
    const wallet = await openAccount('liability');
    await fund('guard-race-fund', bank, wallet, 1000);

    const watcher = watch(wallet.id, creditBalance);
    const payout = (index: number) => createEntry(`guard-race-${index}`, [
      { account: wallet, direction: 'debit', amount: 100, mustNotOverdraw: true },
      { account: bank, direction: 'credit', amount: 100 },
    ]);
    const outcomes = await raceAtTheGate(Array.from({ length: 50 }, (_, index) => () => payout(index)));
    const seen = await watcher.stop();

    expect(tally(outcomes)).toEqual({ ok: 10, insufficient_funds: 40 });
    expect(creditBalance(await ledger.getAccount(wallet.id))).toBe(0n);
    expect(seen.filter((balance) => balance < 0n)).toEqual([]);
    expect(await countDebits(wallet.id)).toBe(10n);
    await expectStoredBalancesExact();
  });

  it('never lets concurrent holds on a limited account exceed its available balance', async () => {
    const bank = await openAccount('asset');
    const wallet = await openAccount('liability', 'debits_must_not_exceed_credits');
    await fund('hold-race-fund', bank, wallet, 1000);

    const watcher = watch(wallet.id, creditAvailable);
    const hold = (index: number) => createEntry(`hold-race-${index}`, [
      { account: wallet, direction: 'debit', amount: 100 },
      { account: bank, direction: 'credit', amount: 100 },
    ], { pending: true });
    const outcomes = await raceAtTheGate(Array.from({ length: 30 }, (_, index) => () => hold(index)));
    const seen = await watcher.stop();

    expect(tally(outcomes)).toEqual({ ok: 10, insufficient_funds: 20 });
    const after = await ledger.getAccount(wallet.id);
    expect(after.balances).toEqual({
      debitsPosted: 0n, creditsPosted: 1000n, debitsPending: 1000n, creditsPending: 0n,
    });
    expect(creditAvailable(after)).toBe(0n);
    expect(seen.filter((available) => available < 0n)).toEqual([]);
    await expectStoredBalancesExact();
  });

  it('writes one entry for 20 concurrent requests with the same external reference and body', async () => {
    const bank = await openAccount('asset');
    const wallet = await openAccount('liability');

    const outcomes = await raceAtTheGate(Array.from({ length: 20 }, () => () => createEntry('same-request', [
      { account: bank, direction: 'debit', amount: 250 },
      { account: wallet, direction: 'credit', amount: 250 },
    ])));

    expect(tally(outcomes)).toEqual({ ok: 20 });
    const results = outcomes.flatMap((outcome) => (outcome.ok ? [outcome.value] : []));
    const ids = new Set(results.map((result) => result.entry.id));
    expect(ids.size).toBe(1);
    expect(results.filter((result) => !result.replayed)).toHaveLength(1);
    const stored = await database.pool.query<{ id: string }>(
      `SELECT id FROM ledger_entries WHERE external_reference = 'same-request'`,
    );
    expect(stored.rows.map((row) => row.id)).toEqual([...ids]);
    expect(creditBalance(await ledger.getAccount(wallet.id))).toBe(250n);
    await expectStoredBalancesExact();
  });

  it('writes one entry when 20 concurrent requests share an external reference but differ', async () => {
    const bank = await openAccount('asset');
    const wallet = await openAccount('liability');

    const outcomes = await raceAtTheGate(Array.from({ length: 20 }, (_, index) => () => createEntry('same-reference', [
      { account: bank, direction: 'debit', amount: 100 + index },
      { account: wallet, direction: 'credit', amount: 100 + index },
    ])));

    expect(tally(outcomes)).toEqual({ ok: 1, reference_conflict: 19 });
    const winner = outcomes.flatMap((outcome) => (outcome.ok ? [outcome.value.entry] : []))[0];
    const stored = await database.pool.query<{ id: string }>(
      `SELECT id FROM ledger_entries WHERE external_reference = 'same-reference'`,
    );
    expect(stored.rows.map((row) => row.id)).toEqual([winner?.id]);
    expect(creditBalance(await ledger.getAccount(wallet.id))).toBe(winner?.postings[0]?.amountMinor);
    await expectStoredBalancesExact();
  });

  it('resolves a hold once when 10 posts and 10 voids of it race', async () => {
    const bank = await openAccount('asset');
    const wallet = await openAccount('liability', 'debits_must_not_exceed_credits');
    await fund('resolve-race-fund', bank, wallet, 1000);
    const { entry: hold } = await createEntry('resolve-race-hold', [
      { account: wallet, direction: 'debit', amount: 300 },
      { account: bank, direction: 'credit', amount: 300 },
    ], { pending: true });

    const outcomes = await raceAtTheGate(Array.from({ length: 20 }, (_, index) => (index % 2 === 0
      ? () => ledger.postHold(hold.id, undefined)
      : () => ledger.voidHold(hold.id))));

    const winners = outcomes.flatMap((outcome) => (outcome.ok ? [outcome.value] : []));
    expect(winners).toHaveLength(1);
    const winner = winners[0];
    if (winner === undefined) return;
    const loserCode = winner.kind === 'hold_post' ? 'hold_already_posted' : 'hold_already_voided';
    expect(tally(outcomes)).toEqual({ ok: 1, [loserCode]: 19 });
    const resolutions = await database.pool.query<{ id: string }>(
      'SELECT id FROM ledger_entries WHERE hold_entry_id = $1',
      [hold.id],
    );
    expect(resolutions.rows.map((row) => row.id)).toEqual([winner.id]);
    expect((await ledger.getEntry(hold.id)).resolution).toEqual({ entryId: winner.id, kind: winner.kind });
    const after = await ledger.getAccount(wallet.id);
    expect(after.balances).toEqual({
      debitsPosted: winner.kind === 'hold_post' ? 300n : 0n,
      creditsPosted: 1000n,
      debitsPending: 0n,
      creditsPending: 0n,
    });
    await expectStoredBalancesExact();
  });

  it('returns the one reversal to each of 20 concurrent identical reversal requests', async () => {
    // Same entry, same (default) reference, same body: an idempotent replay for every request but
    // the first, as when they arrive one after another. The window where two inserts pass the
    // pre-check together is narrow even at the gate, so this tries a few rounds.
    for (let round = 0; round < 30; round += 1) {
      const bank = await openAccount('asset');
      const wallet = await openAccount('liability');
      const { entry } = await createEntry(`reverse-race-${round}`, [
        { account: bank, direction: 'debit', amount: 400 },
        { account: wallet, direction: 'credit', amount: 400 },
      ]);

      const outcomes = await raceAtTheGate(Array.from({ length: 20 }, () => () => ledger.reverseEntry(entry.id, {
        externalReference: undefined, description: undefined,
      })));

      expect(tally(outcomes), `round ${round}`).toEqual({ ok: 20 });
      const returned = new Set(outcomes.flatMap((outcome) => (outcome.ok ? [outcome.value.entries[0]?.id] : [])));
      const stored = await database.pool.query<{ id: string }>(
        'SELECT id FROM ledger_entries WHERE reverses_entry_id = $1',
        [entry.id],
      );
      expect([...returned]).toEqual(stored.rows.map((row) => row.id));
      expect(creditBalance(await ledger.getAccount(wallet.id))).toBe(0n);
    }
    await expectStoredBalancesExact();
  });

  it('keeps a hot unlimited account exact under 32 concurrent writers while the compactor runs', async () => {
    const writers = 32;
    const transfersPerWriter = 20;
    const fees = await openAccount('revenue');
    const customers = await Promise.all(Array.from({ length: writers }, () => openAccount('liability')));
    const amountOf = (writer: number, transfer: number) => 1 + writer * transfersPerWriter + transfer;

    let writing = true;
    let compactions = 0;
    let folded = 0;
    const compactor = (async () => {
      while (writing) {
        folded += await ledger.compactBalances();
        compactions += 1;
      }
    })();
    const outcomes = await race(customers.map((customer, writer) => async () => {
      for (let transfer = 0; transfer < transfersPerWriter; transfer += 1) {
        const amount = amountOf(writer, transfer);
        await createEntry(`hot-${writer}-${transfer}`, [
          { account: customer, direction: 'debit', amount },
          { account: fees, direction: 'credit', amount },
        ]);
      }
    }));
    writing = false;
    await compactor;

    expect(tally(outcomes)).toEqual({ ok: writers });
    let expected = 0n;
    for (let writer = 0; writer < writers; writer += 1) {
      for (let transfer = 0; transfer < transfersPerWriter; transfer += 1) {
        expected += BigInt(amountOf(writer, transfer));
      }
    }
    expect(compactions).toBeGreaterThan(0);
    expect(folded).toBeGreaterThan(0);
    expect((await ledger.getAccount(fees.id)).balances.creditsPosted).toBe(expected);
    await expectStoredBalancesExact();

    // Once everything is folded, the stored row alone holds the exact sum.
    await ledger.compactBalances();
    const row = await database.pool.query<{ credits_posted: bigint; changes: bigint }>(
      `SELECT credits_posted,
         (SELECT count(*) FROM ledger_balance_changes WHERE $1 = ANY(account_ids)) AS changes
       FROM ledger_account_balances WHERE account_id = $1`,
      [fees.id],
    );
    expect(row.rows).toEqual([{ credits_posted: expected, changes: 0n }]);
  });

  it('never deadlocks on transfers between two limited accounts in opposite directions', async () => {
    const bank = await openAccount('asset');
    const left = await openAccount('liability', 'debits_must_not_exceed_credits');
    const right = await openAccount('liability', 'debits_must_not_exceed_credits');
    await fund('opposite-fund-left', bank, left, 500);
    await fund('opposite-fund-right', bank, right, 500);

    let writing = true;
    const compactor = (async () => {
      while (writing) await ledger.compactBalances();
    })();
    const outcomes = await race(Array.from({ length: 40 }, (_, index) => {
      const [from, to] = index % 2 === 0 ? [left, right] : [right, left];
      return () => createEntry(`opposite-${index}`, [
        { account: from, direction: 'debit', amount: 100 },
        { account: to, direction: 'credit', amount: 100 },
      ]);
    }));
    writing = false;
    await compactor;

    const counts = tally(outcomes);
    expect(Object.keys(counts).filter((code) => code !== 'ok' && code !== 'insufficient_funds')).toEqual([]);
    expect(counts.ok ?? 0).toBeGreaterThan(0);
    const [leftAfter, rightAfter] = await Promise.all([ledger.getAccount(left.id), ledger.getAccount(right.id)]);
    expect([creditBalance(leftAfter), creditBalance(rightAfter)].filter((balance) => balance < 0n)).toEqual([]);
    expect(creditBalance(leftAfter) + creditBalance(rightAfter)).toBe(1000n);
    await expectStoredBalancesExact();
  });
});
