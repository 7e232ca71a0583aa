import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haStatus, haStopNode } from '../../src/ha/ha-cluster.js';
import { haSettingsFrom, postgresBinDirectory, primaryOf } from '../../src/ha/ha-layout.js';
import { runNodeCli, type CliRun } from '../support/cli.js';

/**
 * `penny ha up` and `ha down` for real: Debian's PostgreSQL 15 and pg_auto_failover 2.0 (installed
 * by `ha up` when missing and run as root). Only with PENNY_HA_TEST=1, so that `npm test` never
 * depends on the packages; the cluster gets its own directory and ports, apart from a developer's.
 * Runs the built bin: `npm run build` first (`npm test` does). The nodes' logs are kept in
 * $TMPDIR/penny-ha-test-logs.
 */
const enabled = process.env.PENNY_HA_TEST === '1';
if (!enabled) {
  console.log('test/ha/ha-cluster.test.ts skipped: set PENNY_HA_TEST=1 to build a real pg_auto_failover cluster '
    + '(needs the Debian packages postgresql-15-auto-failover and pg-auto-failover-cli, or root to install them)');
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = path.join(root, 'dist', 'src', 'cli', 'penny.js');
const environment = { ...process.env, PENNY_HA_DIR: '/var/tmp/penny-ha-test', PENNY_HA_PORT_BASE: '55410' };
const settings = haSettingsFrom(environment);
const upTimeoutMs = 300_000;
const keptLogs = path.join(os.tmpdir(), 'penny-ha-test-logs');

function penny(args: string[]): Promise<CliRun> {
  return runNodeCli(bin, args, environment);
}

describe.skipIf(!enabled)('a local pg_auto_failover cluster (penny ha)', () => {
  let up: CliRun;

  beforeAll(async () => {
    await penny(['ha', 'down']);
    up = await penny(['ha', 'up']);
  }, upTimeoutMs);

  afterAll(async () => {
    // The nodes' logs outlive the cluster, to explain a failure.
    await fs.rm(keptLogs, { recursive: true, force: true });
    await fs.cp(settings.directory, keptLogs, { recursive: true, filter: (file) => !/\/node\d$|\/monitor$/.test(file) })
      .catch(() => undefined);
    await penny(['ha', 'down']);
  }, 120_000);

  it('comes up and prints Penny\'s multi-host DATABASE_URL', () => {
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toContain('DATABASE_URL=postgres://penny@127.0.0.1:55411,127.0.0.1:55412,127.0.0.1:55413/penny?');
  });

  it('has one primary and two secondaries, with number_sync_standbys=1', async () => {
    const status = await haStatus(settings);
    expect(status?.nodes.map((node) => node.reportedState).sort()).toEqual(['primary', 'secondary', 'secondary']);
    expect(status?.settings.numberSyncStandbys).toBe(1);
  });

  it('makes the primary wait for a standby on every commit', async () => {
    const primary = primaryOf((await haStatus(settings))?.nodes ?? []);
    const client = new pg.Client({ host: '127.0.0.1', port: primary?.port, user: 'penny', database: 'penny' });
    await client.connect();
    try {
      const names = await client.query<{ synchronous_standby_names: string }>('SHOW synchronous_standby_names');
      expect(names.rows[0]?.synchronous_standby_names).toMatch(/^ANY 1 \(.+, .+\)$/);
      const commit = await client.query<{ synchronous_commit: string }>('SHOW synchronous_commit');
      expect(commit.rows[0]?.synchronous_commit).toBe('on');
    } finally {
      await client.end();
    }
  });

  it('takes a write through the URI, on the primary, as the owner of the penny database', async () => {
    const url = /DATABASE_URL=(\S+)/.exec(up.stdout)?.[1] ?? '';
    // libpq (psql) reads the host list and target_session_attrs as the URI means them.
    const { stdout } = await promisify(execFile)(path.join(postgresBinDirectory, 'psql'), [url, '-Atq', '-v',
      'ON_ERROR_STOP=1', '-c', 'CREATE TABLE ha_probe (id int PRIMARY KEY)', '-c', 'INSERT INTO ha_probe VALUES (1)',
      '-c', 'SELECT count(*), pg_is_in_recovery(), current_user FROM ha_probe']);
    expect(stdout.trim()).toBe('1|f|penny');
  });

  it('blocks a write while both standbys are down, and commits it once ha up has started them again', async () => {
    const nodes = (await haStatus(settings))?.nodes ?? [];
    const primary = primaryOf(nodes);
    for (const standby of nodes.filter((node) => node !== primary)) await haStopNode(settings, standby.name, () => {});
    const client = new pg.Client({ host: '127.0.0.1', port: primary?.port, user: 'penny', database: 'penny' });
    await client.connect();
    try {
      const write = client.query('INSERT INTO ha_probe VALUES (2)').then(() => 'committed', (error: Error) => error.message);
      const blockedMs = 10_000;
      expect(await Promise.race([write, sleep(blockedMs).then(() => 'still waiting')])).toBe('still waiting');
      const resumed = await penny(['ha', 'up']);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(resumed.stdout).toContain('the cluster is up');
      expect(await write).toBe('committed');
    } finally {
      await client.end().catch(() => undefined);
    }
  }, upTimeoutMs);

  it('reports a cluster already up when brought up again', async () => {
    const again = await penny(['ha', 'up']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('the cluster was already up');
  }, upTimeoutMs);

  it('goes down without leaving its directory or a process, and does nothing when down again', async () => {
    const down = await penny(['ha', 'down']);
    expect(down.code, down.stderr).toBe(0);
    await expect(fs.access(settings.directory)).rejects.toThrow();
    const { stdout } = await promisify(execFile)('ps', ['-o', 'args=', '-u', settings.user]).catch(() => ({ stdout: '' }));
    expect(stdout.split('\n').filter((line) => line.includes(settings.directory))).toEqual([]);
    const again = await penny(['ha', 'down']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('nothing to do');
  }, 120_000);
});
