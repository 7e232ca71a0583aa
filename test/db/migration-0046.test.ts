import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { listMigrationFiles, migrate } from '../../src/db/migrate.js';
import { createPool, ensureDatabase, withDatabase } from '../../src/db/pool.js';
import { LedgerService } from '../../src/ledger/ledger-service.js';
import type { CreateEntryCommand } from '../../src/ledger/ledger-types.js';
import { verifyLedger } from '../../src/ledger/ledger-verify.js';

/**
 * Upgrading a ledger that has data: 0046 widens the balance rows' totals and the change rows'
 * sums from BIGINT to NUMERIC. A ledger written under 0045, partly compacted, keeps every balance,
 * and the upgraded one posts and compacts past 2^63-1.
 */
function transfer(debit: string, credit: string, amountMinor: bigint, pending = false): CreateEntryCommand {
  const reference = `upgrade-${randomBytes(6).toString('hex')}`;
  return {
    externalReference: reference, requestFingerprint: reference, description: undefined, metadata: {},
    effectiveAt: undefined, pending, expiresAt: undefined,
    postings: [
      { account: debit, direction: 'debit', amountMinor, currency: undefined, mustNotOverdraw: false },
      { account: credit, direction: 'credit', amountMinor, currency: undefined, mustNotOverdraw: false },
    ],
  };
}

describe('migration 0046 on a ledger written under 0045', () => {
  const name = `penny_test_${inject('templateDatabase').split('_').at(-1)}_upgrade_${randomBytes(6).toString('hex')}`;
  const url = withDatabase(inject('serverUrl'), name);
  const pool = createPool({ connectionString: url, sizeMax: 4 });
  afterAll(async () => {
    await pool.end();
  });

  it('keeps every balance, folded or not, and then compacts totals past 2^63-1', async () => {
    // The files before 0046 (numbers have gaps: there is no 0034).
    const migrationsBefore0046 = (await listMigrationFiles()).findIndex((file) => file.startsWith('0046_'));
    expect(migrationsBefore0046).toBeGreaterThan(0);
    await ensureDatabase(inject('serverUrl'), name);
    await migrate(url, undefined, { count: migrationsBefore0046 });
    const ledger = new LedgerService(pool);
    const open = async (type: 'asset' | 'liability') => (await ledger.createAccount({
      currency: 'USD', type, code: undefined, owner: undefined, metadata: {}, limit: undefined,
    })).id;
    const [cash, wallet] = [await open('asset'), await open('liability')];
    const max = BigInt(Number.MAX_SAFE_INTEGER);
    await ledger.createEntryBatch(Array.from({ length: 20 }, () => transfer(cash, wallet, max)));
    for (let index = 0; index < 5; index += 1) await ledger.createEntry(transfer(cash, wallet, 7n));
    await ledger.createEntry(transfer(cash, wallet, 40n, true));
    await pool.query('SELECT ledger_compact_balances(3)');
    const before = await pool.query('SELECT * FROM ledger_current_balances ORDER BY account_id');
    expect((await pool.query('SELECT 1 FROM ledger_balance_changes')).rows.length).toBeGreaterThan(0);

    await migrate(url);

    expect((await pool.query('SELECT * FROM ledger_current_balances ORDER BY account_id')).rows).toEqual(before.rows);
    // 1,100 more maximal postings a side: past 2^63-1 in all, and the compactor folds them.
    for (let index = 0; index < 11; index += 1) {
      await ledger.createEntryBatch(Array.from({ length: 100 }, () => transfer(cash, wallet, max)));
    }
    let folded = 1;
    while (folded > 0) folded = await ledger.compactBalances();
    expect((await pool.query('SELECT 1 FROM ledger_balance_changes')).rows).toEqual([]);
    const debits = 1120n * max + 35n;
    expect(debits).toBeGreaterThan(2n ** 63n - 1n);
    expect((await ledger.getAccount(cash)).balances).toEqual({
      debitsPosted: debits, creditsPosted: 0n, debitsPending: 40n, creditsPending: 0n,
    });
    expect((await verifyLedger(pool)).failures).toEqual([]);
  });
});
