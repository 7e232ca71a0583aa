import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { entryHash, genesisHash, selectCanonicalEntries } from '../../src/ledger/ledger-chain.js';
import { sealPending } from '../../src/ledger/ledger-sealer.js';
import { verifyLedger, type VerifyFailure } from '../../src/ledger/ledger-verify.js';
import { createTestLedger, type TestLedger } from '../support/app.js';

/**
 * Tamper evidence: a superuser who edits rows behind Penny's back (triggers disabled with
 * session_replication_role = replica; the test user is a superuser) must be caught by verifyLedger.
 * Every test tampers, so every test has its own database.
 */
interface Seeded {
  readonly penny: TestLedger;
  readonly cash: string;
  readonly owed: string;
  /** Entry ids in the order they were sealed (position 1 first). */
  readonly sealed: readonly string[];
  readonly head: { readonly position: string; readonly hash: string };
}

async function openAccount(penny: TestLedger, body: Record<string, unknown>): Promise<string> {
  const response = await penny.request({ method: 'POST', url: '/v1/ledger/accounts', body });
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  return response.body.id;
}

function transfers(cash: string, owed: string, count: number, amountBase = 100): Record<string, unknown>[] {
  return Array.from({ length: count }, (_, index) => ({
    external_reference: `entry-${randomBytes(8).toString('hex')}`,
    postings: [
      { account: cash, direction: 'debit', amount: amountBase + index },
      { account: owed, direction: 'credit', amount: amountBase + index },
    ],
  }));
}

async function writeBatch(penny: TestLedger, entries: Record<string, unknown>[]): Promise<string[]> {
  const response = await penny.request({ method: 'POST', url: '/v1/ledger/entries/batch', body: { entries } });
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  return response.body.data.map((entry: { id: string }) => entry.id);
}

/** A fresh ledger with `count` transfers, all sealed. */
async function seededLedger(count = 5): Promise<Seeded> {
  const penny = await createTestLedger();
  const cash = await openAccount(penny, { currency: 'USD', type: 'asset' });
  const owed = await openAccount(penny, { currency: 'USD', type: 'liability' });
  await writeBatch(penny, transfers(cash, owed, count));
  const result = await sealPending(penny.pool, {});
  expect(result.sealed).toBe(count);
  const seals = await penny.pool.query<{ entry_id: string }>(
    'SELECT entry_id FROM ledger_entry_seals ORDER BY position');
  if (result.head === undefined) throw new Error('sealing produced no head');
  return {
    penny, cash, owed,
    sealed: seals.rows.map((row) => row.entry_id),
    head: { position: result.head.position.toString(), hash: result.head.hash },
  };
}

/** Runs statements as a superuser with every trigger disabled (for this transaction only). */
async function behindPennysBack(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<unknown>): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SET LOCAL session_replication_role = replica');
    await work(client);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

function failuresOf(failures: readonly VerifyFailure[], check: VerifyFailure['check']): VerifyFailure[] {
  return failures.filter((failure) => failure.check === check);
}

/** Recomputes every seal with the sealer's own algorithm: what a thorough forger would do. */
async function rewriteChain(client: pg.PoolClient): Promise<void> {
  const seals = await client.query<{ position: bigint; entry_id: string }>(
    'SELECT position, entry_id FROM ledger_entry_seals ORDER BY position');
  const entries = await selectCanonicalEntries(client, seals.rows.map((seal) => seal.entry_id));
  let previous = genesisHash;
  for (const seal of seals.rows) {
    const entry = entries.get(seal.entry_id);
    if (entry === undefined) throw new Error(`missing entry ${seal.entry_id}`);
    const hash = entryHash(previous, entry);
    await client.query('UPDATE ledger_entry_seals SET previous_hash = $1, hash = $2 WHERE position = $3',
      [previous, hash, seal.position.toString()]);
    previous = hash;
  }
}

describe('verifyLedger on an untouched ledger', () => {
  it('reports ok after entries are sealed, with the head position equal to the number of entries', async () => {
    const { penny, head } = await seededLedger(5);
    const report = await verifyLedger(penny.pool);
    expect(report.failures).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.sealsChecked).toBe(5);
    expect(report.head).toEqual({ position: '5', hash: head.hash });
    expect(report.accountsChecked).toBe(2);
  });

  it('still finds an anchor published earlier after more entries are sealed', async () => {
    const { penny, cash, owed, head } = await seededLedger(3);
    await writeBatch(penny, transfers(cash, owed, 4));
    await sealPending(penny.pool, {});
    const report = await verifyLedger(penny.pool, { anchor: head.hash });
    expect(report.failures).toEqual([]);
    expect(report.head?.position).toBe('7');
  });

  it('does not report entries younger than the seal lag limit as unsealed', async () => {
    const { penny, cash, owed } = await seededLedger(2);
    await writeBatch(penny, transfers(cash, owed, 3));
    const report = await verifyLedger(penny.pool);
    expect(report.failures).toEqual([]);
    expect(report.head?.position).toBe('2');
  });
});

describe('verifyLedger catches edits made behind Penny\'s back', () => {
  it('reports a chain failure naming the first sealed entry whose postings were edited', async () => {
    const { penny, sealed } = await seededLedger(5);
    await behindPennysBack(penny.pool, (client) => client.query(
      'UPDATE ledger_postings SET amount_minor = amount_minor + 1 WHERE entry_id = ANY($1::text[])',
      [[sealed[2], sealed[4]]]));
    const report = await verifyLedger(penny.pool);
    expect(report.ok).toBe(false);
    expect(failuresOf(report.failures, 'chain')).toEqual([
      expect.objectContaining({ check: 'chain', entry: sealed[2], position: '3' }),
    ]);
    expect(failuresOf(report.failures, 'entry_balance')).toEqual([]);
  });

  it('reports a stored_balance failure for the accounts whose postings were edited', async () => {
    const { penny, sealed, cash, owed } = await seededLedger(5);
    await behindPennysBack(penny.pool, (client) => client.query(
      'UPDATE ledger_postings SET amount_minor = amount_minor + 1 WHERE entry_id = $1', [sealed[2]]));
    const report = await verifyLedger(penny.pool);
    const accounts = failuresOf(report.failures, 'stored_balance').map((failure) => failure.account).sort();
    expect(accounts).toEqual([cash, owed].sort());
  });

  it("reports a currency failure when an account's currency is edited (accounts are not in the chain)", async () => {
    const { penny, cash } = await seededLedger(2);
    await behindPennysBack(penny.pool, (client) => client.query(
      `UPDATE ledger_accounts SET currency = 'EUR' WHERE id = $1`, [cash]));
    const report = await verifyLedger(penny.pool);
    expect(report.ok).toBe(false);
    expect(failuresOf(report.failures, 'currency')).toEqual([
      expect.objectContaining({ account: cash, message: expect.stringContaining('is in EUR') }),
    ]);
  });

  it('reports an entry_balance failure when one posting of an entry is edited', async () => {
    const { penny, sealed } = await seededLedger(3);
    await behindPennysBack(penny.pool, (client) => client.query(
      `UPDATE ledger_postings SET amount_minor = amount_minor + 1 WHERE entry_id = $1 AND direction = 'debit'`,
      [sealed[1]]));
    const report = await verifyLedger(penny.pool);
    expect(failuresOf(report.failures, 'entry_balance')).toEqual([
      expect.objectContaining({ entry: sealed[1] }),
    ]);
  });

  it("reports a chain failure when an entry's external_reference is edited", async () => {
    const { penny, sealed } = await seededLedger(4);
    await behindPennysBack(penny.pool, (client) => client.query(
      `UPDATE ledger_entries SET external_reference = 'rewritten' WHERE id = $1`, [sealed[1]]));
    const report = await verifyLedger(penny.pool);
    expect(report.ok).toBe(false);
    expect(failuresOf(report.failures, 'chain')).toEqual([
      expect.objectContaining({ entry: sealed[1], position: '2' }),
    ]);
  });

  it("reports a chain failure when an entry's effective_at is edited", async () => {
    const { penny, sealed } = await seededLedger(4);
    await behindPennysBack(penny.pool, (client) => client.query(
      `UPDATE ledger_entries SET effective_at = effective_at - interval '1 microsecond' WHERE id = $1`, [sealed[3]]));
    const report = await verifyLedger(penny.pool);
    expect(report.ok).toBe(false);
    expect(failuresOf(report.failures, 'chain')).toEqual([
      expect.objectContaining({ entry: sealed[3], position: '4' }),
    ]);
  });

  it("reports a failure when a posting's effective_at (which moves as-of balances) is edited", async () => {
    const { penny, sealed, owed } = await seededLedger(4);
    const entry = await penny.request({ method: 'GET', url: `/v1/ledger/entries/${sealed[0]}` });
    const asOf = entry.body.effective_at;
    const before = await penny.request({ method: 'GET', url: `/v1/ledger/accounts/${owed}/balance?as_of=${asOf}` });
    await behindPennysBack(penny.pool, (client) => client.query(
      `UPDATE ledger_postings SET effective_at = effective_at + interval '1 day' WHERE entry_id = $1`, [sealed[0]]));
    const after = await penny.request({ method: 'GET', url: `/v1/ledger/accounts/${owed}/balance?as_of=${asOf}` });
    expect(after.body).not.toEqual(before.body); // the edit changed history as the API reports it
    const report = await verifyLedger(penny.pool);
    expect(report.ok).toBe(false);
    expect(report.failures).toContainEqual(expect.objectContaining({ entry: sealed[0] }));
  });

  it('reports a chain failure when a seal row in the middle is deleted', async () => {
    const { penny, sealed } = await seededLedger(5);
    await behindPennysBack(penny.pool, (client) => client.query(
      'DELETE FROM ledger_entry_seals WHERE position = 3'));
    const report = await verifyLedger(penny.pool);
    expect(report.ok).toBe(false);
    expect(failuresOf(report.failures, 'chain')).toEqual([
      expect.objectContaining({ entry: sealed[3], position: '4', message: expect.stringMatching(/jump/) }),
    ]);
  });

  it('reports an anchor failure when the newest seal is deleted', async () => {
    const { penny, head } = await seededLedger(5);
    await behindPennysBack(penny.pool, (client) => client.query(
      'DELETE FROM ledger_entry_seals WHERE position = 5'));
    const report = await verifyLedger(penny.pool, { anchor: head.hash });
    expect(report.ok).toBe(false);
    expect(failuresOf(report.failures, 'anchor')).toHaveLength(1);
  });

  it('passes the chain check after a full rewrite of the chain, but fails against the published anchor', async () => {
    const { penny, sealed, cash, owed, head } = await seededLedger(5);
    await behindPennysBack(penny.pool, async (client) => {
      await client.query(
        'UPDATE ledger_postings SET amount_minor = amount_minor + 1 WHERE entry_id = $1', [sealed[1]]);
      // A thorough forger also fixes the stored balances, so only the anchor can tell.
      await client.query('UPDATE ledger_account_balances SET debits_posted = debits_posted + 1 WHERE account_id = $1',
        [cash]);
      await client.query('UPDATE ledger_account_balances SET credits_posted = credits_posted + 1 WHERE account_id = $1',
        [owed]);
      await rewriteChain(client);
    });
    const unanchored = await verifyLedger(penny.pool);
    expect(unanchored.failures).toEqual([]);
    expect(unanchored.head?.position).toBe('5');
    expect(unanchored.head?.hash).not.toBe(head.hash);
    const anchored = await verifyLedger(penny.pool, { anchor: head.hash });
    expect(anchored.ok).toBe(false);
    expect(anchored.failures).toEqual([expect.objectContaining({ check: 'anchor' })]);
  });

  it("reports a limit failure when a limited account's stored balance is pushed past its limit", async () => {
    const penny = await createTestLedger();
    const cash = await openAccount(penny, { currency: 'USD', type: 'asset' });
    const wallet = await openAccount(penny,
      { currency: 'USD', type: 'liability', limit: 'debits_must_not_exceed_credits' });
    await writeBatch(penny, transfers(cash, wallet, 1));
    await sealPending(penny.pool, {});
    await behindPennysBack(penny.pool, (client) => client.query(
      'UPDATE ledger_account_balances SET debits_posted = debits_posted + 1000 WHERE account_id = $1', [wallet]));
    const report = await verifyLedger(penny.pool);
    expect(failuresOf(report.failures, 'limit')).toEqual([expect.objectContaining({ account: wallet })]);
  });
});

describe('seal lag', () => {
  it('reports an entry left unsealed longer than the lag limit, until the sealer seals it', async () => {
    const { penny, cash, owed } = await seededLedger(2);
    const client = await penny.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(
        `WITH e AS (
           INSERT INTO ledger_entries (id, external_reference, request_fingerprint, kind, effective_at, created_at)
           VALUES ('lent_oldunsealed1', 'old-unsealed', 'raw', 'standard', now(), now() - interval '1 hour')
           RETURNING id, effective_at
         )
         INSERT INTO ledger_postings (entry_id, account_id, currency, direction, phase, amount_minor, effective_at)
         SELECT e.id, v.account, 'USD', v.direction, 'posted', 100, e.effective_at
         FROM e, (VALUES ($1, 'debit'), ($2, 'credit')) AS v(account, direction)`,
        [cash, owed]);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
    const lagging = await verifyLedger(penny.pool);
    expect(lagging.ok).toBe(false);
    expect(lagging.failures).toEqual([expect.objectContaining({ check: 'seal_lag', message: expect.stringMatching(/^1 entries/) })]);
    await sealPending(penny.pool, {});
    const sealed = await verifyLedger(penny.pool);
    expect(sealed.failures).toEqual([]);
    expect(sealed.head?.position).toBe('3');
  });
});

describe('the seal queue', () => {
  it('seals once an entry whose postings came in two statements of its transaction', async () => {
    const { penny, cash, owed } = await seededLedger(2);
    const client = await penny.pool.connect();
    const columns = 'entry_id, account_id, currency, direction, phase, amount_minor, effective_at';
    try {
      await client.query('BEGIN');
      await client.query(
        `WITH e AS (
           INSERT INTO ledger_entries (id, external_reference, request_fingerprint, kind, effective_at)
           VALUES ('lent_twostatements1', 'two-statements', 'raw', 'standard', now())
           RETURNING id, effective_at
         )
         INSERT INTO ledger_postings (${columns})
         SELECT e.id, v.account, 'USD', v.direction, 'posted', 100, e.effective_at
         FROM e, (VALUES ($1, 'debit'), ($2, 'credit')) AS v(account, direction)`,
        [cash, owed]);
      await client.query(
        `INSERT INTO ledger_postings (${columns})
         SELECT e.id, v.account, 'USD', v.direction, 'posted', 5, e.effective_at
         FROM ledger_entries e, (VALUES ($1, 'debit'), ($2, 'credit')) AS v(account, direction)
         WHERE e.id = 'lent_twostatements1'`,
        [cash, owed]);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    const queued = await penny.pool.query<{ count: bigint }>(
      `SELECT count(*) AS count FROM ledger_unsealed_statements WHERE 'lent_twostatements1' = ANY(entry_ids)`);
    expect(queued.rows[0]?.count).toBe(2n);
    expect((await sealPending(penny.pool, {})).sealed).toBe(1);
    const seals = await penny.pool.query<{ position: bigint }>(
      `SELECT position FROM ledger_entry_seals WHERE entry_id = 'lent_twostatements1'`);
    expect(seals.rows).toEqual([{ position: 3n }]);
    expect((await penny.pool.query('SELECT 1 FROM ledger_unsealed_statements')).rows).toEqual([]);
    const report = await verifyLedger(penny.pool);
    expect(report.failures).toEqual([]);
    expect(report.head?.position).toBe('3');
  });
});

describe('concurrent sealers', () => {
  async function expectOneContiguousChain(penny: TestLedger, count: number): Promise<void> {
    const seals = await penny.pool.query<{ seals: bigint; first: bigint; last: bigint; entries: bigint }>(
      `SELECT count(*) AS seals, min(position) AS first, max(position) AS last,
              count(DISTINCT entry_id) AS entries FROM ledger_entry_seals`);
    expect(seals.rows[0]).toEqual({ seals: BigInt(count), first: 1n, last: BigInt(count), entries: BigInt(count) });
    const waiting = await penny.pool.query('SELECT id FROM ledger_unsealed_statements');
    expect(waiting.rows).toEqual([]);
    const report = await verifyLedger(penny.pool);
    expect(report.failures).toEqual([]);
    expect(report.head?.position).toBe(String(count));
  }

  it('seal 300 committed entries into one contiguous chain in sequence order, without duplicates', async () => {
    const penny = await createTestLedger();
    const cash = await openAccount(penny, { currency: 'USD', type: 'asset' });
    const owed = await openAccount(penny, { currency: 'USD', type: 'liability' });
    for (let batch = 0; batch < 3; batch += 1) await writeBatch(penny, transfers(cash, owed, 100));
    const results = await Promise.all([1, 2, 3, 4].map(() => sealPending(penny.pool, {})));
    expect(results.reduce((total, result) => total + result.sealed, 0)).toBe(300);
    await expectOneContiguousChain(penny, 300);
    const order = await penny.pool.query<{ out_of_order: bigint }>(
      `SELECT count(*) AS out_of_order FROM (
         SELECT e.sequence, lag(e.sequence) OVER (ORDER BY s.position) AS previous
         FROM ledger_entry_seals s JOIN ledger_entries e ON e.id = s.entry_id) t
       WHERE t.previous > t.sequence`);
    expect(order.rows[0]?.out_of_order).toBe(0n);
  });

  it('seal every entry exactly once while writers are still committing', async () => {
    const penny = await createTestLedger();
    const cash = await openAccount(penny, { currency: 'USD', type: 'asset' });
    const owed = await openAccount(penny, { currency: 'USD', type: 'liability' });
    let writing = true;
    const writers = Promise.all([1, 2, 3].map(async () => {
      for (let index = 0; index < 20; index += 1) await writeBatch(penny, transfers(cash, owed, 5));
    })).finally(() => { writing = false; });
    const sealers = Promise.all([1, 2, 3, 4].map(async () => {
      while (writing) {
        await sealPending(penny.pool, {});
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    }));
    await Promise.all([writers, sealers]);
    await sealPending(penny.pool, {});
    await expectOneContiguousChain(penny, 300);
  });
});

describe('the open-holds list', () => {
  it('reports an open hold missing from the list, and a listed entry that is not an open hold', async () => {
    const { penny, cash, owed, sealed } = await seededLedger(2);
    const hold = await penny.request({ method: 'POST', url: '/v1/ledger/entries', body: {
      external_reference: 'listed-hold', pending: true, expires_at: new Date(Date.now() + 3_600_000).toISOString(),
      postings: [{ account: cash, direction: 'debit', amount: 50 }, { account: owed, direction: 'credit', amount: 50 }],
    } });
    expect(hold.status).toBe(200);
    await sealPending(penny.pool, {});
    expect((await verifyLedger(penny.pool)).failures).toEqual([]);
    await penny.pool.query('DELETE FROM ledger_open_holds WHERE entry_id = $1', [hold.body.id]);
    await penny.pool.query(`INSERT INTO ledger_open_holds (entry_id, expires_at) VALUES ($1, now())`, [sealed[0]]);
    const report = await verifyLedger(penny.pool);
    expect(report.ok).toBe(false);
    expect(report.failures).toEqual([
      expect.objectContaining({ check: 'open_holds', entry: hold.body.id, message: expect.stringMatching(/never expire/) }),
      expect.objectContaining({ check: 'open_holds', entry: sealed[0], message: expect.stringMatching(/not an open hold/) }),
    ]);
  });
});
