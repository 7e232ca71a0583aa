import { beforeAll, describe, expect, it } from 'vitest';
import { BalanceAccounts } from '../../src/balances/balance-accounts.js';
import { LedgerService } from '../../src/ledger/ledger-service.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * An owner's ledger accounts are created on first use in the caller's transaction and cached
 * once known to be committed. A transaction that creates them, reads them again, and then rolls
 * back must leave nothing cached: later postings would name accounts that never existed.
 */
let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase(4);
});

async function existing(ids: readonly string[]): Promise<number> {
  const result = await database.pool.query<{ count: bigint }>(
    'SELECT count(*) AS count FROM ledger_accounts WHERE id = ANY($1::text[])', [ids]);
  return Number(result.rows[0]?.count);
}

describe('an owner\'s balance accounts', () => {
  it('are not cached from a transaction that created them and rolled back', async () => {
    const accounts = new BalanceAccounts(new LedgerService(database.pool));
    const key = { ownerId: 'acct_rolledback000000000001', currency: 'USD' };
    const client = await database.pool.connect();
    try {
      await client.query('BEGIN');
      await accounts.accountsFor(client, key);
      // Read again in the same transaction: the rows are visible here, not yet committed.
      await accounts.accountsFor(client, key);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    const again = await accounts.accountsFor(database.pool, key);
    expect(await existing(Object.values(again))).toBe(Object.values(again).length);
  });

  it('are cached once another connection has seen them committed', async () => {
    const accounts = new BalanceAccounts(new LedgerService(database.pool));
    const key = { ownerId: 'acct_committed0000000000001', currency: 'USD' };
    const client = await database.pool.connect();
    let created;
    try {
      await client.query('BEGIN');
      created = await accounts.accountsFor(client, key);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    expect(await accounts.accountsFor(database.pool, key)).toEqual(created);
  });
});
