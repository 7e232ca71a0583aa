import { describe, expect, it } from 'vitest';
import { listMigrationFiles, migrate, migrationsTable } from '../../src/db/migrate.js';
import { createTestDatabase } from '../support/database.js';

describe('migrations', () => {
  it('are all applied to a fresh database cloned from the template', async () => {
    const database = await createTestDatabase();
    const applied = await database.pool.query<{ name: string }>(
      `SELECT name FROM ${migrationsTable} ORDER BY name`,
    );
    expect(applied.rows.map((row) => row.name)).toEqual(await listMigrationFiles());
  });

  it('run once when two processes start at the same moment', async () => {
    const database = await createTestDatabase();
    const results = await Promise.all([migrate(database.url), migrate(database.url)]);
    expect(results.flatMap((result) => result.applied)).toEqual([]);
  });
});
