import { randomBytes } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { listMigrationFiles, migrate, migrationsTable } from '../../src/db/migrate.js';
import { createClient, ensureDatabase, withDatabase } from '../../src/db/pool.js';
import { createTestDatabase } from '../support/database.js';

describe('migrations', () => {
  it('are all applied to a fresh database cloned from the template', async () => {
    const database = await createTestDatabase();
    const applied = await database.pool.query<{ name: string }>(
      `SELECT name FROM ${migrationsTable} ORDER BY name`,
    );
    expect(applied.rows.map((row) => row.name)).toEqual(await listMigrationFiles());
  });

  it('apply each file exactly once when two processes migrate an empty database at once', async () => {
    const name = `penny_test_${inject('templateDatabase').split('_').at(-1)}_empty_${randomBytes(6).toString('hex')}`;
    await ensureDatabase(inject('serverUrl'), name);
    const url = withDatabase(inject('serverUrl'), name);
    const results = await Promise.all([migrate(url), migrate(url)]);
    const files = await listMigrationFiles();
    expect(results.flatMap((result) => result.applied).sort()).toEqual(files);
    const client = createClient(url);
    await client.connect();
    try {
      const rows = await client.query<{ name: string }>(`SELECT name FROM ${migrationsTable} ORDER BY name`);
      expect(rows.rows.map((row) => row.name)).toEqual(files);
    } finally {
      await client.end();
    }
  });
});
