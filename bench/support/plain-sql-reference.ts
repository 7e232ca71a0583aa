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
 * transaction (BEGIN; one statement of 100 transfers; COMMIT), whose 100 transfers' accounts and
 * amounts the client sends as parameters, as Penny's client sends them in its request.
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

/**
 * $1 a random bigint (the batch's references are it and the transfer's number); then one bigint per
 * transfer, $2 to $101, packing its debit account number, credit account number and amount
 * (`packTransfer`): the client sends every transfer's data, as Penny's client does, in fewer than
 * the 255 parameters a pgbench statement may have.
 */
export const batchTransferSql = `
WITH t AS (
  SELECT 'pgb_' || $1::text || '_' || n AS id, 'acct_pgbench_' || (packed / 1000000000) AS debit,
    'acct_pgbench_' || (packed / 100000 % 10000) AS credit, packed % 100000 AS amount_minor
  FROM unnest(ARRAY[${Array.from({ length: referenceBatchSize }, (_, index) => `$${index + 2}::bigint`).join(', ')}])
    WITH ORDINALITY AS x(packed, n)),
e AS (
  INSERT INTO baseline_entries (id, external_reference, request_fingerprint, kind, metadata, effective_at)
  SELECT id, id, id, 'standard', '{}'::jsonb, now() FROM t
  RETURNING id, effective_at)
INSERT INTO baseline_postings (entry_id, account_id, currency, direction, phase, amount_minor, effective_at)
SELECT e.id, p.account_id, 'USD', p.direction, 'posted', t.amount_minor, e.effective_at
FROM t JOIN e ON e.id = t.id
CROSS JOIN LATERAL (VALUES (t.debit, 'debit'), (t.credit, 'credit')) AS p(account_id, direction)`;

/** A debit and a credit account number, distinct, uniform among the accounts; and an amount. */
export function randomTransferValues(): [number, number, string] {
  const debit = 1 + Math.floor(Math.random() * accountCount);
  let credit = 1 + Math.floor(Math.random() * (accountCount - 1));
  if (credit >= debit) credit += 1;
  return [debit, credit, String(1 + Math.floor(Math.random() * 10_000))];
}

/** One transfer of a batch as batchTransferSql unpacks it: (debit × 10,000 + credit) × 100,000 + amount. */
export function packTransfer([debit, credit, amount]: [number, number, string]): string {
  return String((BigInt(debit) * 10_000n + BigInt(credit)) * 100_000n + BigInt(amount));
}

/** pgbench lines drawing what randomTransferValues draws, into :a<suffix>, :b<suffix>, :amount<suffix>. */
function pgbenchTransferVariables(suffix: string): string[] {
  return [`\\set a${suffix} random(1, ${accountCount})`, `\\set b${suffix} random(1, ${accountCount - 1})`,
    `\\set b${suffix} case when :b${suffix} >= :a${suffix} then :b${suffix} + 1 else :b${suffix} end`,
    `\\set amount${suffix} random(1, 10000)`];
}

/**
 * The same transfers written by Penny's own statement shape (ledger-store.ts insertEntries: the
 * entries with ON CONFLICT on the external reference, and their postings joined to them) into
 * Penny's own tables, so every trigger, constraint, balance row and seal-queue row runs: the
 * database's whole share of a Penny transfer, with no HTTP and no Node. `t` holds the transfers
 * (id, debit, credit, amount_minor); real accounts come from `bench_ledger_accounts` (n → id),
 * which the benchmark fills with the accounts the HTTP runs use.
 */
function pennyStatementSql(transfers: string): string {
  return `WITH t AS (${transfers}),
inserted AS (
  INSERT INTO ledger_entries (id, external_reference, request_fingerprint, kind, metadata, effective_at)
  SELECT id, id, id, 'standard', '{}'::jsonb, now() FROM t
  ON CONFLICT (external_reference) DO NOTHING
  RETURNING id, effective_at),
posted AS (
  INSERT INTO ledger_postings (entry_id, account_id, currency, direction, phase, amount_minor, must_not_overdraw,
    effective_at)
  SELECT i.id, p.account_id, 'USD', p.direction, 'posted', t.amount_minor, false, i.effective_at
  FROM t JOIN inserted i ON i.id = t.id
  CROSS JOIN LATERAL (VALUES (t.debit, 'debit', 1), (t.credit, 'credit', 2)) AS p(account_id, direction, ordinal)
  ORDER BY t.id, p.ordinal
  RETURNING id, entry_id)
SELECT count(*) FROM posted`;
}

export const pennySingleTransferSql = pennyStatementSql(`SELECT 'lent_pgb' || $1::text AS id,
  (SELECT id FROM bench_ledger_accounts WHERE n = $2) AS debit,
  (SELECT id FROM bench_ledger_accounts WHERE n = $3) AS credit, $4::bigint AS amount_minor`);

export const pennyBatchTransferSql = pennyStatementSql(`SELECT 'lent_pgb' || $1::text || 'x' || x.n AS id,
    d.id AS debit, c.id AS credit, x.packed % 100000 AS amount_minor
  FROM unnest(ARRAY[${Array.from({ length: referenceBatchSize }, (_, index) => `$${index + 2}::bigint`).join(', ')}])
    WITH ORDINALITY AS x(packed, n)
  JOIN bench_ledger_accounts d ON d.n = x.packed / 1000000000
  JOIN bench_ledger_accounts c ON c.n = x.packed / 100000 % 10000`);

export type ReferenceMode = 'single' | 'batch100';

/** Which statement a reference writes: the baseline's into its twin tables, or Penny's into its own. */
export type ReferenceStatement = 'baseline' | 'penny';

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
  readonly clients: number; readonly seconds: number; readonly statement?: ReferenceStatement;
}): Promise<ReferenceRun> {
  const penny = options.statement === 'penny';
  const single = penny ? pennySingleTransferSql : singleTransferSql;
  const batch = penny ? pennyBatchTransferSql : batchTransferSql;
  const script = options.mode === 'single'
    ? ['\\set r random(1, 9000000000000000000)', ...pgbenchTransferVariables(''),
      `${single.replaceAll('$1', ':r').replaceAll('$2', ':a').replaceAll('$3', ':b')
        .replaceAll('$4', ':amount')};`]
    : ['\\set r random(1, 9000000000000000000)',
      ...Array.from({ length: referenceBatchSize }, (_, index) => [...pgbenchTransferVariables(String(index)),
        `\\set t${index} (:a${index} * 10000 + :b${index}) * 100000 + :amount${index}`]).flat(),
      'BEGIN;',
      // Highest numbers first, so that $12 is not taken for $1 followed by 2.
      `${Array.from({ length: referenceBatchSize }, (_, index) => referenceBatchSize - index)
        .reduce((sql, index) => sql.replaceAll(`$${index + 1}::`, `:t${index - 1}::`), batch)
        .replaceAll('$1::', ':r::')};`,
      'COMMIT;'];
  const file = path.join(options.directory, `reference-${options.statement ?? 'baseline'}-${options.mode}.sql`);
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
