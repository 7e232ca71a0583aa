import path from 'node:path';
import type { Logger } from 'pino';
import type { PennyConfig } from '../config.js';
import { startEmbeddedPostgres } from './embedded-postgres.js';
import { ensureDatabase, withDatabase } from './pool.js';

export interface OpenDatabase {
  readonly url: string;
  readonly embedded: boolean;
  close(): Promise<void>;
}

export const embeddedDatabaseName = 'penny';

/**
 * DATABASE_URL when set; otherwise the embedded PostgreSQL in PENNY_PG_DIR. `ownsServer` says
 * whether closing stops an embedded server that was already running (serve does; a one-off
 * command leaves running what it found running).
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
  const stop = options.ownsServer || server.startedHere;
  return {
    url: withDatabase(server.serverUrl, embeddedDatabaseName),
    embedded: true,
    close: async () => { if (stop) await server.stop(); },
  };
}
