/**
 * `npm run bench:api`: the Stripe-compatible HTTP API under load, driven by autocannon.
 *
 * Penny runs as a child process (`node dist/src/cli/penny.js serve`), so the load generator and the
 * server do not share an event loop, against a fresh embedded PostgreSQL in its own temporary
 * directory and on its own port. Measured, after a warm-up:
 *
 * - payments per second: `POST /v1/payment_intents` with `confirm=true` and automatic capture, a
 *   unique Idempotency-Key per request, at 1, 16 and 64 connections;
 * - idempotent replays per second: the same key and the same body every time, after one first
 *   request, at 16 and 64 connections; and, for comparison, replays spread round-robin over the
 *   1,000 keys the warm-up completed, so that no two requests in flight share a key;
 * - 2xx answers per second (non-2xx answers are counted apart, by status), p50 and p99 latency of
 *   the 2xx answers, the server's peak RSS in each run (VmHWM, reset before each run), the load
 *   generator's peak RSS, and CPU milliseconds per answer spent by the server (and, of that, in the
 *   kernel), by PostgreSQL, by the generator, and by anything else on the machine, which should be
 *   about nothing: a figure measured while something else ran is not comparable.
 *
 * Between runs the benchmark waits until the server answers /readyz again, so that requests left
 * in flight by one run do not load the next. Any non-2xx response or connection error is printed
 * and makes the exit code 1: such a run does not measure what it claims to.
 *
 * BENCH_SECONDS (default 5) sets each measurement's length; BENCH_LOG_LEVEL (default warn) the
 * server's PENNY_LOG_LEVEL; BENCH_POOL_SIZE the server's PENNY_DB_POOL_SIZE (default: Penny's own).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { startEmbeddedPostgres, type RunningPostgres } from '../src/db/embedded-postgres.js';
import { createPool, ensureDatabase, withDatabase } from '../src/db/pool.js';
import { MerchantService } from '../src/merchants/merchant-service.js';
import { freePort } from '../src/simulate/free-port.js';

const secondsPerRun = Number(process.env.BENCH_SECONDS ?? 5);
const serverLogLevel = process.env.BENCH_LOG_LEVEL ?? 'warn';
const serverPoolSize = process.env.BENCH_POOL_SIZE;
const paymentConnections = [1, 16, 64] as const;
const replayConnections = [16, 64] as const;
/** The warm-up's 1,000 payments fill the server's caches and give the replays their keys. */
const warmupConnections = 4;
const replayPoolSize = 1000;
const paymentBody = 'amount=2000&currency=usd&payment_method=pm_card_visa&confirm=true';
const targets = { paymentsPerSecond: 1500, paymentsP99Ms: 100, replaysPerSecond: 6000 } as const;
const pennyEntry = fileURLToPath(new URL('../src/cli/penny.js', import.meta.url));

type Scenario = 'payments' | 'replays, one key' | 'replays, 1,000 keys';

interface Measurement {
  readonly scenario: Scenario;
  readonly connections: number;
  /** 2xx answers per second: payments, or replays; non-2xx answers are counted apart. */
  readonly okPerSecond: number;
  readonly responsesPerSecond: number;
  readonly latencyMsP50: number;
  readonly latencyMsP99: number;
  readonly sent: number;
  readonly responses: number;
  readonly non2xx: number;
  readonly statusCounts: Record<string, number>;
  readonly errors: number;
  readonly serverPeakRssMiB: number;
  /**
   * CPU per answer. `kernel` is machine busy time no process accounts for: kernel threads and
   * interrupts (block I/O of WAL flushes, loopback networking); `otherProcesses` is anything else
   * running on the machine, which disturbs the measurement when it is not about zero.
   */
  readonly cpuMsPerRequest: {
    readonly server: number; readonly serverKernel: number; readonly postgres: number; readonly generator: number;
    readonly kernel: number; readonly otherProcesses: number;
  };
}

interface Target {
  readonly url: string;
  readonly server: ChildProcess;
  readonly secretKey: string;
  readonly serverPid: number;
  readonly postmasterPid: number;
}

async function main(): Promise<void> {
  const directory = await fs.mkdtemp(path.join('/var/tmp', 'penny-api-bench-'));
  await fs.chmod(directory, 0o755);
  let postgres: RunningPostgres | undefined;
  let server: ChildProcess | undefined;
  try {
    postgres = await startEmbeddedPostgres({ directory: path.join(directory, 'pg'), port: await freePort() });
    await ensureDatabase(postgres.serverUrl, 'penny_bench');
    const databaseUrl = withDatabase(postgres.serverUrl, 'penny_bench');
    const pepper = randomBytes(32).toString('hex');
    const port = await freePort();
    server = startServer({
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl,
      PENNY_DATA_DIR: path.join(directory, 'data'),
      PENNY_SECRET_KEY: pepper,
      PENNY_OPERATOR_KEY: `pk_operator_${randomBytes(24).toString('hex')}`,
      PENNY_LOG_LEVEL: serverLogLevel,
      // The benchmark measures capacity, far above a merchant's default limit of 100 requests a second.
      PENNY_RATE_LIMIT_PER_SECOND: '0',
      // The sandbox PSP runs beside Penny in the server process, as npm start runs it.
      PENNY_SANDBOX_PSP_PORT: String(await freePort()),
      ...(serverPoolSize === undefined ? {} : { PENNY_DB_POOL_SIZE: serverPoolSize }),
    });
    const url = `http://127.0.0.1:${port}`;
    await waitUntilReady(url, server);
    const target: Target = {
      url,
      server,
      secretKey: await createMerchant(databaseUrl, pepper),
      serverPid: server.pid as number,
      postmasterPid: await readPostmasterPid(postgres.dataDirectory),
    };

    const warmupKeys = await warmUp(target);
    const startupPeakRssMiB = await peakRssMiB(target.serverPid);
    const results: Measurement[] = [];
    for (const connections of paymentConnections) {
      results.push(await measure(target, 'payments', connections, uniqueKeys(`pay-${connections}`)));
    }
    const replayKey = `replay-${randomBytes(8).toString('hex')}`;
    const first = await post(target, replayKey);
    if (first.status !== 200) throw new Error(`the request to replay answered ${first.status}: ${first.body}`);
    for (const connections of replayConnections) {
      results.push(await measure(target, 'replays, one key', connections, () => replayKey));
    }
    let next = 0;
    for (const connections of replayConnections) {
      results.push(await measure(target, 'replays, 1,000 keys', connections,
        () => warmupKeys[(next++) % warmupKeys.length] as string));
    }
    await countPayments(databaseUrl);
    report(results, Math.max(startupPeakRssMiB, ...results.map((result) => result.serverPeakRssMiB)));
    const failed = results.filter((result) => result.non2xx > 0 || result.errors > 0);
    if (failed.length > 0) {
      process.stderr.write(`non-2xx responses or connection errors in ${failed.length} run(s): ` +
        `${failed.map((result) => `${result.scenario} at ${result.connections}`).join('; ')}\n`);
      process.exitCode = 1;
    }
  } finally {
    if (server !== undefined) await stopServer(server);
    await postgres?.stop();
    await fs.rm(directory, { recursive: true, force: true });
  }
}

function startServer(environment: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(process.execPath, [pennyEntry, 'serve'], { env: environment, stdio: ['ignore', 'pipe', 'pipe'] });
  const forward = (chunk: Buffer) => process.stderr.write(`[penny] ${chunk.toString()}`);
  child.stdout?.on('data', forward);
  child.stderr?.on('data', forward);
  return child;
}

/** Until /readyz answers 200: at start, and between runs (it needs a free pool connection). */
async function waitUntilReady(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`penny serve exited with ${child.exitCode}`);
    const ready = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(15_000) })
      .then((response) => response.ok, () => false);
    if (ready) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('penny serve was not ready within 120 s');
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

async function createMerchant(databaseUrl: string, pepper: string): Promise<string> {
  const pool = createPool({ connectionString: databaseUrl, sizeMax: 1, applicationName: 'penny-api-bench' });
  try {
    const { secretKey } = await new MerchantService(pool, pepper).createMerchant('API benchmark');
    return secretKey;
  } finally {
    await pool.end();
  }
}

async function post(target: Target, idempotencyKey: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`${target.url}/v1/payment_intents`, {
    method: 'POST',
    headers: {
      'authorization': `Bearer ${target.secretKey}`,
      'content-type': 'application/x-www-form-urlencoded',
      'idempotency-key': idempotencyKey,
    },
    body: paymentBody,
  });
  return { status: response.status, body: await response.text() };
}

/** 1,000 payments, not measured; their keys, all completed, are replayed later. */
async function warmUp(target: Target): Promise<string[]> {
  const keys: string[] = [];
  const prefix = `warm-${randomBytes(8).toString('hex')}`;
  const started = performance.now();
  const run = await autocannon({
    ...requestOptions(target, () => {
      const key = `${prefix}-${keys.length}`;
      keys.push(key);
      return key;
    }),
    connections: warmupConnections,
    amount: replayPoolSize,
  });
  if (run.non2xx > 0 || run.errors > 0) {
    throw new Error(`warm-up: ${run.non2xx} non-2xx responses, ${run.errors} errors`);
  }
  const seconds = (performance.now() - started) / 1000;
  for (const key of keys) {
    const replay = await post(target, key);
    if (replay.status !== 200) throw new Error(`warm-up key ${key} replayed ${replay.status}: ${replay.body}`);
  }
  process.stderr.write(`warm-up: ${run.requests.total} payments at ${warmupConnections} connections ` +
    `in ${round(seconds)} s\n`);
  return keys;
}

function uniqueKeys(label: string): () => string {
  const prefix = `${label}-${randomBytes(8).toString('hex')}`;
  let index = 0;
  return () => `${prefix}-${index++}`;
}

function requestOptions(target: Target, nextKey: () => string): autocannon.Options {
  return {
    url: target.url,
    requests: [{
      method: 'POST',
      path: '/v1/payment_intents',
      headers: {
        'authorization': `Bearer ${target.secretKey}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: paymentBody,
      setupRequest: (request) => ({ ...request, headers: { ...request.headers, 'idempotency-key': nextKey() } }),
    }],
  };
}

async function measure(target: Target, scenario: Scenario, connections: number, nextKey: () => string):
Promise<Measurement> {
  await waitUntilReady(target.url, target.server);
  await resetPeakRss(target.serverPid);
  const before = await cpuSnapshot(target);
  const latenciesMs: number[] = [];
  const run = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon({ ...requestOptions(target, nextKey), connections, duration: secondsPerRun },
      (error: unknown, result) => (error ? reject(error as Error) : resolve(result)));
    // autocannon's own histogram keeps whole milliseconds; these keep the fraction.
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) latenciesMs.push(responseTime);
    });
  });
  const after = await cpuSnapshot(target);
  latenciesMs.sort((left, right) => left - right);
  const statusCounts = Object.fromEntries(Object.entries(run.statusCodeStats ?? {})
    .map(([status, stats]) => [status, stats.count ?? 0]));
  const responses = Object.values(statusCounts).reduce((sum, count) => sum + count, 0);
  const measurement: Measurement = {
    scenario,
    connections,
    okPerSecond: Math.round(run['2xx'] / run.duration),
    responsesPerSecond: Math.round(responses / run.duration),
    latencyMsP50: round(percentile(latenciesMs, 0.5)),
    latencyMsP99: round(percentile(latenciesMs, 0.99)),
    sent: run.requests.sent,
    responses,
    non2xx: run.non2xx,
    statusCounts,
    errors: run.errors,
    serverPeakRssMiB: await peakRssMiB(target.serverPid),
    cpuMsPerRequest: cpuPerAnswer(before, after, responses),
  };
  process.stderr.write(`${scenario} ${connections}: ${measurement.okPerSecond} 2xx/s, ` +
    `sent ${run.requests.sent}, statuses ${JSON.stringify(statusCounts)}, errors ${run.errors}\n`);
  return measurement;
}

function cpuPerAnswer(before: CpuSnapshot, after: CpuSnapshot, answers: number): Measurement['cpuMsPerRequest'] {
  const perAnswer = (milliseconds: number) => round(answers === 0 ? 0 : Math.max(0, milliseconds) / answers);
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

function percentile(sorted: readonly number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? 0;
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

/** Writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS. */
async function resetPeakRss(pid: number): Promise<void> {
  await fs.writeFile(`/proc/${pid}/clear_refs`, '5').catch(() => undefined);
}

async function peakRssMiB(pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1] ?? 0);
  return Math.round(kib / 1024);
}

interface CpuSnapshot {
  readonly server: number;
  readonly serverKernel: number;
  readonly machine: number;
  readonly postgres: number;
  readonly generator: number;
  /** Every other process by pid, kernel threads (children of kthreadd, pid 2) left out. */
  readonly others: ReadonlyMap<number, number>;
}

const clockTicksPerSecond = 100;

/**
 * CPU milliseconds so far: the server (and the part of it spent in the kernel), PostgreSQL (the
 * postmaster and its children), this process, every other process, and the whole machine (busy
 * time in /proc/stat).
 */
async function cpuSnapshot(target: Target): Promise<CpuSnapshot> {
  const stats = await readProcessStats();
  const cpuLine = (await fs.readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
  // cpu user nice system idle iowait irq softirq steal: everything but idle and iowait is busy.
  const [user, nice, system, , , irq, softirq, steal] = cpuLine.trim().split(/\s+/).slice(1).map(Number);
  const busyTicks = [user, nice, system, irq, softirq, steal].reduce((sum: number, ticks) => sum + (ticks ?? 0), 0);
  const server = stats.find((stat) => stat.pid === target.serverPid);
  const postgres = stats.filter((stat) => stat.pid === target.postmasterPid || stat.ppid === target.postmasterPid);
  const usage = process.cpuUsage();
  const ours = new Set([target.serverPid, process.pid, ...postgres.map((stat) => stat.pid)]);
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

async function readPostmasterPid(dataDirectory: string): Promise<number> {
  const text = await fs.readFile(path.join(dataDirectory, 'postmaster.pid'), 'utf8');
  return Number(text.split('\n')[0]);
}

async function countPayments(databaseUrl: string): Promise<void> {
  const pool = createPool({ connectionString: databaseUrl, sizeMax: 1, applicationName: 'penny-api-bench' });
  try {
    const result = await pool.query<{ status: string; count: string }>(
      'SELECT status, count(*)::text AS count FROM payment_intents GROUP BY status ORDER BY status');
    process.stderr.write(`payment intents in the database: ${JSON.stringify(result.rows)}\n`);
  } finally {
    await pool.end();
  }
}

function targetFor(result: Measurement): string {
  if (result.scenario === 'payments') {
    return `≥ ${targets.paymentsPerSecond}/s at p99 < ${targets.paymentsP99Ms} ms`;
  }
  return `≥ ${targets.replaysPerSecond}/s`;
}

function report(results: readonly Measurement[], serverPeakRssMiB: number): void {
  const generatorPeakRssMiB = Math.round(process.resourceUsage().maxRSS / 1024);
  const lines = [
    `API benchmark — ${new Date().toISOString()} — ${os.cpus().length} cores (${os.cpus()[0]?.model}), ` +
      `node ${process.version}, ${secondsPerRun}s per run, Penny as a child process, ` +
      `log level ${serverLogLevel}, database pool ${serverPoolSize ?? 'default'}`,
    '',
    '| scenario | connections | 2xx/s | p50 ms | p99 ms | non-2xx | server peak RSS MiB | ' +
      'CPU ms per answer: server (in kernel) / PostgreSQL / generator / kernel threads, IRQs / other processes | ' +
      'target |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const result of results) {
    const cpu = result.cpuMsPerRequest;
    const statuses = Object.entries(result.statusCounts).filter(([status]) => !status.startsWith('2'))
      .map(([status, count]) => `${count} × ${status}`).join(', ');
    lines.push(`| ${result.scenario} | ${result.connections} | ${result.okPerSecond} | ` +
      `${result.latencyMsP50} | ${result.latencyMsP99} | ${result.non2xx}${statuses ? ` (${statuses})` : ''}` +
      `${result.errors > 0 ? `, ${result.errors} errors` : ''} | ${result.serverPeakRssMiB} | ` +
      `${cpu.server} (${cpu.serverKernel}) / ${cpu.postgres} / ${cpu.generator} / ${cpu.kernel} / ` +
      `${cpu.otherProcesses} | ` +
      `${targetFor(result)} |`);
  }
  lines.push('', `peak RSS over the whole run: server ${serverPeakRssMiB} MiB (start-up and warm-up included; ` +
    `the table gives each run's own peak), load generator ${generatorPeakRssMiB} MiB`);
  process.stdout.write(`${lines.join('\n')}\n`);
  process.stdout.write(`${JSON.stringify({
    results, server_peak_rss_mib: serverPeakRssMiB, generator_peak_rss_mib: generatorPeakRssMiB, targets,
  })}\n`);
}

await main();
