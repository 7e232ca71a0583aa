import type { Command } from 'commander';
import { haDown, haStatus, haUp } from '../ha/ha-cluster.js';
import { haSettingsFrom } from '../ha/ha-layout.js';

/**
 * `penny ha up|status|down`: the local high-availability cluster of docs/operations.md (a
 * pg_auto_failover monitor and three PostgreSQL 15 nodes, `number_sync_standbys=1`), in PENNY_HA_DIR
 * on ports from PENNY_HA_PORT_BASE. Progress goes to stderr; the result to stdout.
 */
export function registerHaCommands(program: Command): void {
  const ha = program.command('ha')
    .description('a local PostgreSQL cluster with automatic failover (pg_auto_failover) for Penny to run on');
  ha.command('up')
    .description('build or resume the cluster, wait until one primary and two synchronous-capable secondaries are in sync, print its DATABASE_URL')
    .action(async () => {
      const settings = haSettingsFrom(process.env);
      const result = await haUp(settings, progress);
      process.stdout.write(`${result.started ? 'the cluster is up' : 'the cluster was already up'} `
        + `in ${settings.directory}:\n${result.table}\n`
        + `DATABASE_URL=${result.databaseUrl}\n(also in ${result.databaseUrlFile})\n`);
    });
  ha.command('status')
    .description('print the state of the cluster\'s nodes and its replication settings (exit 1 when there is none)')
    .action(async () => {
      const settings = haSettingsFrom(process.env);
      const status = await haStatus(settings);
      if (status === undefined) {
        process.stdout.write(`no cluster in ${settings.directory} (npm run ha:up builds one)\n`);
        process.exitCode = 1;
        return;
      }
      process.stdout.write(`${status.table}\nDATABASE_URL=${status.databaseUrl}\n`);
    });
  ha.command('down')
    .description('stop every node of the cluster and remove its directory (nothing to do when there is none)')
    .action(async () => {
      const settings = haSettingsFrom(process.env);
      const removed = await haDown(settings, progress);
      process.stdout.write(removed ? `the cluster in ${settings.directory} is stopped and removed\n`
        : `no cluster in ${settings.directory}: nothing to do\n`);
    });
}

function progress(line: string): void {
  process.stderr.write(`penny ha: ${line}\n`);
}
