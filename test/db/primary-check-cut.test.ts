import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../src/db/pool.js';
import { createTestDatabase } from '../support/database.js';
import { CuttingProxy } from '../support/cutting-proxy.js';

/**
 * A new connection is checked with `SELECT pg_is_in_recovery()` before the pool has a listener
 * on it. Found by the long run (issue 21): a database restart that cut a connection during that
 * check emitted an 'error' nobody listened to, and Node ended the process. Here a proxy resets
 * the connection exactly when the check is sent.
 */
describe('a connection cut while it is checked for the primary', () => {
  let proxy: CuttingProxy;
  let proxyUrl: string;

  beforeAll(async () => {
    const database = await createTestDatabase(1);
    ({ proxy, url: proxyUrl } = await CuttingProxy.start(database.url, (chunk) => chunk.includes('pg_is_in_recovery')));
  });

  afterAll(async () => {
    await proxy.close();
  });

  it('fails that connection with an error and leaves the process running', async () => {
    const pool = createPool({ connectionString: proxyUrl, sizeMax: 1 });
    const uncaught: Error[] = [];
    const record = (error: Error) => uncaught.push(error);
    // Vitest turns an uncaught exception into a failed run; recording it names the cause here.
    process.prependListener('uncaughtException', record);
    try {
      const failure = await pool.query('SELECT 1').then(() => undefined, (error: Error) => error);
      expect(failure).toBeInstanceOf(Error);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(proxy.cuts).toBe(1);
      expect(uncaught).toEqual([]);
    } finally {
      process.removeListener('uncaughtException', record);
      await pool.end();
    }
  });
});
