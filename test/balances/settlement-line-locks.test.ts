import { beforeAll, describe, expect, it } from 'vitest';
import { lockSettlementReferences } from '../../src/balances/settlement-line-store.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * A capture's booking and a settlement pull serialize on the PSP references they share: one
 * statement takes the lock of every reference given, for the rest of the caller's transaction.
 */
let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase(4);
});

/** Whether another connection could take the reference's lock now (it releases it at once). */
async function free(connector: string, reference: string): Promise<boolean> {
  const result = await database.pool.query<{ locked: boolean }>(
    `SELECT pg_try_advisory_xact_lock(hashtext('penny:settlement_line:' || $1 || ':' || $2)) AS locked`,
    [connector, reference]);
  return result.rows[0]?.locked === true;
}

describe('the settlement references\' locks', () => {
  it('are every reference given, held until the transaction ends', async () => {
    const references = ['ch_locks0001', 'pa_locks0001', 'pa_locks0002'];
    const client = await database.pool.connect();
    try {
      await client.query('BEGIN');
      await lockSettlementReferences(client, { connector: 'sandbox', references });
      for (const reference of references) expect(await free('sandbox', reference)).toBe(false);
      expect(await free('sandbox', 'pa_locks0003')).toBe(true);
      expect(await free('adyen', 'pa_locks0001')).toBe(true);
      await client.query('COMMIT');
      for (const reference of references) expect(await free('sandbox', reference)).toBe(true);
    } finally {
      client.release();
    }
  });
});
