import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsPromises from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import type { Logger } from 'pino';
import { configureClock } from '../clock.js';
import { startEmbeddedPostgres, type RunningPostgres } from '../db/embedded-postgres.js';
import { migrate } from '../db/migrate.js';
import { createPool, ensureDatabase, withDatabase } from '../db/pool.js';
import { presentFaultProfile, type FaultProfile } from '../sandbox-psp/psp-faults.js';
import { startSandboxPsp, type RunningSandboxPsp } from '../sandbox-psp/psp-service.js';
import { DatabaseProxy } from './database-proxy.js';
import { freePort } from './free-port.js';

/**
 * Everything a simulation runs against, thrown away afterwards: a PostgreSQL of its own (the
 * embedded binaries, in a temporary directory), a TCP proxy in front of it that Penny connects
 * through, the sandbox PSP (in this process, on its own database and port: the PSP does not crash
 * when Penny does), and `penny serve` as a child process, which the run kills and restarts. It
 * never touches the server in DATABASE_URL.
 *
 * Given a `databaseUrl` (the failover drill: the local HA cluster's multi-host URL), Penny's
 * database is that one instead, reached directly (no proxy in between: the simulation's own
 * database faults cannot act on it); the sandbox PSP keeps its embedded PostgreSQL.
 */
const pennyBin = path.join(projectRoot(path.dirname(fileURLToPath(import.meta.url))), 'dist', 'src', 'cli', 'penny.js');
const pennyDatabase = 'penny_simulation';
const sandboxDatabase = 'sandbox_psp_simulation';
const healthWaitMs = 60_000;
/** A `penny` command the simulation runs (a settlement pull) is killed after this long. */
const commandTimeoutMs = 60_000;
/** How long a required settlement pull is tried, once the faults stopped (part of the settling bound). */
const requiredPullMs = 5 * commandTimeoutMs;
/**
 * How long a step the run cannot go on without (the clock moved, a day closed) waits for Penny or
 * the sandbox to answer again: on a busy machine a Penny killed by a fault once took over a minute
 * to come back, and the harness gave the seed up.
 */
const requiredStepMs = 5 * 60_000;

export interface PennyChildOptions {
  /** Arms a failpoint: the child dies (SIGKILL) the first time it reaches it. */
  readonly failpoint?: string | undefined;
}

export interface WorldOptions {
  readonly directory: string;
  readonly logger: Logger;
  readonly faults: FaultProfile;
  /** Penny's database (already holding Penny's role and database, migrated here); else an embedded one. */
  readonly databaseUrl?: string | undefined;
}

export class SimulationWorld {
  readonly operatorKey = `op_sim_${randomBytes(16).toString('hex')}`;
  readonly pepper = `sim_pepper_${randomBytes(24).toString('hex')}`;
  readonly webhookSecret: string;
  readonly logFile: string;
  private child: ChildProcess | undefined;
  private stopped = false;
  private childExited: Promise<void> = Promise.resolve();
  private readonly failpointFile: string;

  private constructor(
    readonly directory: string,
    private postgres: RunningPostgres,
    readonly proxy: DatabaseProxy,
    readonly sandbox: RunningSandboxPsp,
    readonly sandboxPort: number,
    readonly pennyPort: number,
    /** Straight to PostgreSQL, not through the proxy: the checker's view and the merchants' setup. */
    readonly pool: pg.Pool,
    /** The sandbox PSP's own record (its database), read by the checker. */
    readonly sandboxPool: pg.Pool,
    private readonly logger: Logger,
    webhookSecret: string,
    /** Set when Penny's database is an outside one (WorldOptions.databaseUrl). */
    private readonly outsideDatabaseUrl: string | undefined,
  ) {
    this.webhookSecret = webhookSecret;
    this.logFile = path.join(directory, 'penny.log');
    this.failpointFile = path.join(directory, 'failpoint-armed');
  }

  static async start(options: WorldOptions): Promise<SimulationWorld> {
    // The sandbox runs here and follows the controlled clock Penny pushes to it.
    configureClock('controlled');
    // The postgres user (PostgreSQL's, when running as root) must be able to reach its directory within.
    await fsPromises.chmod(options.directory, 0o711);
    const postgres = await startEmbeddedPostgres({ directory: path.join(options.directory, 'postgres'),
      port: await freePort(), logger: options.logger });
    try {
      return await SimulationWorld.around(postgres, options);
    } catch (error) {
      await postgres.stop('immediate').catch(() => undefined);
      throw error;
    }
  }

  private static async around(postgres: RunningPostgres, options: WorldOptions): Promise<SimulationWorld> {
    if (options.databaseUrl === undefined) await ensureDatabase(postgres.serverUrl, pennyDatabase);
    await ensureDatabase(postgres.serverUrl, sandboxDatabase);
    const sandboxUrl = withDatabase(postgres.serverUrl, sandboxDatabase);
    await migrate(sandboxUrl);
    const pennyUrl = options.databaseUrl ?? withDatabase(postgres.serverUrl, pennyDatabase);
    await migrate(pennyUrl);
    const proxy = await DatabaseProxy.start({ host: '127.0.0.1', port: postgres.port });
    const pennyPort = await freePort();
    const sandboxPort = await freePort();
    const webhookSecret = `whsec_sim_${randomBytes(24).toString('hex')}`;
    const sandbox = await startSandboxPsp({ databaseUrl: sandboxUrl, host: '127.0.0.1', port: sandboxPort,
      webhookUrl: `http://127.0.0.1:${pennyPort}/v1/connectors/sandbox/webhooks`, webhookSecret,
      logger: options.logger, faults: options.faults });
    return new SimulationWorld(options.directory, postgres, proxy, sandbox, sandboxPort, pennyPort,
      createPool({ connectionString: pennyUrl, sizeMax: 4, applicationName: 'penny-simulate' }),
      createPool({ connectionString: sandboxUrl, sizeMax: 2, applicationName: 'penny-simulate' }),
      options.logger, webhookSecret, options.databaseUrl);
  }

  get pennyUrl(): string {
    return `http://127.0.0.1:${this.pennyPort}`;
  }

  get sandboxUrl(): string {
    return `http://127.0.0.1:${this.sandboxPort}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts `penny serve` and waits until it answers /healthz. */
  async startPenny(options: PennyChildOptions = {}): Promise<void> {
    if (this.stopped) throw new Error('the simulation is stopping: penny is not started again');
    if (this.running) throw new Error('penny is already running');
    if (options.failpoint !== undefined) fs.writeFileSync(this.failpointFile, '');
    const log = fs.openSync(this.logFile, 'a');
    const child = spawn(process.execPath, [pennyBin, 'serve'], {
      env: this.pennyEnvironment(options), stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    this.child = child;
    // A child that cannot be spawned (no process slot or file handle left) emits 'error', not
    // 'exit': without a listener that would end the harness; its health check then fails.
    this.childExited = new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', () => resolve());
    });
    const healthy = await this.waitHealthy(child);
    // Armed, it may die at its failpoint before it answers: a death the watchdog revives.
    if (!healthy && (options.failpoint === undefined || child.signalCode !== 'SIGKILL')) {
      throw new Error(`penny serve did not become healthy within ${healthWaitMs} ms; see ${this.logFile}`);
    }
  }

  /** The peak resident set of the running `penny serve` (VmHWM), in bytes; undefined when not running. */
  pennyPeakRssBytes(): number | undefined {
    const pid = this.running ? this.child?.pid : undefined;
    if (pid === undefined) return undefined;
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kilobytes = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
    return kilobytes === undefined ? undefined : Number(kilobytes) * 1024;
  }

  /** SIGKILL, as `kill -9`: nothing of Penny's in-flight work gets to finish. */
  async killPenny(): Promise<void> {
    this.child?.kill('SIGKILL');
    await this.childExited;
  }

  /** Penny died by itself (a failpoint): answers whether it is gone. */
  async pennyDied(): Promise<boolean> {
    return this.child !== undefined && !this.running;
  }

  /** An immediate shutdown of PostgreSQL (a crash: recovery from the WAL), then a start. */
  async restartPostgres(): Promise<void> {
    if (this.outsideDatabaseUrl !== undefined) throw new Error('Penny\'s database is an outside one: not restarted here');
    await this.postgres.stop('immediate');
    this.postgres = await startEmbeddedPostgres({ directory: path.join(this.directory, 'postgres'),
      port: this.postgres.port, logger: this.logger });
  }

  /** An operator request to Penny (JSON in and out); the answer's status and body. */
  async operator(method: 'GET' | 'POST', route: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const response = await fetch(`${this.pennyUrl}${route}`, {
      method, signal: AbortSignal.timeout(30_000),
      headers: { authorization: `Bearer ${this.operatorKey}`,
        ...(body === undefined ? {} : { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json' }) },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: text.startsWith('{') ? JSON.parse(text) as unknown : text };
  }

  async sandboxRequest(method: 'GET' | 'POST', route: string, body?: unknown): Promise<{ status: number; text: string }> {
    const response = await fetch(`${this.sandboxUrl}${route}`, {
      method, signal: AbortSignal.timeout(30_000),
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    return { status: response.status, text: await response.text() };
  }

  async setSandboxProfile(profile: FaultProfile): Promise<void> {
    const answer = await this.sandboxRequest('POST', '/control/faults', presentFaultProfile(profile));
    if (answer.status !== 200) throw new Error(`the sandbox refused its fault profile: ${answer.text}`);
  }

  /** The faults the sandbox injected, by kind (its own count). */
  async sandboxInjectedFaults(): Promise<Record<string, number>> {
    const answer = await this.sandboxRequest('GET', '/control/faults');
    const injected = (JSON.parse(answer.text) as { injected?: Record<string, number> }).injected ?? {};
    return Object.fromEntries(Object.entries(injected).map(([kind, count]) => [`psp_${kind}`, count]));
  }

  /** Now on the controlled clock (the sandbox's, which follows Penny's). */
  async nowMs(): Promise<number> {
    const answer = await this.sandboxRequest('GET', '/control/clock');
    return (JSON.parse(answer.text) as { now_ms: number }).now_ms;
  }

  /** Today on the controlled clock, as a UTC day. */
  async today(): Promise<string> {
    return new Date(await this.nowMs()).toISOString().slice(0, 10);
  }

  /**
   * Moves Penny's clock (and the sandbox's with it) one day on, then closes the day before at the
   * sandbox and pulls it. Penny may be restarting: the advance is tried again for up to a minute.
   * Returns the day closed, and whether the pull succeeded within its minute (see pullSettlement).
   */
  async advanceDayAndCloseYesterday(pull: 'required' | 'best_effort'): Promise<{ day: string; pulled: boolean }> {
    await this.advanceClock('1d');
    const yesterday = new Date(Date.parse(`${await this.today()}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
    await this.closeDay(yesterday);
    const pulled = await this.pullSettlement(yesterday, pull);
    return { day: yesterday, pulled };
  }

  /**
   * `penny settlement pull --date D`, as an operator's scheduled job would run it (Penny's own
   * worker pulls too, once a minute: both are idempotent). Tried again for a minute while
   * PostgreSQL restarts or the PSP fails. While the faults run, a day with many lines to look up
   * may not get through in that minute (each look-up can meet a 5xx or a timeout): that pull is
   * `best_effort`, as a scheduled job's would be, and every day is pulled again, required, once
   * the faults stop.
   */
  async pullSettlement(day: string, pull: 'required' | 'best_effort'): Promise<boolean> {
    // A required pull (the faults stopped) gets several of the command's own time limits: on a
    // busy machine one pull of a day with many look-ups outlasted one, and the seed was lost.
    const deadline = Date.now() + (pull === 'required' ? requiredPullMs : 60_000);
    for (;;) {
      const result = await this.runPenny(['settlement', 'pull', '--date', day, '--json']);
      if (result.code === 0) return true;
      if (Date.now() > deadline) {
        if (pull === 'best_effort') return false;
        throw new Error(`penny settlement pull --date ${day} failed: ${result.output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  private runPenny(args: readonly string[]): Promise<{ code: number | null; output: string }> {
    const child = spawn(process.execPath, [pennyBin, ...args], { env: {
      ...this.pennyEnvironment({}), PENNY_LOG_LEVEL: 'warn',
      DATABASE_URL: this.outsideDatabaseUrl ?? withDatabase(this.serverUrl, pennyDatabase),
    } });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    // A command that hangs (its database restarting under it) is killed, and tried again by the caller.
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, commandTimeoutMs);
    return new Promise((resolve) => {
      const finish = (code: number | null, more = '') => {
        clearTimeout(timer);
        resolve({ code, output: (output + more).slice(-4000) });
      };
      child.once('exit', (code) => finish(code, timedOut ? `\nkilled after ${commandTimeoutMs} ms` : ''));
      // Not spawned at all: 'error' and no 'exit'. A failed command, which the caller tries again.
      child.once('error', (error) => finish(null, `\n${error.message}`));
    });
  }

  private get serverUrl(): string {
    return this.postgres.serverUrl;
  }

  /** The sandbox closes (pays) a day: tried again while its database restarts. */
  async closeDay(day: string): Promise<void> {
    const deadline = Date.now() + requiredStepMs;
    for (;;) {
      const closed = await this.sandboxRequest('POST', `/control/settlements/${day}`, {});
      if (closed.status === 200) return;
      if (Date.now() > deadline) throw new Error(`the sandbox did not close ${day}: ${closed.text}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  async advanceClock(by: string): Promise<void> {
    const deadline = Date.now() + requiredStepMs;
    for (;;) {
      const answer = await this.operator('POST', '/v1/test_helpers/clock/advance', { by })
        .catch((error: unknown) => ({ status: 0, body: String(error) }));
      if (answer.status === 200) return;
      if (Date.now() > deadline) throw new Error(`the clock could not be advanced: ${JSON.stringify(answer.body)}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.running) {
      this.child?.kill('SIGTERM');
      await Promise.race([this.childExited, new Promise((resolve) => setTimeout(resolve, 15_000))]);
      await this.killPenny();
    }
    await this.sandbox.stop().catch(() => undefined);
    await this.proxy.close();
    await this.pool.end().catch(() => undefined);
    await this.sandboxPool.end().catch(() => undefined);
    await this.postgres.stop('fast').catch(() => undefined);
  }

  private pennyEnvironment(options: PennyChildOptions): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH, HOME: process.env.HOME,
      PORT: String(this.pennyPort), HOST: '127.0.0.1',
      DATABASE_URL: this.outsideDatabaseUrl ?? `postgres://postgres@127.0.0.1:${this.proxy.port}/${pennyDatabase}`,
      PENNY_DATA_DIR: path.join(this.directory, 'penny-data'),
      PENNY_OPERATOR_KEY: this.operatorKey,
      PENNY_SECRET_KEY: this.pepper,
      PENNY_LOG_LEVEL: 'info',
      PENNY_CLOCK: 'controlled',
      PENNY_SANDBOX_PSP: 'off',
      PENNY_SANDBOX_PSP_URL: this.sandboxUrl,
      PENNY_SANDBOX_PSP_WEBHOOK_SECRET: this.webhookSecret,
      PENNY_RATE_LIMIT_PER_SECOND: '0',
      ...(options.failpoint === undefined ? {} : {
        PENNY_FAILPOINT: options.failpoint, PENNY_FAILPOINT_FILE: this.failpointFile,
      }),
    };
  }

  /** Whether the child answered /healthz before it exited or the wait ran out. */
  private async waitHealthy(child: ChildProcess): Promise<boolean> {
    const started = Date.now();
    while (Date.now() - started < healthWaitMs) {
      if (child.exitCode !== null || child.signalCode !== null) return false;
      const ok = await fetch(`${this.pennyUrl}/healthz`, { signal: AbortSignal.timeout(2000) })
        .then((response) => response.ok, () => false);
      if (ok) return true;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return false;
  }
}

/** The directory of Penny's package.json above `from` (from src/ under the tests, from dist/src/ when built). */
function projectRoot(from: string): string {
  for (let directory = from; directory !== path.dirname(directory); directory = path.dirname(directory)) {
    if (fs.existsSync(path.join(directory, 'package.json'))) return directory;
  }
  throw new Error(`no package.json above ${from}`);
}
