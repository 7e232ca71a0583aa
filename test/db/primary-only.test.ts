import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type RunningPostgres } from '../../src/db/embedded-postgres.js';
import { migrate } from '../../src/db/migrate.js';
import { createClient, createPool, ensureDatabase, withDatabase, withTransaction } from '../../src/db/pool.js';
import { DatabaseUnavailableError, isDatabaseUnavailable } from '../../src/db/primary.js';
import { freePort } from '../global-setup.js';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';
import { createTestDatabase } from '../support/database.js';

/**
 * Penny through a failover, client side (issue 23), on real PostgreSQL: a primary, and a standby
 * made without pg_basebackup (a clean copy of the primary's data directory with standby.signal and
 * no primary_conninfo, so it stays in recovery, read-only, for ever). Both are the embedded
 * binaries, on ports of their own, removed at the end.
 */
const run = promisify(execFile);
const database = 'penny';

interface Cluster {
  primary: RunningPostgres;
  readonly standby: RunningPostgres;
  readonly primaryDirectory: string;
  readonly primaryPort: number;
  readonly standbyPort: number;
  readonly scratch: string;
}

let cluster: Cluster;

async function startCluster(): Promise<Cluster> {
  const scratch = await fs.mkdtemp(path.join('/var/tmp', 'penny-primary-only-'));
  await fs.chmod(scratch, 0o755);
  const primaryDirectory = path.join(scratch, 'primary');
  const standbyDirectory = path.join(scratch, 'standby');
  const primaryPort = await freePort();
  const standbyPort = await freePort();
  const first = await startEmbeddedPostgres({ directory: primaryDirectory, port: primaryPort });
  await ensureDatabase(first.serverUrl, database);
  await migrate(withDatabase(first.serverUrl, database));
  await first.stop('fast');
  // A clean shutdown's copy is consistent at once; standby.signal keeps it in recovery.
  await run('cp', ['-a', first.dataDirectory, standbyDirectory]);
  const signal = path.join(standbyDirectory, 'standby.signal');
  await fs.writeFile(signal, '');
  const owner = await fs.stat(standbyDirectory);
  await fs.chown(signal, owner.uid, owner.gid);
  await fs.appendFile(path.join(standbyDirectory, 'postgresql.conf'), '\nhot_standby = on\n');
  const primary = await startEmbeddedPostgres({ directory: primaryDirectory, port: primaryPort });
  const standby = await startEmbeddedPostgres({ directory: standbyDirectory, port: standbyPort });
  return { primary, standby, primaryDirectory, primaryPort, standbyPort, scratch };
}

function url(...ports: number[]): string {
  return `postgres://postgres@${ports.map((port) => `127.0.0.1:${port}`).join(',')}/${database}` +
    '?target_session_attrs=read-write';
}

const pools: pg.Pool[] = [];
function poolOn(connectionString: string): pg.Pool {
  const pool = createPool({ connectionString, sizeMax: 2, applicationName: 'penny-test' });
  pools.push(pool);
  return pool;
}

beforeAll(async () => {
  cluster = await startCluster();
}, 240_000);

afterAll(async () => {
  await Promise.all(pools.map((pool) => pool.end().catch(() => undefined)));
  await cluster?.standby.stop('immediate').catch(() => undefined);
  await cluster?.primary.stop('immediate').catch(() => undefined);
  if (cluster !== undefined) await fs.rm(cluster.scratch, { recursive: true, force: true });
}, 60_000);

describe('finding the writable primary', () => {
  it('the cluster: the primary is writable, the copy with standby.signal stays in recovery', async () => {
    const recovery = async (port: number) => {
      const client = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/${database}` });
      await client.connect();
      try {
        return (await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]?.r;
      } finally {
        await client.end();
      }
    };
    expect(await recovery(cluster.primaryPort)).toBe(false);
    expect(await recovery(cluster.standbyPort)).toBe(true);
  });

  it('a URL listing the standby first connects to the primary, and writes succeed there', async () => {
    const pool = poolOn(url(cluster.standbyPort, cluster.primaryPort));
    await pool.query('CREATE TABLE IF NOT EXISTS primary_only_probe (note text)');
    await pool.query("INSERT INTO primary_only_probe VALUES ('written')");
    const where = await pool.query<{ port: number; recovery: boolean }>(
      'SELECT inet_server_port() AS port, pg_is_in_recovery() AS recovery');
    expect(where.rows[0]).toEqual({ port: cluster.primaryPort, recovery: false });
  });

  it('a URL listing only the standby is refused at connect with a clear error, never written to', async () => {
    const pool = poolOn(`postgres://postgres@127.0.0.1:${cluster.standbyPort}/${database}`);
    const refused = await pool.query('SELECT 1').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(DatabaseUnavailableError);
    expect((refused as Error).message).toMatch(/no writable PostgreSQL primary: .*is a standby \(in recovery\)/);
  });

  it('a URL whose hosts are all standbys or down is refused, naming each host', async () => {
    const deadPort = await freePort();
    const pool = poolOn(url(cluster.standbyPort, deadPort));
    const refused = await pool.query('SELECT 1').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(DatabaseUnavailableError);
    expect((refused as Error).message).toContain(`127.0.0.1:${cluster.standbyPort} is a standby`);
    expect((refused as Error).message).toContain(`127.0.0.1:${deadPort}:`);
  });

  it('the migration runner refuses a standby', async () => {
    await expect(migrate(`postgres://postgres@127.0.0.1:${cluster.standbyPort}/${database}`))
      .rejects.toThrow(/no writable PostgreSQL primary/);
  });

  it('one-off clients (createClient) go to the primary of a multi-host URL', async () => {
    const client = createClient(url(cluster.standbyPort, cluster.primaryPort));
    await client.connect();
    try {
      const where = await client.query<{ port: number }>('SELECT inet_server_port() AS port');
      expect(where.rows[0]?.port).toBe(cluster.primaryPort);
    } finally {
      await client.end();
    }
  });
});

describe('commits', () => {
  it("a pooled connection's synchronous_commit is on (Penny never lowers it)", async () => {
    const { pool } = await createTestDatabase(1);
    const setting = await pool.query<{ synchronous_commit: string }>('SHOW synchronous_commit');
    expect(setting.rows[0]?.synchronous_commit).toBe('on');
  });

  it('no statement or client-side query timeout can cancel a commit wait', async () => {
    const { pool } = await createTestDatabase(1);
    const setting = await pool.query<{ statement_timeout: string }>('SHOW statement_timeout');
    expect(setting.rows[0]?.statement_timeout).toBe('0');
    const options = (pool as unknown as { options: { query_timeout?: number; statement_timeout?: number } }).options;
    expect(options.query_timeout).toBeUndefined();
    expect(options.statement_timeout).toBeUndefined();
  });
});

describe('in-flight work', () => {
  it('a connection lost before COMMIT fails the transaction as database unavailable, with nothing committed', async () => {
    const { pool } = await createTestDatabase(2);
    await pool.query('CREATE TABLE lost_commit_probe (note text)');
    const failed = await withTransaction(pool, async (client) => {
      await client.query("INSERT INTO lost_commit_probe VALUES ('never')");
      const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
      // Its server goes away under it, as a primary does when it is killed.
      await pool.query('SELECT pg_terminate_backend($1)', [pid]);
    }).catch((error: unknown) => error);
    expect(isDatabaseUnavailable(failed)).toBe(true);
    const rows = await pool.query('SELECT count(*)::int AS n FROM lost_commit_probe');
    expect(rows.rows[0]).toEqual({ n: 0 });
  });
});

describe('while no primary is writable', () => {
  let penny: ServedLedger;

  beforeAll(async () => {
    const connectionString = url(cluster.standbyPort, cluster.primaryPort);
    penny = await serveTestLedger({ database: { url: connectionString, pool: poolOn(connectionString) } });
  }, 120_000);

  async function restartPrimary(): Promise<void> {
    cluster.primary = await startEmbeddedPostgres({ directory: cluster.primaryDirectory, port: cluster.primaryPort });
  }

  it('a mutating request gets 503 database_unavailable, then succeeds once the primary is back', async () => {
    const before = await penny.request({ method: 'POST', url: '/v1/ledger/accounts',
      body: { currency: 'USD', type: 'asset' } });
    expect(before.status).toBe(200);

    await cluster.primary.stop('immediate');
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const during = await penny.request({ method: 'POST', url: '/v1/ledger/accounts',
        body: { currency: 'USD', type: 'asset' } });
      expect(during.status).toBe(503);
      expect(during.headers['retry-after']).toBe('1');
      expect(during.body).toEqual({ error: { type: 'api_error', code: 'database_unavailable',
        message: expect.stringContaining('Retry the request with the same Idempotency-Key') } });
    }

    await restartPrimary();
    const after = await penny.request({ method: 'POST', url: '/v1/ledger/accounts',
      body: { currency: 'USD', type: 'asset' } });
    expect(after.status).toBe(200);
    const found = await penny.request({ method: 'GET', url: `/v1/ledger/accounts/${after.body.id as string}` });
    expect(found.status).toBe(200);
  }, 120_000);

  it('a payment refused with 503 while the primary is down is created once when retried with its key', async () => {
    const merchant = await penny.merchants.createMerchant('Failover Shop');
    const stripe = penny.stripeFor(merchant.secretKey);
    const params = { amount: 2500, currency: 'usd', payment_method: 'pm_card_visa', confirm: true } as const;
    await stripe.paymentIntents.list({ limit: 1 });

    await cluster.primary.stop('immediate');
    const refused = await stripe.paymentIntents.create(params, { idempotencyKey: 'failover-1' })
      .catch((error: unknown) => error);
    expect(refused).toMatchObject({ statusCode: 503, type: 'StripeAPIError', code: 'database_unavailable' });

    await restartPrimary();
    const created = await stripe.paymentIntents.create(params, { idempotencyKey: 'failover-1' });
    expect(created.status).toBe('succeeded');
    const replayed = await stripe.paymentIntents.create(params, { idempotencyKey: 'failover-1' });
    expect(replayed.id).toBe(created.id);
    const listed = await stripe.paymentIntents.list({ limit: 10 });
    expect(listed.data.filter((intent) => intent.amount === 2500)).toHaveLength(1);
  }, 120_000);
});
