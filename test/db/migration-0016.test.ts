import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { listMigrationFiles, migrate } from '../../src/db/migrate.js';
import { createPool, ensureDatabase, withDatabase } from '../../src/db/pool.js';
import { sealPending } from '../../src/ledger/ledger-sealer.js';
import { LedgerService } from '../../src/ledger/ledger-service.js';
import type { CreateEntryCommand } from '../../src/ledger/ledger-types.js';
import { verifyLedger } from '../../src/ledger/ledger-verify.js';

/**
 * Upgrading a ledger that has data: 0016 replaces the per-account balance deltas and the per-entry
 * seal queue with one row per posting statement. A ledger written under 0015, with deltas partly
 * folded and nothing sealed, must keep every balance and seal every entry after the upgrade.
 */
const migrationsBefore0016 = 15;

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

describe('migration 0016 on a ledger written under 0015', () => {
  const name = `penny_test_${inject('templateDatabase').split('_').at(-1)}_upgrade_${randomBytes(6).toString('hex')}`;
  const url = withDatabase(inject('serverUrl'), name);
  const pool = createPool({ connectionString: url, sizeMax: 4 });
  afterAll(async () => {
    await pool.end();
  });

  it('keeps every balance, folds every old delta, and queues every unsealed entry for the sealer', async () => {
    expect((await listMigrationFiles())[migrationsBefore0016]).toMatch(/^0016_/);
    await ensureDatabase(inject('serverUrl'), name);
    await migrate(url, undefined, { count: migrationsBefore0016 });
    const ledger = new LedgerService(pool);
    const open = async (type: 'asset' | 'liability') => (await ledger.createAccount({
      currency: 'USD', type, code: undefined, owner: undefined, metadata: {}, limit: undefined,
    })).id;
    const [cash, wallet, merchant] = [await open('asset'), await open('liability'), await open('liability')];
    const funding = Array.from({ length: 30 }, (_, index) => transfer(cash, wallet, BigInt(100 + index)));
    await ledger.createEntryBatch(funding);
    for (let index = 0; index < 5; index += 1) await ledger.createEntry(transfer(wallet, merchant, 7n));
    const hold = await ledger.createEntry(transfer(wallet, merchant, 40n, true));
    await pool.query('SELECT ledger_compact_balances(3)');
    const before = await pool.query('SELECT * FROM ledger_current_balances ORDER BY account_id');
    const deltasLeft = await pool.query<{ count: bigint }>('SELECT count(*) AS count FROM ledger_balance_deltas');
    expect(deltasLeft.rows[0]?.count).toBeGreaterThan(0n);

    await migrate(url);

    expect((await pool.query('SELECT * FROM ledger_current_balances ORDER BY account_id')).rows).toEqual(before.rows);
    expect((await pool.query('SELECT 1 FROM ledger_balance_changes')).rows).toEqual([]);
    const queued = await pool.query<{ entries: bigint }>(
      'SELECT sum(cardinality(entry_ids)) AS entries FROM ledger_unsealed_statements');
    expect(queued.rows[0]?.entries).toBe(36n);

    // The upgraded ledger writes, resolves holds, compacts and seals as a new one does.
    await ledger.createEntry(transfer(cash, merchant, 1n));
    await ledger.postHold(hold.entries[0]?.id as string, 25n);
    expect(await ledger.compactBalances()).toBe(2);
    expect((await sealPending(pool, {})).sealed).toBe(38);
    const report = await verifyLedger(pool);
    expect(report.failures).toEqual([]);
    expect(report.head?.position).toBe('38');
    expect((await ledger.getAccount(merchant)).balances).toEqual({
      debitsPosted: 0n, creditsPosted: 35n + 1n + 25n, debitsPending: 0n, creditsPending: 0n,
    });
  });
});
