/**
 * `npm run bench:ledger`: transfers (two-posting entries) per second through the ledger service,
 * at 1, 8 and 32 concurrent clients, accounts spread uniformly or all touching one hot account,
 * single entries and batches of 100. In the same run, a plain-SQL baseline writes the same rows
 * into twin tables with no checks: the same columns and the same non-unique indexes that reads
 * need, but no unique or check constraints, no triggers, no balances and no seal queue. Penny's
 * rate is printed as a ratio of it, so the figure means the same on any machine. A third system,
 * a pure PL/pgSQL ledger of the usual kind (one function call per transfer that locks both
 * accounts in id order, updates their stored balances and appends the transfer and its two
 * entries), is the foundation issue's other yardstick ("about twice a pure PL/pgSQL ledger").
 * A fourth, the floor, writes Penny's own rows with Penny's own statement into twins of its tables
 * made with LIKE ... INCLUDING ALL: every column default, check constraint and index (the unique
 * external reference too), but no trigger, so no rule that reads other rows, no balance changes
 * and no seal queue. It bounds what any trigger design can reach: Penny ÷ floor is what the
 * database-enforced rules cost, floor ÷ baseline what Penny's rows and constraints cost.
 * Tables are prefilled and analysed before measuring.
 *
 * Penny and the baseline alternate in slices (BENCH_SLICES, default 6, per measurement), so both
 * see the same moments of a noisy machine and their ratio is steadier than their rates.
 * BENCH_SECONDS (default 3) sets each system's total time per measurement; BENCH_DATABASE_URL a
 * server of your own.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { startEmbeddedPostgres, type RunningPostgres } from '../src/db/embedded-postgres.js';
import { migrate } from '../src/db/migrate.js';
import { createPool, ensureDatabase, withDatabase, withTransaction } from '../src/db/pool.js';
import { newId } from '../src/ids.js';
import { LedgerService } from '../src/ledger/ledger-service.js';
import { insertEntries, type EntryRow } from '../src/ledger/ledger-store.js';
import type { CreateEntryCommand } from '../src/ledger/ledger-types.js';

const secondsPerRun = Number(process.env.BENCH_SECONDS ?? 3);
const slicesPerRun = Number(process.env.BENCH_SLICES ?? 6);
const clientCounts = [1, 8, 32] as const;
const poolSizeMax = 8;
const accountCount = 1000;
const prefillTransfers = 50_000;
const batchSize = 100;

type Pattern = 'uniform' | 'hot';
type System = 'baseline' | 'plpgsql' | 'floor' | 'penny';
const systems: readonly System[] = ['baseline', 'plpgsql', 'floor', 'penny'];
type Mode = 'single' | 'batch100';
type Writer = (transfers: readonly Transfer[]) => Promise<void>;

interface Transfer {
  readonly reference: string;
  readonly debit: string;
  readonly credit: string;
  readonly amountMinor: bigint;
}

interface Measurement {
  readonly system: System;
  readonly pattern: Pattern;
  readonly mode: Mode;
  readonly clients: number;
  readonly transfersPerSecond: number;
  readonly latencyMsP50: number;
  readonly latencyMsP99: number;
}

async function main(): Promise<void> {
  const { url, stop } = await openBenchDatabase();
  const pool = createPool({ connectionString: url, sizeMax: poolSizeMax, applicationName: 'penny-bench' });
  try {
    const accounts = await prepare(pool, url);
    const ledger = new LedgerService(pool);
    const results: Measurement[] = [];
    for (const mode of ['single', 'batch100'] as const) {
      for (const pattern of ['uniform', 'hot'] as const) {
        for (const clients of clientCounts) {
          const samples = emptySamples();
          for (let slice = 0; slice < slicesPerRun; slice += 1) {
            for (const system of systems) {
              await measure(writerOf(system, ledger, pool), { accounts, pattern, mode, clients }, samples[system]);
            }
          }
          for (const system of systems) {
            const measured = summarize(samples[system]);
            results.push({ system, pattern, mode, clients, ...measured });
            process.stderr.write(`${system} ${mode} ${pattern} ${clients}: ${measured.transfersPerSecond}/s\n`);
          }
          await ledger.compactBalances();
        }
      }
    }
    report(results);
  } finally {
    await pool.end();
    await stop();
  }
}

async function openBenchDatabase(): Promise<{ url: string; stop: () => Promise<void> }> {
  if (process.env.BENCH_DATABASE_URL) {
    return { url: process.env.BENCH_DATABASE_URL, stop: async () => undefined };
  }
  const directory = await fs.mkdtemp(path.join('/var/tmp', 'penny-bench-'));
  await fs.chmod(directory, 0o755);
  const server: RunningPostgres = await startEmbeddedPostgres({ directory: path.join(directory, 'pg'), port: 54391 });
  await ensureDatabase(server.serverUrl, 'penny_bench');
  return {
    url: withDatabase(server.serverUrl, 'penny_bench'),
    stop: async () => {
      await server.stop();
      await fs.rm(directory, { recursive: true, force: true });
    },
  };
}

interface Accounts {
  readonly uniform: readonly string[];
  readonly hot: string;
}

/** Migrates, creates the baseline twin tables, creates accounts, prefills and analyses. */
async function prepare(pool: pg.Pool, url: string): Promise<Accounts> {
  await migrate(url);
  await pool.query(`
    CREATE TABLE IF NOT EXISTS baseline_entries (
      id text PRIMARY KEY, sequence bigint GENERATED ALWAYS AS IDENTITY, external_reference text,
      request_fingerprint text, kind text, description text, metadata jsonb, effective_at timestamptz,
      created_at timestamptz DEFAULT clock_timestamp());
    CREATE TABLE IF NOT EXISTS baseline_postings (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, entry_id text, account_id text,
      currency char(3), direction text, phase text, amount_minor bigint, effective_at timestamptz);
    CREATE INDEX IF NOT EXISTS baseline_entries_effective ON baseline_entries (effective_at, sequence);
    CREATE INDEX IF NOT EXISTS baseline_postings_account ON baseline_postings (account_id, effective_at, id);
    CREATE INDEX IF NOT EXISTS baseline_postings_entry ON baseline_postings (entry_id);
    -- Copied afresh each run, so the floor has the constraints of the schema as migrated now.
    DROP TABLE IF EXISTS floor_entries, floor_postings;
    CREATE TABLE floor_entries (LIKE ledger_entries INCLUDING ALL);
    CREATE TABLE floor_postings (LIKE ledger_postings INCLUDING ALL);`);
  await pool.query(plpgsqlLedgerSql);
  const ledger = new LedgerService(pool);
  const uniform: string[] = [];
  for (let index = 0; index < accountCount; index += 1) {
    const account = await ledger.createAccount({
      currency: 'USD', type: index % 2 === 0 ? 'asset' : 'liability', code: undefined, owner: undefined,
      metadata: {}, limit: undefined,
    });
    uniform.push(account.id);
  }
  const hot = await ledger.createAccount({
    currency: 'USD', type: 'revenue', code: 'platform_fees', owner: undefined, metadata: {}, limit: undefined,
  });
  const accounts = { uniform, hot: hot.id };
  await pool.query(
    `INSERT INTO plpgsql_accounts (id, currency) SELECT unnest($1::text[]), 'USD' ON CONFLICT DO NOTHING`,
    [[...uniform, hot.id]]);
  const prefill = Array.from({ length: prefillTransfers }, () => nextTransfer(accounts, 'uniform'));
  for (let start = 0; start < prefill.length; start += 1000) {
    const slice = prefill.slice(start, start + 1000);
    for (const system of systems) await writerOf(system, ledger, pool)(slice);
  }
  await ledger.compactBalances();
  await pool.query('ANALYZE');
  return accounts;
}

function writerOf(system: System, ledger: LedgerService, pool: pg.Pool): Writer {
  if (system === 'penny') return pennyWriter(ledger);
  if (system === 'floor') return floorWriter(pool);
  return system === 'baseline' ? baselineWriter(pool) : plpgsqlWriter(pool);
}

/**
 * The pure PL/pgSQL ledger: accounts hold their balance and a version; a transfer locks both
 * accounts in id order, moves the amount, and appends the transfer and one entry per account
 * with the balances before and after, all in one function (one round trip), with foreign keys.
 */
const plpgsqlLedgerSql = `
  CREATE TABLE IF NOT EXISTS plpgsql_accounts (
    id text PRIMARY KEY, currency char(3) NOT NULL, balance bigint NOT NULL DEFAULT 0,
    version bigint NOT NULL DEFAULT 0, created_at timestamptz NOT NULL DEFAULT now());
  CREATE TABLE IF NOT EXISTS plpgsql_transfers (
    id text PRIMARY KEY, from_account_id text NOT NULL REFERENCES plpgsql_accounts (id),
    to_account_id text NOT NULL REFERENCES plpgsql_accounts (id), amount bigint NOT NULL CHECK (amount > 0),
    created_at timestamptz NOT NULL DEFAULT now());
  CREATE TABLE IF NOT EXISTS plpgsql_entries (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id text NOT NULL REFERENCES plpgsql_accounts (id),
    transfer_id text NOT NULL REFERENCES plpgsql_transfers (id), amount bigint NOT NULL,
    account_previous_balance bigint NOT NULL, account_current_balance bigint NOT NULL,
    account_version bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
  CREATE INDEX IF NOT EXISTS plpgsql_entries_account ON plpgsql_entries (account_id, id);
  CREATE INDEX IF NOT EXISTS plpgsql_entries_transfer ON plpgsql_entries (transfer_id);
  CREATE OR REPLACE FUNCTION plpgsql_create_transfer(transfer_id text, from_id text, to_id text, amount bigint)
  RETURNS void LANGUAGE plpgsql AS $$
  DECLARE
    from_after bigint; from_version bigint; to_after bigint; to_version bigint;
  BEGIN
    PERFORM 1 FROM plpgsql_accounts WHERE id IN (from_id, to_id) ORDER BY id FOR UPDATE;
    UPDATE plpgsql_accounts SET balance = balance - amount, version = version + 1 WHERE id = from_id
      RETURNING balance, version INTO from_after, from_version;
    UPDATE plpgsql_accounts SET balance = balance + amount, version = version + 1 WHERE id = to_id
      RETURNING balance, version INTO to_after, to_version;
    IF from_after IS NULL OR to_after IS NULL THEN
      RAISE EXCEPTION 'account not found';
    END IF;
    INSERT INTO plpgsql_transfers (id, from_account_id, to_account_id, amount)
      VALUES (transfer_id, from_id, to_id, amount);
    INSERT INTO plpgsql_entries (account_id, transfer_id, amount, account_previous_balance,
        account_current_balance, account_version)
      VALUES (from_id, transfer_id, -amount, from_after + amount, from_after, from_version),
             (to_id, transfer_id, amount, to_after - amount, to_after, to_version);
  END $$;
  -- Several transfers in one transaction: every account is locked first, in id order, or two
  -- batches would deadlock; then each transfer as above.
  CREATE OR REPLACE FUNCTION plpgsql_create_transfers(ids text[], from_ids text[], to_ids text[], amounts bigint[])
  RETURNS void LANGUAGE plpgsql AS $$
  BEGIN
    PERFORM 1 FROM plpgsql_accounts WHERE id = ANY(from_ids || to_ids) ORDER BY id FOR UPDATE;
    FOR i IN 1 .. cardinality(ids) LOOP
      PERFORM plpgsql_create_transfer(ids[i], from_ids[i], to_ids[i], amounts[i]);
    END LOOP;
  END $$;`;

/** One call per transfer; a batch is one call of the batch function, in one transaction. */
function plpgsqlWriter(pool: pg.Pool): Writer {
  const arrays = (transfers: readonly Transfer[]) => [
    transfers.map((transfer) => transfer.reference),
    transfers.map((transfer) => transfer.debit),
    transfers.map((transfer) => transfer.credit),
    transfers.map((transfer) => transfer.amountMinor.toString()),
  ];
  return async (transfers) => {
    const [transfer] = transfers;
    if (transfers.length === 1 && transfer !== undefined) {
      await pool.query('SELECT plpgsql_create_transfer($1, $2, $3, $4)',
        [transfer.reference, transfer.debit, transfer.credit, transfer.amountMinor.toString()]);
      return;
    }
    await withTransaction(pool, (client) => client.query(
      'SELECT plpgsql_create_transfers($1::text[], $2::text[], $3::text[], $4::bigint[])', arrays(transfers)));
  };
}

function pennyWriter(ledger: LedgerService): Writer {
  return async (transfers) => {
    const commands = transfers.map(toCommand);
    if (commands.length === 1) await ledger.createEntry(commands[0] as CreateEntryCommand);
    else await ledger.createEntryBatch(commands);
  };
}

function toCommand(transfer: Transfer): CreateEntryCommand {
  return {
    externalReference: transfer.reference,
    requestFingerprint: transfer.reference,
    description: undefined,
    metadata: {},
    effectiveAt: undefined,
    pending: false,
    expiresAt: undefined,
    postings: [
      { account: transfer.debit, direction: 'debit', amountMinor: transfer.amountMinor, currency: undefined,
        mustNotOverdraw: false },
      { account: transfer.credit, direction: 'credit', amountMinor: transfer.amountMinor, currency: undefined,
        mustNotOverdraw: false },
    ],
  };
}

/** The same rows, one statement per call, no constraints, no triggers, no checks. */
function baselineWriter(pool: pg.Pool): Writer {
  const write = (db: pg.Pool | pg.PoolClient, transfers: readonly Transfer[]) => db.query(
    `WITH e AS (
       INSERT INTO baseline_entries (id, external_reference, request_fingerprint, kind, metadata, effective_at)
       SELECT id, ref, ref, 'standard', '{}'::jsonb, now() FROM unnest($1::text[], $2::text[]) AS t(id, ref)
       RETURNING id, effective_at)
     INSERT INTO baseline_postings (entry_id, account_id, currency, direction, phase, amount_minor, effective_at)
     SELECT e.id, p.account_id, 'USD', p.direction, 'posted', p.amount_minor, e.effective_at
     FROM unnest($3::text[], $4::text[], $5::text[], $6::bigint[]) AS p(entry_id, account_id, direction, amount_minor)
     JOIN e ON e.id = p.entry_id`,
    [
      transfers.map((transfer) => transfer.reference),
      transfers.map((transfer) => transfer.reference),
      transfers.flatMap((transfer) => [transfer.reference, transfer.reference]),
      transfers.flatMap((transfer) => [transfer.debit, transfer.credit]),
      transfers.flatMap(() => ['debit', 'credit']),
      transfers.flatMap((transfer) => [transfer.amountMinor.toString(), transfer.amountMinor.toString()]),
    ],
  );
  return async (transfers) => {
    if (transfers.length === 1) await write(pool, transfers);
    else await withTransaction(pool, (client) => write(client, transfers));
  };
}

/** Penny's insert statement into the trigger-less twins; currencies known, as the service's cache has them. */
function floorWriter(pool: pg.Pool): Writer {
  const tables = { entries: 'floor_entries', postings: 'floor_postings' };
  const rowOf = (transfer: Transfer): EntryRow => ({
    id: newId('lent'), externalReference: transfer.reference, requestFingerprint: transfer.reference,
    kind: 'standard', holdEntryId: null, reversesEntryId: null, description: null, metadata: {},
    effectiveAt: null, expiresAt: null,
    postings: (['debit', 'credit'] as const).map((direction) => ({
      accountId: direction === 'debit' ? transfer.debit : transfer.credit, currency: 'USD', direction,
      phase: 'posted', amountMinor: transfer.amountMinor, mustNotOverdraw: false,
    })),
  });
  return async (transfers) => {
    const rows = transfers.map(rowOf);
    if (rows.length === 1) await insertEntries(pool, rows, tables);
    else await withTransaction(pool, (client) => insertEntries(client, rows, tables));
  };
}

function nextTransfer(accounts: Accounts, pattern: Pattern): Transfer {
  const pick = () => accounts.uniform[Math.floor(Math.random() * accounts.uniform.length)] as string;
  const debit = pick();
  let credit = pattern === 'hot' ? accounts.hot : pick();
  while (credit === debit) credit = pick();
  return { reference: newId('lent'), debit, credit, amountMinor: BigInt(1 + Math.floor(Math.random() * 10_000)) };
}

interface Sample {
  transfers: number;
  elapsedMs: number;
  readonly latenciesMs: number[];
}

function emptySamples(): Record<System, Sample> {
  return Object.fromEntries(systems.map((system) => [system, emptySample()])) as Record<System, Sample>;
}

function emptySample(): Sample {
  return { transfers: 0, elapsedMs: 0, latenciesMs: [] };
}

/** One slice: `secondsPerRun / slicesPerRun` seconds of writing, added to the system's sample. */
async function measure(
  writer: Writer,
  options: { accounts: Accounts; pattern: Pattern; mode: Mode; clients: number },
  sample: Sample,
): Promise<void> {
  const size = options.mode === 'single' ? 1 : batchSize;
  const started = performance.now();
  const deadline = started + (secondsPerRun * 1000) / slicesPerRun;
  await Promise.all(Array.from({ length: options.clients }, async () => {
    while (performance.now() < deadline) {
      const batch = Array.from({ length: size }, () => nextTransfer(options.accounts, options.pattern));
      const begin = performance.now();
      await writer(batch);
      sample.latenciesMs.push(performance.now() - begin);
      sample.transfers += size;
    }
  }));
  sample.elapsedMs += performance.now() - started;
}

function summarize(sample: Sample): Omit<Measurement, 'system' | 'pattern' | 'mode' | 'clients'> {
  const sorted = [...sample.latenciesMs].sort((left, right) => left - right);
  return {
    transfersPerSecond: Math.round(sample.transfers / (sample.elapsedMs / 1000)),
    latencyMsP50: round(percentile(sorted, 0.5)),
    latencyMsP99: round(percentile(sorted, 0.99)),
  };
}

function percentile(sorted: readonly number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? 0;
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

function report(results: readonly Measurement[]): void {
  const lines = [
    `ledger benchmark — ${new Date().toISOString()} — ${os.cpus().length} cores (${os.cpus()[0]?.model}), ` +
      `node ${process.version}, pool ${poolSizeMax}, ${secondsPerRun}s per system in ${slicesPerRun} alternating slices, ` +
      `${accountCount} accounts, ${prefillTransfers} prefilled transfers`,
    '',
    '| mode | pattern | clients | penny transfers/s | baseline transfers/s | ratio | PL/pgSQL transfers/s | ' +
      'penny ÷ PL/pgSQL | floor transfers/s | floor ÷ baseline | penny p50 ms | penny p99 ms |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const penny of results.filter((result) => result.system === 'penny')) {
    const find = (system: System) => results.find((result) => result.system === system &&
      result.mode === penny.mode && result.pattern === penny.pattern && result.clients === penny.clients);
    const baseline = find('baseline');
    const plpgsql = find('plpgsql');
    const floor = find('floor');
    const ratio = (top: Measurement | undefined, other: Measurement | undefined) =>
      top === undefined || other === undefined ? '-' : String(round(top.transfersPerSecond / other.transfersPerSecond));
    lines.push(`| ${penny.mode} | ${penny.pattern} | ${penny.clients} | ${penny.transfersPerSecond} | ` +
      `${baseline?.transfersPerSecond ?? '-'} | ${ratio(penny, baseline)} | ${plpgsql?.transfersPerSecond ?? '-'} | ` +
      `${ratio(penny, plpgsql)} | ${floor?.transfersPerSecond ?? '-'} | ${ratio(floor, baseline)} | ` +
      `${penny.latencyMsP50} | ${penny.latencyMsP99} |`);
  }
  const rssMiB = Math.round(process.resourceUsage().maxRSS / 1024);
  lines.push('', `peak RSS of the benchmark process (Node, client side): ${rssMiB} MiB`);
  process.stdout.write(`${lines.join('\n')}\n`);
  process.stdout.write(`${JSON.stringify({ results, peak_rss_mib: rssMiB })}\n`);
}

await main();
