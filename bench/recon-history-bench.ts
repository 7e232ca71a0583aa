/**
 * `npm run bench:recon-history [-- --history N] [-- --fresh N]`: what a reconciliation run costs
 * as the history grows. Twice, each on a fresh embedded PostgreSQL (`BENCH_DATABASE_URL` is not
 * used): once with no history, once after N lines (default 500,000) were imported and matched by
 * an earlier run, a day's new report of `--fresh` lines (default 20,000) and the items they match
 * are added, and one run (`ReconciliationRuns.run`, as the daily schedule makes it) matches them.
 * Lines and items are written in SQL, Settled captures that each match their item exactly, as
 * `bench:recon`'s seeding does; the import itself is `bench:recon`'s subject. Printed: each run's
 * wall time and PostgreSQL CPU, and the second's over the first. A run should cost what its new
 * work costs; docs/reconciliation.md's limits say where it does not yet.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.js';
import { migrate } from '../src/db/migrate.js';
import { createPool, ensureDatabase, withDatabase } from '../src/db/pool.js';
import { ReconciliationRuns } from '../src/reconciliation/recon-run.js';
import { freePort } from '../src/simulate/free-port.js';
import { cpuSnapshot, readPostmasterPid } from './support/penny-server.js';

const historyLines = readCount('--history', 500_000);
const freshLines = readCount('--fresh', 20_000);

function readCount(flag: string, fallback: number): number {
  const index = process.argv.indexOf(flag);
  if (index < 0) return fallback;
  const value = Number(process.argv[index + 1]);
  if (!Number.isInteger(value) || value < 0 || value > 10_000_000) {
    throw new Error(`${flag} takes a whole number of lines up to 10,000,000`);
  }
  return value;
}

interface Timed {
  readonly wallMs: number;
  readonly postgresCpuMs: number;
}

/** `count` Settled lines of one file and their items, numbered from `first`, dated `day`. */
async function seed(pool: ReturnType<typeof createPool>, batch: { file: string; first: number; count: number;
  day: string; dueBy: string }): Promise<void> {
  const { file, first, count, day, dueBy } = batch;
  await pool.query(`INSERT INTO reconciliation_items (kind, reference, merchant_id, owner_id, connector, psp_reference,
       currency, gross_minor, fee_minor, day, due_by)
     SELECT 'capture', 'ch_bench' || i, 'acct_bench', 'acct_bench', 'sandbox', 'sbx_bench' || i, 'EUR',
       1000 + i % 5000, 20 + (1000 + i % 5000) * 2 / 100, $3, $4
     FROM generate_series($1::int, $1::int + $2::int - 1) i`, [first, count, day, dueBy]);
  await pool.query(`INSERT INTO reconciliation_files (id, source, format, filename, content_sha256, size_bytes,
       line_count, record_count, new_record_count, known_record_count, conflicting_record_count)
     VALUES ($1, 'sandbox', 'adyen_sdr', $1 || '.csv', encode(sha256($1::bytea), 'hex'), 0, $2, $2, $2, 0, 0)`,
  [file, count]);
  await pool.query(`INSERT INTO reconciliation_records (file_id, source, kind, line, external_id, occurrence,
       content_sha256, type, currency, amount_minor, gross_minor, gross_currency, fee_minor, booking_date,
       psp_reference, merchant_reference, batch_key)
     SELECT $1, 'sandbox', 'psp_line', i - $2::int + 2, 'M|1|Settled|sbx_bench' || i, 1, repeat('b', 64), 'Settled',
       'EUR', (1000 + i % 5000) - (20 + (1000 + i % 5000) * 2 / 100), 1000 + i % 5000, 'EUR',
       20 + (1000 + i % 5000) * 2 / 100, $4, 'sbx_bench' || i, 'ch_bench' || i, $1
     FROM generate_series($2::int, $2::int + $3::int - 1) i`, [file, first, count, day]);
  await pool.query('ANALYZE');
}

/** One database: the history matched by a first run (if any), then the fresh lines' run, timed. */
async function measure(history: number): Promise<Timed> {
  const directory = await fs.mkdtemp(path.join('/var/tmp', 'penny-recon-history-'));
  await fs.chmod(directory, 0o755);
  const server = await startEmbeddedPostgres({ directory: path.join(directory, 'pg'), port: await freePort() });
  try {
    await ensureDatabase(server.serverUrl, 'bench');
    const url = withDatabase(server.serverUrl, 'bench');
    await migrate(url);
    const pool = createPool({ connectionString: url, sizeMax: 2, applicationName: 'penny-recon-history-bench' });
    try {
      const runs = new ReconciliationRuns(pool);
      if (history > 0) {
        await seed(pool, { file: 'rfile_benchhistory', first: 1, count: history, day: '2026-03-02',
          dueBy: '2026-03-05' });
        await runs.run({ asOf: '2026-03-03' });
      }
      await seed(pool, { file: 'rfile_benchfresh00', first: history + 1, count: freshLines, day: '2026-03-09',
        dueBy: '2026-03-12' });
      const subjects = { serverPid: process.pid, postmasterPid: await readPostmasterPid(server.dataDirectory) };
      const before = await cpuSnapshot(subjects);
      const started = performance.now();
      const result = await runs.run({ asOf: '2026-03-10' });
      const wallMs = Math.round(performance.now() - started);
      const after = await cpuSnapshot(subjects);
      process.stderr.write(`history ${history}: run ${result.id} over ${freshLines} new lines, ${wallMs} ms, ` +
        `counts ${JSON.stringify(result.counts)}\n`);
      return { wallMs, postgresCpuMs: Math.round(after.postgres - before.postgres) };
    } finally {
      await pool.end();
    }
  } finally {
    await server.stop();
    await fs.rm(directory, { recursive: true, force: true });
  }
}

function ratio(numerator: number, denominator: number): number {
  return Math.round(numerator / Math.max(1, denominator) * 100) / 100;
}

const without = await measure(0);
const withHistory = await measure(historyLines);
const lines = [
  `reconciliation run over history — ${new Date().toISOString()} — ${os.cpus().length} cores ` +
    `(${os.cpus()[0]?.model}), node ${process.version}; ${freshLines} new lines a run`,
  '',
  '| history (lines matched before) | run wall ms | run PostgreSQL CPU ms |',
  '|---|---|---|',
  `| 0 | ${without.wallMs} | ${without.postgresCpuMs} |`,
  `| ${historyLines} | ${withHistory.wallMs} | ${withHistory.postgresCpuMs} |`,
  '',
  `the run with history ÷ without: ${ratio(withHistory.wallMs, without.wallMs)} (wall), ` +
    `${ratio(withHistory.postgresCpuMs, without.postgresCpuMs)} (PostgreSQL CPU)`,
];
process.stdout.write(`${lines.join('\n')}\n`);
process.stdout.write(`${JSON.stringify({ fresh_lines: freshLines, history_lines: historyLines, without, with_history: withHistory })}\n`);
