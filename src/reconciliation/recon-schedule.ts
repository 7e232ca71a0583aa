import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { BalanceService } from '../balances/balance-service.js';
import { nowMs } from '../clock.js';
import { limits } from '../config.js';
import type { ConnectorRegistry } from '../connectors/connector.js';
import { raiseAlert } from '../metrics/metrics.js';
import type { ReconciliationImports } from './recon-import.js';
import { isScheduledRunTaken, selectScheduledRunExists } from './recon-match-store.js';
import type { ReconciliationRuns, RunResult } from './recon-run.js';

/**
 * The daily reconciliation run (PENNY_RECON_SCHEDULE, e.g. `02:00` UTC; off when unset): once the
 * day's time has come, it imports each connector's settlement reports of the closed days of the
 * last `limits.reconciliationReportCatchUpDays` (14) through the connector interface, exactly as
 * `penny recon import --source <connector>` would (one file per currency Penny holds receivables
 * in; a day imported already adds nothing, so the days missed while Penny was down, or whose
 * fetch failed, are caught up), then the files waiting in PENNY_RECON_INBOX, then runs as of
 * today. One scheduled run a day, whichever process makes it (a unique day on the run); the
 * imports are idempotent, so two processes racing import nothing twice.
 *
 * The inbox: a file directly in it is imported under its format's name as source; a file in a
 * folder of it under the folder's name (`inbox/bank-eur/statement.xml` → source `bank-eur`). An
 * imported file moves to `imported/`, a refused one to `refused/` (with an alert), so each is read
 * once. At most `inboxFilesMax` files a run, each unchanged for `inboxSettledMs` (one still being
 * copied in waits); the rest wait for the next day's run.
 */
export const inboxFilesMax = 100;

/** A file changed more recently than this may still be arriving: it waits for the next run. */
export const inboxSettledMs = 10_000;

const setAside = new Set(['imported', 'refused']);

export interface ScheduleDependencies {
  readonly connectors: ConnectorRegistry;
  readonly balances: BalanceService;
  readonly imports: ReconciliationImports;
  readonly runs: ReconciliationRuns;
  readonly logger: Logger;
  readonly schedule: { readonly hour: number; readonly minute: number };
  readonly inbox: string | undefined;
}

export class ReconciliationSchedule {
  constructor(private readonly pool: pg.Pool, private readonly dependencies: ScheduleDependencies) {}

  /** What the worker runs each tick: today's scheduled run, once it is due and no process has made it. */
  async runDue(): Promise<RunResult | undefined> {
    const now = nowMs();
    const today = utcDay(now);
    const { hour, minute } = this.dependencies.schedule;
    if (now < Date.parse(`${today}T00:00:00Z`) + (hour * 60 + minute) * 60_000) return undefined;
    if (await selectScheduledRunExists(this.pool, today)) return undefined;
    await this.importSettlementReports(closedDaysBefore(now, limits.reconciliationReportCatchUpDays));
    await this.importInbox();
    try {
      const run = await this.dependencies.runs.run({ asOf: today, scheduledFor: today });
      this.dependencies.logger.info({ run: run.id, as_of: today, counts: run.counts }, 'scheduled reconciliation run');
      return run;
    } catch (error) {
      if (isScheduledRunTaken(error)) return undefined;
      throw error;
    }
  }

  /**
   * Imports each connector's settlement report of each of `days` (oldest first), per currency. A
   * day imported already adds nothing (the same bytes are not imported twice; a report the PSP has
   * added to since, its batch's payout, brings only its new lines), so a day missed while Penny
   * was down, or whose fetch failed, is caught up by the next run.
   */
  private async importSettlementReports(days: readonly string[]): Promise<void> {
    const currencies = await this.dependencies.balances.receivableCurrencies();
    for (const connectorId of this.dependencies.connectors.ids()) {
      const connector = this.dependencies.connectors.get(connectorId);
      if (!connector.capabilities.settlementReports) continue;
      await this.importReportsOf(connectorId, days, currencies);
    }
  }

  /** One connector's reports; a PSP that cannot be reached is asked once a run, not once per day and currency. */
  private async importReportsOf(connectorId: string, days: readonly string[], currencies: readonly string[]):
  Promise<void> {
    for (const day of days) {
      for (const currency of currencies) {
        if (!await this.importSettlementReport(connectorId, day, currency)) return;
      }
    }
  }

  /** Fetches and imports one report; false when the PSP could not be asked (the run's other days then wait). */
  private async importSettlementReport(connectorId: string, day: string, currency: string): Promise<boolean> {
    const filename = `${connectorId}-settlement-${day}-${currency}.csv`;
    const failed = (error: unknown, message: string) => raiseAlert(this.dependencies.logger,
      'reconciliation_import_failed', { file: filename, error: error instanceof Error ? error.message : String(error) },
      message);
    let report: string;
    try {
      report = await this.dependencies.connectors.get(connectorId).fetchSettlementReport({ day, currency });
    } catch (error) {
      failed(error, 'a settlement report could not be fetched; the PSP is asked again at the next run');
      return false;
    }
    if (report.trim() === '') return true;
    try {
      await this.dependencies.imports.importFile({ body: Readable.from([Buffer.from(report, 'utf8')]), filename,
        source: connectorId });
    } catch (error) {
      // One report Penny cannot read holds back neither the others nor the run.
      failed(error, 'a settlement report was not imported');
    }
    return true;
  }

  private async importInbox(): Promise<void> {
    const inbox = this.dependencies.inbox;
    if (inbox === undefined) return;
    const settledBefore = Date.now() - inboxSettledMs;
    for (const file of (await waitingFiles(inbox, settledBefore)).slice(0, inboxFilesMax)) {
      const body = fs.createReadStream(file.path);
      const name = path.basename(file.path);
      try {
        await this.dependencies.imports.importFile({ body, filename: name, source: file.source });
        await moveTo(inbox, 'imported', file.path);
      } catch (error) {
        raiseAlert(this.dependencies.logger, 'reconciliation_import_failed', { file: file.path,
          error: error instanceof Error ? error.message : String(error) }, 'a file of the reconciliation inbox was refused');
        await moveTo(inbox, 'refused', file.path);
      } finally {
        body.destroy();
      }
    }
  }
}

/**
 * The inbox's files last changed before `settledBefore` (wall-clock time, as the file system
 * keeps it), by name: its own, then one level of source folders.
 */
async function waitingFiles(inbox: string, settledBefore: number):
Promise<{ path: string; source: string | undefined }[]> {
  const found: { path: string; source: string | undefined }[] = [];
  const entries = await fs.promises.readdir(inbox, { withFileTypes: true }).catch(() => []);
  for (const entry of entries.sort((left, right) => left.name.localeCompare(right.name))) {
    if (entry.isFile()) found.push({ path: path.join(inbox, entry.name), source: undefined });
    if (!entry.isDirectory() || setAside.has(entry.name)) continue;
    const inner = await fs.promises.readdir(path.join(inbox, entry.name), { withFileTypes: true });
    const files = inner.filter((item) => item.isFile()).sort((left, right) => left.name.localeCompare(right.name));
    for (const file of files) {
      found.push({ path: path.join(inbox, entry.name, file.name), source: entry.name });
    }
  }
  const settled = await Promise.all(found.map(async (file) =>
    (await fs.promises.stat(file.path)).mtimeMs < settledBefore));
  return found.filter((_file, index) => settled[index]);
}

async function moveTo(inbox: string, folder: 'imported' | 'refused', file: string): Promise<void> {
  const relative = path.relative(inbox, file).split(path.sep).join('__');
  await fs.promises.mkdir(path.join(inbox, folder), { recursive: true });
  await fs.promises.rename(file, path.join(inbox, folder, relative));
}

/** The `count` closed UTC days before the one of `ms`, oldest first (yesterday last). */
function closedDaysBefore(ms: number, count: number): string[] {
  return Array.from({ length: count }, (_, index) => utcDay(ms - (count - index) * 86_400_000));
}

function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}
