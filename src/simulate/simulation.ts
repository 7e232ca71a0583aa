import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { createLogger } from '../logger.js';
import Stripe from 'stripe';
import { MerchantService } from '../merchants/merchant-service.js';
import { seededRandom } from '../sandbox-psp/psp-faults.js';
import { checkRun, type CheckInput, type Violation } from './simulation-checker.js';
import { calmProfile, FaultSchedule, planFaults, sandboxProfile, type FaultKind } from './simulation-faults.js';
import { reconcileRun, settleRun } from './simulation-settle.js';
import { selectIntents } from './simulation-store.js';
import { SimulationWorld } from './simulation-world.js';
import { pastedCardNumber, planWorkload, SimulationClients, type Platform } from './simulation-workload.js';

/**
 * `penny simulate`: one seeded run of clients against `penny serve` under faults, then a settling
 * time, then the checker. The result is the issue's figures, each required to be 0, and the
 * invariants' violations (decisions.md, "penny simulate --json").
 */
export interface SimulationOptions {
  readonly seed: number;
  readonly payments: number;
  readonly durationMs: number;
  readonly faults: ReadonlySet<FaultKind>;
  readonly clients: number;
  readonly sellers: number;
  /** The longest the run waits, after the faults stop, for what is under way to finish. */
  readonly settleMs: number;
  /** Replays compared with their first answer (drawn from the seed among the successful operations). */
  readonly replaysMax: number;
  /** Keeps the run's directory (database, Penny's log) instead of removing it. */
  readonly keep: boolean;
  /**
   * Penny's database: an outside one (the failover drill's HA cluster) instead of an embedded
   * PostgreSQL of the run's own. The simulation's database faults (db_restart, db_network) act on
   * its own PostgreSQL only, so they are refused with it.
   */
  readonly databaseUrl?: string | undefined;
  /**
   * Moves the controlled clock first to this long before the next UTC midnight, so that the days
   * turn while the run settles (the settling time moves the clock on in steps): what Penny booked
   * and what the PSP reports must still name the same days.
   */
  readonly startBeforeMidnightMs?: number | undefined;
}

export interface SimulationProgress {
  readonly phase: 'starting' | 'running' | 'settling' | 'checking' | 'done';
  readonly operations: number;
  readonly faults: number;
  readonly elapsedMs: number;
}

export interface SimulationResult {
  readonly seed: number;
  readonly payments: number;
  readonly operations: { ok: number; failed: number; indefinite: number };
  /** By the kinds of `--faults` (decisions.md); `faults_injected_detail` by what exactly was done. */
  readonly faults_injected: Record<string, number>;
  readonly faults_injected_detail: Record<string, number>;
  readonly acknowledged_lost: number;
  readonly refused_applied: number;
  readonly duplicate_effects: number;
  readonly unresolved: number;
  readonly in_review: number;
  readonly replays_compared: number;
  readonly reconciliation_breaks: number;
  /** Days whose pull during the faults did not get through in its minute (pulled again at the end). */
  readonly settlement_pulls_deferred: number;
  readonly violations: readonly Violation[];
  readonly elapsed_ms: number;
  readonly directory: string | undefined;
  /** The command that runs the same schedule of operations and faults again. */
  readonly replay: string;
}

export function replayCommand(options: SimulationOptions): string {
  const faults = [...options.faults].join(',') || 'none';
  return `penny simulate --seed ${options.seed} --payments ${options.payments} --duration ${options.durationMs / 1000} `
    + `--faults ${faults} --clients ${options.clients} --sellers ${options.sellers} --settle ${options.settleMs / 1000} `
    + `--replays ${options.replaysMax}`;
}

export interface SimulationHooks {
  readonly onProgress?: (progress: SimulationProgress) => void;
  /**
   * Runs beside the clients, from their start (the failover drill's kills and probe): `clientsDone`
   * says when the clients have ended. The run waits for it before settling; its failure fails the run.
   */
  readonly duringRun?: (run: { world: SimulationWorld; platform: Platform; clientsDone: () => boolean })
  => Promise<void>;
  /** Called once checked, before the world is thrown away (the tests' way to tamper and check again). */
  readonly inspect?: (run: { world: SimulationWorld; clients: SimulationClients; input: CheckInput }) => Promise<void>;
}

export async function runSimulation(options: SimulationOptions, hooks: SimulationHooks = {}):
Promise<SimulationResult> {
  const startedMs = Date.now();
  const onProgress = hooks.onProgress ?? (() => undefined);
  let operations = 0;
  let faults = 0;
  const progress = (phase: SimulationProgress['phase']) => onProgress({ phase, operations, faults,
    elapsedMs: Date.now() - startedMs });
  progress('starting');
  if (options.databaseUrl !== undefined && (options.faults.has('db_restart') || options.faults.has('db_network'))) {
    throw new Error('the faults db_restart and db_network act on the run\'s own PostgreSQL: not with an outside database');
  }
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), `penny-simulate-${options.seed}-`));
  // The sandbox's and the embedded PostgreSQL's lines go to a file of the run, never to stdout.
  const logger = createLogger('warn', pino.destination({ dest: path.join(directory, 'simulation.log'), sync: true }));
  const profile = sandboxProfile(options.seed, options.faults);
  const world = await SimulationWorld.start({ directory, logger, faults: profile,
    databaseUrl: options.databaseUrl }).catch(async (error: unknown) => {
    if (!options.keep) await fs.rm(directory, { recursive: true, force: true });
    throw error;
  });
  try {
    await world.startPenny();
    if (options.startBeforeMidnightMs !== undefined) {
      await moveClockBeforeMidnight(world, options.startBeforeMidnightMs);
    }
    const firstDay = await world.today();
    const platform = await setUpPlatform(world, options.sellers);
    const plan = planWorkload({ seed: options.seed, payments: options.payments, clients: options.clients,
      sellers: options.sellers, giveUp: options.faults.has('clients') });
    const clients = new SimulationClients(plan, platform, world.pennyUrl);
    const schedule = new FaultSchedule(world, planFaults(options.seed, options.faults, options.durationMs), () => {
      faults += 1;
    });
    const ticker = setInterval(() => progress('running'), 1000);
    const runStartedMs = Date.now();
    let clientsDone = false;
    let pullsDeferred = 0;
    // Every part runs to its end even when another fails (so nothing runs on after the world stops).
    const ended = await Promise.allSettled([
      clients.run(options.durationMs, () => clientsDone, () => { operations += 1; })
        .finally(() => { clientsDone = true; schedule.stop(); }),
      schedule.run(runStartedMs).finally(() => { clientsDone = true; }),
      closeDaysWhileRunning(world, clients, options.durationMs, () => clientsDone, () => { pullsDeferred += 1; })
        .catch((error: unknown) => {
          clientsDone = true;
          schedule.stop();
          throw error;
        }),
      (hooks.duringRun?.({ world, platform, clientsDone: () => clientsDone }) ?? Promise.resolve())
        .catch((error: unknown) => {
          clientsDone = true;
          schedule.stop();
          throw error;
        }),
    ]);
    clearInterval(ticker);
    const failed = ended.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    progress('settling');
    await world.setSandboxProfile(calmProfile(profile));
    world.proxy.disarm();
    await schedule.reviveIfDead();
    await settleRun(world, clients, { settleMs: options.settleMs });
    const breaks = await reconcileRun(world, firstDay);
    progress('checking');
    const replays = await compareReplays(clients, options);
    const throughApi = await compareApiWithDatabase(clients, world, options);
    const input: CheckInput = { records: clients.records, penny: world.pool, sandbox: world.sandboxPool,
      secrets: [platform.secretKey, world.operatorKey, world.pepper, world.webhookSecret, pastedCardNumber,
        pastedCardNumber.replaceAll(' ', '')],
      logFile: world.logFile };
    const checked = await checkRun(input);
    await hooks.inspect?.({ world, clients, input });
    const violations = [...replays.violations, ...throughApi, ...breaks.violations, ...checked.violations];
    const sandboxFaults = await world.sandboxInjectedFaults();
    progress('done');
    return {
      seed: options.seed, payments: options.payments,
      operations: {
        ok: clients.records.filter((record) => record.outcome === 'ok').length,
        failed: clients.records.filter((record) => record.outcome === 'failed').length,
        indefinite: clients.records.filter((record) => record.everIndefinite).length,
      },
      ...faultFigures({ ...schedule.injected, ...sandboxFaults, db_commit_cut: world.proxy.commitCuts,
        clients_gave_up: clients.records.filter((record) => record.abandoned).length }),
      acknowledged_lost: checked.acknowledgedLost, refused_applied: checked.refusedApplied,
      duplicate_effects: checked.duplicateEffects, unresolved: checked.unresolved, in_review: checked.inReview,
      replays_compared: replays.compared, reconciliation_breaks: breaks.count,
      settlement_pulls_deferred: pullsDeferred, violations,
      elapsed_ms: Date.now() - startedMs, directory: options.keep ? directory : undefined,
      replay: replayCommand(options),
    };
  } finally {
    await world.stop();
    if (!options.keep) await fs.rm(directory, { recursive: true, force: true });
  }
}

/**
 * The faults done, by detail (a kill at a failpoint, a stalled connection, a duplicated webhook…)
 * and summed by the kinds `--faults` names. An armed failpoint is counted when Penny dies at it.
 */
function faultFigures(detail: Record<string, number>) {
  const kindOf = (name: string): FaultKind | undefined => {
    if (name.startsWith('kill')) return 'kill';
    if (name === 'db_restart') return 'db_restart';
    if (name.startsWith('db_')) return 'db_network';
    if (name.startsWith('psp_webhook_')) return 'webhooks';
    if (name.startsWith('psp_')) return 'psp';
    return name === 'clients_gave_up' ? 'clients' : undefined;
  };
  const byKind: Record<string, number> = {};
  for (const [name, count] of Object.entries(detail)) {
    const kind = kindOf(name);
    if (kind !== undefined && count > 0) byKind[kind] = (byKind[kind] ?? 0) + count;
  }
  return { faults_injected: byKind, faults_injected_detail: detail };
}

/** A failed run: a figure not 0, or a violation. */
export function simulationFailed(result: SimulationResult): boolean {
  return result.acknowledged_lost + result.refused_applied + result.duplicate_effects + result.unresolved > 0
    || result.violations.length > 0;
}

/** The platform merchant (made with SQL, as `penny merchants create` does) and its sellers. */
export async function setUpPlatform(world: SimulationWorld, sellers: number): Promise<Platform> {
  const { secretKey } = await new MerchantService(world.pool, world.pepper).createMerchant('Simulated platform');
  const url = new URL(world.pennyUrl);
  const stripe = new Stripe(secretKey, { host: url.hostname, port: Number(url.port), protocol: 'http' });
  const accounts: string[] = [];
  for (let index = 0; index < sellers; index += 1) {
    const account = await stripe.accounts.create({ type: 'custom', country: 'US',
      settings: { payouts: { schedule: { interval: 'manual' } } } });
    await stripe.accounts.createExternalAccount(account.id, { external_account: { object: 'bank_account',
      country: 'US', currency: 'usd', account_number: '000123456789', routing_number: '110000000' } });
    accounts.push(account.id);
  }
  return { secretKey, sellers: accounts };
}

/**
 * The PSP's settlement days close during the run: at a quarter, a half and three quarters of it,
 * Penny's clock (and with it the sandbox's) moves a day on, and the day before is closed at the
 * sandbox, which pays its batches out; Penny's settlement worker pulls them.
 */
async function closeDaysWhileRunning(world: SimulationWorld, clients: SimulationClients, durationMs: number,
  done: () => boolean, onPullDeferred: () => void): Promise<void> {
  const startedMs = Date.now();
  for (const fraction of [0.25, 0.5, 0.75]) {
    while (!done() && Date.now() < startedMs + durationMs * fraction) await sleep(100);
    if (done()) return;
    // The clients' requests under way are answered first (their retries included), for at most a minute.
    await clients.pause(60_000);
    try {
      const { pulled } = await world.advanceDayAndCloseYesterday('best_effort');
      if (!pulled) onPullDeferred();
    } finally {
      clients.resume();
    }
  }
}

async function moveClockBeforeMidnight(world: SimulationWorld, beforeMs: number): Promise<void> {
  const nowMs = await world.nowMs();
  const nextMidnightMs = (Math.floor(nowMs / 86_400_000) + 1) * 86_400_000;
  const byS = Math.floor((nextMidnightMs - beforeMs - nowMs) / 1000);
  if (byS > 0) await world.advanceClock(`${byS}s`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The final state read through the API, against what SQL reads: PaymentIntents the clients
 * created (as many as `--replays`, drawn from the seed) must show the status and amount received
 * their rows hold.
 */
async function compareApiWithDatabase(clients: SimulationClients, world: SimulationWorld,
  options: SimulationOptions): Promise<Violation[]> {
  const random = seededRandom(options.seed ^ 0xa91);
  const rows = new Map((await selectIntents(world.pool)).map((row) => [row.id, row]));
  const created = clients.records.filter((record) => record.kind === 'create_payment' && record.objectId !== undefined);
  const chosen = created.filter(() => random() < options.replaysMax / Math.max(1, created.length))
    .slice(0, options.replaysMax);
  const violations: Violation[] = [];
  for (const record of chosen) {
    const id = record.objectId ?? '';
    const row = rows.get(id);
    const shown = await clients.retrieveIntent(id);
    if (row === undefined || row.status !== shown.status || row.amountReceived !== BigInt(shown.amountReceived)) {
      violations.push({ check: 'api_differs_from_database', objects: [id],
        message: `the API shows ${shown.status} with ${shown.amountReceived}, the database ${row?.status} with ${row?.amountReceived}` });
    }
  }
  return violations;
}

async function compareReplays(clients: SimulationClients, options: SimulationOptions) {
  const random = seededRandom(options.seed ^ 0x4e91);
  const succeeded = clients.records.filter((record) => record.outcome === 'ok');
  const chosen = succeeded.filter(() => random() < options.replaysMax / Math.max(1, succeeded.length))
    .slice(0, options.replaysMax);
  const violations: Violation[] = [];
  for (const record of chosen) {
    const replayed = await clients.replay(record);
    if (replayed !== record.body) {
      violations.push({ check: 'replay_differs', objects: [record.key, record.objectId ?? ''],
        message: 'a replay under the same key answered differently from the first answer' });
    }
  }
  return { compared: chosen.length, violations };
}
