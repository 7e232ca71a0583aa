/**
 * `npm run test:ha [-- --json --payments N --clients C --duration S --kills K --sync-cost S]`: the
 * failover drill (issue 23; docs/operations.md, "The failover drill"). Brings the local
 * pg_auto_failover cluster up when it is not (`penny ha up`), empties its `penny` database, runs
 * the simulation's workload against it and, under that load, kills the primary (SIGKILL of its
 * keeper's process group: runuser, pg_autoctl, postgres) K times, each time waiting for a new
 * primary, for Penny to answer a write again, and for `ha up` to bring the killed node back as a
 * standby. Then the simulation settles and its checker runs on the final primary. A probe sends a
 * payment every 100 ms: each failover's write unavailability is from the kill to the first 2xx of
 * a probe sent after it. `--json` prints one JSON object last; exit 1 unless acknowledged_lost,
 * duplicate_effects and violations are all 0 / empty.
 */
import { randomInt } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command } from 'commander';
import pino from 'pino';
import Stripe from 'stripe';
import { createClient } from '../src/db/pool.js';
import { haStatus, haUp } from '../src/ha/ha-cluster.js';
import { unavailableSeconds, type ProbeAnswer } from '../src/ha/ha-drill-figures.js';
import { dataNodes, haSettingsFrom, primaryOf, type HaSettings } from '../src/ha/ha-layout.js';
import { createLogger } from '../src/logger.js';
import { MerchantService } from '../src/merchants/merchant-service.js';
import { sandboxProfile } from '../src/simulate/simulation-faults.js';
import { runSimulation, setUpPlatform, type SimulationResult } from '../src/simulate/simulation.js';
import type { Violation } from '../src/simulate/simulation-checker.js';
import { dropEverythingOwned, selectUnsettledWork } from '../src/simulate/simulation-store.js';
import { SimulationWorld } from '../src/simulate/simulation-world.js';

const program = new Command('ha-drill')
  .option('--json', 'print one JSON object last')
  .option('--payments <n>', 'payments of the workload', '1000')
  .option('--clients <n>', 'concurrent clients', '8')
  .option('--duration <seconds>', 'how long the clients run (the kills happen within it)', '300')
  .option('--kills <n>', 'how many times the primary is killed under load', '2')
  .option('--no-cut', 'leave out the cut (the primary frozen while a standby lags)')
  .option('--seed <n>', 'the workload\'s seed (random by default)')
  .option('--sync-cost <seconds>', 'length of each plain run measuring sync_cost_ratio (0: not measured)', '30')
  .parse(process.argv);
const options = program.opts<{ json?: boolean; payments: string; clients: string; duration: string; kills: string;
  seed?: string; syncCost: string; cut?: boolean }>();

interface DrillReport {
  failovers: number;
  acknowledged_lost: number | null;
  duplicate_effects: number | null;
  violations: readonly Violation[] | null;
  unavailability_s: (number | null)[];
  sync_cost_ratio: number | null;
  skipped: false | string;
}

const limits = { failoverMs: 180_000, probeEveryMs: 100, probeTimeoutMs: 2_000, warmupMs: 20_000 };

function say(line: string): void {
  process.stderr.write(`${new Date().toISOString()} ha-drill: ${line}\n`);
}

/** A payment created every 100 ms (one at a time) by a merchant of its own; each answer's times and success. */
class WriteProbe {
  readonly answered: ProbeAnswer[] = [];
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(private readonly stripe: Stripe) {}

  start(): void {
    this.loop = (async () => {
      for (let index = 0; !this.stopped; index += 1) {
        const sentMs = Date.now();
        const ok = await this.stripe.paymentIntents.create({ amount: 100, currency: 'usd' },
          { idempotencyKey: `ha-probe-${sentMs}-${index}` }).then(() => true, () => false);
        this.answered.push({ sentMs, answeredMs: Date.now(), ok });
        await sleep(Math.max(0, sentMs + limits.probeEveryMs - Date.now()));
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  /** The write unavailability after a fault at `faultMs` (see unavailableSeconds), waited for at most `timeoutMs`. */
  async unavailability(faultMs: number, timeoutMs: number): Promise<number | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const seconds = unavailableSeconds(this.answered, faultMs);
      if (seconds !== undefined || Date.now() > deadline) return seconds ?? null;
      await sleep(50);
    }
  }
}


async function primaryName(settings: HaSettings): Promise<string | undefined> {
  const status = await haStatus(settings).catch(() => undefined);
  return status === undefined ? undefined : primaryOf(status.nodes)?.name;
}

/** SIGKILL of the node's keeper process group (runuser, pg_autoctl, its postgres), and of a postmaster outliving it. */
async function killNode(settings: HaSettings, name: string): Promise<void> {
  const { group, postmaster } = await nodeProcesses(settings, name);
  if (group === undefined) throw new Error(`${name} has no keeper process group to kill`);
  signal(-group);
  if (postmaster !== undefined) signal(postmaster);
  await waitGone(group, postmaster);
}

/**
 * Until the killed processes are gone: `ha up` asks `pg_autoctl status` whether the keeper runs,
 * and a keeper killed but not yet reaped still counts (ha up then waits for a node that never comes).
 */
async function waitGone(group: number | undefined, postmaster: number | undefined): Promise<void> {
  const deadline = Date.now() + 30_000;
  const alive = (id: number | undefined) => {
    if (id === undefined) return false;
    try {
      process.kill(id, 0);
      return true;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code !== 'ESRCH';
    }
  };
  while ((alive(group === undefined ? undefined : -group) || alive(postmaster)) && Date.now() < deadline) {
    await sleep(200);
  }
  await sleep(1_000);
}

/** The node's keeper process group and its postmaster (when /proc shows it serving the node). */
async function nodeProcesses(settings: HaSettings, name: string): Promise<{ group: number | undefined;
  postmaster: number | undefined; pgdata: string }> {
  const node = dataNodes(settings).find((each) => each.name === name);
  if (node === undefined) throw new Error(`no data node ${name}`);
  const group = Number((await fs.readFile(node.pidFile, 'utf8').catch(() => '')).trim());
  const postmaster = Number((await fs.readFile(path.join(node.pgdata, 'postmaster.pid'), 'utf8')
    .catch(() => '')).split('\n')[0]);
  const commandLine = await fs.readFile(`/proc/${postmaster}/cmdline`, 'utf8').catch(() => '');
  return { group: Number.isSafeInteger(group) && group > 1 ? group : undefined,
    postmaster: Number.isSafeInteger(postmaster) && postmaster > 1 && commandLine.split('\0').includes(node.pgdata)
      ? postmaster : undefined, pgdata: node.pgdata };
}

/**
 * The children of a postmaster (backends, walsenders, the walreceiver…). PostgreSQL puts each in a
 * process group of its own (setsid), so a signal to the keeper's group reaches the postmaster only:
 * a SIGSTOP of the group alone leaves the backends serving their connections and the walsenders
 * streaming.
 */
async function postmasterChildren(postmaster: number): Promise<{ pid: number; title: string }[]> {
  const children: { pid: number; title: string }[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await fs.readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (parent !== postmaster) continue;
    children.push({ pid: Number(entry), title: await fs.readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '') });
  }
  return children;
}

/** The walreceiver of a standby's postmaster (a child of it whose title says so). */
async function walReceiver(postmaster: number): Promise<number | undefined> {
  return (await postmasterChildren(postmaster)).find((child) => child.title.includes('walreceiver'))?.pid;
}

function signal(id: number, name: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(id, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

async function waitForNewPrimary(settings: HaSettings, old: string, timeoutMs: number): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const name = await primaryName(settings);
    if (name !== undefined && name !== old) return name;
    await sleep(500);
  }
  return undefined;
}

/**
 * The cut: one standby's walreceiver is stopped (SIGSTOP) so that it lags, the primary writes on
 * (its commits wait for the other standby), then the primary is frozen whole (SIGSTOP of its
 * process group and postmaster: no shutdown, its connections hang open as behind a cut network).
 * The lagging standby resumes 5 s later; once a new primary is promoted, the frozen one is killed
 * (SIGKILL), so it never comes back as a second primary, and `ha up` brings it back as a standby.
 */
async function cutPrimary(settings: HaSettings, probe: WriteProbe): Promise<{ promoted: string | undefined;
  seconds: number | null }> {
  const old = await primaryName(settings);
  if (old === undefined) throw new Error('the formation names no primary to cut off');
  const standby = dataNodes(settings).map((node) => node.name).find((name) => name !== old) ?? '';
  const standbyPostmaster = (await nodeProcesses(settings, standby)).postmaster;
  const receiver = standbyPostmaster === undefined ? undefined : await walReceiver(standbyPostmaster);
  if (receiver !== undefined) signal(receiver, 'SIGSTOP');
  say(`cut: ${standby}'s walreceiver ${receiver === undefined ? 'not found (it does not lag)' : `(pid ${receiver}) stopped`}`);
  await sleep(3_000);
  const primary = await nodeProcesses(settings, old);
  const children = primary.postmaster === undefined ? [] : await postmasterChildren(primary.postmaster);
  say(`cut: ${old}, the primary, frozen (SIGSTOP of its keeper's process group, its postmaster and its `
    + `${children.length} backends and auxiliary processes)`);
  const cutMs = Date.now();
  if (primary.group !== undefined) signal(-primary.group, 'SIGSTOP');
  if (primary.postmaster !== undefined) signal(primary.postmaster, 'SIGSTOP');
  for (const child of children) signal(child.pid, 'SIGSTOP');
  await sleep(5_000);
  if (receiver !== undefined) signal(receiver, 'SIGCONT');
  const promoted = await waitForNewPrimary(settings, old, limits.failoverMs);
  const promotedMs = Date.now();
  // Stopped processes cannot see their postmaster die: each is killed.
  if (primary.group !== undefined) signal(-primary.group);
  if (primary.postmaster !== undefined) signal(primary.postmaster);
  for (const child of children) signal(child.pid);
  await waitGone(primary.group, primary.postmaster);
  const refusedWhileFrozen = probe.answered.filter((answer) => answer.sentMs >= cutMs && !answer.ok).length;
  const takenWhileFrozen = probe.answered.filter((answer) => answer.sentMs >= cutMs + 1_000 && answer.ok
    && answer.answeredMs <= promotedMs).length;
  say(`cut: between the freeze and the promotion, ${refusedWhileFrozen} probe writes failed and `
    + `${takenWhileFrozen} succeeded (sent 1 s or more after the freeze)`);
  return { promoted, seconds: await probe.unavailability(cutMs, limits.failoverMs) };
}

/**
 * The checker's pool (the world's) finds the new primary: its first connection after a failover
 * goes to the last primary it knew, is refused there and searches again only on the next one.
 */
async function reachPrimary(world: SimulationWorld): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const error = await selectUnsettledWork(world.pool).then(() => undefined, (failure: unknown) => failure);
    if (error === undefined) return;
    if (Date.now() > deadline) throw error;
    await sleep(500);
  }
}

/** The kills, under the simulation's load: one figure of unavailability a kill (null: no write within 3 minutes). */
async function killPrimaries(settings: HaSettings, world: SimulationWorld, kills: number, cut: boolean,
  clientsDone: () => boolean): Promise<{ failovers: number; unavailability: (number | null)[] }> {
  const { secretKey } = await new MerchantService(world.pool, world.pepper).createMerchant('Failover probe');
  const url = new URL(world.pennyUrl);
  const probe = new WriteProbe(new Stripe(secretKey, { host: url.hostname, port: Number(url.port), protocol: 'http',
    maxNetworkRetries: 0, timeout: limits.probeTimeoutMs }));
  probe.start();
  const unavailability: (number | null)[] = [];
  let failovers = 0;
  try {
    await sleep(limits.warmupMs);
    for (let kill = 1; kill <= kills; kill += 1) {
      if (clientsDone()) say(`the clients have ended before kill ${kill}: it happens without their load`);
      const old = await primaryName(settings);
      if (old === undefined) throw new Error('the formation names no primary to kill');
      say(`kill ${kill}/${kills}: SIGKILL of ${old}, the primary`);
      const killedMs = Date.now();
      await killNode(settings, old);
      const promoted = await waitForNewPrimary(settings, old, limits.failoverMs);
      const seconds = await probe.unavailability(killedMs, limits.failoverMs);
      unavailability.push(seconds);
      if (promoted !== undefined) failovers += 1;
      say(`kill ${kill}: ${promoted === undefined ? 'no new primary within 3 minutes' : `${promoted} promoted`}; `
        + `writes ${seconds === null ? 'did not come back within 3 minutes' : `back after ${seconds} s`}`);
      say(`bringing ${old} back as a standby (penny ha up)`);
      await haUp(settings, (line) => say(`  ${line}`));
    }
    if (cut) {
      if (clientsDone()) say('the clients have ended before the cut: it happens without their load');
      const { promoted, seconds } = await cutPrimary(settings, probe);
      unavailability.push(seconds);
      if (promoted !== undefined) failovers += 1;
      say(`cut: ${promoted === undefined ? 'no new primary within 3 minutes' : `${promoted} promoted`}; `
        + `writes ${seconds === null ? 'did not come back within 3 minutes' : `back after ${seconds} s`}`);
      say('bringing the cut-off node back as a standby (penny ha up)');
      await haUp(settings, (line) => say(`  ${line}`));
    }
    await reachPrimary(world);
  } finally {
    await probe.stop();
  }
  return { failovers, unavailability };
}

/**
 * Payments (create and confirm, a Visa card, the sandbox without faults) a second through Penny for
 * `seconds`, by as many clients as the drill's, against `databaseUrl` or an embedded single PostgreSQL.
 */
async function throughput(databaseUrl: string | undefined, seconds: number, clients: number): Promise<number> {
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), 'penny-ha-throughput-'));
  const logger = createLogger('warn', pino.destination({ dest: path.join(directory, 'throughput.log'), sync: true }));
  const world = await SimulationWorld.start({ directory, logger, faults: sandboxProfile(1, new Set()), databaseUrl });
  try {
    await world.startPenny();
    const platform = await setUpPlatform(world, 0);
    const url = new URL(world.pennyUrl);
    const stripe = new Stripe(platform.secretKey, { host: url.hostname, port: Number(url.port), protocol: 'http',
      maxNetworkRetries: 0, timeout: 20_000 });
    const endMs = Date.now() + seconds * 1000;
    let done = 0;
    await Promise.all(Array.from({ length: clients }, async () => {
      while (Date.now() < endMs) {
        const ok = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd', confirm: true,
          payment_method: 'pm_card_visa' }).then(() => true, () => false);
        if (ok && Date.now() <= endMs) done += 1;
      }
    }));
    return done / seconds;
  } finally {
    await world.stop();
    await fs.rm(directory, { recursive: true, force: true });
  }
}

function failed(report: DrillReport): boolean {
  return report.skipped !== false || report.acknowledged_lost !== 0 || report.duplicate_effects !== 0
    || report.violations === null || report.violations.length > 0;
}

async function drill(): Promise<DrillReport> {
  const settings = haSettingsFrom(process.env);
  const report: DrillReport = { failovers: 0, acknowledged_lost: null, duplicate_effects: null, violations: null,
    unavailability_s: [], sync_cost_ratio: null, skipped: false };
  let databaseUrl: string;
  try {
    say(`the cluster in ${settings.directory}: penny ha up (it starts what is not running)`);
    databaseUrl = (await haUp(settings, (line) => say(`  ${line}`))).databaseUrl;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (/Debian packages .* not installed|apt-get install .* failed/.test(message)) {
      return { ...report, skipped: message };
    }
    throw error;
  }
  say('emptying the cluster\'s penny database (the drill migrates it from nothing)');
  const client = createClient(databaseUrl, { application_name: 'penny-ha-drill' });
  await client.connect();
  try {
    await dropEverythingOwned(client);
  } finally {
    await client.end();
  }

  const seed = options.seed === undefined ? randomInt(0, 2 ** 32) : Number(options.seed);
  const clients = Number(options.clients);
  let kills: { failovers: number; unavailability: (number | null)[] } = { failovers: 0, unavailability: [] };
  say(`the workload: seed ${seed}, ${options.payments} payments, ${clients} clients over ${options.duration} s; `
    + `${options.kills} kills of the primary`);
  let lastPhase = '';
  const result: SimulationResult = await runSimulation({
    seed, payments: Number(options.payments), durationMs: Number(options.duration) * 1000, faults: new Set(),
    clients, sellers: 3, settleMs: 180_000, replaysMax: 100, keep: true, databaseUrl,
  }, {
    onProgress: (progress) => {
      if (progress.phase !== lastPhase) say(`simulation ${progress.phase} (${progress.operations} operations)`);
      lastPhase = progress.phase;
    },
    duringRun: async ({ world, clientsDone }) => {
      kills = await killPrimaries(settings, world, Number(options.kills), options.cut !== false, clientsDone);
    },
  });
  say(`the simulation's directory (Penny's log): ${result.directory ?? '(removed)'}`);
  say(`operations: ${JSON.stringify(result.operations)}; refused_applied ${result.refused_applied}, `
    + `unresolved ${result.unresolved}, reconciliation_breaks ${result.reconciliation_breaks}`);
  Object.assign(report, { failovers: kills.failovers, unavailability_s: kills.unavailability,
    acknowledged_lost: result.acknowledged_lost, duplicate_effects: result.duplicate_effects,
    violations: result.violations });

  const seconds = Number(options.syncCost);
  if (seconds > 0) {
    say(`sync_cost_ratio: ${seconds} s of payments against the cluster, then against one embedded PostgreSQL`);
    const synchronous = await throughput(databaseUrl, seconds, clients);
    const single = await throughput(undefined, seconds, clients);
    say(`payments a second: ${Math.round(synchronous * 10) / 10} with synchronous replication, `
      + `${Math.round(single * 10) / 10} on one node`);
    report.sync_cost_ratio = single > 0 ? Math.round((synchronous / single) * 100) / 100 : null;
  }
  return report;
}

const report = await drill().catch((error: unknown) => {
  say(`the drill failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  return undefined;
});
if (report === undefined) {
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ failovers: 0, acknowledged_lost: null, duplicate_effects: null,
      violations: null, unavailability_s: [], sync_cost_ratio: null, skipped: false })}\n`);
  }
  process.exit(1);
}
if (options.json) {
  process.stdout.write(`${JSON.stringify(report)}\n`);
} else {
  process.stdout.write(`${report.skipped === false ? (failed(report) ? 'FAIL' : 'ok') : 'SKIPPED'}: `
    + `${JSON.stringify(report, null, 2)}\n`);
}
// A skipped drill did not pass, but it is no failure of Penny's: exit 0 with skipped set.
process.exit(report.skipped === false && failed(report) ? 1 : 0);
