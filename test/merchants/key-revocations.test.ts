import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { KeyRevocationListener } from '../../src/merchants/key-revocations.js';
import { MerchantService } from '../../src/merchants/merchant-service.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * A key revoked in one process stops working in another at once, not when the other's key cache
 * (5 s) expires: two MerchantService instances stand for two Penny processes on one database.
 */
const pepper = 'p'.repeat(64);
const logger = createLogger(process.env.PENNY_TEST_LOG_LEVEL ?? 'silent');
/** Well under the cache's 5 s TTL: a key forgotten this fast was forgotten by the notification. */
const forgottenWithinMs = 2_000;
let database: TestDatabase;
const listeners: KeyRevocationListener[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  for (const listener of listeners) await listener.stop();
});

async function listeningProcess(): Promise<MerchantService> {
  const merchants = new MerchantService(database.pool, pepper);
  const listener = new KeyRevocationListener(database.url, merchants, logger);
  listeners.push(listener);
  await listener.start();
  return merchants;
}

async function acceptedWithin(merchants: MerchantService, secretKey: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await merchants.authenticate(secretKey)) === undefined) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

describe('revoked keys across processes', () => {
  it('are refused at once by a process that had the key cached', async () => {
    const revoking = new MerchantService(database.pool, pepper);
    const serving = await listeningProcess();
    const { secretKey, keyId } = await revoking.createMerchant('Two Process Shop');
    expect(await serving.authenticate(secretKey)).toBeDefined();
    await revoking.revokeKey(keyId);
    expect(await acceptedWithin(serving, secretKey, forgottenWithinMs)).toBe(false);
  });

  it('stay accepted from the cache by a process that does not listen (what the listener is for)', async () => {
    const revoking = new MerchantService(database.pool, pepper);
    const deaf = new MerchantService(database.pool, pepper);
    const { secretKey, keyId } = await revoking.createMerchant('Deaf Process Shop');
    expect(await deaf.authenticate(secretKey)).toBeDefined();
    await revoking.revokeKey(keyId);
    expect(await deaf.authenticate(secretKey)).toBeDefined();
  });

  it('are not cached from a read that began before the revocation was heard', async () => {
    const revoking = new MerchantService(database.pool, pepper);
    const { secretKey, keyId } = await revoking.createMerchant('Slow Read Shop');
    // The serving process's reads return 300 ms late: its read of the key starts before the
    // revocation and ends after the process heard of it.
    const slowPool = new Proxy(database.pool, {
      get(target, property, receiver) {
        if (property !== 'query') return Reflect.get(target, property, receiver);
        return async (...args: Parameters<pg.Pool['query']>) => {
          const result = await (target.query as (...a: unknown[]) => Promise<unknown>)(...args);
          await new Promise((resolve) => setTimeout(resolve, 300));
          return result;
        };
      },
    });
    const serving = new MerchantService(slowPool, pepper);
    const inFlight = serving.authenticate(secretKey);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await revoking.revokeKey(keyId);
    serving.forgetKey(keyId);
    expect(await inFlight).toBeDefined();
    expect(await serving.authenticate(secretKey)).toBeUndefined();
  });

  it('are refused at once again after the listening connection was lost and came back', async () => {
    const revoking = new MerchantService(database.pool, pepper);
    const serving = await listeningProcess();
    const { secretKey, keyId } = await revoking.createMerchant('Reconnecting Shop');
    const terminated = await database.pool.query<{ done: boolean }>(
      `SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity
       WHERE datname = current_database() AND query LIKE 'LISTEN %' AND pid <> pg_backend_pid()`);
    expect(terminated.rows.length).toBeGreaterThan(0);
    expect(terminated.rows.every((row) => row.done)).toBe(true);
    // Listening again (about a second later) drops the whole cache, then hears the revocation.
    expect(await serving.authenticate(secretKey)).toBeDefined();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await serving.authenticate(secretKey)).toBeDefined();
    await revoking.revokeKey(keyId);
    expect(await acceptedWithin(serving, secretKey, forgottenWithinMs)).toBe(false);
  });
});
