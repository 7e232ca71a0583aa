import path from 'node:path';
import type { Logger } from 'pino';
import type { PennyConfig } from '../config.js';
import { startEmbeddedPostgres } from './embedded-postgres.js';
import type pg from 'pg';
import { createClient, ensureDatabase, withDatabase } from './pool.js';

export interface OpenDatabase {
  readonly url: string;
  readonly embedded: boolean;
  close(): Promise<void>;
}

export const embeddedDatabaseName = 'penny';

/**
 * DATABASE_URL when set; otherwise the embedded PostgreSQL in PENNY_PG_DIR. `ownsServer` asks to
 * own the embedded server: to stop it on close even if it was already running (serve does, so a
 * server left by a crashed serve is stopped at the next one's exit; a one-off command leaves
 * running what it found running). Ownership is a session advisory lock held on a connection of
 * its own until close, so while one process owns the server, a second (a serve that then fails on
 * a taken port, say) leaves it running instead of stopping it under the first; a crashed owner's
 * lock goes with its connection.
 */
export async function openDatabase(
  config: PennyConfig,
  options: { logger?: Logger | undefined; ownsServer: boolean },
): Promise<OpenDatabase> {
  if (config.databaseUrl !== undefined) {
    return { url: config.databaseUrl, embedded: false, close: async () => undefined };
  }
  const server = await startEmbeddedPostgres({
    directory: config.embeddedPostgresDirectory,
    port: config.embeddedPostgresPort,
    logger: options.logger,
  });
  options.logger?.info({ data_directory: path.resolve(server.dataDirectory), port: server.port },
    'embedded PostgreSQL is running');
  await ensureDatabase(server.serverUrl, embeddedDatabaseName);
  const url = withDatabase(server.serverUrl, embeddedDatabaseName);
  const ownership = options.ownsServer ? await claimOwnership(url) : undefined;
  if (options.ownsServer && ownership === undefined && !server.startedHere) {
    options.logger?.warn({ port: server.port },
      'another Penny process owns this embedded PostgreSQL; this one leaves it running when it stops');
  }
  const stop = ownership !== undefined || server.startedHere;
  return {
    url,
    embedded: true,
    close: async () => {
      await ownership?.end().catch(() => undefined);
      if (stop) await server.stop();
    },
  };
}

/** Any fixed number: the advisory lock that says which process owns the embedded server. */
const ownershipLockId = 7_146_011;

/** The ownership lock on a connection kept open until close; undefined when another process holds it. */
async function claimOwnership(url: string): Promise<pg.Client | undefined> {
  const client = createClient(url, { application_name: 'penny-embedded-owner', keepAlive: true });
  await client.connect();
  const result = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [ownershipLockId]);
  if (result.rows[0]?.locked === true) {
    client.on('error', () => undefined);
    return client;
  }
  await client.end();
  return undefined;
}
