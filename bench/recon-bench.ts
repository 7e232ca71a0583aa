/**
 * `npm run bench:recon [-- --lines N] [-- --out FILE]`: reconciliation's import of a generated
 * Adyen Settlement details report of N lines (default 1,000,000), through the same code path as
 * `penny recon import` (ReconciliationImports.importFile on a file stream), into a PostgreSQL of
 * its own (embedded, like the other benches; BENCH_DATABASE_URL for a server of your own). It
 * prints lines per second and the process's peak RSS (process.memoryUsage().rss sampled, and
 * VmHWM from /proc/self/status), the issue's targets being ≥ 50,000 lines/s and < 300 MB.
 *
 * The report is streamed to a temporary file, never built in memory: batches of Settled,
 * Refunded and Chargeback lines, each closed by a MerchantPayout line equal to the sum of its
 * lines' net amounts. Every line is a pure function of its index (`reportLine`), so a later step
 * can seed the ledger-side items the lines should match by walking the same plan
 * (`forEachOperation`), and `reconcileAfterImport` seeds it and runs the matcher after the import.
 * `--out FILE` only writes the report there (for profiling `penny recon import FILE`).
 */
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.js';
import { migrate } from '../src/db/migrate.js';
import { createPool, ensureDatabase, withDatabase } from '../src/db/pool.js';
import { readAdyenSdr } from '../src/reconciliation/adyen-sdr.js';
import { ReconciliationImports, recordJson } from '../src/reconciliation/recon-import.js';
import { stagingRow } from '../src/reconciliation/recon-store.js';
import type { ImportSummary } from '../src/reconciliation/recon-presenter.js';
import { ReconciliationRuns } from '../src/reconciliation/recon-run.js';
import { settlementReportColumns } from '../src/sandbox-psp/settlement-report.js';
import { freePort } from '../src/simulate/free-port.js';

const defaultLines = 1_000_000;
/** Lines per batch (the last line of each is its MerchantPayout). */
const batchLinesMax = 100_000;
const merchantAccount = 'PennyBenchEUR';
const source = 'adyen-bench';

/** The report's shape: N lines after the header, in batches that each end with their payout line. */
export interface ReportPlan {
  readonly lines: number;
  readonly batches: number;
  readonly batchLines: number;
}

export function planReport(lines: number): ReportPlan {
  const batches = Math.max(1, Math.ceil(lines / batchLinesMax));
  return { lines, batches, batchLines: Math.ceil(lines / batches) };
}

/** What a line of the report stands for: a capture, refund or chargeback of a charge, or a batch's payout. */
export interface Operation {
  readonly index: number;
  readonly batchNumber: number;
  readonly type: 'Settled' | 'Refunded' | 'Chargeback' | 'MerchantPayout';
  readonly pspReference: string;
  /** Penny's charge id as the PSP echoes it ('' for the payout). */
  readonly merchantReference: string;
  readonly modificationReference: string;
  /** Unsigned, EUR minor units: the gross; the net is gross − fee for a capture, gross + fee otherwise (debits). */
  readonly grossMinor: bigint;
  readonly feeMinor: bigint;
  /** Signed net, what the line moved. */
  readonly netMinor: bigint;
  readonly day: string;
}

/** A small deterministic hash of the index: the same report every run. */
function mix(index: number): number {
  let x = (index + 0x9e3779b9) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

function day(batchNumber: number): string {
  const date = new Date(Date.UTC(2026, 2, 2 + batchNumber));
  return date.toISOString().slice(0, 10);
}

/** The operation of a non-payout line (index counts lines from 0 over the whole report). */
export function reportLine(index: number, batchNumber: number): Operation {
  const random = mix(index);
  const kind = random % 100;
  const grossMinor = BigInt(100 + (random >>> 8) % 50_000);
  const charge = `ch_bench_${index}`;
  const pspReference = String(8_800_000_000_000_000n + BigInt(index));
  if (kind < 85) {
    const feeMinor = (grossMinor * 29n) / 1000n + 30n;
    return { index, batchNumber, type: 'Settled', pspReference, merchantReference: charge,
      modificationReference: pspReference, grossMinor, feeMinor, netMinor: grossMinor - feeMinor,
      day: day(batchNumber) };
  }
  if (kind < 95) {
    return { index, batchNumber, type: 'Refunded', pspReference, merchantReference: charge,
      modificationReference: `re_bench_${index}`, grossMinor, feeMinor: 0n, netMinor: -grossMinor, day: day(batchNumber) };
  }
  return { index, batchNumber, type: 'Chargeback', pspReference, merchantReference: charge,
    modificationReference: `dp_bench_${index}`, grossMinor, feeMinor: 1500n, netMinor: -grossMinor - 1500n,
    day: day(batchNumber) };
}

/**
 * Walks the plan's lines in file order: each batch's lines, then its payout (the sum of their nets,
 * paid out as a debit). A seeding step walks the same operations to create what the lines match.
 */
export async function forEachOperation(plan: ReportPlan,
  visit: (operation: Operation) => void | Promise<void>): Promise<void> {
  let index = 0;
  for (let batch = 0; batch < plan.batches && index < plan.lines; batch += 1) {
    const batchNumber = batch + 1;
    const end = Math.min(plan.lines, index + plan.batchLines);
    let sumMinor = 0n;
    for (; index < end - 1; index += 1) {
      const operation = reportLine(index, batchNumber);
      sumMinor += operation.netMinor;
      await visit(operation);
    }
    await visit({ index, batchNumber, type: 'MerchantPayout', pspReference: '', merchantReference: '',
      modificationReference: `TX${batchNumber} ${merchantAccount} batch ${batchNumber}`, grossMinor: 0n, feeMinor: 0n,
      netMinor: -sumMinor, day: day(batchNumber) });
    index += 1;
  }
}

function decimal(minor: bigint): string {
  const whole = minor / 100n;
  const cents = minor % 100n;
  return `${whole}.${cents < 10n ? '0' : ''}${cents}`;
}

/** One CSV line of the SDR's 33 columns. */
function csvLine(operation: Operation): string {
  const { type, grossMinor, feeMinor, netMinor } = operation;
  const credit = netMinor >= 0n;
  const payout = type === 'MerchantPayout';
  const values: Record<string, string> = {
    'Company Account': 'PennyBench',
    'Merchant Account': merchantAccount,
    'Psp Reference': operation.pspReference,
    'Merchant Reference': operation.merchantReference,
    'Payment Method': payout ? '' : 'visa',
    'Creation Date': `${operation.day} 10:00:00`,
    TimeZone: 'UTC',
    Type: type,
    'Modification Reference': operation.modificationReference,
    'Gross Currency': 'EUR',
    'Gross Debit (GC)': payout || type === 'Settled' ? '' : decimal(grossMinor),
    'Gross Credit (GC)': type === 'Settled' ? decimal(grossMinor) : '',
    'Exchange Rate': payout ? '' : '1',
    'Net Currency': 'EUR',
    'Net Debit (NC)': credit ? '' : decimal(-netMinor),
    'Net Credit (NC)': credit ? decimal(netMinor) : '',
    'Commission (NC)': feeMinor === 0n ? '' : decimal(feeMinor),
    'Payment Method Variant': payout ? '' : 'visacredit',
    'Batch Number': String(operation.batchNumber),
    'Booking Date': `${operation.day} 12:00:00`,
    'Booking Date TimeZone': 'UTC',
  };
  return settlementReportColumns.map((name) => values[name] ?? '').join(',');
}

/** Streams the report to `file`, in chunks, waiting for the disk when its buffer is full. */
export async function writeReport(plan: ReportPlan, file: string): Promise<void> {
  const output = fs.createWriteStream(file);
  let chunk: string[] = [settlementReportColumns.join(',')];
  const flush = async () => {
    if (!output.write(`${chunk.join('\n')}\n`)) await once(output, 'drain');
    chunk = [];
  };
  await forEachOperation(plan, async (operation) => {
    chunk.push(csvLine(operation));
    if (chunk.length >= 2000) await flush();
  });
  await flush();
  output.end();
  await once(output, 'finish');
}

/** The peak RSS: sampled every 20 ms, and the kernel's high-water mark (VmHWM). */
class RssMeter {
  private peakBytes = process.memoryUsage().rss;
  private readonly timer = setInterval(() => this.sample(), 20);

  sample(): void {
    this.peakBytes = Math.max(this.peakBytes, process.memoryUsage().rss);
  }

  stop(): { sampledPeakMb: number; vmHwmMb: number | null } {
    clearInterval(this.timer);
    this.sample();
    const status = fs.readFileSync('/proc/self/status', 'utf8').match(/^VmHWM:\s+(\d+) kB/m);
    const vmHwmMb = status === null ? null : Math.round(Number(status[1]) / 1024);
    return { sampledPeakMb: mb(this.peakBytes), vmHwmMb };
  }
}

/**
 * The parse alone, for comparison: the SDR parser, each record's content hash and its staging
 * row, as the import makes them, with no database.
 */
async function parseOnly(file: string): Promise<{ records: number; seconds: number; cpuSeconds: number }> {
  const cpuAtStart = process.cpuUsage();
  const startedAt = performance.now();
  let records = 0;
  for await (const item of readAdyenSdr(fs.createReadStream(file), path.basename(file))) {
    if (item.kind !== 'record') continue;
    records += 1;
    const json = recordJson(item.record, file);
    stagingRow(records, item.record, false, json);
  }
  const cpu = process.cpuUsage(cpuAtStart);
  return { records, seconds: (performance.now() - startedAt) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

/**
 * CPU seconds spent so far by the PostgreSQL server whose postmaster is `postmasterPid`: its own
 * time, the time of the children it has reaped (backends that ended), and that of its live
 * children (the pool's backends, the WAL writer, the checkpointer), from /proc. Null where
 * /proc cannot tell (another machine's server, BENCH_DATABASE_URL).
 */
function serverCpuSeconds(postmasterPid: number | undefined): number | null {
  if (postmasterPid === undefined) return null;
  const ticks = 100; // USER_HZ on Linux
  const statOf = (pid: number): string[] | undefined => {
    try {
      const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      return text.slice(text.lastIndexOf(')') + 2).split(' ');
    } catch {
      return undefined;
    }
  };
  const own = statOf(postmasterPid);
  if (own === undefined) return null;
  // Fields after the command: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
  let total = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statOf(Number(entry));
    if (fields === undefined || Number(fields[1]) !== postmasterPid) continue;
    total += Number(fields[11]) + Number(fields[12]);
  }
  return total / ticks;
}

/** CPU seconds of this process and of the server, read together. */
function cpuNow(postmasterPid: number | undefined): { node: number; server: number | null } {
  const usage = process.cpuUsage();
  return { node: (usage.user + usage.system) / 1e6, server: serverCpuSeconds(postmasterPid) };
}

function cpuSince(start: { node: number; server: number | null }, postmasterPid: number | undefined): string {
  const end = cpuNow(postmasterPid);
  const server = start.server === null || end.server === null ? '?' : seconds(end.server - start.server);
  return `CPU: Node ${seconds(end.node - start.node)} s, PostgreSQL ${server} s`;
}

/** Seconds with one decimal (no toFixed: the lint keeps it away from money). */
function seconds(value: number): string {
  return String(Math.round(value * 10) / 10);
}

function mb(bytes: number): number {
  return Math.round(bytes / 1048576);
}

/** Items seeded per statement: what Penny would have collected for the report's lines. */
const seedBatchItems = 10_000;

/**
 * What Penny booked for the plan's lines, as the run's collection would have found it (one item
 * per capture, refund and chargeback, with the fee Penny expected): seeded straight into
 * `reconciliation_items`, in batches, outside the timing. Making a million real payments through
 * the API first would measure payments, not reconciliation.
 */
async function seedLedgerSide(pool: pg.Pool, plan: ReportPlan): Promise<number> {
  const columns = { kind: [] as string[], reference: [] as string[], psp: [] as string[], gross: [] as string[],
    fee: [] as string[], day: [] as string[] };
  let seeded = 0;
  const flush = async () => {
    if (columns.kind.length === 0) return;
    await pool.query(`INSERT INTO reconciliation_items (kind, reference, merchant_id, owner_id, connector, psp_reference,
         currency, gross_minor, fee_minor, day, due_by)
       SELECT k, r, 'acct_bench', 'acct_bench', '${source}', p, 'EUR', g, f, d, penny_business_days_after(d, 3)
       FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::date[]) AS t(k, r, p, g, f, d)`,
    [columns.kind, columns.reference, columns.psp, columns.gross, columns.fee, columns.day]);
    seeded += columns.kind.length;
    for (const list of Object.values(columns)) list.length = 0;
  };
  await forEachOperation(plan, async (operation) => {
    if (operation.type === 'MerchantPayout') return;
    const [kind, reference, psp, grossMinor] = operation.type === 'Settled'
      ? ['capture', operation.merchantReference, operation.pspReference, operation.grossMinor]
      : operation.type === 'Refunded'
        ? ['refund', operation.modificationReference, operation.modificationReference, -operation.grossMinor]
        : ['chargeback', operation.modificationReference.replace('dp_', 'du_'), operation.modificationReference,
          -operation.grossMinor];
    columns.kind.push(kind);
    columns.reference.push(reference);
    columns.psp.push(psp);
    columns.gross.push(grossMinor.toString());
    columns.fee.push(operation.feeMinor.toString());
    columns.day.push(operation.day);
    if (columns.kind.length >= seedBatchItems) await flush();
  });
  await flush();
  await pool.query('ANALYZE reconciliation_items');
  return seeded;
}

/**
 * The matcher after the import: the ledger side seeded from the same plan, then one run as of the
 * day after the last batch, timed with its peak memory. Every line must match its item, and the
 * only breaks are the payouts no bank statement shows past their window (none is imported).
 */
async function reconcileAfterImport(context: {
  readonly pool: pg.Pool;
  readonly plan: ReportPlan;
  readonly imported: ImportSummary;
  readonly postmasterPid: number | undefined;
}): Promise<{ seconds: number; linesPerSecond: number; peakRssMb: number }> {
  const seeded = await seedLedgerSide(context.pool, context.plan);
  let lastDay = '';
  await forEachOperation(context.plan, (operation) => {
    if (operation.day > lastDay) lastDay = operation.day;
  });
  const asOf = new Date(Date.parse(`${lastDay}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
  const meter = new RssMeter();
  const cpuAtStart = cpuNow(context.postmasterPid);
  const startedAt = performance.now();
  const run = await new ReconciliationRuns(context.pool).run({ asOf });
  const runSeconds = (performance.now() - startedAt) / 1000;
  const memory = meter.stop();
  // No bank statement is imported: the payouts of batches older than their window are missing_in_bank.
  const payoutBreaks = run.counts.breaks_opened.missing_in_bank ?? 0;
  const otherBreaks = Object.keys(run.counts.breaks_opened).filter((type) => type !== 'missing_in_bank');
  if (run.counts.matched.ledger_psp !== seeded || otherBreaks.length > 0
    || payoutBreaks + run.counts.pending.psp_bank !== context.plan.batches) {
    throw new Error(`the run did not match the ${seeded} lines cleanly: ${JSON.stringify(run.counts)}`);
  }
  const linesPerSecond = Math.round(context.plan.lines / runSeconds);
  process.stdout.write(`run: ${context.plan.lines} lines (${seeded} matched to items, ${context.plan.batches} payouts `
    + `with no bank statement) in ${seconds(runSeconds)} s: ${linesPerSecond} lines/s; peak RSS `
    + `${memory.sampledPeakMb} MB sampled; ${cpuSince(cpuAtStart, context.postmasterPid)}\n`);
  return { seconds: runSeconds, linesPerSecond, peakRssMb: memory.sampledPeakMb };
}

function parseArguments(argv: readonly string[]): { lines: number; out: string | undefined } {
  let lines = defaultLines;
  let out: string | undefined;
  for (let index = 0; index < argv.length; index += 1) {
    const argument = argv[index];
    if (argument === '--lines') {
      lines = Number(argv[index + 1]);
      index += 1;
      if (!Number.isSafeInteger(lines) || lines < 1) throw new Error('--lines takes a positive integer');
    } else if (argument === '--out') {
      out = argv[index + 1];
      index += 1;
    } else {
      throw new Error(`unknown argument ${argument}; usage: recon-bench [--lines N] [--out FILE]`);
    }
  }
  return { lines, out };
}

async function openBenchDatabase(directory: string): Promise<{ url: string; stop: () => Promise<void>;
  postmasterPid?: number; }> {
  if (process.env.BENCH_DATABASE_URL) return { url: process.env.BENCH_DATABASE_URL, stop: async () => undefined };
  const server = await startEmbeddedPostgres({ directory: path.join(directory, 'pg'), port: await freePort() });
  await ensureDatabase(server.serverUrl, 'penny_bench');
  const pidFile = await fs.promises.readFile(path.join(server.dataDirectory, 'postmaster.pid'), 'utf8').catch(() => '');
  const postmasterPid = Number(pidFile.split('\n', 1)[0]) || undefined;
  return { url: withDatabase(server.serverUrl, 'penny_bench'), stop: () => server.stop(), postmasterPid };
}

async function main(): Promise<void> {
  const { lines, out } = parseArguments(process.argv.slice(2));
  const plan = planReport(lines);
  if (out !== undefined) {
    await writeReport(plan, out);
    process.stdout.write(`wrote ${lines} lines to ${out}\n`);
    return;
  }
  const directory = await fs.promises.mkdtemp(path.join('/var/tmp', 'penny-recon-bench-'));
  await fs.promises.chmod(directory, 0o755);
  try {
    const report = path.join(directory, 'settlement-details.csv');
    const generatedAt = performance.now();
    await writeReport(plan, report);
    const sizeMb = mb((await fs.promises.stat(report)).size);
    process.stderr.write(`generated ${lines} lines (${sizeMb} MB) in ${seconds((performance.now() - generatedAt) / 1000)} s\n`);
    const parsed = await parseOnly(report);
    const parsePerSecond = Math.round(parsed.records / parsed.seconds);
    process.stdout.write(`parse only: ${parsed.records} lines in ${seconds(parsed.seconds)} s: ${parsePerSecond} lines/s `
      + `(CSV, records, content hashes, COPY text; no database); CPU ${seconds(parsed.cpuSeconds)} s\n`);
    const database = await openBenchDatabase(directory);
    const pool = createPool({ connectionString: database.url, sizeMax: 2, applicationName: 'penny-recon-bench' });
    try {
      await migrate(database.url);
      const meter = new RssMeter();
      const cpuAtStart = cpuNow(database.postmasterPid);
      const startedAt = performance.now();
      const body = fs.createReadStream(report);
      const imported = await new ReconciliationImports(pool)
        .importFile({ body, filename: path.basename(report), source })
        .finally(() => body.destroy());
      const importSeconds = (performance.now() - startedAt) / 1000;
      const importCpu = cpuSince(cpuAtStart, database.postmasterPid);
      const memory = meter.stop();
      if (imported.already_known || imported.records.new !== lines) {
        throw new Error(`the import did not write the ${lines} lines: ${JSON.stringify(imported.records)}`);
      }
      const importPerSecond = Math.round(lines / importSeconds);
      process.stdout.write(`import: ${lines} lines (${sizeMb} MB) in ${seconds(importSeconds)} s: ${importPerSecond} lines/s; `
        + `peak RSS ${memory.sampledPeakMb} MB sampled during the import, VmHWM ${memory.vmHwmMb ?? '?'} MB `
        + `(the whole run) (${os.cpus().length} CPUs); ${importCpu}; load average `
        + `${os.loadavg().map((load) => seconds(load)).join(' ')}\n`);
      const reconciled = await reconcileAfterImport({ pool, plan, imported,
        postmasterPid: database.postmasterPid });
      const bothPerSecond = Math.round(lines / (importSeconds + reconciled.seconds));
      process.stdout.write(`import and run: ${bothPerSecond} lines/s\n`);
      process.stdout.write(`${JSON.stringify({ lines, size_mb: sizeMb, parse_lines_per_second: parsePerSecond,
        import_seconds: Math.round(importSeconds * 10) / 10, import_lines_per_second: importPerSecond,
        run_seconds: Math.round(reconciled.seconds * 10) / 10, run_lines_per_second: reconciled.linesPerSecond,
        import_and_run_lines_per_second: bothPerSecond,
        peak_rss_mb: Math.max(memory.sampledPeakMb, reconciled.peakRssMb), vm_hwm_mb: memory.vmHwmMb })}\n`);
    } finally {
      await pool.end();
      await database.stop();
    }
  } finally {
    await fs.promises.rm(directory, { recursive: true, force: true });
  }
}

await main();
