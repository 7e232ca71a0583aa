import type pg from 'pg';
import { loadConfig, type PennyConfig } from '../config.js';
import { openDatabase } from '../db/database.js';
import { migrate } from '../db/migrate.js';
import { createPool } from '../db/pool.js';
import { stringifyJson } from '../json.js';

/** Runs `work` with a pool on Penny's database (migrated), then closes what it opened. */
export async function withDatabasePool<T>(work: (pool: pg.Pool, config: PennyConfig) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const database = await openDatabase(config, { ownsServer: false });
  const pool = createPool({ connectionString: database.url, sizeMax: 2, applicationName: 'penny-cli' });
  try {
    await migrate(database.url);
    return await work(pool, config);
  } finally {
    await pool.end();
    await database.close();
  }
}

export function printResult(json: boolean, value: unknown, text: string): void {
  process.stdout.write(json ? `${stringifyJson(value)}\n` : `${text}\n`);
}

/**
 * A check's report (verify, check-balances, trial-balance). A failed check exits 1, and with
 * `--json` its report carries the error object first, so the one object printed says both.
 */
export function printCheck(json: boolean, report: object, text: string, failure: string | undefined): void {
  if (failure === undefined) {
    printResult(json, report, text);
    return;
  }
  printResult(json, { error: { type: 'api_error', code: 'check_failed', message: failure }, ...report }, text);
  process.exitCode = 1;
}
