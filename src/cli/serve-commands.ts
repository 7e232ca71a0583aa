import type { Command } from 'commander';
import { startPenny } from '../app.js';
import { loadConfig } from '../config.js';
import { openDatabase } from '../db/database.js';
import { migrate } from '../db/migrate.js';
import { createLogger } from '../logger.js';
import { printResult } from './cli-support.js';

export function registerServeCommands(program: Command): void {
  program.command('serve')
    .description('serve the API (and, without DATABASE_URL, an embedded PostgreSQL)')
    .action(serve);

  program.command('migrate')
    .description('apply the database migrations that have not been applied yet')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const config = loadConfig();
      const database = await openDatabase(config, { ownsServer: false });
      try {
        const result = await migrate(database.url);
        const text = result.applied.length === 0
          ? 'The database is up to date; no migration to apply.'
          : `Applied ${result.applied.length} migration(s): ${result.applied.join(', ')}`;
        printResult(options.json === true, { applied: result.applied }, text);
      } finally {
        await database.close();
      }
    });
}

async function serve(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  const penny = await startPenny(config, logger);
  logger.info({ url: `http://${config.host}:${config.port}` }, 'Penny is serving');
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      logger.info({ signal }, 'stopping: finishing in-flight requests');
      const forced = setTimeout(() => process.exit(1), 30_000);
      forced.unref();
      penny.stop().then(resolve, (error: unknown) => {
        logger.error({ err: error }, 'error while stopping');
        resolve();
      });
    };
    process.once('SIGINT', () => shutdown('SIGINT'));
    process.once('SIGTERM', () => shutdown('SIGTERM'));
  });
  logger.info('stopped');
}
