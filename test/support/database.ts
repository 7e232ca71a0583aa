import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { afterAll, inject } from 'vitest';
import { createClient, createPool, quoteIdentifier, withDatabase } from '../../src/db/pool.js';

export interface TestDatabase {
  readonly url: string;
  readonly pool: pg.Pool;
}

/**
 * A fresh database for the calling test file, cloned from the migrated template. The pool is
 * closed after the file's tests; the database is dropped with the server at the end of the run.
 */
export async function createTestDatabase(poolSizeMax = 10): Promise<TestDatabase> {
  const serverUrl = inject('serverUrl');
  const template = inject('templateDatabase');
  const name = `penny_test_${template.split('_').at(-1)}_${randomBytes(6).toString('hex')}`;
  const admin = createClient(serverUrl);
  await admin.connect();
  try {
    await cloneTemplate(admin, name, template);
  } finally {
    await admin.end();
  }
  const url = withDatabase(serverUrl, name);
  const pool = createPool({ connectionString: url, sizeMax: poolSizeMax });
  afterAll(async () => {
    await pool.end();
  });
  return { url, pool };
}

/** Concurrent clones of one template can collide ("source database is being accessed"); retry. */
async function cloneTemplate(admin: pg.Client, name: string, template: string): Promise<void> {
  const attemptsMax = 50;
  for (let attempt = 1; ; attempt += 1) {
    try {
      await admin.query(`CREATE DATABASE ${quoteIdentifier(name)} TEMPLATE ${quoteIdentifier(template)}`);
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== '55006' || attempt >= attemptsMax) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 100));
    }
  }
}
