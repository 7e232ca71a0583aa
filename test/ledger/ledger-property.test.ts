import fc from 'fast-check';
import type pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { amountMaxSafeMinor } from '../../src/config.js';
import { PennyError } from '../../src/errors.js';
import { LedgerService } from '../../src/ledger/ledger-service.js';
import type {
  AccountType, BalanceLimit, Balances, Direction, Entry, EntryKind, PostingPhase,
} from '../../src/ledger/ledger-types.js';
import { parseCreateAccount, parseCreateEntry } from '../../src/ledger/ledger-validation.js';
import { checkStoredBalances } from '../../src/ledger/ledger-verify.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * Model-based: random sequences of ledger operations run against the real service and against an
 * in-memory model of every account's balances. The model decides, before each call, whether the
 * ledger must accept it or refuse it (and with which code); it changes only when the ledger
 * accepted. After every step the real ledger must equal the model: each account's balances, the
 * trial balance (zero difference in every currency), the stored balances against the postings,
 * and the number of entries written.
 */
const rules = { amountMaxMinor: amountMaxSafeMinor };
const currencies = ['USD', 'JPY'] as const;
type Currency = (typeof currencies)[number];

interface AccountPlan {
  readonly currency: Currency;
  readonly type: AccountType;
  readonly limit?: BalanceLimit;
}

const accountPlans: readonly AccountPlan[] = [
  { currency: 'USD', type: 'asset' },
  { currency: 'USD', type: 'liability', limit: 'debits_must_not_exceed_credits' },
  { currency: 'USD', type: 'liability' },
  { currency: 'USD', type: 'revenue' },
  { currency: 'USD', type: 'asset', limit: 'credits_must_not_exceed_debits' },
  { currency: 'JPY', type: 'asset' },
  { currency: 'JPY', type: 'liability', limit: 'debits_must_not_exceed_credits' },
  { currency: 'JPY', type: 'expense' },
];
const plansOf = (currency: Currency) =>
  accountPlans.flatMap((plan, index) => (plan.currency === currency ? [index] : []));

// ---------------------------------------------------------------------------------------------
// Operations: plain data, so that a counterexample prints readably. Indices pick among what
// exists when the operation runs (modulo its count).

interface TransferSpec {
  readonly shape: 'pair' | 'split' | 'fx' | 'double';
  readonly currency: Currency;
  readonly accounts: readonly number[];
  readonly amounts: readonly number[];
  readonly guards: readonly boolean[];
  readonly flip: boolean;
  readonly namesCurrency: boolean;
}

type Operation =
  | { readonly op: 'transfer'; readonly spec: TransferSpec }
  | { readonly op: 'hold'; readonly spec: TransferSpec }
  | { readonly op: 'post'; readonly hold: number; readonly partial: number | null }
  | { readonly op: 'void'; readonly hold: number }
  | { readonly op: 'reverse'; readonly entry: number; readonly newReference: boolean }
  | { readonly op: 'replay'; readonly request: number }
  | { readonly op: 'conflict'; readonly request: number }
  | { readonly op: 'compact' };

function transferSpec(shapes: readonly TransferSpec['shape'][]): fc.Arbitrary<TransferSpec> {
  return fc.record({
    shape: fc.constantFrom(...shapes),
    currency: fc.constantFrom(...currencies),
    accounts: fc.array(fc.nat(7), { minLength: 4, maxLength: 4 }),
    amounts: fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 2, maxLength: 2 }),
    // A guard (must_not_overdraw) on about one posting in four that takes money out.
    guards: fc.array(fc.nat(3).map((value) => value === 0), { minLength: 4, maxLength: 4 }),
    flip: fc.boolean(),
    namesCurrency: fc.boolean(),
  });
}

const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  {
    weight: 6,
    arbitrary: transferSpec(['pair', 'split', 'fx', 'double']).map((spec) => ({ op: 'transfer' as const, spec })),
  },
  {
    weight: 3,
    arbitrary: transferSpec(['pair', 'pair', 'split', 'fx']).map((spec) => ({ op: 'hold' as const, spec })),
  },
  {
    weight: 3,
    // partial: null posts in full (one time in three); else it picks the amount to post.
    arbitrary: fc.record({
      op: fc.constant('post' as const), hold: fc.nat(20), partial: fc.option(fc.nat(99), { freq: 3 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('void' as const), hold: fc.nat(20) }) },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant('reverse' as const), entry: fc.nat(40), newReference: fc.boolean() }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('replay' as const), request: fc.nat(40) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('conflict' as const), request: fc.nat(40) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'compact' as const }) },
);

// ---------------------------------------------------------------------------------------------
// The model.

interface MutableBalances {
  debitsPosted: bigint;
  creditsPosted: bigint;
  debitsPending: bigint;
  creditsPending: bigint;
}

interface ModelPosting {
  readonly account: number;
  readonly direction: Direction;
  readonly phase: PostingPhase;
  readonly amount: bigint;
  readonly mustNotOverdraw: boolean;
}

interface ModelEntry {
  readonly id: string;
  readonly kind: EntryKind;
  readonly postings: readonly ModelPosting[];
  resolution: 'hold_post' | 'hold_void' | null;
  reversal: { readonly id: string; readonly reference: string } | null;
}

interface ModelRequest {
  readonly reference: string;
  readonly body: Record<string, unknown>;
  readonly postings: readonly ModelPosting[];
}

interface TrialBalanceLine {
  readonly accountCount: bigint;
  readonly balances: Balances;
}

/** The whole ledger when a run began: earlier runs' accounts and entries are still there. */
interface Baseline {
  readonly trialBalance: ReadonlyMap<string, TrialBalanceLine>;
  readonly entries: bigint;
}

interface Model {
  /** Prefixes this run's external references. */
  readonly run: string;
  readonly baseline: Baseline;
  readonly accountIds: readonly string[];
  readonly balances: MutableBalances[];
  readonly entries: ModelEntry[];
  readonly holds: number[];
  /** Every create request sent, accepted or not (replays pick among them). */
  readonly requests: ModelRequest[];
  /** External reference → the accepted entry and the exact body that created it. */
  readonly byReference: Map<string, { readonly entryId: string; readonly body: string }>;
  nextReference: number;
  /** The step running, for messages. */
  step: number;
}

type Expectation =
  | { readonly outcome: 'created' }
  | { readonly outcome: 'replayed'; readonly entryId: string }
  | { readonly outcome: 'refused'; readonly code: string };

const zero = (): MutableBalances => ({ debitsPosted: 0n, creditsPosted: 0n, debitsPending: 0n, creditsPending: 0n });

/** The balances of every account the postings touch, after them. */
function balancesAfter(model: Model, postings: readonly ModelPosting[]): Map<number, MutableBalances> {
  const after = new Map<number, MutableBalances>();
  for (const posting of postings) {
    const balances = after.get(posting.account) ?? { ...(model.balances[posting.account] as MutableBalances) };
    const signed = posting.phase === 'release' ? -posting.amount : posting.amount;
    if (posting.phase === 'posted') {
      if (posting.direction === 'debit') balances.debitsPosted += signed;
      else balances.creditsPosted += signed;
    } else if (posting.direction === 'debit') {
      balances.debitsPending += signed;
    } else {
      balances.creditsPending += signed;
    }
    after.set(posting.account, balances);
  }
  return after;
}

const debitNormal = (type: AccountType) => type === 'asset' || type === 'expense';

/**
 * Whether the ledger must refuse these postings for funds: an account's limit, checked on every
 * account the entry touches, or a guarded posting taking its account's available balance below
 * zero (outgoing holds count against what is available; incoming ones do not).
 */
function lacksFunds(model: Model, postings: readonly ModelPosting[]): boolean {
  for (const [account, balances] of balancesAfter(model, postings)) {
    const plan = accountPlans[account] as AccountPlan;
    const debitsOut = balances.debitsPosted + balances.debitsPending > balances.creditsPosted;
    const creditsOut = balances.creditsPosted + balances.creditsPending > balances.debitsPosted;
    if (plan.limit === 'debits_must_not_exceed_credits' && debitsOut) return true;
    if (plan.limit === 'credits_must_not_exceed_debits' && creditsOut) return true;
    const guarded = postings.some((posting) => posting.account === account && posting.mustNotOverdraw);
    if (guarded && (debitNormal(plan.type) ? creditsOut : debitsOut)) return true;
  }
  return false;
}

function applyPostings(model: Model, postings: readonly ModelPosting[]): void {
  for (const [account, balances] of balancesAfter(model, postings)) model.balances[account] = balances;
}

function record(model: Model, entry: Entry, kind: EntryKind, postings: readonly ModelPosting[]): ModelEntry {
  applyPostings(model, postings);
  const modelEntry: ModelEntry = { id: entry.id, kind, postings, resolution: null, reversal: null };
  model.entries.push(modelEntry);
  if (kind === 'hold') model.holds.push(model.entries.length - 1);
  return modelEntry;
}

// ---------------------------------------------------------------------------------------------
// Building requests from specs.

function accountIn(currency: Currency, pick: number | undefined): number {
  const indices = plansOf(currency);
  return indices[(pick ?? 0) % indices.length] as number;
}

function postingsOf(spec: TransferSpec, phase: 'posted' | 'pending'): ModelPosting[] {
  const [a = 0, b = 0, c = 0, d = 0] = spec.accounts;
  const [x = 1n, y = 1n] = spec.amounts.map((amount) => BigInt(amount));
  const [debit, credit]: [Direction, Direction] = spec.flip ? ['credit', 'debit'] : ['debit', 'credit'];
  const other: Currency = spec.currency === 'USD' ? 'JPY' : 'USD';
  const raw: { account: number; direction: Direction; amount: bigint }[] = (() => {
    switch (spec.shape) {
      case 'pair':
        return [
          { account: accountIn(spec.currency, a), direction: debit, amount: x },
          { account: accountIn(spec.currency, b), direction: credit, amount: x },
        ];
      case 'split':
        return [
          { account: accountIn(spec.currency, a), direction: debit, amount: x + y },
          { account: accountIn(spec.currency, b), direction: credit, amount: x },
          { account: accountIn(spec.currency, c), direction: credit, amount: y },
        ];
      case 'fx':
        return [
          { account: accountIn(spec.currency, a), direction: debit, amount: x },
          { account: accountIn(spec.currency, b), direction: credit, amount: x },
          { account: accountIn(other, c), direction: credit, amount: y },
          { account: accountIn(other, d), direction: debit, amount: y },
        ];
      case 'double':
        return [
          { account: accountIn(spec.currency, a), direction: debit, amount: x },
          { account: accountIn(spec.currency, b), direction: credit, amount: x },
          { account: accountIn(spec.currency, c), direction: debit, amount: y },
          { account: accountIn(spec.currency, d), direction: credit, amount: y },
        ];
    }
  })();
  return raw.map((posting, index) => {
    const plan = accountPlans[posting.account] as AccountPlan;
    const takesOut = posting.direction === (debitNormal(plan.type) ? 'credit' : 'debit');
    return { ...posting, phase, mustNotOverdraw: takesOut && (spec.guards[index] ?? false) };
  });
}

function bodyOf(
  model: Model, reference: string, spec: TransferSpec, postings: readonly ModelPosting[], pending: boolean,
) {
  return {
    external_reference: reference,
    ...(pending ? { pending: true } : {}),
    postings: postings.map((posting) => ({
      account: model.accountIds[posting.account],
      direction: posting.direction,
      amount: Number(posting.amount),
      ...(spec.namesCurrency ? { currency: (accountPlans[posting.account] as AccountPlan).currency } : {}),
      ...(posting.mustNotOverdraw ? { must_not_overdraw: true } : {}),
    })),
  };
}

// ---------------------------------------------------------------------------------------------
// Running one operation against the model and the ledger.

interface Real {
  readonly pool: pg.Pool;
  readonly ledger: LedgerService;
}

type Result<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly code: string };

/** Calls the ledger; a PennyError is a refusal, anything else is a bug and propagates. */
async function attempt<T>(work: () => Promise<T>): Promise<Result<T>> {
  try {
    return { ok: true, value: await work() };
  } catch (error) {
    if (error instanceof PennyError) return { ok: false, code: error.code };
    throw error;
  }
}

const outcomesSeen = new Map<string, number>();

function expectRefusal(result: Result<unknown>, code: string, what: string): void {
  expect(result.ok ? 'accepted' : result.code, `${what}: refused with ${code}`).toBe(code);
  outcomesSeen.set(code, (outcomesSeen.get(code) ?? 0) + 1);
}

function expectAccepted<T>(result: Result<T>, what: string): T {
  expect(result.ok ? 'accepted' : result.code, `${what}: accepted`).toBe('accepted');
  if (!result.ok) throw new Error('unreachable');
  return result.value;
}

function countOutcome(outcome: string): void {
  outcomesSeen.set(outcome, (outcomesSeen.get(outcome) ?? 0) + 1);
}

/** What the ledger must answer to a create request, judged by the model. */
function expectCreate(model: Model, request: ModelRequest): Expectation {
  const earlier = model.byReference.get(request.reference);
  if (earlier !== undefined) {
    return earlier.body === JSON.stringify(request.body)
      ? { outcome: 'replayed', entryId: earlier.entryId }
      : { outcome: 'refused', code: 'reference_conflict' };
  }
  if (lacksFunds(model, request.postings)) return { outcome: 'refused', code: 'insufficient_funds' };
  return { outcome: 'created' };
}

async function sendCreate(model: Model, real: Real, request: ModelRequest, what: string): Promise<void> {
  const expected = expectCreate(model, request);
  const result = await attempt(() => real.ledger.createEntry(parseCreateEntry(request.body, rules)));
  if (expected.outcome === 'refused') return expectRefusal(result, expected.code, what);
  const created = expectAccepted(result, what);
  const [entry] = created.entries;
  expect(created.entries).toHaveLength(1);
  if (entry === undefined) return;
  if (expected.outcome === 'replayed') {
    expect({ replayed: created.replayed, id: entry.id }, `${what}: a replay`)
      .toEqual({ replayed: true, id: expected.entryId });
    return countOutcome('replayed');
  }
  expect(created.replayed).toBe(false);
  const kind = request.body.pending === true ? 'hold' : 'standard';
  expect(entry.kind).toBe(kind);
  record(model, entry, kind, request.postings);
  model.byReference.set(request.reference, { entryId: entry.id, body: JSON.stringify(request.body) });
  countOutcome(`created_${kind}`);
}

async function postHold(model: Model, real: Real, holdPick: number, partialPick: number | null): Promise<void> {
  const hold = model.entries[model.holds[holdPick % model.holds.length] as number] as ModelEntry;
  const held = hold.postings[0]?.amount ?? 0n;
  // Mostly an amount within the hold (1..held); sometimes more than it holds.
  const amount = partialPick === null ? undefined
    : partialPick < 85 ? 1n + ((held - 1n) * BigInt(partialPick)) / 84n : held + BigInt(partialPick - 84);
  const what = `step ${model.step}: post ${amount ?? 'in full'} of hold ${hold.id}`;
  const result = await attempt(() => real.ledger.postHold(hold.id, amount));
  if (hold.resolution !== null) {
    return expectRefusal(result, hold.resolution === 'hold_post' ? 'hold_already_posted' : 'hold_already_voided', what);
  }
  if (amount !== undefined && hold.postings.length !== 2) {
    return expectRefusal(result, 'partial_post_unsupported', what);
  }
  if (amount !== undefined && amount > held) return expectRefusal(result, 'amount_exceeds_hold', what);
  const postings = [
    ...hold.postings.map((posting) => ({ ...posting, phase: 'release' as const, mustNotOverdraw: false })),
    ...hold.postings.map((posting) => ({
      ...posting, phase: 'posted' as const, amount: amount ?? posting.amount, mustNotOverdraw: false,
    })),
  ];
  if (lacksFunds(model, postings)) return expectRefusal(result, 'insufficient_funds', what);
  const entry = expectAccepted(result, what);
  expect({ kind: entry.kind, hold: entry.holdEntryId }).toEqual({ kind: 'hold_post', hold: hold.id });
  record(model, entry, 'hold_post', postings);
  hold.resolution = 'hold_post';
  countOutcome(amount === undefined ? 'posted_in_full' : 'posted_in_part');
}

async function voidHold(model: Model, real: Real, holdPick: number): Promise<void> {
  const hold = model.entries[model.holds[holdPick % model.holds.length] as number] as ModelEntry;
  const what = `step ${model.step}: void hold ${hold.id}`;
  const result = await attempt(() => real.ledger.voidHold(hold.id));
  if (hold.resolution !== null) {
    return expectRefusal(result, hold.resolution === 'hold_post' ? 'hold_already_posted' : 'hold_already_voided', what);
  }
  const postings = hold.postings.map((posting) => ({ ...posting, phase: 'release' as const, mustNotOverdraw: false }));
  const entry = expectAccepted(result, what);
  expect({ kind: entry.kind, hold: entry.holdEntryId }).toEqual({ kind: 'hold_void', hold: hold.id });
  record(model, entry, 'hold_void', postings);
  hold.resolution = 'hold_void';
  countOutcome('voided');
}

async function reverse(model: Model, real: Real, entryPick: number, newReference: boolean): Promise<void> {
  const target = model.entries[entryPick % model.entries.length] as ModelEntry;
  const reference = newReference ? `${model.run}-reversal-${model.nextReference++}` : `${target.id}/reversal`;
  const what = `step ${model.step}: reverse ${target.kind} ${target.id} as ${reference}`;
  const result = await attempt(() => real.ledger.reverseEntry(target.id, {
    externalReference: newReference ? reference : undefined, description: undefined,
  }));
  const posted = target.postings.filter((posting) => posting.phase === 'posted');
  if (posted.length === 0) return expectRefusal(result, 'entry_not_reversible', what);
  if (target.reversal !== null) {
    if (target.reversal.reference !== reference) return expectRefusal(result, 'entry_already_reversed', what);
    const replay = expectAccepted(result, what);
    expect({ replayed: replay.replayed, id: replay.entries[0]?.id })
      .toEqual({ replayed: true, id: target.reversal.id });
    return countOutcome('reversal_replayed');
  }
  const postings = posted.map((posting) => ({
    ...posting, direction: posting.direction === 'debit' ? 'credit' as const : 'debit' as const, mustNotOverdraw: false,
  }));
  if (lacksFunds(model, postings)) return expectRefusal(result, 'insufficient_funds', what);
  const created = expectAccepted(result, what);
  const [entry] = created.entries;
  if (entry === undefined) throw new Error('reverseEntry returned no entry');
  expect({ replayed: created.replayed, kind: entry.kind, reverses: entry.reversesEntryId })
    .toEqual({ replayed: false, kind: 'reversal', reverses: target.id });
  record(model, entry, 'reversal', postings);
  target.reversal = { id: entry.id, reference };
  countOutcome('reversed');
}

async function runOperation(model: Model, real: Real, operation: Operation): Promise<void> {
  switch (operation.op) {
    case 'transfer':
    case 'hold': {
      const pending = operation.op === 'hold';
      const reference = `${model.run}-request-${model.nextReference++}`;
      const postings = postingsOf(operation.spec, pending ? 'pending' : 'posted');
      const request = { reference, body: bodyOf(model, reference, operation.spec, postings, pending), postings };
      model.requests.push(request);
      return sendCreate(model, real, request, `step ${model.step}: ${operation.op} ${reference}`);
    }
    case 'post':
      return model.holds.length === 0 ? undefined : postHold(model, real, operation.hold, operation.partial);
    case 'void':
      return model.holds.length === 0 ? undefined : voidHold(model, real, operation.hold);
    case 'reverse':
      return model.entries.length === 0 ? undefined : reverse(model, real, operation.entry, operation.newReference);
    case 'replay': {
      const request = model.requests[operation.request % Math.max(model.requests.length, 1)];
      if (request === undefined) return undefined;
      return sendCreate(model, real, request, `step ${model.step}: replay of ${request.reference}`);
    }
    case 'conflict': {
      // The same reference as an accepted request, with a different body.
      const accepted = model.requests.filter((request) => model.byReference.has(request.reference));
      const original = accepted[operation.request % Math.max(accepted.length, 1)];
      if (original === undefined) return undefined;
      const request = { ...original, body: { ...original.body, description: 'a different request' } };
      return sendCreate(model, real, request, `step ${model.step}: conflicting replay of ${request.reference}`);
    }
    case 'compact': {
      await real.ledger.compactBalances();
      const left = await real.pool.query<{ count: bigint }>('SELECT count(*) AS count FROM ledger_balance_changes');
      expect(left.rows[0]?.count, 'every balance change is folded').toBe(0n);
      return countOutcome('compacted');
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The invariants checked after every step.

async function expectLedgerMatchesModel(model: Model, real: Real, step: string): Promise<void> {
  const accounts = await Promise.all(model.accountIds.map((id) => real.ledger.getAccount(id)));
  expect(accounts.map((account) => account.balances), `balances after ${step}`).toEqual(model.balances);

  const rows = await real.ledger.trialBalance(undefined);
  for (const currency of currencies) {
    const mine = rows.filter((row) => row.currency === currency);
    const sum = (pick: (balances: Balances) => bigint) => mine.reduce((total, row) => total + pick(row.balances), 0n);
    expect({
      posted: sum((b) => b.debitsPosted) - sum((b) => b.creditsPosted),
      pending: sum((b) => b.debitsPending) - sum((b) => b.creditsPending),
    }, `trial balance difference in ${currency} after ${step}`).toEqual({ posted: 0n, pending: 0n });
  }
  const expectedRows = new Map<string, { accountCount: bigint; balances: MutableBalances }>(
    [...model.baseline.trialBalance].map(([key, line]) => [key, {
      accountCount: line.accountCount, balances: { ...line.balances },
    }]),
  );
  accountPlans.forEach((plan, index) => {
    const key = `${plan.currency}/${plan.type}`;
    const line = expectedRows.get(key) ?? { accountCount: 0n, balances: zero() };
    const balances = model.balances[index] as MutableBalances;
    line.accountCount += 1n;
    line.balances.debitsPosted += balances.debitsPosted;
    line.balances.creditsPosted += balances.creditsPosted;
    line.balances.debitsPending += balances.debitsPending;
    line.balances.creditsPending += balances.creditsPending;
    expectedRows.set(key, line);
  });
  const actualRows = new Map(rows.map((row) => [`${row.currency}/${row.type}`, {
    accountCount: row.accountCount, balances: row.balances,
  }]));
  expect(actualRows, `trial balance rows after ${step}`).toEqual(expectedRows);

  const stored = await checkStoredBalances(real.pool);
  expect(stored.failures, `stored balances after ${step}`).toEqual([]);

  const count = await real.pool.query<{ count: bigint }>('SELECT count(*) AS count FROM ledger_entries');
  expect(count.rows[0]?.count, `entries written after ${step}`)
    .toBe(model.baseline.entries + BigInt(model.entries.length));
}

// ---------------------------------------------------------------------------------------------
// One database for the file; each run opens its own accounts and uses its own references, and
// compares what the whole ledger shows (trial balance, entry count) with where the run began
// plus the model.

let database: TestDatabase;
let runs = 0;

beforeAll(async () => {
  database = await createTestDatabase(accountPlans.length);
});

async function snapshot(ledger: LedgerService, pool: pg.Pool): Promise<Baseline> {
  const rows = await ledger.trialBalance(undefined);
  const count = await pool.query<{ count: bigint }>('SELECT count(*) AS count FROM ledger_entries');
  return {
    trialBalance: new Map(rows.map((row) => [`${row.currency}/${row.type}`, {
      accountCount: row.accountCount, balances: { ...row.balances },
    }])),
    entries: count.rows[0]?.count ?? 0n,
  };
}

async function runSequence(operations: readonly Operation[]): Promise<void> {
  const pool = database.pool;
  const ledger = new LedgerService(pool);
  // Fold what earlier runs left, so that one compaction call folds everything this run writes.
  while ((await ledger.compactBalances()) > 0);
  const baseline = await snapshot(ledger, pool);
  const accountIds: string[] = [];
  for (const plan of accountPlans) {
    const account = await ledger.createAccount(parseCreateAccount({
      currency: plan.currency, type: plan.type, ...(plan.limit ? { limit: plan.limit } : {}),
    }));
    accountIds.push(account.id);
  }
  runs += 1;
  const model: Model = {
    run: `run${runs}`,
    baseline,
    accountIds,
    balances: accountPlans.map(zero),
    entries: [],
    holds: [],
    requests: [],
    byReference: new Map(),
    nextReference: 0,
    step: 0,
  };
  const real = { pool, ledger };
  for (const [index, operation] of operations.entries()) {
    model.step = index;
    await runOperation(model, real, operation);
    await expectLedgerMatchesModel(model, real, `step ${index} (${JSON.stringify(operation)})`);
  }
}

describe('ledger against a model', () => {
  it('agrees with the model on every balance, and on what it accepts and refuses, after every step', async () => {
    outcomesSeen.clear();
    await fc.assert(
      fc.asyncProperty(fc.array(operationArbitrary, { minLength: 30, maxLength: 60 }), runSequence),
      { numRuns: 25 },
    );
    // The runs exercised what they claim to: acceptances and each kind of refusal.
    const seen = Object.fromEntries(outcomesSeen);
    for (const outcome of ['created_standard', 'created_hold', 'replayed', 'insufficient_funds', 'reference_conflict',
      'posted_in_full', 'posted_in_part', 'voided', 'reversed', 'compacted']) {
      expect(seen[outcome] ?? 0, `runs that saw ${outcome}`).toBeGreaterThan(0);
    }
    expect((seen.hold_already_posted ?? 0) + (seen.hold_already_voided ?? 0)).toBeGreaterThan(0);
    expect((seen.entry_already_reversed ?? 0) + (seen.reversal_replayed ?? 0)).toBeGreaterThan(0);
  }, 120_000);
});
