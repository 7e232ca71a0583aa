/**
 * The over-HTTP ledger benchmark's same-run plain-SQL reference: the baseline's rows (an entry and
 * its two postings, in the baseline twin tables: no constraints, no triggers, no balances) written
 * by a client that talks to PostgreSQL directly with prepared statements. `pgbench -M prepared`
 * when it is on PATH; otherwise bench/sql-reference-client.ts, a plain `pg` client per connection
 * in a child process, with named prepared statements.
 *
 * The transfer is one statement, as the baseline writer's in ledger-bench.ts: an INSERT into
 * baseline_entries in a WITH, and the two postings joined to it. The accounts are numbers drawn
 * uniformly among 1,000 (as the HTTP runs draw among the 1,000 accounts), written `acct_pgbench_N`;
 * the baseline tables hold no foreign key, so the ids need not be real accounts. A batch is one
 * transaction (BEGIN; one statement of 100 transfers, each with random accounts; COMMIT).
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const referenceBatchSize = 100;
const accountCount = 1000;

/** $1 a random bigint (the reference), $2 and $3 the two account numbers, $4 the amount. */
export const singleTransferSql = `
WITH e AS (
  INSERT INTO baseline_entries (id, external_reference, request_fingerprint, kind, metadata, effective_at)
  SELECT id, id, id, 'standard', '{}'::jsonb, now() FROM unnest(ARRAY['pgb_' || $1::text]) AS t(id)
  RETURNING id, effective_at)
INSERT INTO baseline_postings (entry_id, account_id, currency, direction, phase, amount_minor, effective_at)
SELECT e.id, p.account_id, 'USD', p.direction, 'posted', p.amount_minor, e.effective_at
FROM unnest(ARRAY['pgb_' || $1::text, 'pgb_' || $1::text],
            ARRAY['acct_pgbench_' || $2::text, 'acct_pgbench_' || $3::text],
            ARRAY['debit', 'credit'], ARRAY[$4::bigint, $4::bigint])
  AS p(entry_id, account_id, direction, amount_minor)
JOIN e ON e.id = p.entry_id`;

/** $1 a random bigint: the batch's references are it and the transfer's number. */
export const batchTransferSql = `
WITH t AS (
  SELECT 'pgb_' || $1::text || '_' || g AS id,
    'acct_pgbench_' || (1 + floor(random() * ${accountCount}))::int AS debit,
    'acct_pgbench_' || (1 + floor(random() * ${accountCount}))::int AS credit,
    (1 + floor(random() * 10000))::bigint AS amount_minor
  FROM generate_series(1, ${referenceBatchSize}) AS g),
e AS (
  INSERT INTO baseline_entries (id, external_reference, request_fingerprint, kind, metadata, effective_at)
  SELECT id, id, id, 'standard', '{}'::jsonb, now() FROM t
  RETURNING id, effective_at)
INSERT INTO baseline_postings (entry_id, account_id, currency, direction, phase, amount_minor, effective_at)
SELECT e.id, p.account_id, 'USD', p.direction, 'posted', t.amount_minor, e.effective_at
FROM t JOIN e ON e.id = t.id
CROSS JOIN LATERAL (VALUES (t.debit, 'debit'), (t.credit, 'credit')) AS p(account_id, direction)`;

export type ReferenceMode = 'single' | 'batch100';

export interface ReferenceRun {
  readonly tool: 'pgbench' | 'node-pg';
  /** Transactions: one transfer each (single), or one batch of 100. */
  readonly transactions: number;
  readonly seconds: number;
  readonly transactionsPerSecond: number;
  readonly latencyMsAverage: number;
  readonly failed: number;
}

const run = promisify(execFile);

export async function pgbenchAvailable(): Promise<boolean> {
  return run('pgbench', ['--version']).then(() => true, () => false);
}

/** `pgbench -n -M prepared` with a script of its own; `directory` receives the script file. */
export async function runPgbench(options: {
  readonly databaseUrl: string; readonly directory: string; readonly mode: ReferenceMode;
  readonly clients: number; readonly seconds: number;
}): Promise<ReferenceRun> {
  const script = options.mode === 'single'
    ? ['\\set r random(1, 9000000000000000000)', `\\set a random(1, ${accountCount})`,
      `\\set b random(1, ${accountCount - 1})`, '\\set b case when :b >= :a then :b + 1 else :b end',
      '\\set amount random(1, 10000)',
      `${singleTransferSql.replaceAll('$1', ':r').replaceAll('$2', ':a').replaceAll('$3', ':b')
        .replaceAll('$4', ':amount')};`]
    : ['\\set r random(1, 9000000000000000000)', 'BEGIN;', `${batchTransferSql.replaceAll('$1', ':r')};`, 'COMMIT;'];
  const file = path.join(options.directory, `reference-${options.mode}.sql`);
  await fs.writeFile(file, `${script.join('\n')}\n`);
  const seconds = Math.max(1, Math.round(options.seconds));
  const { stdout } = await run('pgbench', ['-n', '-M', 'prepared', '-c', String(options.clients),
    '-j', String(Math.min(2, options.clients)), '-T', String(seconds), '-f', file, options.databaseUrl],
  { maxBuffer: 16 * 1024 * 1024 });
  const number = (pattern: RegExp) => Number(pattern.exec(stdout)?.[1] ?? Number.NaN);
  const transactions = number(/number of transactions actually processed: (\d+)/);
  const tps = number(/tps = ([\d.]+)/);
  if (!Number.isFinite(transactions) || !Number.isFinite(tps)) throw new Error(`pgbench printed no figures:\n${stdout}`);
  const failed = number(/number of failed transactions: (\d+)/);
  return {
    tool: 'pgbench', transactions, seconds, transactionsPerSecond: tps,
    latencyMsAverage: number(/latency average = ([\d.]+) ms/), failed: Number.isFinite(failed) ? failed : 0,
  };
}

const clientEntry = fileURLToPath(new URL('../sql-reference-client.js', import.meta.url));

/** The fallback: bench/sql-reference-client.js in a child process; it prints one JSON line. */
export async function runNodeReference(options: {
  readonly databaseUrl: string; readonly mode: ReferenceMode; readonly clients: number; readonly seconds: number;
}): Promise<ReferenceRun> {
  const child = spawn(process.execPath, [clientEntry], {
    env: {
      ...process.env, REFERENCE_DATABASE_URL: options.databaseUrl, REFERENCE_MODE: options.mode,
      REFERENCE_CLIENTS: String(options.clients), REFERENCE_SECONDS: String(options.seconds),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`the plain-SQL reference client exited with ${code}`);
  const figures = JSON.parse(output) as Omit<ReferenceRun, 'tool'>;
  return { tool: 'node-pg', ...figures };
}
