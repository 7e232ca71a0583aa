import net from 'node:net';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createClient, createPool, tcpKeepaliveIdleMs } from '../../src/db/pool.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * A database connection whose peer's host vanishes (a failover by power cut: no FIN, no RST) is
 * found dead only by TCP keepalive; without it, a pooled connection would wait on it for hours.
 */
describe('database connections', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase(1);
  });

  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('turn TCP keepalive on for every pooled connection', async () => {
    const keepalive = vi.spyOn(net.Socket.prototype, 'setKeepAlive');
    const pool = createPool({ connectionString: database.url, sizeMax: 2 });
    try {
      await pool.query('SELECT 1');
      expect(keepalive).toHaveBeenCalledWith(true, tcpKeepaliveIdleMs);
    } finally {
      await pool.end();
    }
  });

  it('turn TCP keepalive on for a single client', async () => {
    const keepalive = vi.spyOn(net.Socket.prototype, 'setKeepAlive');
    const client = createClient(database.url);
    try {
      await client.connect();
      expect(keepalive).toHaveBeenCalledWith(true, tcpKeepaliveIdleMs);
    } finally {
      await client.end();
    }
  });
});
