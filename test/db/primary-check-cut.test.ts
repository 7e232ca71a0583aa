import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../src/db/pool.js';
import { parseDatabaseUrl } from '../../src/database-url.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * A new connection is checked with `SELECT pg_is_in_recovery()` before the pool has a listener
 * on it. Found by the long run (issue 21): a database restart that cut a connection during that
 * check emitted an 'error' nobody listened to, and Node ended the process. Here a proxy resets
 * the connection exactly when the check is sent.
 */
class CheckCuttingProxy {
  private readonly server: net.Server;
  cuts = 0;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((client) => this.accept(client));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', () => resolve()));
    return (this.server.address() as net.AddressInfo).port;
  }

  private accept(client: net.Socket): void {
    const upstream = net.connect(this.target.port, this.target.host);
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    upstream.on('data', (chunk) => client.write(chunk));
    client.on('data', (chunk) => {
      if (chunk.includes('pg_is_in_recovery')) {
        this.cuts += 1;
        client.resetAndDestroy();
        upstream.destroy();
        return;
      }
      upstream.write(chunk);
    });
    client.on('close', () => upstream.destroy());
  }

  async close(): Promise<void> {
    await new Promise((resolve) => this.server.close(resolve));
  }
}

describe('a connection cut while it is checked for the primary', () => {
  let database: TestDatabase;
  let proxy: CheckCuttingProxy;
  let proxyUrl: string;

  beforeAll(async () => {
    database = await createTestDatabase(1);
    // The test server listens on 127.0.0.1 at its port, and on a socket that the proxy cannot sit in.
    const url = new URL(database.url);
    const [host] = parseDatabaseUrl(database.url).hosts;
    proxy = new CheckCuttingProxy({ host: '127.0.0.1', port: host?.port ?? 5432 });
    url.hostname = '127.0.0.1';
    url.port = String(await proxy.listen());
    url.searchParams.delete('host');
    proxyUrl = url.toString();
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
