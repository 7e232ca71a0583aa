import { describe, expect, it } from 'vitest';
import {
  createDataNodeArguments, createMonitorArguments, dataNodes, describeFormation, formationReady, haSettingsFrom,
  monitorNode, parseFormationSettings, parseFormationState, pennyDatabaseUrl, primaryOf, type NodeState,
} from '../../src/ha/ha-layout.js';

const settings = { directory: '/var/tmp/penny-ha', portBase: 55_400, user: 'penny-ha' };

/** A node as `pg_autoctl show state --json` (pg_auto_failover 2.0) prints it. */
function stateEntry(id: number, current: string, assigned = current, health = 1): Record<string, unknown> {
  return { health, node_id: id, group_id: 0, nodehost: '127.0.0.1', nodename: `node${id}`, nodeport: 55_400 + id,
    nodecluster: 'default', reported_lsn: '0/4000060', reported_tli: 1, formation_kind: 'pgsql',
    candidate_priority: 50, replication_quorum: true, current_group_state: current, assigned_group_state: assigned };
}

function settingsJson(numberSyncStandbys: string, standbyNames: string): string {
  return JSON.stringify({
    nodes: [{ value: '50', context: 'node', node_id: 1, setting: 'candidate priority', group_id: 0, nodename: 'node1' }],
    primary: [{ value: standbyNames, context: 'primary', node_id: 1, setting: 'synchronous_standby_names',
      group_id: 0, nodename: 'node1' }],
    formation: [{ value: numberSyncStandbys, context: 'formation', node_id: null, setting: 'number_sync_standbys',
      group_id: null, nodename: 'default' }],
  });
}

const syncNames = "'ANY 1 (pgautofailover_standby_2, pgautofailover_standby_3)'";

function nodes(...entries: Record<string, unknown>[]): NodeState[] {
  return parseFormationState(JSON.stringify(entries));
}

describe('the HA settings', () => {
  it('default to /var/tmp/penny-ha, ports from 55400 and the user penny-ha', () => {
    expect(haSettingsFrom({})).toEqual(settings);
  });

  it('take PENNY_HA_DIR, PENNY_HA_PORT_BASE and PENNY_HA_USER', () => {
    expect(haSettingsFrom({ PENNY_HA_DIR: '/tmp/ha/', PENNY_HA_PORT_BASE: '60000', PENNY_HA_USER: 'drill' }))
      .toEqual({ directory: '/tmp/ha', portBase: 60_000, user: 'drill' });
  });

  it.each([
    ['PENNY_HA_DIR', 'relative/dir'], ['PENNY_HA_DIR', '/'], ['PENNY_HA_PORT_BASE', '80'],
    ['PENNY_HA_PORT_BASE', '65534'], ['PENNY_HA_PORT_BASE', '5e4'], ['PENNY_HA_USER', 'root'],
    ['PENNY_HA_USER', '--help'],
  ])('refuse %s=%s, naming the variable', (variable, value) => {
    expect(() => haSettingsFrom({ [variable]: value })).toThrow(variable);
  });
});

describe('the layout', () => {
  it('puts the monitor on the base port and the three data nodes on the next ones, each in the directory', () => {
    expect(monitorNode(settings)).toMatchObject({ name: 'monitor', port: 55_400, pgdata: '/var/tmp/penny-ha/monitor' });
    expect(dataNodes(settings).map((node) => [node.name, node.port, node.pgdata, node.logFile])).toEqual([
      ['node1', 55_401, '/var/tmp/penny-ha/node1', '/var/tmp/penny-ha/node1.log'],
      ['node2', 55_402, '/var/tmp/penny-ha/node2', '/var/tmp/penny-ha/node2.log'],
      ['node3', 55_403, '/var/tmp/penny-ha/node3', '/var/tmp/penny-ha/node3.log'],
    ]);
  });

  it('creates the monitor on loopback with trust and no TLS', () => {
    expect(createMonitorArguments(monitorNode(settings))).toEqual(['create', 'monitor', '--pgdata',
      '/var/tmp/penny-ha/monitor', '--pgport', '55400', '--hostname', '127.0.0.1', '--listen', '127.0.0.1',
      '--auth', 'trust', '--no-ssl', '--ssl-mode', 'disable']);
  });

  it('creates a data node with its name, the penny database and the monitor\'s URI', () => {
    const node = dataNodes(settings)[1]!;
    expect(createDataNodeArguments(settings, node)).toEqual(['create', 'postgres', '--pgdata', '/var/tmp/penny-ha/node2',
      '--pgport', '55402', '--name', 'node2', '--dbname', 'penny',
      '--monitor', 'postgres://autoctl_node@127.0.0.1:55400/pg_auto_failover?sslmode=prefer',
      '--hostname', '127.0.0.1', '--listen', '127.0.0.1', '--auth', 'trust', '--no-ssl', '--ssl-mode', 'disable']);
  });
});

describe('the formation\'s state', () => {
  it('is read from pg_autoctl show state --json', () => {
    expect(nodes(stateEntry(1, 'primary'), stateEntry(2, 'catchingup', 'secondary', 0))).toEqual([
      { name: 'node1', port: 55_401, reportedState: 'primary', assignedState: 'primary', healthy: true, lsn: '0/4000060' },
      { name: 'node2', port: 55_402, reportedState: 'catchingup', assignedState: 'secondary', healthy: false,
        lsn: '0/4000060' },
    ]);
  });

  it('refuses output that is not a list of nodes', () => {
    expect(() => parseFormationState('{"nodes": []}')).toThrow('no array');
    expect(() => parseFormationState('[{"nodename": "node1"}]')).toThrow('without its name, port or states');
  });

  it('reads number_sync_standbys and the primary\'s synchronous_standby_names from show settings --json', () => {
    expect(parseFormationSettings(settingsJson('1', syncNames))).toEqual({ numberSyncStandbys: 1,
      synchronousStandbyNames: 'ANY 1 (pgautofailover_standby_2, pgautofailover_standby_3)' });
    expect(parseFormationSettings('{"nodes": []}')).toEqual({ numberSyncStandbys: undefined,
      synchronousStandbyNames: undefined });
  });

  const ready = [stateEntry(1, 'primary'), stateEntry(2, 'secondary'), stateEntry(3, 'secondary')];

  it('is ready with one primary, two secondaries in sync and number_sync_standbys=1', () => {
    expect(formationReady(nodes(...ready), parseFormationSettings(settingsJson('1', syncNames)))).toBe(true);
  });

  it.each([
    ['two data nodes only', ready.slice(0, 2), '1', syncNames],
    ['a secondary still catching up', [ready[0]!, ready[1]!, stateEntry(3, 'catchingup', 'secondary')], '1', syncNames],
    ['an unhealthy secondary', [ready[0]!, ready[1]!, stateEntry(3, 'secondary', 'secondary', 0)], '1', syncNames],
    ['a primary waiting for its standbys', [stateEntry(1, 'wait_primary'), ready[1]!, ready[2]!], '1', syncNames],
    ['number_sync_standbys=0', ready, '0', syncNames],
    ['no synchronous standby named on the primary', ready, '1', "''"],
  ])('is not ready with %s', (_, entries, numberSyncStandbys, names) => {
    const formation = parseFormationSettings(settingsJson(numberSyncStandbys, names));
    expect(formationReady(nodes(...entries), formation)).toBe(false);
  });

  it('names its primary only once the monitor has assigned it', () => {
    expect(primaryOf(nodes(...ready))?.name).toBe('node1');
    expect(primaryOf(nodes(stateEntry(1, 'secondary', 'prepare_promotion'), stateEntry(2, 'demoted', 'primary'))))
      .toBeUndefined();
  });

  it('is described one node a line, then the replication settings', () => {
    const text = describeFormation(nodes(ready[0]!, stateEntry(2, 'catchingup', 'secondary', 0)),
      parseFormationSettings(settingsJson('1', syncNames)));
    expect(text.split('\n')).toEqual([
      '  node1  127.0.0.1:55401  primary        (assigned primary)  lsn 0/4000060',
      '  node2  127.0.0.1:55402  catchingup     (assigned secondary, unhealthy)  lsn 0/4000060',
      "  number_sync_standbys=1  synchronous_standby_names='ANY 1 (pgautofailover_standby_2, pgautofailover_standby_3)'",
    ]);
  });
});

describe('Penny\'s DATABASE_URL', () => {
  it('keeps pg_autoctl\'s host list and read-write target, as the role penny, without TLS', () => {
    const shown = 'postgres://127.0.0.1:55401,127.0.0.1:55402,127.0.0.1:55403/penny?target_session_attrs=read-write&sslmode=prefer';
    expect(pennyDatabaseUrl(`${shown}\n`))
      .toBe('postgres://penny@127.0.0.1:55401,127.0.0.1:55402,127.0.0.1:55403/penny?target_session_attrs=read-write&sslmode=disable');
  });

  it('asks for the read-write node when pg_autoctl\'s URI does not, and replaces a user', () => {
    expect(pennyDatabaseUrl('postgresql://someone@127.0.0.1:1,127.0.0.1:2/penny'))
      .toBe('postgres://penny@127.0.0.1:1,127.0.0.1:2/penny?sslmode=disable&target_session_attrs=read-write');
  });

  it('refuses what is no postgres URI', () => {
    expect(() => pennyDatabaseUrl('uri: option requires an argument')).toThrow('no postgres URI');
  });
});
