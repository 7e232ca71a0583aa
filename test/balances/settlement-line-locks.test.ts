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

  it('are taken in the order given: waiting on one, it holds those before it and none after', async () => {
    const holder = await database.pool.connect();
    const waiter = await database.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT pg_advisory_xact_lock(hashtext('penny:settlement_line:sandbox:pa_order_mm'))`);
      await waiter.query('BEGIN');
      const waiterPid = (await waiter.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
      const locking = lockSettlementReferences(waiter, { connector: 'sandbox',
        references: ['ch_order_aa', 'pa_order_mm', 'pa_order_zz'] });
      await waitUntilWaitingOnLock(waiterPid as number);
      expect(await free('sandbox', 'ch_order_aa')).toBe(false);
      expect(await free('sandbox', 'pa_order_zz')).toBe(true);
      await holder.query('COMMIT');
      await locking;
      expect(await free('sandbox', 'pa_order_zz')).toBe(false);
      await waiter.query('COMMIT');
    } finally {
      holder.release();
      waiter.release();
    }
  });
});

async function waitUntilWaitingOnLock(pid: number): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const result = await database.pool.query<{ waiting: boolean }>(
      `SELECT wait_event_type = 'Lock' AS waiting FROM pg_stat_activity WHERE pid = $1`, [pid]);
    if (result.rows[0]?.waiting === true) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`backend ${pid} never waited on a lock`);
}
