/**
 * `npm run bench:api`: the Stripe-compatible HTTP API under load, driven by autocannon.
 *
 * Penny runs as a child process (`node dist/src/cli/penny.js serve`), so the load generator and the
 * server do not share an event loop, against a fresh embedded PostgreSQL in its own temporary
 * directory and on its own port. Measured, after a warm-up:
 *
 * - the same-run reference: a Fastify hello-world (`GET /`, logger off) in its own child process, at
 *   8 connections, so that Penny's rates can be read as ratios that mean the same on any machine;
 * - payments per second: `POST /v1/payment_intents` with `confirm=true` and automatic capture, a
 *   unique Idempotency-Key per request, at 1, 8, 16 and 64 connections; then twice more at 8
 *   connections at half the rate the 8-connection run reached, for its p99: once with autocannon's
 *   `overallRate` (which sends each connection's share of a second back to back at the start of the
 *   second, so its latencies are those of bursts), once evenly paced (open loop, runPaced);
 * - idempotent replays per second: the same key and the same body every time, after one first
 *   request, at 16 and 64 connections; and, for comparison, replays spread round-robin over the
 *   1,000 keys the warm-up completed, so that no two requests in flight share a key;
 * - 2xx answers per second (non-2xx answers are counted apart, by status), p50 and p99 latency of
 *   the 2xx answers, the server's peak RSS in each run (VmHWM, reset before each run), the load
 *   generator's peak RSS, and CPU milliseconds per answer spent by the server (and, of that, in the
 *   kernel), by PostgreSQL, by the generator, and by anything else on the machine, which should be
 *   about nothing: a figure measured while something else ran is not comparable.
 *
 * After the table, issue 22's ratios with their targets: payments/s at 8 connections ÷ hello-world/s
 * (≥ 0.012), p99 at half the maximum rate (≤ 50 ms), replays (1,000 keys and one key, 16 connections)
 * ÷ hello-world/s (≥ 0.30).
 *
 * Between runs the benchmark waits until the server answers /readyz again, so that requests left
 * in flight by one run do not load the next. Any non-2xx response or connection error is printed
 * and makes the exit code 1: such a run does not measure what it claims to.
 *
 * BENCH_SECONDS (default 5) sets each measurement's length; BENCH_LOG_LEVEL (default warn) the
 * server's PENNY_LOG_LEVEL; BENCH_POOL_SIZE the server's PENNY_DB_POOL_SIZE (default: Penny's own);
 * BENCH_ONLY a comma list of the runs to make (hello, payments1, payments8, half, payments16,
 * payments64, replays; default all; `half` needs payments8 and adds it).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { startEmbeddedPostgres, type RunningPostgres } from '../src/db/embedded-postgres.js';
import { createPool, ensureDatabase, withDatabase } from '../src/db/pool.js';
import { MerchantService } from '../src/merchants/merchant-service.js';
import { freePort } from '../src/simulate/free-port.js';
import {
  figure, formatRatios, ratio, runAutocannon, runPaced, type HttpRun, type Ratio,
} from './support/http-load.js';
import {
  activityBetween, backendCpuMs, backendCpuMsBetween, cpuPerAnswer, cpuSnapshot, databaseActivity, peakRssMiB,
  pausesBetween, readPostmasterPid, round, resetPeakRss, scrapeServerGc,
  startHelloWorld, startPenny, stopServer, waitUntilQuiet,
  waitUntilReady, type CpuPerAnswer, type DatabaseActivity, type RunningPenny, type ServerPauses, type RunningServer,
} from './support/penny-server.js';

const secondsPerRun = Number(process.env.BENCH_SECONDS ?? 5);
const serverLogLevel = process.env.BENCH_LOG_LEVEL ?? 'warn';
const serverPoolSize = process.env.BENCH_POOL_SIZE;
const paymentConnections = [1, 8, 16, 64] as const;
const replayConnections = [16, 64] as const;
/** Connections of the hello-world reference, of the payments compared with it, and of the half-rate run. */
const referenceConnections = 8;
/** The warm-up's 1,000 payments fill the server's caches and give the replays their keys. */
const warmupConnections = 4;
const replayPoolSize = 1000;
/** The application_name of the sandbox PSP's pool (src/sandbox-psp/psp-service.ts), to split PostgreSQL's CPU. */
const sandboxApplicationName = 'penny-sandbox-psp';
const paymentBody = 'amount=2000&currency=usd&payment_method=pm_card_visa&confirm=true';
const targets = { paymentsPerSecond: 1500, paymentsP99Ms: 100, replaysPerSecond: 6000 } as const;
/** Issue 22's targets, as ratios of the same-run hello-world (and one latency). */
const ratioTargets = {
  paymentsPerHelloWorld: { atLeast: 0.012 },
  halfRateP99Ms: { atMost: 50 },
  replaysPerHelloWorld: { atLeast: 0.30 },
} as const;
const runNames = ['hello', 'payments1', 'payments8', 'half', 'payments16', 'payments64', 'replays'] as const;
type RunName = typeof runNames[number];
const selectedRuns = selectRuns(process.env.BENCH_ONLY);

type Scenario = 'hello-world' | 'payments' | 'payments, half max rate' | 'payments, half max rate, evenly paced' |
  'replays, one key' | 'replays, 1,000 keys' | 'replay floor';

interface Measurement {
  readonly scenario: Scenario;
  readonly connections: number;
  /** Requests per second asked of autocannon (the half-rate run); undefined: as fast as answered. */
  readonly overallRate: number | undefined;
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
  /** CPU per answer; for the hello-world, `server` is the hello-world's own process. */
  readonly cpuMsPerRequest: CpuPerAnswer;
  /** PostgreSQL's checkpoints and autovacuums during the run (none for the hello-world). */
  readonly databaseActivity?: DatabaseActivity;
  /** The server's GC and worst event-loop delay during the run (none for the hello-world). */
  readonly serverPauses?: ServerPauses;
}

interface Target {
  readonly url: string;
  readonly databaseUrl: string;
  readonly penny: RunningPenny;
  readonly secretKey: string;
  readonly serverPid: number;
  readonly postmasterPid: number;
}

function selectRuns(only: string | undefined): ReadonlySet<RunName> {
  if (only === undefined || only.trim() === '') return new Set(runNames);
  const names = only.split(',').map((name) => name.trim()).filter((name) => name !== '');
  const unknown = names.filter((name) => !(runNames as readonly string[]).includes(name));
  if (unknown.length > 0) {
    throw new Error(`BENCH_ONLY: unknown run(s) ${unknown.join(', ')}; known: ${runNames.join(', ')}`);
  }
  const selected = new Set(names as RunName[]);
  if (selected.has('half')) selected.add('payments8');
  return selected;
}

async function main(): Promise<void> {
  const directory = await fs.mkdtemp(path.join('/var/tmp', 'penny-api-bench-'));
  await fs.chmod(directory, 0o755);
  let postgres: RunningPostgres | undefined;
  let penny: RunningPenny | undefined;
  try {
    postgres = await startEmbeddedPostgres({ directory: path.join(directory, 'pg'), port: await freePort() });
    await ensureDatabase(postgres.serverUrl, 'penny_bench');
    const databaseUrl = withDatabase(postgres.serverUrl, 'penny_bench');
    penny = await startPenny({ directory, databaseUrl, logLevel: serverLogLevel, poolSize: serverPoolSize });
    const target: Target = {
      url: penny.url,
      databaseUrl,
      penny,
      secretKey: await createMerchant(databaseUrl, penny.pepper),
      serverPid: penny.pid,
      postmasterPid: await readPostmasterPid(postgres.dataDirectory),
    };

    const warmupKeys = await warmUp(target);
    const startupPeakRssMiB = await peakRssMiB(target.serverPid);
    const results: Measurement[] = [];
    if (selectedRuns.has('hello')) results.push(await measureHelloWorld(target.postmasterPid));
    for (const connections of paymentConnections) {
      if (!selectedRuns.has(`payments${connections}`)) continue;
      const measured = await measure(target, 'payments', connections, uniqueKeys(`pay-${connections}`));
      results.push(measured);
      if (connections === referenceConnections && selectedRuns.has('half')) {
        const overallRate = Math.max(1, Math.floor(measured.okPerSecond / 2));
        results.push(await measure(target, 'payments, half max rate', connections, uniqueKeys('pay-half'),
          overallRate));
        results.push(await measure(target, 'payments, half max rate, evenly paced', connections,
          uniqueKeys('pay-paced'), overallRate));
      }
    }
    if (selectedRuns.has('replays')) {
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
      const replayBodyFile = path.join(directory, 'replay-answer.json');
      await fs.writeFile(replayBodyFile, first.body);
      results.push(await measureReplayFloor(target, replayBodyFile));
    }
    await countPayments(databaseUrl);
    report(results, Math.max(startupPeakRssMiB, ...results.filter((result) => result.scenario !== 'hello-world')
      .map((result) => result.serverPeakRssMiB)));
    const failed = results.filter((result) => result.non2xx > 0 || result.errors > 0);
    if (failed.length > 0) {
      process.stderr.write(`non-2xx responses or connection errors in ${failed.length} run(s): ` +
        `${failed.map((result) => `${result.scenario} at ${result.connections}`).join('; ')}\n`);
      process.exitCode = 1;
    }
  } finally {
    if (penny !== undefined) await stopServer(penny.child);
    await postgres?.stop();
    await fs.rm(directory, { recursive: true, force: true });
  }
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

function paymentHeaders(target: Target): Record<string, string> {
  return { 'authorization': `Bearer ${target.secretKey}`, 'content-type': 'application/x-www-form-urlencoded' };
}

function requestOptions(target: Target, nextKey: () => string): autocannon.Options {
  return {
    url: target.url,
    requests: [{
      method: 'POST',
      path: '/v1/payment_intents',
      headers: paymentHeaders(target),
      body: paymentBody,
      setupRequest: (request) => ({ ...request, headers: { ...request.headers, 'idempotency-key': nextKey() } }),
    }],
  };
}

async function measure(target: Target, scenario: Scenario, connections: number, nextKey: () => string,
  overallRate?: number): Promise<Measurement> {
  await waitUntilReady(target.url, target.penny.child);
  // Each run measures its own work, not what the run before left to the server's workers.
  const quietAfterSeconds = await waitUntilQuiet(target);
  await resetPeakRss(target.serverPid);
  const sandboxBefore = await backendCpuMs(target.databaseUrl, sandboxApplicationName);
  const activityBefore = await databaseActivity(target.databaseUrl);
  const gcBefore = await scrapeServerGc(target.url, target.penny.operatorKey);
  const before = await cpuSnapshot(target);
  const run = scenario === 'payments, half max rate, evenly paced' && overallRate !== undefined
    ? await runPaced({
      url: target.url, connections, ratePerSecond: overallRate, seconds: secondsPerRun,
      request: () => ({ path: '/v1/payment_intents', method: 'POST', body: paymentBody,
        headers: { ...paymentHeaders(target), 'idempotency-key': nextKey() } }),
    })
    : await runAutocannon({
      ...requestOptions(target, nextKey), connections, duration: secondsPerRun,
      ...(overallRate === undefined ? {} : { overallRate }),
    });
  const after = await cpuSnapshot(target);
  const sandboxMs = backendCpuMsBetween(sandboxBefore, await backendCpuMs(target.databaseUrl, sandboxApplicationName));
  const activity = activityBetween(activityBefore, await databaseActivity(target.databaseUrl));
  const pauses = pausesBetween(gcBefore, await scrapeServerGc(target.url, target.penny.operatorKey));
  const measurement: Measurement = {
    scenario, connections, overallRate, ...withoutRunFields(run),
    serverPeakRssMiB: await peakRssMiB(target.serverPid),
    cpuMsPerRequest: { ...cpuPerAnswer(before, after, run.responses),
      postgresSandboxPsp: run.responses === 0 ? 0 : Math.round(sandboxMs / run.responses * 1000) / 1000 },
    databaseActivity: activity,
    serverPauses: pauses,
  };
  process.stderr.write(`${scenario} ${connections}${overallRate === undefined ? '' : ` at ${overallRate}/s`} ` +
    `(after ${quietAfterSeconds} s for the server to be quiet): ` +
    `${measurement.okPerSecond} 2xx/s, sent ${run.sent}, statuses ${JSON.stringify(run.statusCounts)}, ` +
    `errors ${run.errors}; PostgreSQL meanwhile: ${activity.checkpoints} checkpoint(s) ` +
    `(${activity.checkpointBuffers} buffers), ${activity.autovacuums} autovacuum/autoanalyze run(s); the server: ` +
    `GC ${pauses.gcMs} ms (${pauses.majorGcCount} major, ${pauses.majorGcMs} ms), ` +
    `event loop's worst delay ${pauses.eventLoopDelayMaxMs} ms beyond its 10 ms sampling\n`);
  return measurement;
}

function withoutRunFields(run: HttpRun): Omit<Measurement,
  'scenario' | 'connections' | 'overallRate' | 'serverPeakRssMiB' | 'cpuMsPerRequest'> {
  return {
    okPerSecond: run.okPerSecond, responsesPerSecond: run.responsesPerSecond, latencyMsP50: run.latencyMsP50,
    latencyMsP99: run.latencyMsP99, sent: run.sent, responses: run.responses, non2xx: run.non2xx,
    statusCounts: run.statusCounts, errors: run.errors,
  };
}

/** The hello-world in its own child process, started for its run and stopped after it, so it loads nothing else. */
async function measureHelloWorld(postmasterPid: number): Promise<Measurement> {
  const hello: RunningServer = await startHelloWorld();
  try {
    // A short unmeasured warm-up, as Penny's 1,000 payments are one.
    await runAutocannon({ url: hello.url, connections: referenceConnections, duration: 1 });
    await resetPeakRss(hello.pid);
    const subjects = { serverPid: hello.pid, postmasterPid };
    const before = await cpuSnapshot(subjects);
    const run = await runAutocannon({ url: hello.url, connections: referenceConnections, duration: secondsPerRun });
    const after = await cpuSnapshot(subjects);
    process.stderr.write(`hello-world ${referenceConnections}: ${run.okPerSecond} 2xx/s, sent ${run.sent}, ` +
      `statuses ${JSON.stringify(run.statusCounts)}, errors ${run.errors}\n`);
    return {
      scenario: 'hello-world', connections: referenceConnections, overallRate: undefined, ...withoutRunFields(run),
      serverPeakRssMiB: await peakRssMiB(hello.pid),
      cpuMsPerRequest: cpuPerAnswer(before, after, run.responses),
    };
  } finally {
    await stopServer(hello.child);
  }
}

/**
 * The replays' floor: a Fastify server that reads the same POST (headers and form body) and
 * answers the same stored bytes, doing nothing else, at the replays' 16 connections, in its own
 * child process. Penny's replay rate over it is how much of a replay's cost is Penny's own.
 */
async function measureReplayFloor(target: Target, replayBodyFile: string): Promise<Measurement> {
  const floor: RunningServer = await startHelloWorld({ replayBodyFile });
  const connections = replayConnections[0];
  try {
    const options = { ...requestOptions({ ...target, url: floor.url }, () => 'replay-floor'), connections };
    await runAutocannon({ ...options, duration: 1 });
    await resetPeakRss(floor.pid);
    const subjects = { serverPid: floor.pid, postmasterPid: target.postmasterPid };
    const before = await cpuSnapshot(subjects);
    const run = await runAutocannon({ ...options, duration: secondsPerRun });
    const after = await cpuSnapshot(subjects);
    process.stderr.write(`replay floor ${connections}: ${run.okPerSecond} 2xx/s, sent ${run.sent}, ` +
      `statuses ${JSON.stringify(run.statusCounts)}, errors ${run.errors}\n`);
    return {
      scenario: 'replay floor', connections, overallRate: undefined, ...withoutRunFields(run),
      serverPeakRssMiB: await peakRssMiB(floor.pid),
      cpuMsPerRequest: cpuPerAnswer(before, after, run.responses),
    };
  } finally {
    await stopServer(floor.child);
  }
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
  switch (result.scenario) {
    case 'hello-world': return 'the reference';
    case 'replay floor': return 'the replays\' floor';
    case 'payments': return `≥ ${targets.paymentsPerSecond}/s at p99 < ${targets.paymentsP99Ms} ms` +
      (result.connections === referenceConnections
        ? `; ≥ ${ratioTargets.paymentsPerHelloWorld.atLeast} × hello-world` : '');
    case 'payments, half max rate':
    case 'payments, half max rate, evenly paced': return `p99 ≤ ${ratioTargets.halfRateP99Ms.atMost} ms, no non-2xx`;
    default: return `≥ ${targets.replaysPerSecond}/s` + (result.connections === 16
      ? `; ≥ ${ratioTargets.replaysPerHelloWorld.atLeast} × hello-world` : '');
  }
}

/** Issue 22's figures: each of Penny's rates over the same run's hello-world, and the p99 at half the maximum rate. */
function ratiosOf(results: readonly Measurement[]): Ratio[] {
  const find = (scenario: Scenario, connections: number) =>
    results.find((result) => result.scenario === scenario && result.connections === connections);
  const hello = find('hello-world', referenceConnections)?.okPerSecond;
  // Met only with no non-2xx answer and no connection error as well.
  const halfRate = (scenario: Scenario, how: string) => {
    const half = find(scenario, referenceConnections);
    const checked = figure(`p99 ms of payments at half the maximum rate, ${how} (${half?.overallRate ?? '-'}/s, ` +
      `${referenceConnections} connections; non-2xx ${half?.non2xx ?? '-'})`, half?.latencyMsP99,
    ratioTargets.halfRateP99Ms);
    return half === undefined || half.non2xx + half.errors === 0 ? checked : { ...checked, met: false };
  };
  return [
    ratio(`payments/s at ${referenceConnections} connections ÷ hello-world/s`,
      find('payments', referenceConnections)?.okPerSecond, hello, ratioTargets.paymentsPerHelloWorld),
    halfRate('payments, half max rate', 'autocannon overallRate: bursts at the start of each second'),
    halfRate('payments, half max rate, evenly paced', 'evenly paced (open loop)'),
    ratio('replays, 1,000 keys, 16 connections ÷ hello-world/s', find('replays, 1,000 keys', 16)?.okPerSecond, hello,
      ratioTargets.replaysPerHelloWorld),
    ratio('replays, one key, 16 connections ÷ hello-world/s', find('replays, one key', 16)?.okPerSecond, hello,
      ratioTargets.replaysPerHelloWorld),
  ];
}

/**
 * What bounds each ratio whatever Penny's server does, from the same run's CPU figures: every core
 * busy with the part no server can shed. Payments: PostgreSQL's CPU per payment (the statements
 * the invariants need), so a server that cost nothing would reach cores ÷ that. Replays: the load
 * generator's CPU per replay (a POST with its body, and the 2.3 KB answer parsed), with a server
 * that cost nothing. Each bound is given as a rate, as a ratio of the hello-world, and with the
 * share of it Penny reached.
 */
interface RatioBound {
  readonly name: string;
  readonly boundPerSecond: number | null;
  readonly boundPerHelloWorld: number | null;
  readonly pennyShareOfBound: number | null;
}

function boundsOf(results: readonly Measurement[]): RatioBound[] {
  const cores = os.cpus().length;
  const hello = results.find((result) => result.scenario === 'hello-world')?.okPerSecond;
  const bound = (name: string, result: Measurement | undefined, cpuMs: (cpu: CpuPerAnswer) => number): RatioBound => {
    const perAnswerMs = result === undefined ? 0 : cpuMs(result.cpuMsPerRequest);
    if (result === undefined || perAnswerMs <= 0) {
      return { name, boundPerSecond: null, boundPerHelloWorld: null, pennyShareOfBound: null };
    }
    const perSecond = cores * 1000 / perAnswerMs;
    return { name, boundPerSecond: Math.round(perSecond),
      boundPerHelloWorld: hello === undefined ? null : Math.round(perSecond / hello * 10_000) / 10_000,
      pennyShareOfBound: Math.round(result.okPerSecond / perSecond * 1000) / 1000 };
  };
  const find = (scenario: Scenario, connections: number) =>
    results.find((result) => result.scenario === scenario && result.connections === connections);
  return [
    bound(`payments at ${referenceConnections} connections, PostgreSQL's CPU alone`,
      find('payments', referenceConnections), (cpu) => cpu.postgres),
    bound(`payments at ${referenceConnections} connections, PostgreSQL's CPU for Penny's own connections ` +
      '(the sandbox PSP\'s durable writes apart)',
    find('payments', referenceConnections), (cpu) => cpu.postgres - (cpu.postgresSandboxPsp ?? 0)),
    bound('replays, 1,000 keys, 16 connections, the load generator\'s CPU alone',
      find('replays, 1,000 keys', 16), (cpu) => cpu.generator),
    measuredBound('replays, 1,000 keys, 16 connections, a Fastify server answering the same POST with the same ' +
      'bytes and nothing else (the replay floor)', find('replays, 1,000 keys', 16), find('replay floor', 16), hello),
  ];
}

/** A bound measured as a rate in the same run (the replay floor), rather than derived from CPU. */
function measuredBound(name: string, penny: Measurement | undefined, floor: Measurement | undefined,
  hello: number | undefined): RatioBound {
  if (penny === undefined || floor === undefined || floor.okPerSecond <= 0) {
    return { name, boundPerSecond: null, boundPerHelloWorld: null, pennyShareOfBound: null };
  }
  return { name, boundPerSecond: floor.okPerSecond,
    boundPerHelloWorld: hello === undefined ? null : Math.round(floor.okPerSecond / hello * 10_000) / 10_000,
    pennyShareOfBound: Math.round(penny.okPerSecond / floor.okPerSecond * 1000) / 1000 };
}

function formatBounds(bounds: readonly RatioBound[]): string {
  const lines = [`What bounds the ratios whatever the server does (${os.cpus().length} cores, each busy with the ` +
    'part no server can shed):'];
  for (const item of bounds) {
    lines.push(`- ${item.name}: at most ${item.boundPerSecond ?? '-'}/s, ${item.boundPerHelloWorld ?? '-'} × ` +
      `hello-world; Penny reached ${item.pennyShareOfBound ?? '-'} of it`);
  }
  return lines.join('\n');
}

function activityCell(activity: DatabaseActivity | undefined): string {
  return activity === undefined ? '-'
    : `${activity.checkpoints} (${activity.checkpointBuffers}) / ${activity.autovacuums}`;
}

function pausesCell(pauses: ServerPauses | undefined): string {
  return pauses === undefined ? '-'
    : `${pauses.gcMs} (${pauses.majorGcCount}, ${pauses.majorGcMs}) / ${pauses.eventLoopDelayMaxMs}`;
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
      'PostgreSQL meanwhile: checkpoints (buffers) / autovacuums | ' +
      'server meanwhile: GC ms (major: count, ms) / worst event-loop delay ms (beyond its 10 ms sampling) | ' +
      'target |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const result of results) {
    const cpu = result.cpuMsPerRequest;
    const statuses = Object.entries(result.statusCounts).filter(([status]) => !status.startsWith('2'))
      .map(([status, count]) => `${count} × ${status}`).join(', ');
    const paced = result.overallRate === undefined ? ''
      : result.scenario === 'payments, half max rate' ? ` (autocannon overallRate ${result.overallRate}/s)`
        : ` (${result.overallRate}/s)`;
    lines.push(`| ${result.scenario}${paced} | ${result.connections} | ${result.okPerSecond} | ` +
      `${result.latencyMsP50} | ${result.latencyMsP99} | ${result.non2xx}${statuses ? ` (${statuses})` : ''}` +
      `${result.errors > 0 ? `, ${result.errors} errors` : ''} | ${result.serverPeakRssMiB} | ` +
      `${cpu.server} (${cpu.serverKernel}) / ${cpu.postgres}` +
      `${cpu.postgresSandboxPsp === undefined ? '' : ` (sandbox PSP ${cpu.postgresSandboxPsp})`} / ` +
      `${cpu.generator} / ${cpu.kernel} / ` +
      `${cpu.otherProcesses} | ${activityCell(result.databaseActivity)} | ${pausesCell(result.serverPauses)} | ` +
      `${targetFor(result)} |`);
  }
  lines.push('', `peak RSS over the whole run: server ${serverPeakRssMiB} MiB (start-up and warm-up included; ` +
    `the table gives each run's own peak; the hello-world row gives the hello-world's), ` +
    `load generator ${generatorPeakRssMiB} MiB`);
  const ratios = ratiosOf(results);
  lines.push('', formatRatios('Ratios to the same-run Fastify hello-world (issue 22):', ratios));
  const bounds = boundsOf(results);
  lines.push('', formatBounds(bounds));
  process.stdout.write(`${lines.join('\n')}\n`);
  process.stdout.write(`${JSON.stringify({
    results, ratios, bounds, server_peak_rss_mib: serverPeakRssMiB, generator_peak_rss_mib: generatorPeakRssMiB,
    targets, ratio_targets: ratioTargets,
  })}\n`);
}

await main();
