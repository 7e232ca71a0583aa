import type pg from 'pg';
import type { Logger } from 'pino';
import { nowMs } from '../clock.js';
import { limits } from '../config.js';
import { ConnectorRefusedError, type ConnectorRegistry } from '../connectors/connector.js';
import type { Queryable } from '../db/pool.js';
import { PennyError } from '../errors.js';
import { raiseAlert } from '../metrics/metrics.js';
import type { ReconciliationImports } from './recon-import.js';
import * as store from './report-download-store.js';

/**
 * Settlement reports a PSP announces (Adyen's REPORT_AVAILABLE notification, its `reason` the
 * download URL), imported into reconciliation without an operator: the webhook route records the
 * announcement (`announceReport`, in the transaction that accepts the notification), and the
 * report-downloads worker downloads it through the account's connector (its credentials, the PSP's
 * own hosts only) and imports it as `penny recon import` would (format `adyen_sdr`, source
 * `adyen-<merchant account>`; the same bytes again add nothing). A refusal (a URL off the PSP's
 * hosts, a 4xx) or a file Penny cannot read sets it aside as failed at once, with an alert;
 * any other failure is tried again with backoff, `limits.reportDownloadAttemptMax` times, then set
 * aside with the alert.
 */
const settlementReportName = /^settlement_detail_report_batch_\d{1,10}\.csv$/;

/** The announced URL when it is a Settlement details report Penny imports; undefined for any other report. */
export function settlementReportUrl(reason: unknown): string | undefined {
  if (typeof reason !== 'string' || reason.length > 2000 || !/^https?:\/\//.test(reason)) return undefined;
  try {
    const name = decodeURIComponent(new URL(reason).pathname.split('/').at(-1) ?? '');
    return settlementReportName.test(name) ? reason : undefined;
  } catch {
    return undefined;
  }
}

export async function announceReport(db: Queryable, report: { connector: string; url: string }): Promise<boolean> {
  return store.insertReportDownload(db, report);
}

/** The reconciliation source of a PSP account's reports: `adyen-<merchant account>`, lowercase. */
export function reportSource(connector: string): string {
  return connector.replace(/:/g, '-').toLowerCase().replace(/[^a-z0-9_.:-]/g, '_').slice(0, 64);
}

export class ReportDownloads {
  constructor(private readonly pool: pg.Pool, private readonly dependencies: {
    connectors: ConnectorRegistry;
    /** Registers the account's connector (its credentials may have changed); false if none. */
    ensureConnector: (db: Queryable, connectorId: string) => Promise<boolean>;
    imports: ReconciliationImports;
    logger: Logger;
  }) {}

  /** Downloads and imports the due announced reports; how many were tried. */
  async runDue(): Promise<number> {
    const now = nowMs();
    const due = await store.claimDueReportDownloads(this.pool, { now: new Date(now).toISOString(),
      leaseUntil: new Date(now + limits.connectorReportDownloadTimeoutMs * 2).toISOString(),
      limit: limits.reportDownloadBatchMax });
    for (const report of due) await this.download(report);
    return due.length;
  }

  private async download(report: store.ReportDownloadRow): Promise<void> {
    try {
      if (!await this.dependencies.ensureConnector(this.pool, report.connector)) {
        throw new ConnectorRefusedError(report.connector, 404, 'account_missing', 'no such PSP account');
      }
      const connector = this.dependencies.connectors.get(report.connector);
      if (connector.downloadReport === undefined) {
        throw new ConnectorRefusedError(report.connector, 400, 'reports_unsupported', 'the connector downloads no report');
      }
      const body = await connector.downloadReport({ url: report.url });
      const summary = await this.dependencies.imports.importFile({ body, format: 'adyen_sdr',
        filename: decodeURIComponent(new URL(report.url).pathname.split('/').at(-1) ?? 'report.csv'),
        source: reportSource(report.connector) }).finally(() => body.destroy());
      await store.markReportImported(this.pool, { ...report, fileId: summary.id,
        now: new Date(nowMs()).toISOString() });
    } catch (error) {
      // A refusal, or a file that is not a report Penny reads, is the same on every try.
      const refused = error instanceof ConnectorRefusedError
        || (error instanceof PennyError && error.code === 'reconciliation_file_invalid');
      const last = refused || report.attemptCount >= limits.reportDownloadAttemptMax;
      const delayMs = Math.min(limits.reportDownloadRetryDelayFirstMs * 2 ** (report.attemptCount - 1),
        limits.reportDownloadRetryDelayMaxMs);
      const message = error instanceof Error ? error.message : String(error);
      await store.markReportFailed(this.pool, { ...report, error: message,
        nextAttemptAt: last ? null : new Date(nowMs() + delayMs).toISOString(), now: new Date(nowMs()).toISOString() });
      if (last) {
        raiseAlert(this.dependencies.logger, 'settlement_report_not_imported',
          { connector: report.connector, url: report.url.slice(0, 200), reason: message.slice(0, 200) },
          'an announced settlement report could not be downloaded and imported; import it with penny recon import');
      }
    }
  }
}
