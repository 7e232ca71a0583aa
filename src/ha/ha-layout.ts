import path from 'node:path';
import { PennyError } from '../errors.js';

/**
 * The local HA cluster's layout and the arguments of its `pg_autoctl` calls: pure, so it is tested
 * without the Debian packages. A monitor and three data nodes on loopback ports, run by pg_auto_failover
 * 2.0 on Debian's PostgreSQL 15, with `number_sync_standbys=1` (docs/operations.md).
 */
export interface HaSettings {
  /** Everything of the cluster: data directories, logs, pg_autoctl's files, `database-url`. */
  readonly directory: string;
  /** The monitor's port; the data nodes take the next three. */
  readonly portBase: number;
  /** The ordinary user the cluster runs as when the command runs as root. */
  readonly user: string;
}

export const haDefaults = { directory: '/var/tmp/penny-ha', portBase: 55_400, user: 'penny-ha' } as const;
export const postgresBinDirectory = '/usr/lib/postgresql/15/bin';
export const haPackages = ['postgresql-15-auto-failover', 'pg-auto-failover-cli'] as const;
/** The database Penny migrates into, and the role that owns it (the URI in `database-url` names it). */
export const pennyDatabase = 'penny';
export const pennyRole = 'penny';
export const dataNodeCount = 3;
export const numberSyncStandbys = 1;
/** `ha up` creates this file; `ha down` removes only a directory that holds it. */
export const markerFile = '.penny-ha';

/** PENNY_HA_DIR, PENNY_HA_PORT_BASE and PENNY_HA_USER, each optional. */
export function haSettingsFrom(env: Readonly<Record<string, string | undefined>>): HaSettings {
  const directory = env.PENNY_HA_DIR ?? haDefaults.directory;
  if (!path.isAbsolute(directory) || path.resolve(directory) === '/') {
    throw invalidSetting('PENNY_HA_DIR', `PENNY_HA_DIR is an absolute directory other than /, not "${directory}".`);
  }
  const portText = env.PENNY_HA_PORT_BASE ?? String(haDefaults.portBase);
  const portBase = /^\d{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
  if (!(portBase >= 1024 && portBase + dataNodeCount <= 65_535)) {
    throw invalidSetting('PENNY_HA_PORT_BASE',
      `PENNY_HA_PORT_BASE is a port from 1024 to ${65_535 - dataNodeCount}, not "${portText}".`);
  }
  const user = env.PENNY_HA_USER ?? haDefaults.user;
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(user) || user === 'root') {
    throw invalidSetting('PENNY_HA_USER', `PENNY_HA_USER is an ordinary user name (lower case, not root), not "${user}".`);
  }
  return { directory: path.resolve(directory), portBase, user };
}

function invalidSetting(variable: string, message: string): PennyError {
  return new PennyError({ code: 'invalid_configuration', param: variable, message });
}

export interface HaNode {
  /** `monitor`, `node1`, `node2`, `node3`: pg_autoctl's node name too. */
  readonly name: string;
  readonly port: number;
  readonly pgdata: string;
  /** Where the node's `pg_autoctl run` writes (and its creation before it). */
  readonly logFile: string;
  /** The process group of the node's keeper, as `ha up` started it. */
  readonly pidFile: string;
}

export function haNode(settings: HaSettings, name: string, port: number): HaNode {
  return { name, port, pgdata: path.join(settings.directory, name),
    logFile: path.join(settings.directory, `${name}.log`), pidFile: path.join(settings.directory, `${name}.pid`) };
}

export function monitorNode(settings: HaSettings): HaNode {
  return haNode(settings, 'monitor', settings.portBase);
}

export function dataNodes(settings: HaSettings): HaNode[] {
  return Array.from({ length: dataNodeCount },
    (_, index) => haNode(settings, `node${index + 1}`, settings.portBase + index + 1));
}

/**
 * pg_autoctl keeps its configuration and state under XDG_CONFIG_HOME and XDG_DATA_HOME, and its pid
 * files under XDG_RUNTIME_DIR: all inside the cluster's directory, so `ha down` leaves nothing behind.
 */
export function autoctlEnvironment(settings: HaSettings): Record<string, string> {
  const inside = (name: string): string => path.join(settings.directory, name);
  return { HOME: settings.directory, XDG_CONFIG_HOME: inside('config'), XDG_DATA_HOME: inside('data'),
    XDG_RUNTIME_DIR: inside('run'), PATH: `${postgresBinDirectory}:/usr/sbin:/usr/bin:/sbin:/bin`, LANG: 'C.UTF-8' };
}

/** The monitor's URI as the keepers use it (pg_autoctl's own form). */
export function monitorUri(settings: HaSettings): string {
  return `postgres://autoctl_node@127.0.0.1:${settings.portBase}/pg_auto_failover?sslmode=prefer`;
}

/**
 * Loopback only, trust authentication and no TLS: a local drill, never a deployment
 * (docs/operations.md says what to change).
 */
const localAccess = ['--hostname', '127.0.0.1', '--listen', '127.0.0.1', '--auth', 'trust', '--no-ssl',
  '--ssl-mode', 'disable'];

export function createMonitorArguments(node: HaNode): string[] {
  return ['create', 'monitor', '--pgdata', node.pgdata, '--pgport', String(node.port), ...localAccess];
}

export function createDataNodeArguments(settings: HaSettings, node: HaNode): string[] {
  return ['create', 'postgres', '--pgdata', node.pgdata, '--pgport', String(node.port), '--name', node.name,
    '--dbname', pennyDatabase, '--monitor', monitorUri(settings), ...localAccess];
}

export interface NodeState {
  readonly name: string;
  readonly port: number;
  /** The state the keeper reported, and the one the monitor assigned (equal once a transition is done). */
  readonly reportedState: string;
  readonly assignedState: string;
  readonly healthy: boolean;
  readonly lsn: string;
}

/** `pg_autoctl show state --json`: one object per data node. */
export function parseFormationState(json: string): NodeState[] {
  const parsed: unknown = JSON.parse(json);
  if (!Array.isArray(parsed)) throw new Error('pg_autoctl show state --json printed no array');
  return parsed.map((entry: Record<string, unknown>) => {
    if (typeof entry.nodename !== 'string' || typeof entry.nodeport !== 'number'
      || typeof entry.current_group_state !== 'string' || typeof entry.assigned_group_state !== 'string') {
      throw new Error(`pg_autoctl show state --json printed a node without its name, port or states: ${JSON.stringify(entry)}`);
    }
    return { name: entry.nodename, port: entry.nodeport, reportedState: entry.current_group_state,
      assignedState: entry.assigned_group_state, healthy: entry.health === 1,
      lsn: typeof entry.reported_lsn === 'string' ? entry.reported_lsn : '' };
  });
}

export interface FormationSettings {
  readonly numberSyncStandbys: number | undefined;
  /** The primary's `synchronous_standby_names` as the monitor set it ('' while there is none). */
  readonly synchronousStandbyNames: string | undefined;
}

/** `pg_autoctl show settings --json`: the formation's and the primary's replication settings. */
export function parseFormationSettings(json: string): FormationSettings {
  const parsed = JSON.parse(json) as { formation?: { setting?: string; value?: string }[];
    primary?: { setting?: string; value?: string }[] };
  const formation = parsed.formation?.find((entry) => entry.setting === 'number_sync_standbys')?.value;
  const names = parsed.primary?.find((entry) => entry.setting === 'synchronous_standby_names')?.value;
  return { numberSyncStandbys: formation === undefined ? undefined : Number(formation),
    synchronousStandbyNames: names === undefined ? undefined : names.replace(/^'(.*)'$/, '$1') };
}

/**
 * Ready: one primary and two secondaries, each healthy and done with its transition (a secondary is
 * caught up), `number_sync_standbys=1`, and the primary waiting for a standby on every commit.
 */
export function formationReady(nodes: readonly NodeState[], settings: FormationSettings): boolean {
  const settled = nodes.filter((node) => node.healthy && node.reportedState === node.assignedState);
  return nodes.length === dataNodeCount && settled.length === dataNodeCount
    && settled.filter((node) => node.reportedState === 'primary').length === 1
    && settled.filter((node) => node.reportedState === 'secondary').length === dataNodeCount - 1
    && settings.numberSyncStandbys === numberSyncStandbys
    && (settings.synchronousStandbyNames ?? '') !== '';
}

export function primaryOf(nodes: readonly NodeState[]): NodeState | undefined {
  return nodes.find((node) => node.reportedState === 'primary' && node.assignedState === 'primary');
}

/** A table of the nodes and settings, as `ha up` and `ha status` print it. */
export function describeFormation(nodes: readonly NodeState[], settings: FormationSettings): string {
  const rows = nodes.map((node) => `  ${node.name.padEnd(6)} 127.0.0.1:${node.port}  ${node.reportedState.padEnd(14)}`
    + ` (assigned ${node.assignedState}${node.healthy ? '' : ', unhealthy'})  lsn ${node.lsn}`);
  return [...rows, `  number_sync_standbys=${settings.numberSyncStandbys ?? '?'}`
    + `  synchronous_standby_names='${settings.synchronousStandbyNames ?? '?'}'`].join('\n');
}

/**
 * Penny's `DATABASE_URL` from `pg_autoctl show uri --formation default`: the same host list and
 * `target_session_attrs=read-write`, as the role that owns the database, without TLS (the nodes have
 * none: loopback only).
 */
export function pennyDatabaseUrl(formationUri: string): string {
  const match = /^postgres(?:ql)?:\/\/(?:[^@/]*@)?([^/?]+)\/([^?]*)(?:\?(.*))?$/.exec(formationUri.trim());
  if (match === null) throw new Error(`pg_autoctl show uri printed no postgres URI: "${formationUri}"`);
  const [, hosts = '', database = '', query = ''] = match;
  const parameters = new URLSearchParams(query);
  parameters.set('sslmode', 'disable');
  if (!parameters.has('target_session_attrs')) parameters.set('target_session_attrs', 'read-write');
  return `postgres://${pennyRole}@${hosts}/${database}?${parameters.toString()}`;
}
