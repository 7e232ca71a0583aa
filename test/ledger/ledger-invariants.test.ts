import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../src/db/pool.js';
import { sealPending } from '../../src/ledger/ledger-sealer.js';
import type { AccountType, BalanceLimit } from '../../src/ledger/ledger-types.js';
import { checkStoredBalances } from '../../src/ledger/ledger-verify.js';
import { createTestLedger, type TestLedger } from '../support/app.js';

/**
 * Each ledger invariant is attacked with raw SQL, as a careless script or a buggy service would:
 * the database itself must refuse, with the documented SQLSTATE, and leave nothing behind.
 */
let penny: TestLedger;

beforeAll(async () => {
  penny = await createTestLedger();
});

type Phase = 'posted' | 'pending' | 'release';

interface Leg {
  readonly account: string;
  readonly direction: 'debit' | 'credit';
  readonly amount: number;
  readonly phase?: Phase;
  readonly currency?: string;
  readonly mustNotOverdraw?: boolean;
}

interface RawEntry {
  readonly id?: string;
  readonly kind?: 'standard' | 'hold' | 'hold_post' | 'hold_void' | 'hold_expiry' | 'reversal';
  readonly holdEntryId?: string;
  readonly reversesEntryId?: string;
  readonly legs: readonly Leg[];
}

interface Balances {
  readonly debitsPosted: bigint;
  readonly creditsPosted: bigint;
  readonly debitsPending: bigint;
  readonly creditsPending: bigint;
}

/** Where an attempt ended: refused by a statement, refused at COMMIT, or committed. */
interface Outcome {
  readonly stage: 'statement' | 'commit' | 'committed';
  readonly code?: string;
}

function newEntryId(): string {
  return `lent_raw${randomBytes(8).toString('hex')}`;
}

async function openAccount(
  type: AccountType,
  options: { currency?: string; limit?: BalanceLimit } = {},
): Promise<string> {
  const account = await penny.ledger.createAccount({
    currency: options.currency ?? 'USD',
    type,
    code: undefined,
    owner: undefined,
    metadata: {},
    limit: options.limit,
  });
  return account.id;
}

/** Writes an entry through the API (the supported path), failing the test if it is refused. */
async function postEntry(body: Record<string, unknown>): Promise<{ id: string }> {
  const response = await penny.request({
    method: 'POST',
    url: '/v1/ledger/entries',
    body: { external_reference: `api-${randomBytes(6).toString('hex')}`, ...body },
  });
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  return response.body;
}

async function fund(debitAccount: string, creditAccount: string, amount: number): Promise<{ id: string }> {
  return postEntry({
    postings: [
      { account: debitAccount, direction: 'debit', amount },
      { account: creditAccount, direction: 'credit', amount },
    ],
  });
}

/**
 * The raw SQL of one entry: the entry row and all its postings in one statement, as the database
 * requires (an entry must have its postings when the statement that inserts it ends).
 */
async function insertRawEntry(client: pg.PoolClient, entry: RawEntry): Promise<string> {
  const id = entry.id ?? newEntryId();
  await client.query(
    `WITH inserted AS (
       INSERT INTO ledger_entries
         (id, external_reference, request_fingerprint, kind, hold_entry_id, reverses_entry_id, effective_at)
       VALUES ($1, 'raw-' || $1, 'raw', $8, $9, $10, now())
       RETURNING id, effective_at
     )
     INSERT INTO ledger_postings
       (entry_id, account_id, currency, direction, phase, amount_minor, must_not_overdraw, effective_at)
     SELECT i.id, l.account_id, l.currency, l.direction, l.phase, l.amount, l.must_not_overdraw, i.effective_at
     FROM inserted i,
       unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::boolean[])
         AS l(account_id, currency, direction, phase, amount, must_not_overdraw)`,
    [id, ...legColumns(entry.legs), entry.kind ?? 'standard', entry.holdEntryId ?? null, entry.reversesEntryId ?? null],
  );
  return id;
}

/** The legs as the six arrays the raw inserts unnest (account, currency, direction, phase, amount, guard). */
function legColumns(legs: readonly Leg[]): unknown[] {
  return [
    legs.map((leg) => leg.account),
    legs.map((leg) => leg.currency ?? 'USD'),
    legs.map((leg) => leg.direction),
    legs.map((leg) => leg.phase ?? 'posted'),
    legs.map((leg) => leg.amount.toString()),
    legs.map((leg) => leg.mustNotOverdraw ?? false),
  ];
}

async function insertRawPostings(client: pg.PoolClient, entryId: string, legs: readonly Leg[]): Promise<void> {
  await client.query(
    `INSERT INTO ledger_postings
       (entry_id, account_id, currency, direction, phase, amount_minor, must_not_overdraw, effective_at)
     SELECT e.id, l.account_id, l.currency, l.direction, l.phase, l.amount, l.must_not_overdraw, e.effective_at
     FROM ledger_entries e,
       unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::boolean[])
         AS l(account_id, currency, direction, phase, amount, must_not_overdraw)
     WHERE e.id = $1`,
    [entryId, ...legColumns(legs)],
  );
}

/** Runs `work` in BEGIN … COMMIT on a dedicated connection and reports where it was refused. */
async function attempt(work: (client: pg.PoolClient) => Promise<unknown>): Promise<Outcome> {
  const client = await penny.pool.connect();
  try {
    await client.query('BEGIN');
    try {
      await work(client);
    } catch (error) {
      await client.query('ROLLBACK');
      return { stage: 'statement', code: (error as { code?: string }).code };
    }
    try {
      await client.query('COMMIT');
    } catch (error) {
      return { stage: 'commit', code: (error as { code?: string }).code };
    }
    return { stage: 'committed' };
  } finally {
    client.release();
  }
}

/** One statement outside any explicit transaction. */
async function attemptStatement(sql: string, values: unknown[] = []): Promise<Outcome> {
  return attempt((client) => client.query(sql, values));
}

async function balancesOf(accountId: string): Promise<Balances> {
  const result = await penny.pool.query<{ dp: bigint; cp: bigint; dpend: bigint; cpend: bigint }>(
    `SELECT debits_posted AS dp, credits_posted AS cp, debits_pending AS dpend, credits_pending AS cpend
     FROM ledger_current_balances WHERE account_id = $1`,
    [accountId],
  );
  const row = result.rows[0];
  if (row === undefined) throw new Error(`no balance for ${accountId}`);
  return { debitsPosted: row.dp, creditsPosted: row.cp, debitsPending: row.dpend, creditsPending: row.cpend };
}

function balances(values: Partial<Balances>): Balances {
  return { debitsPosted: 0n, creditsPosted: 0n, debitsPending: 0n, creditsPending: 0n, ...values };
}

async function entryCount(id: string): Promise<number> {
  const result = await penny.pool.query<{ count: bigint }>(
    'SELECT count(*) AS count FROM ledger_entries WHERE id = $1', [id]);
  return Number(result.rows[0]?.count);
}

async function postingsOf(entryId: string): Promise<{ account_id: string; direction: string; amount_minor: bigint }[]> {
  const result = await penny.pool.query<{ account_id: string; direction: string; amount_minor: bigint }>(
    'SELECT account_id, direction, amount_minor FROM ledger_postings WHERE entry_id = $1 ORDER BY id',
    [entryId],
  );
  return result.rows;
}

describe('invariant 1: every entry balances (each postings statement at once, presence by the end of its statement)', () => {
  it('refuses, when its postings are inserted, an entry whose debits and credits differ, and keeps nothing of it', async () => {
    const cash = await openAccount('asset');
    const owed = await openAccount('liability');
    const id = newEntryId();
    const outcome = await attempt((client) => insertRawEntry(client, {
      id,
      legs: [
        { account: cash, direction: 'debit', amount: 100 },
        { account: owed, direction: 'credit', amount: 90 },
      ],
    }));
    expect(outcome).toEqual({ stage: 'statement', code: 'PN001' });
    expect(await entryCount(id)).toBe(0);
    expect(await postingsOf(id)).toEqual([]);
    expect(await balancesOf(cash)).toEqual(balances({}));
    expect(await balancesOf(owed)).toEqual(balances({}));
  });

  it('refuses an entry with a single posting', async () => {
    const cash = await openAccount('asset');
    const id = newEntryId();
    const outcome = await attempt((client) => insertRawEntry(client, {
      id, legs: [{ account: cash, direction: 'debit', amount: 100 }],
    }));
    expect(outcome).toEqual({ stage: 'statement', code: 'PN001' });
    expect(await entryCount(id)).toBe(0);
    expect(await balancesOf(cash)).toEqual(balances({}));
  });

  it('refuses an entry with no postings at all, at the end of the statement that inserts it', async () => {
    const id = newEntryId();
    const outcome = await attempt((client) => insertRawEntry(client, { id, legs: [] }));
    expect(outcome).toEqual({ stage: 'statement', code: 'PN001' });
    expect(await entryCount(id)).toBe(0);
  });

  it('refuses an entry inserted alone, even when its postings would follow in the same transaction', async () => {
    const cash = await openAccount('asset');
    const owed = await openAccount('liability');
    const id = newEntryId();
    const outcome = await attempt(async (client) => {
      await client.query(
        `INSERT INTO ledger_entries (id, external_reference, request_fingerprint, kind, effective_at)
         VALUES ($1, 'raw-' || $1, 'raw', 'standard', now())`, [id]);
      await insertRawPostings(client, id, [
        { account: cash, direction: 'debit', amount: 100 },
        { account: owed, direction: 'credit', amount: 100 },
      ]);
    });
    expect(outcome).toEqual({ stage: 'statement', code: 'PN001' });
    expect(await entryCount(id)).toBe(0);
    expect(await balancesOf(cash)).toEqual(balances({}));
  });

  it('refuses an entry that balances only across currencies (USD debit 100, EUR credit 100)', async () => {
    const dollars = await openAccount('asset', { currency: 'USD' });
    const euros = await openAccount('liability', { currency: 'EUR' });
    const id = newEntryId();
    const outcome = await attempt((client) => insertRawEntry(client, {
      id,
      legs: [
        { account: dollars, direction: 'debit', amount: 100, currency: 'USD' },
        { account: euros, direction: 'credit', amount: 100, currency: 'EUR' },
      ],
    }));
    expect(outcome).toEqual({ stage: 'statement', code: 'PN001' });
    expect(await entryCount(id)).toBe(0);
    expect(await balancesOf(dollars)).toEqual(balances({}));
    expect(await balancesOf(euros)).toEqual(balances({}));
  });

  it('refuses postings added later, in a new transaction, to an entry that already balanced (PN004)', async () => {
    const cash = await openAccount('asset');
    const owed = await openAccount('liability');
    const entry = await fund(cash, owed, 100);
    const outcome = await attempt((client) => insertRawPostings(client, entry.id, [
      { account: cash, direction: 'debit', amount: 50 },
      { account: owed, direction: 'credit', amount: 50 },
    ]));
    expect(outcome).toEqual({ stage: 'statement', code: 'PN004' });
    expect(await postingsOf(entry.id)).toHaveLength(2);
    expect(await balancesOf(cash)).toEqual(balances({ debitsPosted: 100n }));
  });

  it('refuses postings for an entry that does not exist (PN004)', async () => {
    const cash = await openAccount('asset');
    const owed = await openAccount('liability');
    const missing = newEntryId();
    const outcome = await attemptStatement(
      `INSERT INTO ledger_postings (entry_id, account_id, currency, direction, phase, amount_minor, effective_at)
       VALUES ($1, $2, 'USD', 'debit', 'posted', 50, now()), ($1, $3, 'USD', 'credit', 'posted', 50, now())`,
      [missing, cash, owed]);
    expect(outcome).toEqual({ stage: 'statement', code: 'PN004' });
    expect(await postingsOf(missing)).toEqual([]);
    expect(await balancesOf(cash)).toEqual(balances({}));
  });

  it('commits a balanced entry of three postings', async () => {
    const cash = await openAccount('asset');
    const merchant = await openAccount('liability');
    const fees = await openAccount('revenue');
    const id = newEntryId();
    const outcome = await attempt((client) => insertRawEntry(client, {
      id,
      legs: [
        { account: cash, direction: 'debit', amount: 100 },
        { account: merchant, direction: 'credit', amount: 97 },
        { account: fees, direction: 'credit', amount: 3 },
      ],
    }));
    expect(outcome).toEqual({ stage: 'committed' });
    expect(await postingsOf(id)).toHaveLength(3);
    expect(await balancesOf(cash)).toEqual(balances({ debitsPosted: 100n }));
    expect(await balancesOf(merchant)).toEqual(balances({ creditsPosted: 97n }));
    expect(await balancesOf(fees)).toEqual(balances({ creditsPosted: 3n }));
  });
});

describe('invariant 2: history is append-only', () => {
  let cash: string;
  let owed: string;
  let entryId: string;

  beforeAll(async () => {
    cash = await openAccount('asset');
    owed = await openAccount('liability');
    entryId = (await fund(cash, owed, 100)).id;
  });

  async function unchanged(): Promise<void> {
    expect(await postingsOf(entryId)).toEqual([
      { account_id: cash, direction: 'debit', amount_minor: 100n },
      { account_id: owed, direction: 'credit', amount_minor: 100n },
    ]);
    expect(await entryCount(entryId)).toBe(1);
  }

  it('refuses UPDATE of a posting amount', async () => {
    const outcome = await attemptStatement(
      'UPDATE ledger_postings SET amount_minor = amount_minor + 1 WHERE entry_id = $1', [entryId]);
    expect(outcome).toEqual({ stage: 'statement', code: 'PN003' });
    await unchanged();
  });

  it('refuses UPDATE of an entry (its effective time)', async () => {
    const before = await penny.pool.query('SELECT effective_at FROM ledger_entries WHERE id = $1', [entryId]);
    const outcome = await attemptStatement(
      `UPDATE ledger_entries SET effective_at = effective_at - interval '1 day' WHERE id = $1`, [entryId]);
    expect(outcome).toEqual({ stage: 'statement', code: 'PN003' });
    const after = await penny.pool.query('SELECT effective_at FROM ledger_entries WHERE id = $1', [entryId]);
    expect(after.rows).toEqual(before.rows);
  });

  it('refuses DELETE of an entry', async () => {
    const outcome = await attemptStatement('DELETE FROM ledger_entries WHERE id = $1', [entryId]);
    expect(outcome).toEqual({ stage: 'statement', code: 'PN003' });
    await unchanged();
  });

  it('refuses DELETE of a posting', async () => {
    const outcome = await attemptStatement('DELETE FROM ledger_postings WHERE entry_id = $1', [entryId]);
    expect(outcome).toEqual({ stage: 'statement', code: 'PN003' });
    await unchanged();
  });

  it('refuses TRUNCATE of the postings', async () => {
    const outcome = await attemptStatement('TRUNCATE ledger_postings');
    expect(outcome).toEqual({ stage: 'statement', code: 'PN003' });
    await unchanged();
  });

  it('refuses UPDATE of a seal', async () => {
    await sealPending(penny.pool, {});
    const before = await penny.pool.query('SELECT * FROM ledger_entry_seals WHERE entry_id = $1', [entryId]);
    expect(before.rows).toHaveLength(1);
    const outcome = await attemptStatement(
      `UPDATE ledger_entry_seals SET hash = repeat('a', 64) WHERE entry_id = $1`, [entryId]);
    expect(outcome).toEqual({ stage: 'statement', code: 'PN003' });
    const after = await penny.pool.query('SELECT * FROM ledger_entry_seals WHERE entry_id = $1', [entryId]);
    expect(after.rows).toEqual(before.rows);
  });

  it('refuses DELETE of an account', async () => {
    const unused = await openAccount('asset');
    const outcome = await attemptStatement('DELETE FROM ledger_accounts WHERE id = $1', [unused]);
    expect(outcome).toEqual({ stage: 'statement', code: 'PN003' });
    const found = await penny.pool.query('SELECT id FROM ledger_accounts WHERE id = $1', [unused]);
    expect(found.rows).toEqual([{ id: unused }]);
  });

  it("refuses changing an account's currency", async () => {
    const outcome = await attemptStatement(`UPDATE ledger_accounts SET currency = 'EUR' WHERE id = $1`, [cash]);
    expect(outcome).toEqual({ stage: 'statement', code: 'PN003' });
    expect((await penny.ledger.getAccount(cash)).currency).toBe('USD');
  });

  it("refuses removing an account's limit", async () => {
    const wallet = await openAccount('liability', { limit: 'debits_must_not_exceed_credits' });
    const outcome = await attemptStatement('UPDATE ledger_accounts SET balance_limit = NULL WHERE id = $1', [wallet]);
    expect(outcome).toEqual({ stage: 'statement', code: 'PN003' });
    expect((await penny.ledger.getAccount(wallet)).limit).toBe('debits_must_not_exceed_credits');
  });

  it("refuses changing an account's type", async () => {
    const outcome = await attemptStatement(`UPDATE ledger_accounts SET type = 'liability' WHERE id = $1`, [cash]);
    expect(outcome).toEqual({ stage: 'statement', code: 'PN003' });
    expect((await penny.ledger.getAccount(cash)).type).toBe('asset');
  });

  it("allows updating an account's metadata", async () => {
    const outcome = await attemptStatement(
      `UPDATE ledger_accounts SET metadata = '{"note": "renamed"}'::jsonb WHERE id = $1`, [cash]);
    expect(outcome).toEqual({ stage: 'committed' });
    expect((await penny.ledger.getAccount(cash)).metadata).toEqual({ note: 'renamed' });
  });
});

describe("invariant 3: a posting's currency is its account's", () => {
  it('refuses (PN009 currency_mismatch) a raw EUR posting on USD accounts', async () => {
    const cash = await openAccount('asset', { currency: 'USD' });
    const owed = await openAccount('liability', { currency: 'USD' });
    const id = newEntryId();
    const outcome = await attempt((client) => insertRawEntry(client, {
      id,
      legs: [
        { account: cash, direction: 'debit', amount: 100, currency: 'EUR' },
        { account: owed, direction: 'credit', amount: 100, currency: 'EUR' },
      ],
    }));
    expect(outcome).toEqual({ stage: 'statement', code: 'PN009' });
    expect(await entryCount(id)).toBe(0);
    expect(await balancesOf(cash)).toEqual(balances({}));
  });

  it('refuses a raw posting whose currency differs from its account even when the entry balances', async () => {
    const dollars = await openAccount('asset', { currency: 'USD' });
    const euros = await openAccount('liability', { currency: 'EUR' });
    const id = newEntryId();
    const outcome = await attempt((client) => insertRawEntry(client, {
      id,
      legs: [
        { account: dollars, direction: 'debit', amount: 100, currency: 'EUR' },
        { account: euros, direction: 'credit', amount: 100, currency: 'EUR' },
      ],
    }));
    expect(outcome).toEqual({ stage: 'statement', code: 'PN009' });
    expect(await entryCount(id)).toBe(0);
    expect(await balancesOf(euros)).toEqual(balances({}));
  });

  it('refuses (PN010) a raw posting on an account that does not exist', async () => {
    const cash = await openAccount('asset');
    const id = newEntryId();
    const outcome = await attempt((client) => insertRawEntry(client, {
      id,
      legs: [
        { account: cash, direction: 'debit', amount: 100 },
        { account: 'lacc_doesnotexist0', direction: 'credit', amount: 100 },
      ],
    }));
    expect(outcome).toEqual({ stage: 'statement', code: 'PN010' });
    expect(await entryCount(id)).toBe(0);
    expect(await balancesOf(cash)).toEqual(balances({}));
  });

  it('answers 400 currency_mismatch through the API for currency EUR on a USD account', async () => {
    const cash = await openAccount('asset', { currency: 'USD' });
    const owed = await openAccount('liability', { currency: 'USD' });
    const response = await penny.request({
      method: 'POST',
      url: '/v1/ledger/entries',
      body: {
        external_reference: 'currency-mismatch-1',
        postings: [
          { account: cash, direction: 'debit', amount: 100, currency: 'EUR' },
          { account: owed, direction: 'credit', amount: 100, currency: 'EUR' },
        ],
      },
    });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('currency_mismatch');
    expect(response.body.error.param).toBe('postings[0][currency]');
    const written = await penny.pool.query(
      `SELECT id FROM ledger_entries WHERE external_reference = 'currency-mismatch-1'`);
    expect(written.rows).toEqual([]);
    expect(await balancesOf(cash)).toEqual(balances({}));
  });
});

describe('invariant 4: limits hold under raw SQL', () => {
  it("refuses a debit that takes a 'debits_must_not_exceed_credits' account below zero (PN002)", async () => {
    const cash = await openAccount('asset');
    const wallet = await openAccount('liability', { limit: 'debits_must_not_exceed_credits' });
    await fund(cash, wallet, 100);
    const id = newEntryId();
    const outcome = await attempt((client) => insertRawEntry(client, {
      id,
      legs: [
        { account: wallet, direction: 'debit', amount: 101 },
        { account: cash, direction: 'credit', amount: 101 },
      ],
    }));
    expect(outcome).toEqual({ stage: 'statement', code: 'PN002' });
    expect(await entryCount(id)).toBe(0);
    expect(await balancesOf(wallet)).toEqual(balances({ creditsPosted: 100n }));
  });

  it('lets exactly 10 of 50 concurrent raw-SQL debits of 100 drain a limited account funded with 1000', async () => {
    const cash = await openAccount('asset');
    const wallet = await openAccount('liability', { limit: 'debits_must_not_exceed_credits' });
    await fund(cash, wallet, 1000);
    // Each debit on its own connection, all open before the race starts.
    const racers = createPool({ connectionString: penny.url, sizeMax: 50, applicationName: 'penny-raw-race' });
    try {
      const clients = await Promise.all(Array.from({ length: 50 }, () => racers.connect()));
      const outcomes = await Promise.all(clients.map(async (client) => {
        try {
          await insertRawEntry(client, { legs: [
            { account: wallet, direction: 'debit', amount: 100 },
            { account: cash, direction: 'credit', amount: 100 },
          ] });
          return 'committed';
        } catch (error) {
          return (error as { code?: string }).code ?? 'unknown';
        } finally {
          client.release();
        }
      }));
      expect(outcomes.filter((outcome) => outcome === 'committed')).toHaveLength(10);
      expect(outcomes.filter((outcome) => outcome === 'PN002')).toHaveLength(40);
      expect(await balancesOf(wallet)).toEqual(balances({ debitsPosted: 1000n, creditsPosted: 1000n }));
    } finally {
      await racers.end();
    }
  });

  it("allows a debit that takes a 'debits_must_not_exceed_credits' account to exactly zero", async () => {
    const cash = await openAccount('asset');
    const wallet = await openAccount('liability', { limit: 'debits_must_not_exceed_credits' });
    await fund(cash, wallet, 100);
    const outcome = await attempt((client) => insertRawEntry(client, {
      legs: [
        { account: wallet, direction: 'debit', amount: 100 },
        { account: cash, direction: 'credit', amount: 100 },
      ],
    }));
    expect(outcome).toEqual({ stage: 'committed' });
    expect(await balancesOf(wallet)).toEqual(balances({ debitsPosted: 100n, creditsPosted: 100n }));
  });

  it('counts a pending (hold) debit against the limit', async () => {
    const cash = await openAccount('asset');
    const wallet = await openAccount('liability', { limit: 'debits_must_not_exceed_credits' });
    await fund(cash, wallet, 100);
    const hold = await attempt((client) => insertRawEntry(client, {
      kind: 'hold',
      legs: [
        { account: wallet, direction: 'debit', amount: 60, phase: 'pending' },
        { account: cash, direction: 'credit', amount: 60, phase: 'pending' },
      ],
    }));
    expect(hold).toEqual({ stage: 'committed' });
    const id = newEntryId();
    const outcome = await attempt((client) => insertRawEntry(client, {
      id,
      legs: [
        { account: wallet, direction: 'debit', amount: 50 },
        { account: cash, direction: 'credit', amount: 50 },
      ],
    }));
    expect(outcome).toEqual({ stage: 'statement', code: 'PN002' });
    expect(await entryCount(id)).toBe(0);
    expect(await balancesOf(wallet)).toEqual(balances({ creditsPosted: 100n, debitsPending: 60n }));
  });

  it('refuses a hold larger than what a limited account holds', async () => {
    const cash = await openAccount('asset');
    const wallet = await openAccount('liability', { limit: 'debits_must_not_exceed_credits' });
    await fund(cash, wallet, 100);
    const outcome = await attempt((client) => insertRawEntry(client, {
      kind: 'hold',
      legs: [
        { account: wallet, direction: 'debit', amount: 101, phase: 'pending' },
        { account: cash, direction: 'credit', amount: 101, phase: 'pending' },
      ],
    }));
    expect(outcome).toEqual({ stage: 'statement', code: 'PN002' });
    expect(await balancesOf(wallet)).toEqual(balances({ creditsPosted: 100n }));
  });

  it("refuses a credit that takes a 'credits_must_not_exceed_debits' account below zero", async () => {
    const bank = await openAccount('asset', { limit: 'credits_must_not_exceed_debits' });
    const equity = await openAccount('equity');
    await fund(bank, equity, 100);
    const outcome = await attempt((client) => insertRawEntry(client, {
      legs: [
        { account: equity, direction: 'debit', amount: 150 },
        { account: bank, direction: 'credit', amount: 150 },
      ],
    }));
    expect(outcome).toEqual({ stage: 'statement', code: 'PN002' });
    expect(await balancesOf(bank)).toEqual(balances({ debitsPosted: 100n }));
  });

  it('refuses a must_not_overdraw debit beyond the available balance of an unlimited liability account', async () => {
    const cash = await openAccount('asset');
    const merchant = await openAccount('liability');
    await fund(cash, merchant, 100);
    const outcome = await attempt((client) => insertRawEntry(client, {
      legs: [
        { account: merchant, direction: 'debit', amount: 150, mustNotOverdraw: true },
        { account: cash, direction: 'credit', amount: 150 },
      ],
    }));
    expect(outcome).toEqual({ stage: 'statement', code: 'PN002' });
    expect(await balancesOf(merchant)).toEqual(balances({ creditsPosted: 100n }));
  });

  it('allows the same debit without must_not_overdraw (an involuntary debit may take a merchant negative)', async () => {
    const cash = await openAccount('asset');
    const merchant = await openAccount('liability');
    await fund(cash, merchant, 100);
    const outcome = await attempt((client) => insertRawEntry(client, {
      legs: [
        { account: merchant, direction: 'debit', amount: 150 },
        { account: cash, direction: 'credit', amount: 150 },
      ],
    }));
    expect(outcome).toEqual({ stage: 'committed' });
    expect(await balancesOf(merchant)).toEqual(balances({ debitsPosted: 150n, creditsPosted: 100n }));
  });
});

describe('invariant 5: stored balances change only through postings', () => {
  let cash: string;
  let owed: string;

  beforeAll(async () => {
    cash = await openAccount('asset');
    owed = await openAccount('liability');
    await fund(cash, owed, 100);
  });

  async function changeCount(): Promise<bigint> {
    const result = await penny.pool.query<{ count: bigint }>('SELECT count(*) AS count FROM ledger_balance_changes');
    return result.rows[0]?.count ?? -1n;
  }

  it('refuses UPDATE of a balance row (PN007)', async () => {
    const outcome = await attemptStatement(
      'UPDATE ledger_account_balances SET credits_posted = credits_posted + 1000 WHERE account_id = $1', [owed]);
    expect(outcome).toEqual({ stage: 'statement', code: 'PN007' });
    expect(await balancesOf(owed)).toEqual(balances({ creditsPosted: 100n }));
  });

  it('refuses DELETE of balance-change rows', async () => {
    const before = await changeCount();
    expect(before).toBeGreaterThan(0n);
    const outcome = await attemptStatement('DELETE FROM ledger_balance_changes');
    expect(outcome).toEqual({ stage: 'statement', code: 'PN007' });
    expect(await changeCount()).toBe(before);
    expect(await balancesOf(owed)).toEqual(balances({ creditsPosted: 100n }));
  });

  it('refuses INSERT of a balance-change row', async () => {
    const before = await changeCount();
    const outcome = await attemptStatement(
      `INSERT INTO ledger_balance_changes (account_ids, debits_posted, credits_posted, debits_pending, credits_pending)
       VALUES (ARRAY[$1], '{0}', '{1000}', '{0}', '{0}')`, [owed]);
    expect(outcome).toEqual({ stage: 'statement', code: 'PN007' });
    expect(await changeCount()).toBe(before);
    expect(await balancesOf(owed)).toEqual(balances({ creditsPosted: 100n }));
  });

  it('refuses INSERT of a balance row that does not start at zero', async () => {
    const outcome = await attemptStatement(
      `INSERT INTO ledger_account_balances (account_id, credits_posted) VALUES ($1, 1000)`, [owed]);
    expect(outcome).toEqual({ stage: 'statement', code: 'PN007' });
    expect(await balancesOf(owed)).toEqual(balances({ creditsPosted: 100n }));
  });
});

describe('invariant 5: stored balances equal the sums of postings, before and after compaction', () => {
  let accounts: { cash: string; wallet: string; merchant: string; fees: string };
  let expected: Map<string, Balances>;

  beforeAll(async () => {
    accounts = {
      cash: await openAccount('asset'),
      wallet: await openAccount('liability'),
      merchant: await openAccount('liability'),
      fees: await openAccount('revenue'),
    };
    const { cash, wallet, merchant, fees } = accounts;
    let cashIn = 0n;
    let walletIn = 0n;
    let feesIn = 0n;
    for (let i = 1; i <= 30; i += 1) {
      const amount = 100 + i * 7;
      await postEntry({
        postings: [
          { account: cash, direction: 'debit', amount },
          { account: wallet, direction: 'credit', amount: amount - i },
          { account: fees, direction: 'credit', amount: i },
        ],
      });
      cashIn += BigInt(amount);
      walletIn += BigInt(amount - i);
      feesIn += BigInt(i);
    }
    for (let i = 1; i <= 10; i += 1) await fund(wallet, merchant, 50);
    const holdLegs = (amount: number) => [
      { account: wallet, direction: 'debit', amount },
      { account: merchant, direction: 'credit', amount },
    ];
    const posted = await postEntry({ pending: true, postings: holdLegs(200) });
    await penny.ledger.postHold(posted.id, 120n);
    const voided = await postEntry({ pending: true, postings: holdLegs(80) });
    await penny.ledger.voidHold(voided.id);
    await postEntry({ pending: true, postings: holdLegs(30) });
    expected = new Map([
      [cash, balances({ debitsPosted: cashIn })],
      [wallet, balances({ creditsPosted: walletIn, debitsPosted: 500n + 120n, debitsPending: 30n })],
      [merchant, balances({ creditsPosted: 500n + 120n, creditsPending: 30n })],
      [fees, balances({ creditsPosted: feesIn })],
    ]);
  });

  async function expectBalancesAgree(): Promise<void> {
    for (const [account, balance] of expected) expect(await balancesOf(account)).toEqual(balance);
    expect((await checkStoredBalances(penny.pool)).failures).toEqual([]);
  }

  it('agree before compaction, with the balance changes not yet folded', async () => {
    const changes = await penny.pool.query<{ count: bigint }>(
      'SELECT count(*) AS count FROM ledger_balance_changes WHERE $1 = ANY(account_ids)', [accounts.wallet]);
    expect(changes.rows[0]?.count).toBeGreaterThan(40n);
    await expectBalancesAgree();
  });

  it('agree after a partial compaction', async () => {
    const folded = await penny.pool.query<{ folded: number }>('SELECT ledger_compact_balances(7) AS folded');
    expect(folded.rows[0]?.folded).toBe(7);
    await expectBalancesAgree();
  });

  it('fold only as many change rows as name at most the bound of accounts, and always the oldest', async () => {
    const oldest = await penny.pool.query<{ accounts: number }>(
      'SELECT cardinality(account_ids) AS accounts FROM ledger_balance_changes ORDER BY id LIMIT 3');
    const [first, second, third] = oldest.rows.map((row) => row.accounts ?? 0);
    expect(third).toBeGreaterThan(0);
    const belowOldest = await penny.pool.query<{ folded: number }>('SELECT ledger_compact_balances(1000, 1) AS folded');
    expect(belowOldest.rows[0]?.folded).toBe(1);
    const exactlyTwo = await penny.pool.query<{ folded: number }>(
      'SELECT ledger_compact_balances(1000, $1) AS folded', [(second ?? 0) + (third ?? 0)]);
    expect(first).toBeGreaterThan(1);
    expect(exactlyTwo.rows[0]?.folded).toBe(2);
    await expectBalancesAgree();
  });

  it('agree after SELECT ledger_compact_balances(1000), with every change folded into the balance rows', async () => {
    await penny.pool.query('SELECT ledger_compact_balances(1000)');
    const left = await penny.pool.query('SELECT 1 FROM ledger_balance_changes');
    expect(left.rows).toEqual([]);
    for (const [account, balance] of expected) {
      const row = await penny.pool.query<{ dp: bigint; cp: bigint; dpend: bigint; cpend: bigint }>(
        `SELECT debits_posted AS dp, credits_posted AS cp, debits_pending AS dpend, credits_pending AS cpend
         FROM ledger_account_balances WHERE account_id = $1`, [account]);
      expect(row.rows[0]).toEqual({
        dp: balance.debitsPosted,
        cp: balance.creditsPosted,
        dpend: balance.debitsPending,
        cpend: balance.creditsPending,
      });
    }
    await expectBalancesAgree();
  });
});

describe('hold resolutions, attacked with raw SQL', () => {
  async function openHold(amount: number): Promise<{ wallet: string; merchant: string; hold: string }> {
    const cash = await openAccount('asset');
    const wallet = await openAccount('liability');
    const merchant = await openAccount('liability');
    await fund(cash, wallet, 500);
    const hold = await postEntry({
      pending: true,
      postings: [
        { account: wallet, direction: 'debit', amount },
        { account: merchant, direction: 'credit', amount },
      ],
    });
    return { wallet, merchant, hold: hold.id };
  }

  async function holdStatus(holdId: string): Promise<string> {
    const response = await penny.request({ method: 'GET', url: `/v1/ledger/entries/${holdId}` });
    return response.body.status;
  }

  it("refuses (PN005) a 'hold_post' whose release postings do not mirror the hold", async () => {
    const { wallet, merchant, hold } = await openHold(100);
    const id = newEntryId();
    const outcome = await attempt((client) => insertRawEntry(client, {
      id,
      kind: 'hold_post',
      holdEntryId: hold,
      legs: [
        { account: wallet, direction: 'debit', amount: 60, phase: 'release' },
        { account: merchant, direction: 'credit', amount: 60, phase: 'release' },
        { account: wallet, direction: 'debit', amount: 60, phase: 'posted' },
        { account: merchant, direction: 'credit', amount: 60, phase: 'posted' },
      ],
    }));
    expect(outcome).toEqual({ stage: 'statement', code: 'PN005' });
    expect(await entryCount(id)).toBe(0);
    expect(await holdStatus(hold)).toBe('pending');
    expect(await balancesOf(wallet)).toEqual(balances({ creditsPosted: 500n, debitsPending: 100n }));
  });

  it("refuses (PN005) a 'hold_post' that posts more than the hold holds", async () => {
    const { wallet, merchant, hold } = await openHold(100);
    const id = newEntryId();
    const outcome = await attempt((client) => insertRawEntry(client, {
      id,
      kind: 'hold_post',
      holdEntryId: hold,
      legs: [
        { account: wallet, direction: 'debit', amount: 100, phase: 'release' },
        { account: merchant, direction: 'credit', amount: 100, phase: 'release' },
        { account: wallet, direction: 'debit', amount: 150, phase: 'posted' },
        { account: merchant, direction: 'credit', amount: 150, phase: 'posted' },
      ],
    }));
    expect(outcome).toEqual({ stage: 'statement', code: 'PN005' });
    expect(await entryCount(id)).toBe(0);
    expect(await holdStatus(hold)).toBe('pending');
  });

  it('refuses (PN005) release postings added to a valid void by a later statement of its transaction', async () => {
    const { wallet, merchant, hold } = await openHold(100);
    const id = newEntryId();
    const releaseAgain = [
      { account: wallet, direction: 'debit' as const, amount: 100, phase: 'release' as const },
      { account: merchant, direction: 'credit' as const, amount: 100, phase: 'release' as const },
    ];
    const outcome = await attempt(async (client) => {
      await insertRawEntry(client, { id, kind: 'hold_void', holdEntryId: hold, legs: releaseAgain });
      await insertRawPostings(client, id, releaseAgain);
    });
    expect(outcome).toEqual({ stage: 'statement', code: 'PN005' });
    expect(await entryCount(id)).toBe(0);
    expect(await holdStatus(hold)).toBe('pending');
    expect(await balancesOf(wallet)).toEqual(balances({ creditsPosted: 500n, debitsPending: 100n }));
  });

  it('refuses (PN006) postings added to a valid reversal by a later statement of its transaction', async () => {
    const cash = await openAccount('asset');
    const wallet = await openAccount('liability');
    const original = await fund(cash, wallet, 100);
    const id = newEntryId();
    const outcome = await attempt(async (client) => {
      await insertRawEntry(client, {
        id,
        kind: 'reversal',
        reversesEntryId: original.id,
        legs: [
          { account: cash, direction: 'credit', amount: 100 },
          { account: wallet, direction: 'debit', amount: 100 },
        ],
      });
      await insertRawPostings(client, id, [
        { account: cash, direction: 'debit', amount: 999 },
        { account: wallet, direction: 'credit', amount: 999 },
      ]);
    });
    expect(outcome).toEqual({ stage: 'statement', code: 'PN006' });
    expect(await entryCount(id)).toBe(0);
    expect(await balancesOf(cash)).toEqual(balances({ debitsPosted: 100n }));
  });

  it('refuses (PN005) a resolution of an entry that is not a hold', async () => {
    const cash = await openAccount('asset');
    const wallet = await openAccount('liability');
    const standard = await fund(cash, wallet, 100);
    const id = newEntryId();
    const outcome = await attempt((client) => insertRawEntry(client, {
      id,
      kind: 'hold_void',
      holdEntryId: standard.id,
      legs: [
        { account: cash, direction: 'debit', amount: 100, phase: 'release' },
        { account: wallet, direction: 'credit', amount: 100, phase: 'release' },
      ],
    }));
    expect(outcome).toEqual({ stage: 'statement', code: 'PN005' });
    expect(await entryCount(id)).toBe(0);
  });

  it('refuses a second resolution of the same hold (unique violation 23505)', async () => {
    const { wallet, merchant, hold } = await openHold(100);
    await penny.ledger.voidHold(hold);
    const id = newEntryId();
    const outcome = await attempt((client) => insertRawEntry(client, {
      id,
      kind: 'hold_void',
      holdEntryId: hold,
      legs: [
        { account: wallet, direction: 'debit', amount: 100, phase: 'release' },
        { account: merchant, direction: 'credit', amount: 100, phase: 'release' },
      ],
    }));
    expect(outcome).toEqual({ stage: 'statement', code: '23505' });
    expect(await entryCount(id)).toBe(0);
    expect(await holdStatus(hold)).toBe('voided');
    expect(await balancesOf(wallet)).toEqual(balances({ creditsPosted: 500n }));
  });
});
