/**
 * `npm run bench:load [-- --step-seconds S] [-- --clients-max N]`: issue 21's load test. A mixed
 * workload (penny simulate's clients: payments with automatic and manual capture, declines,
 * destination charges, partial captures, cancels, refunds, transfers and payouts) sent through the
 * official `stripe` package to `penny serve` (a child process on a throw-away embedded PostgreSQL,
 * the networked sandbox PSP beside it, no faults), at rising concurrency (1, 2, 4, … clients, S
 * seconds each, each client sending its next request as soon as it has an answer) until the p99 of
 * a payment passes 100 ms or the rate stops rising. It prints each step, the sustained payments a
 * second with p99 under 100 ms, the checker's figures over everything sent (they must be 0), Penny's
 * peak RSS and the database's size per million payments.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { createLogger } from '../src/logger.js';
import { noFaults } from '../src/sandbox-psp/psp-faults.js';
import { checkRun } from '../src/simulate/simulation-checker.js';
import { reconcileRun, settleRun } from '../src/simulate/simulation-settle.js';
import { setUpPlatform } from '../src/simulate/simulation.js';
import { planWorkload, SimulationClients, type OperationRecord } from '../src/simulate/simulation-workload.js';
import { SimulationWorld } from '../src/simulate/simulation-world.js';

const arguments_ = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const index = arguments_.indexOf(`--${name}`);
  return index === -1 ? fallback : Number(arguments_[index + 1]);
};
const stepSeconds = option('step-seconds', 20);
const clientsMax = option('clients-max', 64);
const p99LimitMs = 100;
/** Stories planned a client and step: more than a step can use, so no client runs out. */
const storiesPerClient = 2_000;

interface Step {
  readonly clients: number;
  readonly payments: number;
  readonly operations: number;
  readonly paymentsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/** A figure with one decimal, for display only. */
function oneDecimal(value: number): string {
  return String(Math.round(value * 10) / 10);
}

function percentile(sorted: readonly number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? Number.NaN;
}

async function runStep(world: SimulationWorld, platform: Awaited<ReturnType<typeof setUpPlatform>>,
  clients: number): Promise<{ step: Step; runner: SimulationClients }> {
  const plan = planWorkload({ seed: 1000 + clients, payments: clients * storiesPerClient, clients, sellers: 3,
    giveUp: false });
  const runner = new SimulationClients(plan, platform, world.pennyUrl);
  const latencies: number[] = [];
  let operations = 0;
  const startedMs = Date.now();
  const deadlineMs = startedMs + stepSeconds * 1000;
  await runner.run(0, () => Date.now() >= deadlineMs, (record: OperationRecord, latencyMs: number) => {
    operations += 1;
    if (record.kind === 'create_payment') latencies.push(latencyMs);
  });
  const elapsedSeconds = (Date.now() - startedMs) / 1000;
  latencies.sort((left, right) => left - right);
  return {
    runner,
    step: { clients, payments: latencies.length, operations, paymentsPerSecond: latencies.length / elapsedSeconds,
      p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99) },
  };
}

/** Penny's database on disk (tables, indexes, TOAST), without the sandbox PSP's. */
async function databaseBytes(world: SimulationWorld): Promise<number> {
  const result = await world.pool.query<{ bytes: string }>('SELECT pg_database_size(current_database())::text AS bytes');
  return Number(result.rows[0]?.bytes);
}

const directory = await fs.mkdtemp(path.join(os.tmpdir(), 'penny-bench-load-'));
const logger = createLogger('warn', pino.destination({ dest: path.join(directory, 'simulation.log'), sync: true }));
const world = await SimulationWorld.start({ directory, logger, faults: noFaults });
try {
  await world.startPenny();
  const firstDay = await world.today();
  const platform = await setUpPlatform(world, 3);
  const emptyBytes = await databaseBytes(world);
  const steps: Step[] = [];
  const runners: SimulationClients[] = [];
  process.stdout.write(`bench:load: ${stepSeconds} s a step, ${os.cpus().length} cores (${os.cpus()[0]?.model})\n`);
  process.stdout.write('clients  payments/s  operations/s  p50 ms  p99 ms\n');
  for (let clients = 1; clients <= clientsMax; clients *= 2) {
    const { step, runner } = await runStep(world, platform, clients);
    steps.push(step);
    runners.push(runner);
    process.stdout.write(`${String(clients).padStart(7)}  ${oneDecimal(step.paymentsPerSecond).padStart(10)}  `
      + `${oneDecimal(step.operations / stepSeconds).padStart(12)}  ${oneDecimal(step.p50Ms).padStart(6)}  `
      + `${oneDecimal(step.p99Ms).padStart(6)}\n`);
    const best = Math.max(...steps.slice(0, -1).map((item) => item.paymentsPerSecond));
    if (step.p99Ms > p99LimitMs || (steps.length > 1 && step.paymentsPerSecond < best)) break;
  }
  const sustained = steps.filter((step) => step.p99Ms <= p99LimitMs)
    .reduce((best, step) => (step.paymentsPerSecond > (best?.paymentsPerSecond ?? 0) ? step : best),
      undefined as Step | undefined);
  const peakRssBytes = world.pennyPeakRssBytes();
  // What every client was sent, settled and reconciled, then checked.
  for (const runner of runners) await settleRun(world, runner, { settleMs: 120_000 });
  const breaks = await reconcileRun(world, firstDay);
  let lost = 0;
  let refusedApplied = 0;
  let duplicates = 0;
  let unresolved = 0;
  let violations = breaks.violations.length;
  for (const runner of runners) {
    const checked = await checkRun({ records: runner.records, penny: world.pool, sandbox: world.sandboxPool,
      secrets: [platform.secretKey, world.operatorKey, world.pepper, world.webhookSecret], logFile: world.logFile });
    lost += checked.acknowledgedLost;
    refusedApplied += checked.refusedApplied;
    duplicates += checked.duplicateEffects;
    unresolved += checked.unresolved;
    violations += checked.violations.length;
  }
  const bytes = await databaseBytes(world) - emptyBytes;
  const counted = await world.pool.query<{ payments: string }>('SELECT count(*)::text AS payments FROM payment_intents');
  const payments = Number(counted.rows[0]?.payments);
  process.stdout.write(`\nsustained with p99 under ${p99LimitMs} ms: ${sustained === undefined ? 'none'
    : `${oneDecimal(sustained.paymentsPerSecond)} payments/s at ${sustained.clients} clients (p99 ${oneDecimal(sustained.p99Ms)} ms)`}\n`);
  process.stdout.write(`checker: acknowledged but lost ${lost}, refused but applied ${refusedApplied}, duplicate effects `
    + `${duplicates}, unresolved ${unresolved}, reconciliation breaks ${breaks.count}, violations ${violations}\n`);
  process.stdout.write(`Penny's peak RSS: ${peakRssBytes === undefined ? 'unknown'
    : `${Math.round(peakRssBytes / 1024 / 1024)} MB`}\n`);
  process.stdout.write(`database: ${Math.round(bytes / 1024 / 1024)} MB more for ${payments} payments, `
    + `${Math.round(bytes / payments * 1_000_000 / 1024 / 1024 / 1024 * 10) / 10} GB per million payments\n`);
  const largest = await world.pool.query<{ name: string; bytes: string }>(
    `SELECT c.relname AS name, pg_total_relation_size(c.oid)::text AS bytes FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY pg_total_relation_size(c.oid) DESC LIMIT 8`);
  process.stdout.write(`largest tables: ${largest.rows.map((row) => `${row.name} ${Math.round(Number(row.bytes) / 1024 / 1024)} MB`)
    .join(', ')}\n`);
  if (lost + refusedApplied + duplicates + unresolved + violations > 0) process.exitCode = 1;
} finally {
  await world.stop();
  await fs.rm(directory, { recursive: true, force: true });
}
