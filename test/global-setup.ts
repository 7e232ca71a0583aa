import fs from 'node:fs/promises';
import net from 'node:net';

import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres, type RunningPostgres } from '../src/db/embedded-postgres.js';
import { migrate } from '../src/db/migrate.js';
import { createClient, quoteIdentifier, withDatabase } from '../src/db/pool.js';

/**
 * Starts one real PostgreSQL for the whole run (embedded, or TEST_DATABASE_URL), migrates a
 * template database once, and hands its URL to the test files; each file clones its own database
 * from the template (test/support/database.ts), so files run in parallel without sharing state.
 */
export const templateDatabase = `penny_template_${process.pid}`;

let embedded: RunningPostgres | undefined;
let scratchDirectory: string | undefined;
let serverUrl = '';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.TEST_DATABASE_URL;
  if (external) {
    serverUrl = external;
  } else {
    scratchDirectory = await fs.mkdtemp(path.join('/var/tmp', 'penny-test-'));
    await fs.chmod(scratchDirectory, 0o755);
    embedded = await startEmbeddedPostgres({
      directory: path.join(scratchDirectory, 'postgres'),
      port: await freePort(),
    });
    serverUrl = embedded.serverUrl;
  }
  await recreateDatabase(serverUrl, templateDatabase);
  await migrate(withDatabase(serverUrl, templateDatabase));
  project.provide('serverUrl', serverUrl);
  project.provide('templateDatabase', templateDatabase);
  return teardown;
}

async function teardown(): Promise<void> {
  if (embedded !== undefined) await embedded.stop();
  if (scratchDirectory !== undefined) await fs.rm(scratchDirectory, { recursive: true, force: true });
  if (embedded === undefined) await dropTestDatabases(serverUrl);
}

async function recreateDatabase(url: string, database: string): Promise<void> {
  const client = createClient(url);
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(database)}`);
    await client.query(`CREATE DATABASE ${quoteIdentifier(database)}`);
  } finally {
    await client.end();
  }
}

/** On a shared external server, remove what this run created. */
async function dropTestDatabases(url: string): Promise<void> {
  const client = createClient(url);
  await client.connect();
  try {
    const found = await client.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname LIKE $1 OR datname = $2`,
      [`penny_test_${process.pid}_%`, templateDatabase],
    );
    for (const row of found.rows) {
      await client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(row.datname)} WITH (FORCE)`);
    }
  } finally {
    await client.end();
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

declare module 'vitest' {
  export interface ProvidedContext {
    serverUrl: string;
    templateDatabase: string;
  }
}


