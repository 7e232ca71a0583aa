import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import type pg from 'pg';
import type { Logger } from 'pino';
import { createClient, type Queryable } from './pool.js';

/**
 * Forward-only SQL migrations run by node-pg-migrate, which holds a PostgreSQL advisory lock while
 * it runs them (we wait for it, so two Penny processes starting at once apply each file once).
 */
const here = path.dirname(fileURLToPath(import.meta.url));
/** The .sql files live in src/db/migrations; from dist/src/db we reach back to them. */
export const migrationsDirectory = path.resolve(here, '..', '..', '..', 'src', 'db', 'migrations');
export const migrationsTable = 'penny_migrations';

export interface MigrationResult {
  readonly applied: string[];
}

/** `count` stops after that many pending files (tests of an upgrade from an older schema). */
export async function migrate(
  databaseUrl: string,
  logger?: Logger,
  options: { count?: number } = {},
): Promise<MigrationResult> {
  // Our own connection, so the migrations too run only on the writable primary (a multi-host URL's
  // hosts tried in turn, pg_is_in_recovery() checked); the runner leaves a client it was given open.
  const client = createClient(databaseUrl, { application_name: 'penny-migrate' });
  await client.connect();
  try {
    return await runMigrations(client, logger, options);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function runMigrations(
  client: pg.Client,
  logger: Logger | undefined,
  options: { count?: number },
): Promise<MigrationResult> {
  const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
  const ran = await runner({
    dbClient: client,
    dir: await resolveMigrationsDirectory(),
    direction: 'up',
    ...(options.count === undefined ? {} : { count: options.count }),
    migrationsTable,
    checkOrder: true,
    singleTransaction: true,
    advisoryLockMode: 'wait',
    logger: logger
      ? {
        debug: () => undefined,
        info: (message: string) => logger.debug(message),
        warn: (message: string) => logger.warn(message),
        error: (message: string) => logger.error(message),
      }
      : silent,
  });
  return { applied: ran.map((migration) => migration.name) };
}

async function resolveMigrationsDirectory(): Promise<string> {
  // Running from TypeScript sources (tests), `here` is src/db itself.
  const fs = await import('node:fs/promises');
  const besideSources = path.join(here, 'migrations');
  const found = await fs.stat(besideSources).then(() => true, () => false);
  return found ? besideSources : migrationsDirectory;
}

/** Names of the migration files on disk, to compare with what the database has applied. */
export async function listMigrationFiles(): Promise<string[]> {
  const fs = await import('node:fs/promises');
  const files = await fs.readdir(await resolveMigrationsDirectory());
  return files.filter((file) => file.endsWith('.sql')).map((file) => file.replace(/\.sql$/, '')).sort();
}

/** Names of the migrations the database has applied (node-pg-migrate's own table). */
export async function appliedMigrationNames(db: Queryable): Promise<string[]> {
  const applied = await db.query<{ name: string }>(`SELECT name FROM ${migrationsTable}`);
  return applied.rows.map((row) => row.name);
}
