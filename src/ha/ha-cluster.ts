import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import {
  autoctlEnvironment, createDataNodeArguments, createMonitorArguments, dataNodes, describeFormation,
  formationReady, haPackages, markerFile, monitorNode, numberSyncStandbys, parseFormationSettings,
  parseFormationState, pennyDatabaseUrl, postgresBinDirectory, primaryOf,
  type FormationSettings, type HaNode, type HaSettings, type NodeState,
} from './ha-layout.js';
import { preparePennyDatabase } from './ha-store.js';

/**
 * `penny ha up|status|down`: a local pg_auto_failover cluster (a monitor, three data nodes,
 * `number_sync_standbys=1`) on loopback ports, run as an ordinary user. Each command can be run
 * again: `up` completes or resumes what is there, `down` on no cluster does nothing.
 */
const run = promisify(execFile);
const autoctl = '/usr/bin/pg_autoctl';
const pgctl = path.join(postgresBinDirectory, 'pg_ctl');
const timeouts = { readyMs: 180_000, createMs: 120_000, commandMs: 30_000, stopMs: 30_000, pollMs: 1_000 };

export type Progress = (line: string) => void;

export interface FormationView {
  readonly nodes: NodeState[];
  readonly settings: FormationSettings;
  readonly table: string;
}

export interface UpResult extends FormationView {
  /** False when every keeper was running and the formation ready already. */
  readonly started: boolean;
  readonly databaseUrl: string;
  readonly databaseUrlFile: string;
}

export async function haUp(settings: HaSettings, progress: Progress): Promise<UpResult> {
  await ensurePackages(progress);
  if (isRoot()) await ensureUser(settings, progress);
  await ensureSocketDirectory(settings);
  await ensureDirectory(settings);

  let started = false;
  const monitor = monitorNode(settings);
  if (!(await exists(monitor.pgdata))) {
    progress(`creating the monitor on port ${monitor.port}`);
    await runLogged(settings, monitor, createMonitorArguments(monitor));
  }
  if (!(await keeperRunning(settings, monitor))) {
    started = true;
    await startKeeper(settings, monitor, progress);
    await waitFor(`the monitor to accept connections on port ${monitor.port}`, timeouts.createMs,
      () => acceptsConnections(monitor.port));
  }
  for (const node of dataNodes(settings)) {
    if (!(await exists(node.pgdata))) {
      progress(`creating ${node.name} on port ${node.port}`);
      await runLogged(settings, node, createDataNodeArguments(settings, node));
    }
    if (!(await keeperRunning(settings, node))) {
      started = true;
      await startKeeper(settings, node, progress);
      await waitFor(`${node.name} to finish its transition (its log: ${node.logFile})`, timeouts.readyMs, async () => {
        const state = (await formationView(settings)).nodes.find((each) => each.name === node.name);
        return state !== undefined && state.reportedState === state.assignedState;
      });
    }
  }

  if (started) progress(`waiting (at most ${timeouts.readyMs / 1000} s) for one primary and two secondaries in sync`);
  let view = await waitForReady(settings);
  const primary = primaryOf(view.nodes);
  if (primary === undefined) throw new Error('the formation is ready but names no primary');
  await preparePennyDatabase({ port: primary.port, superuser: clusterSuperuser(settings) });
  const databaseUrl = pennyDatabaseUrl(await autoctlOutput(settings,
    ['show', 'uri', '--pgdata', monitor.pgdata, '--formation', 'default']));
  const databaseUrlFile = path.join(settings.directory, 'database-url');
  await fs.writeFile(databaseUrlFile, `${databaseUrl}\n`, { mode: 0o644 });
  view = await formationView(settings);
  return { ...view, started, databaseUrl, databaseUrlFile };
}

/** Undefined when there is no cluster in the directory. */
export async function haStatus(settings: HaSettings): Promise<(FormationView & { databaseUrl: string }) | undefined> {
  if (!(await exists(path.join(settings.directory, markerFile)))) return undefined;
  const view = await formationView(settings);
  const databaseUrl = (await fs.readFile(path.join(settings.directory, 'database-url'), 'utf8')
    .catch(() => '(not written yet: ha up has not finished)')).trim();
  return { ...view, databaseUrl };
}

/** Stops every keeper (then kills what is left of it) and removes the directory. False: there was none. */
export async function haDown(settings: HaSettings, progress: Progress): Promise<boolean> {
  if (!(await exists(settings.directory))) return false;
  if (!(await exists(path.join(settings.directory, markerFile)))) {
    throw new Error(`${settings.directory} holds no ${markerFile} file: it is not a cluster penny ha up made, `
      + 'so penny ha down leaves it alone. Set PENNY_HA_DIR to the cluster\'s directory.');
  }
  for (const node of [...dataNodes(settings).reverse(), monitorNode(settings)]) {
    if (await exists(node.pgdata)) await stopNode(settings, node, progress);
  }
  await fs.rm(settings.directory, { recursive: true, force: true });
  return true;
}

/**
 * Stops one node (`monitor`, `node1`…) cleanly, as a machine shut down would: its keeper and its
 * postgres. `penny ha up` starts it again. For the failover drill and for tests.
 */
export async function haStopNode(settings: HaSettings, name: string, progress: Progress): Promise<void> {
  const node = [monitorNode(settings), ...dataNodes(settings)].find((each) => each.name === name);
  if (node === undefined) throw new Error(`the cluster has no node "${name}": it has monitor, node1, node2 and node3`);
  await stopNode(settings, node, progress);
}

/** `pg_autoctl stop`, then SIGKILL for what is left after 30 s: the keeper's process group, the postmaster. */
async function stopNode(settings: HaSettings, node: HaNode, progress: Progress): Promise<void> {
  progress(`stopping ${node.name}`);
  await runAsClusterUser(settings, autoctl, ['stop', '--pgdata', node.pgdata], timeouts.commandMs).catch(() => undefined);
  const group = await readPid(node.pidFile);
  if (group !== undefined && !(await gone(-group, timeouts.stopMs))) {
    progress(`${node.name}'s keeper did not stop within ${timeouts.stopMs / 1000} s: killing its process group ${group}`);
    signal(-group, 'SIGKILL');
  }
  const postmaster = await readPid(path.join(node.pgdata, 'postmaster.pid'));
  if (postmaster !== undefined && await servesDirectory(postmaster, node.pgdata)) {
    progress(`${node.name}'s postgres (pid ${postmaster}) outlived its keeper: killing it`);
    signal(postmaster, 'SIGKILL');
    await gone(postmaster, timeouts.stopMs);
  }
}

async function ensurePackages(progress: Progress): Promise<void> {
  const missing: string[] = [];
  for (const name of haPackages) {
    const status = await run('dpkg-query', ['-W', '-f=${Status}', name]).then(({ stdout }) => stdout, () => '');
    if (!status.endsWith('install ok installed')) missing.push(name);
  }
  if (missing.length === 0) return;
  if (!isRoot()) {
    throw new Error(`the Debian packages ${missing.join(' and ')} are not installed, and only root can install them: `
      + `run "sudo apt-get install -y ${missing.join(' ')}" once, or run penny ha up as root.`);
  }
  progress(`installing ${missing.join(' ')} with apt-get`);
  await run('apt-get', ['install', '-y', ...missing], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    maxBuffer: 64 * 1024 * 1024 }).catch((error: { stderr?: string; message: string }) => {
    throw new Error(`apt-get install -y ${missing.join(' ')} failed: ${error.stderr?.trim() || error.message}`);
  });
}

/** The cluster's user, in the postgres group so that its servers can put their sockets in /var/run/postgresql. */
async function ensureUser(settings: HaSettings, progress: Progress): Promise<void> {
  const groups = await run('id', ['-nG', settings.user]).then(({ stdout }) => stdout.trim().split(/\s+/), () => undefined);
  if (groups === undefined) {
    progress(`creating the user ${settings.user}`);
    await run('useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin',
      '--groups', 'postgres', settings.user]);
  } else if (!groups.includes('postgres')) {
    await run('usermod', ['--append', '--groups', 'postgres', settings.user]);
  }
}

async function ensureSocketDirectory(settings: HaSettings): Promise<void> {
  const socketDirectory = '/var/run/postgresql';
  if (isRoot()) {
    await fs.mkdir(socketDirectory, { recursive: true, mode: 0o2775 });
    await run('chown', ['postgres:postgres', socketDirectory]);
    return;
  }
  await fs.access(socketDirectory, fs.constants.W_OK).catch(() => {
    throw new Error(`PostgreSQL puts its sockets in ${socketDirectory}, which ${os.userInfo().username} cannot write: `
      + `add the user to the postgres group, or run penny ha up as root (it then runs the cluster as ${settings.user}).`);
  });
}

async function ensureDirectory(settings: HaSettings): Promise<void> {
  const marker = path.join(settings.directory, markerFile);
  if (!(await exists(marker))) {
    const entries = await fs.readdir(settings.directory).catch(() => []);
    if (entries.length > 0) {
      throw new Error(`${settings.directory} is not empty and is no cluster penny ha up made: set PENNY_HA_DIR to another directory.`);
    }
  }
  await fs.mkdir(path.join(settings.directory, 'run'), { recursive: true, mode: 0o755 });
  await fs.writeFile(marker, 'made by penny ha up; penny ha down removes this directory\n');
  if (isRoot()) await run('chown', ['-R', `${settings.user}:`, settings.directory]);
}

/**
 * A pg_autoctl creation, its output appended to the node's log; it must finish in time and succeed.
 * It runs in a process group of its own, waited for to the last process: a service of it still
 * stopping when the keeper starts would remove the keeper's pid file and semaphore (seen on a slow
 * machine: the new keeper quit with "PID file not found").
 */
async function runLogged(settings: HaSettings, node: HaNode, args: string[]): Promise<void> {
  const log = await fs.open(node.logFile, 'a');
  try {
    const command = asClusterUser(settings, autoctl, [...args, '--pgctl', pgctl]);
    const child = spawn(command.file, command.args, { env: autoctlEnvironment(settings), cwd: settings.directory,
      detached: true, stdio: ['ignore', log.fd, log.fd], timeout: timeouts.createMs, killSignal: 'SIGKILL' });
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    });
    const what = `pg_autoctl ${args.slice(0, 2).join(' ')} for ${node.name}`;
    if (child.pid !== undefined && !(await gone(-child.pid, timeouts.stopMs))) {
      signal(-child.pid, 'SIGKILL');
      throw new Error(`${what} left processes running ${timeouts.stopMs / 1000} s after it ended; see ${node.logFile}`);
    }
    if (code !== 0) throw new Error(`${what} failed; see ${node.logFile}`);
  } finally {
    await log.close();
  }
}

/** `pg_autoctl run` in its own session, outliving this command; its process group is kept in the node's pid file. */
async function startKeeper(settings: HaSettings, node: HaNode, progress: Progress): Promise<void> {
  progress(`starting ${node.name}'s keeper (log: ${node.logFile})`);
  const log = await fs.open(node.logFile, 'a');
  try {
    const command = asClusterUser(settings, autoctl, ['run', '--pgdata', node.pgdata]);
    const child = spawn(command.file, command.args, { env: autoctlEnvironment(settings), cwd: settings.directory,
      detached: true, stdio: ['ignore', log.fd, log.fd] });
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', resolve);
    });
    child.unref();
    const group = child.pid ?? 0;
    await fs.writeFile(node.pidFile, `${group}\n`);
    await waitFor(`${node.name}'s keeper to run (its log: ${node.logFile})`, timeouts.commandMs,
      () => keeperRunning(settings, node)).catch((error: unknown) => {
      // A keeper that quits at start can leave its postgres service behind: none of it stays.
      if (group > 1) signal(-group, 'SIGKILL');
      throw error;
    });
  } finally {
    await log.close();
  }
}

async function keeperRunning(settings: HaSettings, node: HaNode): Promise<boolean> {
  if (!(await exists(node.pgdata))) return false;
  return runAsClusterUser(settings, autoctl, ['status', '--pgdata', node.pgdata], timeouts.commandMs)
    .then(() => true, () => false);
}

async function acceptsConnections(port: number): Promise<boolean> {
  return run(path.join(postgresBinDirectory, 'pg_isready'), ['-q', '-h', '127.0.0.1', '-p', String(port)])
    .then(() => true, () => false);
}

async function formationView(settings: HaSettings): Promise<FormationView> {
  const monitor = monitorNode(settings).pgdata;
  const nodes = parseFormationState(await autoctlOutput(settings, ['show', 'state', '--pgdata', monitor, '--json']));
  const formation = parseFormationSettings(await autoctlOutput(settings, ['show', 'settings', '--pgdata', monitor, '--json']));
  return { nodes, settings: formation, table: describeFormation(nodes, formation) };
}

/**
 * Three data nodes make pg_auto_failover 2.0 raise `number_sync_standbys` to 1 by itself; it is set
 * here when it is not (through a data node: the monitor's own `set formation` fails in 2.0), and the
 * primary applies it before the formation counts as ready.
 */
async function waitForReady(settings: HaSettings): Promise<FormationView> {
  const deadline = Date.now() + timeouts.readyMs;
  let view: FormationView | undefined;
  for (;;) {
    view = await formationView(settings).catch(() => undefined);
    if (view !== undefined && formationReady(view.nodes, view.settings)) return view;
    if (view !== undefined && view.settings.numberSyncStandbys !== numberSyncStandbys
      && view.nodes.length === dataNodes(settings).length
      && view.nodes.every((node) => node.reportedState === node.assignedState)) {
      const node = dataNodes(settings)[0]!;
      await runAsClusterUser(settings, autoctl, ['set', 'formation', 'number-sync-standbys', String(numberSyncStandbys),
        '--pgdata', node.pgdata], timeouts.commandMs).catch(() => undefined);
    }
    if (Date.now() > deadline) {
      throw new Error(`the formation was not one primary and two secondaries in sync with number_sync_standbys=1 `
        + `within ${timeouts.readyMs / 1000} s; its state:\n${view?.table ?? '(the monitor did not answer)'}\n`
        + `The keepers' logs are in ${settings.directory}/*.log.`);
    }
    await sleep(timeouts.pollMs);
  }
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`gave up waiting ${timeoutMs / 1000} s for ${what}`);
    await sleep(timeouts.pollMs);
  }
}

async function autoctlOutput(settings: HaSettings, args: string[]): Promise<string> {
  return (await runAsClusterUser(settings, autoctl, args, timeouts.commandMs)).stdout;
}

async function runAsClusterUser(settings: HaSettings, file: string, args: string[], timeoutMs: number):
  Promise<{ stdout: string; stderr: string }> {
  const command = asClusterUser(settings, file, args);
  return run(command.file, command.args, { env: autoctlEnvironment(settings), cwd: settings.directory,
    timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
}

/** As root, through runuser (which also gives the user its groups); otherwise as the user running this. */
function asClusterUser(settings: HaSettings, file: string, args: string[]): { file: string; args: string[] } {
  return isRoot() ? { file: 'runuser', args: ['-u', settings.user, '--', file, ...args] } : { file, args };
}

/** The role initdb made: the user the servers run as. */
function clusterSuperuser(settings: HaSettings): string {
  return isRoot() ? settings.user : os.userInfo().username;
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(() => true, () => false);
}

async function readPid(file: string): Promise<number | undefined> {
  const text = await fs.readFile(file, 'utf8').catch(() => undefined);
  const pid = Number(text?.split('\n')[0]?.trim());
  return Number.isSafeInteger(pid) && pid > 1 ? pid : undefined;
}

/** A postmaster.pid left by a killed server may name a pid reused since: only a postgres of this node counts. */
async function servesDirectory(pid: number, pgdata: string): Promise<boolean> {
  const commandLine = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return commandLine.split('\0').includes(pgdata);
}

/** Waits until no process (or process group, for a negative id) is left, at most `timeoutMs`. */
async function gone(id: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!signal(id, 0)) return true;
    if (Date.now() >= deadline) return false;
    await sleep(200);
  }
}

/** False when there is no such process (group). */
function signal(id: number, name: NodeJS.Signals | 0): boolean {
  try {
    process.kill(id, name);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

