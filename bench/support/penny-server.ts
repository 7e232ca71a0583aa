/**
 * What the HTTP benchmarks share: Penny (or a reference server) as a child process, its readiness,
 * its peak RSS, and CPU snapshots of the server, PostgreSQL, the load generator and the rest of
 * the machine, read from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort } from '../../src/simulate/free-port.js';

const pennyEntry = fileURLToPath(new URL('../../src/cli/penny.js', import.meta.url));
/** package.json, from dist/bench/support/. */
const packageJsonPath = fileURLToPath(new URL('../../../package.json', import.meta.url));
const helloWorldEntry = fileURLToPath(new URL('../hello-world-server.js', import.meta.url));

export interface PennyServerOptions {
  /** Penny's PENNY_DATA_DIR goes under it. */
  readonly directory: string;
  readonly databaseUrl: string;
  readonly logLevel: string;
  /** PENNY_DB_POOL_SIZE; undefined keeps Penny's default. */
  readonly poolSize: string | undefined;
}

export interface RunningServer {
  readonly url: string;
  readonly child: ChildProcess;
  readonly pid: number;
}

export interface RunningPenny extends RunningServer {
  /** PENNY_SECRET_KEY: it peppers API-key hashes, so a merchant made beside the server needs it. */
  readonly pepper: string;
  /** PENNY_OPERATOR_KEY: it authorizes /v1/ledger/…. */
  readonly operatorKey: string;
}

/**
 * `node dist/src/cli/penny.js serve`, as `npm start` runs it, with the sandbox PSP beside it in the
 * same process, the per-merchant rate limit off (a benchmark measures capacity), on free ports.
 */
export async function startPenny(options: PennyServerOptions): Promise<RunningPenny> {
  const pepper = randomBytes(32).toString('hex');
  const operatorKey = `pk_operator_${randomBytes(24).toString('hex')}`;
  const port = await freePort();
  const child = spawnServer('penny', [...await startNodeOptions(), ...serverNodeOptions(), pennyEntry, 'serve'], {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: options.databaseUrl,
    PENNY_DATA_DIR: path.join(options.directory, 'data'),
    PENNY_SECRET_KEY: pepper,
    PENNY_OPERATOR_KEY: operatorKey,
    PENNY_LOG_LEVEL: options.logLevel,
    PENNY_RATE_LIMIT_PER_SECOND: '0',
    PENNY_SANDBOX_PSP_PORT: String(await freePort()),
    ...(options.poolSize === undefined ? {} : { PENNY_DB_POOL_SIZE: options.poolSize }),
  });
  const url = `http://127.0.0.1:${port}`;
  await readyOrStopped(url, child, '/readyz');
  return { url, child, pid: child.pid as number, pepper, operatorKey };
}

/**
 * The same-run reference: a Fastify hello-world (`GET /` → `{"hello":"world"}`), logger off; with
 * `replayBodyFile`, also the replays' floor (bench/hello-world-server.ts).
 */
export async function startHelloWorld(options: { replayBodyFile?: string } = {}): Promise<RunningServer> {
  const port = await freePort();
  const child = spawnServer('hello-world', [helloWorldEntry], { ...process.env, PORT: String(port),
    ...(options.replayBodyFile === undefined ? {} : { REPLAY_FLOOR_BODY_FILE: options.replayBodyFile }) });
  const url = `http://127.0.0.1:${port}`;
  await readyOrStopped(url, child, '/');
  return { url, child, pid: child.pid as number };
}

/** A server that never became ready is stopped, so that it outlives no failed benchmark. */
async function readyOrStopped(url: string, child: ChildProcess, readinessPath: string): Promise<void> {
  try {
    await waitUntilReady(url, child, readinessPath);
  } catch (error) {
    await stopServer(child);
    throw error;
  }
}

/**
 * The Node options `npm start` gives the server (package.json's start script, between `node` and
 * the entry point), so a benchmark measures the server a user starts.
 */
async function startNodeOptions(): Promise<string[]> {
  const manifest = JSON.parse(await fs.readFile(packageJsonPath, 'utf8')) as { scripts?: { start?: string } };
  const start = manifest.scripts?.start ?? '';
  const words = start.split(' ').filter((word) => word !== '');
  const entry = words.findIndex((word, index) => index > 0 && !word.startsWith('-'));
  const options = words.slice(1, entry);
  // Only `node --flag` or `node --option=value … entry serve`: anything else would be misread here.
  if (words[0] !== 'node' || entry < 0 || !options.every((word) => /^--[\w-]+(=\S+)?$/.test(word))) {
    throw new Error(`package.json's start script is not "node [--option[=value] …] ENTRY serve": ${start}`);
  }
  return options;
}

/**
 * BENCH_SERVER_NODE_OPTIONS: Node options for Penny's server alone, after `npm start`'s own (for example
 * `--cpu-prof --cpu-prof-dir=/tmp/profiles`, which NODE_OPTIONS refuses), split on spaces.
 */
function serverNodeOptions(): string[] {
  return (process.env.BENCH_SERVER_NODE_OPTIONS ?? '').split(' ').filter((option) => option !== '');
}

function spawnServer(name: string, args: readonly string[], environment: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(process.execPath, args, { env: environment, stdio: ['ignore', 'pipe', 'pipe'] });
  const forward = (chunk: Buffer) => process.stderr.write(`[${name}] ${chunk.toString()}`);
  child.stdout?.on('data', forward);
  child.stderr?.on('data', forward);
  return child;
}

/** Until `readinessPath` answers 2xx: at start, and between runs (Penny's /readyz needs a free pool connection). */
export async function waitUntilReady(url: string, child: ChildProcess, readinessPath = '/readyz'): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}`);
    const ready = await fetch(`${url}${readinessPath}`, { signal: AbortSignal.timeout(15_000) })
      .then(async (response) => {
        await response.arrayBuffer();
        return response.ok;
      }, () => false);
    if (ready) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the server was not ready within 120 s');
}

/**
 * Waits until the server and PostgreSQL have finished the background work an earlier run left
 * (the sealer hashing its entries, the compactor, webhook deliveries): their CPU together under
 * 5 % of a core over half a second, or 60 s at most. Answers the seconds waited.
 */
export async function waitUntilQuiet(subjects: CpuSubjects): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < 60_000) {
    const before = await cpuSnapshot(subjects);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const after = await cpuSnapshot(subjects);
    if (after.server + after.postgres - before.server - before.postgres < 25) break;
  }
  return Math.round((Date.now() - started) / 100) / 10;
}

export async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

export async function readPostmasterPid(dataDirectory: string): Promise<number> {
  const text = await fs.readFile(path.join(dataDirectory, 'postmaster.pid'), 'utf8');
  return Number(text.split('\n')[0]);
}

/** Writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS. */
export async function resetPeakRss(pid: number): Promise<void> {
  await fs.writeFile(`/proc/${pid}/clear_refs`, '5').catch(() => undefined);
}

export async function peakRssMiB(pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1] ?? 0);
  return Math.round(kib / 1024);
}

export function percentile(sorted: readonly number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? 0;
}

export function round(value: number): number {
  return Math.round(value * 100) / 100;
}

/** Whose CPU a snapshot tells apart; a postmaster pid of 0 (a server of one's own) counts PostgreSQL as others. */
export interface CpuSubjects {
  readonly serverPid: number;
  readonly postmasterPid: number;
}

export interface CpuSnapshot {
  readonly server: number;
  readonly serverKernel: number;
  readonly machine: number;
  readonly postgres: number;
  readonly generator: number;
  /** Every other process by pid, kernel threads (children of kthreadd, pid 2) left out. */
  readonly others: ReadonlyMap<number, number>;
}

/**
 * CPU per answer. `kernel` is machine busy time no process accounts for: kernel threads and
 * interrupts (block I/O of WAL flushes, loopback networking); `otherProcesses` is anything else
 * running on the machine, which disturbs the measurement when it is not about zero.
 */
export interface CpuPerAnswer {
  readonly server: number;
  readonly serverKernel: number;
  readonly postgres: number;
  /** Of `postgres`, the backends of the sandbox PSP's connections (when measured). */
  readonly postgresSandboxPsp?: number;
  readonly generator: number;
  readonly kernel: number;
  readonly otherProcesses: number;
}

const clockTicksPerSecond = 100;

/**
 * CPU milliseconds so far: the server (and the part of it spent in the kernel), PostgreSQL (the
 * postmaster and its children), this process, every other process, and the whole machine (busy
 * time in /proc/stat).
 */
export async function cpuSnapshot(subjects: CpuSubjects): Promise<CpuSnapshot> {
  const stats = await readProcessStats();
  const cpuLine = (await fs.readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
  // cpu user nice system idle iowait irq softirq steal: everything but idle and iowait is busy.
  const [user, nice, system, , , irq, softirq, steal] = cpuLine.trim().split(/\s+/).slice(1).map(Number);
  const busyTicks = [user, nice, system, irq, softirq, steal].reduce((sum: number, ticks) => sum + (ticks ?? 0), 0);
  const server = stats.find((stat) => stat.pid === subjects.serverPid);
  const postgres = subjects.postmasterPid === 0 ? [] : stats.filter((stat) =>
    stat.pid === subjects.postmasterPid || stat.ppid === subjects.postmasterPid);
  const usage = process.cpuUsage();
  const ours = new Set([subjects.serverPid, process.pid, ...postgres.map((stat) => stat.pid)]);
  const others = stats.filter((stat) => !ours.has(stat.pid) && stat.pid !== 2 && stat.ppid !== 2);
  return {
    others: new Map(others.map((stat) => [stat.pid, stat.cpuMs])),
    server: server?.cpuMs ?? 0,
    serverKernel: server?.kernelMs ?? 0,
    machine: (busyTicks * 1000) / clockTicksPerSecond,
    postgres: postgres.reduce((sum, stat) => sum + stat.cpuMs, 0),
    generator: (usage.user + usage.system) / 1000,
  };
}

export function cpuPerAnswer(before: CpuSnapshot, after: CpuSnapshot, answers: number): CpuPerAnswer {
  // To the microsecond: a hello-world answer costs some tens of them.
  const perAnswer = (milliseconds: number) =>
    Math.round((answers === 0 ? 0 : Math.max(0, milliseconds) / answers) * 1000) / 1000;
  const server = after.server - before.server;
  const postgres = after.postgres - before.postgres;
  const generator = after.generator - before.generator;
  let otherProcesses = 0;
  for (const [pid, milliseconds] of after.others) {
    otherProcesses += Math.max(0, milliseconds - (before.others.get(pid) ?? 0));
  }
  return {
    server: perAnswer(server),
    serverKernel: perAnswer(after.serverKernel - before.serverKernel),
    postgres: perAnswer(postgres),
    generator: perAnswer(generator),
    kernel: perAnswer(after.machine - before.machine - server - postgres - generator - otherProcesses),
    otherProcesses: perAnswer(otherProcesses),
  };
}

/**
 * CPU milliseconds so far of each PostgreSQL backend serving a connection named `applicationName`
 * (the sandbox PSP's pool is 'penny-sandbox-psp'), by backend pid: how PostgreSQL's CPU splits
 * between Penny's own connections and the sandbox PSP's, which share the server in a benchmark.
 */
export async function backendCpuMs(databaseUrl: string, applicationName: string): Promise<Map<number, number>> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'penny-bench' });
  await client.connect();
  try {
    const result = await client.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE application_name = $1', [applicationName]);
    const pids = new Set(result.rows.map((row) => row.pid));
    return new Map((await readProcessStats()).filter((stat) => pids.has(stat.pid))
      .map((stat) => [stat.pid, stat.cpuMs]));
  } finally {
    await client.end();
  }
}

/** CPU milliseconds the backends spent between two readings; a backend made since counts whole. */
export function backendCpuMsBetween(before: ReadonlyMap<number, number>, after: ReadonlyMap<number, number>): number {
  let total = 0;
  for (const [pid, milliseconds] of after) total += Math.max(0, milliseconds - (before.get(pid) ?? 0));
  return total;
}

async function readProcessStats(): Promise<{ pid: number; ppid: number; cpuMs: number; kernelMs: number }[]> {
  const entries = (await fs.readdir('/proc')).filter((entry) => /^\d+$/.test(entry));
  const stats = await Promise.all(entries.map(async (entry) => {
    const text = await fs.readFile(`/proc/${entry}/stat`, 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    // The command name may hold spaces and parentheses; the fields after its last ')' do not.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
    return {
      pid: Number(entry), ppid: Number(fields[1]), cpuMs: (ticks * 1000) / clockTicksPerSecond,
      kernelMs: (Number(fields[12]) * 1000) / clockTicksPerSecond,
    };
  }));
  return stats.filter((stat) => stat !== undefined);
}

/**
 * What PostgreSQL did in the background so far: completed checkpoints, the buffers they wrote,
 * autovacuum and autoanalyze runs.
 */
export interface DatabaseActivity {
  readonly checkpoints: number;
  readonly checkpointBuffers: number;
  readonly autovacuums: number;
}

/**
 * Read before and after a run, so that a latency outlier can be told apart from Penny's own work:
 * a checkpoint's writes and fsyncs, or an autovacuum, slow every statement of the moment.
 * Checkpoints completed (PostgreSQL 18's `num_done`; skipped ones are not counted); autovacuums of
 * the benchmark's own database (the statistics views show one database).
 */
export async function databaseActivity(databaseUrl: string): Promise<DatabaseActivity> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'penny-bench' });
  await client.connect();
  try {
    const result = await client.query<{ checkpoints: string; buffers: string; autovacuums: string }>(
      `SELECT (SELECT num_done FROM pg_stat_checkpointer)::text AS checkpoints,
              (SELECT buffers_written FROM pg_stat_checkpointer)::text AS buffers,
              (SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0) FROM pg_stat_all_tables)::text AS autovacuums`);
    const row = result.rows[0];
    return { checkpoints: Number(row?.checkpoints), checkpointBuffers: Number(row?.buffers),
      autovacuums: Number(row?.autovacuums) };
  } finally {
    await client.end();
  }
}

export function activityBetween(before: DatabaseActivity, after: DatabaseActivity): DatabaseActivity {
  return { checkpoints: after.checkpoints - before.checkpoints,
    checkpointBuffers: after.checkpointBuffers - before.checkpointBuffers,
    autovacuums: after.autovacuums - before.autovacuums };
}

/** The server's own pauses during a run: its garbage collection and its event loop's worst delay. */
export interface ServerPauses {
  /** Milliseconds spent in garbage collection, all kinds, and in major (mark-compact) collections alone. */
  readonly gcMs: number;
  readonly majorGcMs: number;
  readonly majorGcCount: number;
  /**
   * The event loop's longest delay since the scrape before (prom-client resets it at each scrape),
   * less the 10 ms interval at which prom-client samples it (an idle loop reads 10–13 ms).
   */
  readonly eventLoopDelayMaxMs: number;
}

interface ServerGcTotals { readonly gcSeconds: number; readonly majorSeconds: number; readonly majorCount: number;
  readonly lagMaxSeconds: number }

/** Penny's /metrics (the operator key): GC totals so far, and the event loop's worst delay since the last scrape. */
export async function scrapeServerGc(url: string, operatorKey: string): Promise<ServerGcTotals> {
  const response = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${operatorKey}` } });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`GET /metrics answered ${response.status}: ${text.slice(0, 200)}`);
  const sum = (pattern: RegExp) => [...text.matchAll(pattern)].reduce((total, match) => total + Number(match[1]), 0);
  return {
    gcSeconds: sum(/^penny_nodejs_gc_duration_seconds_sum\{[^}]*\} (\S+)$/gm),
    majorSeconds: sum(/^penny_nodejs_gc_duration_seconds_sum\{kind="major"[^}]*\} (\S+)$/gm),
    majorCount: sum(/^penny_nodejs_gc_duration_seconds_count\{kind="major"[^}]*\} (\S+)$/gm),
    lagMaxSeconds: sum(/^penny_nodejs_eventloop_lag_max_seconds(?:\{[^}]*\})? (\S+)$/gm),
  };
}

/** prom-client's event-loop monitor samples every 10 ms; each delay it records includes that interval. */
const eventLoopSamplingSeconds = 0.01;

export function pausesBetween(before: ServerGcTotals, after: ServerGcTotals): ServerPauses {
  const milliseconds = (seconds: number) => Math.round(seconds * 10_000) / 10;
  return { gcMs: milliseconds(after.gcSeconds - before.gcSeconds),
    majorGcMs: milliseconds(after.majorSeconds - before.majorSeconds),
    majorGcCount: after.majorCount - before.majorCount,
    eventLoopDelayMaxMs: Math.max(0, milliseconds(after.lagMaxSeconds - eventLoopSamplingSeconds)) };
}
