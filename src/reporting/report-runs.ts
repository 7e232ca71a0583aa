import type pg from 'pg';
import type { Logger } from 'pino';
import { stringify } from 'csv-stringify/sync';
import type { ConnectedAccounts } from '../accounts/account-service.js';
import { nowMs } from '../clock.js';
import { limits } from '../config.js';
import { raiseAlert } from '../metrics/metrics.js';
import { withTransaction, type Queryable } from '../db/pool.js';
import { recordEvent } from '../events/event-store.js';
import { coerceError, PennyError } from '../errors.js';
import { newId } from '../ids.js';
import { selectPayoutsByIds } from '../payouts/payout-store.js';
import { presentReportRun } from './report-presenter.js';
import { reportRows } from './report-rows.js';
import * as store from './report-store.js';
import type { FileRow, ReportRunRow } from './report-store.js';
import { parseReportParameters, type DataAvailability, type ReportTypeDefinition } from './report-types.js';

/**
 * Stripe's Reports API for merchants: a run is recorded `pending` by the request, then executed
 * in the background by the `report-runs` worker (`runDue`), which claims runs with FOR UPDATE
 * SKIP LOCKED under a lease, reads the report's rows in one read-only snapshot, page by page
 * (src/reporting/report-rows.ts), and writes the CSV (csv-stringify) in parts of about
 * `limits.reportFilePartBytes`, so memory holds one page and one part at a time. The file, the
 * run's success and `reporting.report_run.succeeded` commit together; a run the data refuses (too
 * many rows) fails at once with its `error` and `reporting.report_run.failed`, and one that hits
 * an unexpected error is tried again, `limits.reportRunAttemptsMax` times in all.
 */
export interface ReportOwner {
  /** The platform merchant. */
  readonly merchantId: string;
  /** Who asks, and sees the run and its file: the platform, or a connected account (Stripe-Account). */
  readonly accountId: string;
}

export interface ReportRunsOptions {
  readonly accounts: ConnectedAccounts;
  /** Where Penny is reached (PENNY_PUBLIC_URL): the base of a file's `url` in events. */
  readonly publicUrl: () => string;
  readonly logger: Logger;
}

export class ReportRuns {
  constructor(private readonly pool: pg.Pool, private readonly options: ReportRunsOptions) {}

  /**
   * What each type's data covers for an owner, in unix seconds: from the start of the UTC day the
   * platform was created to now (Penny's balance transactions are written as money moves, so its
   * data is never behind).
   */
  availability(platformCreatedAt: string): DataAvailability {
    const created = Math.floor(Date.parse(platformCreatedAt) / 1000);
    return { start: created - (created % 86_400), end: Math.floor(nowMs() / 1000) };
  }

  /** Records a pending run, in the idempotent request's transaction. */
  async create(db: Queryable, request: { owner: ReportOwner; platformCreatedAt: string; type: ReportTypeDefinition;
    parameters: unknown }): Promise<ReportRunRow> {
    const { owner, type } = request;
    const parameters = parseReportParameters(type, request.parameters, this.availability(request.platformCreatedAt));
    let dataAccountId = owner.accountId;
    if (parameters.connected_account !== undefined) {
      if (owner.accountId !== owner.merchantId) {
        throw new PennyError({ code: 'parameter_invalid', param: 'parameters[connected_account]',
          message: 'Only the platform may report on one of its connected accounts; a connected account ' +
            '(Stripe-Account) reports on its own data without parameters[connected_account].' });
      }
      await this.options.accounts.get({ merchantId: owner.merchantId, id: parameters.connected_account })
        .catch((error: unknown) => {
          if (error instanceof PennyError) {
            throw new PennyError({ code: 'resource_missing', param: 'parameters[connected_account]',
              message: `No such account: '${parameters.connected_account?.slice(0, 100)}'` });
          }
          throw error;
        });
      dataAccountId = parameters.connected_account;
    }
    if (parameters.payout !== undefined) {
      const [payout] = await selectPayoutsByIds(db, { merchantId: owner.merchantId, ids: [parameters.payout] });
      if (payout === undefined || payout.accountId !== dataAccountId) {
        throw new PennyError({ code: 'resource_missing', param: 'parameters[payout]',
          message: `No such payout: '${parameters.payout.slice(0, 100)}'` });
      }
      if (type.id === 'payout_reconciliation.itemized.5' && !payout.automatic) {
        throw new PennyError({ code: 'parameter_invalid', param: 'parameters[payout]',
          message: `${payout.id} is a manual payout; only automatic payouts can be reconciled by their transactions.` });
      }
    }
    return store.insertReportRun(db, { merchantId: owner.merchantId, accountId: owner.accountId, dataAccountId,
      id: newId('frr'), reportType: type.id, parameters });
  }

  async retrieve(owner: ReportOwner, id: string): Promise<{ run: ReportRunRow; file: FileRow | undefined }> {
    const run = await store.selectReportRun(this.pool, { ...owner, id });
    if (run === undefined) {
      throw new PennyError({ code: 'resource_missing', param: 'id', message: `No such report run: '${id.slice(0, 100)}'` });
    }
    const [file] = await store.selectFilesByIds(this.pool, { merchantId: owner.merchantId,
      ids: run.resultFileId === null ? [] : [run.resultFileId] });
    return { run, file };
  }

  async list(query: ReportOwner & { limit: number; startingAfter: string | undefined; endingBefore: string | undefined;
    createdGte: string | undefined; createdLte: string | undefined }) {
    const cursor = query.startingAfter ?? query.endingBefore;
    if (cursor !== undefined && await store.selectReportRun(this.pool, { ...query, id: cursor }) === undefined) {
      throw new PennyError({ code: 'resource_missing', param: query.startingAfter === undefined ? 'ending_before'
        : 'starting_after', message: `No such report run: '${cursor.slice(0, 100)}'` });
    }
    const page = await store.selectReportRunPage(this.pool, query);
    const files = new Map((await store.selectFilesByIds(this.pool, { merchantId: query.merchantId,
      ids: page.rows.flatMap((run) => run.resultFileId === null ? [] : [run.resultFileId]) }))
      .map((file) => [file.id, file]));
    return { rows: page.rows.map((run) => ({ run, file: run.resultFileId === null ? undefined
      : files.get(run.resultFileId) })), hasMore: page.hasMore };
  }

  async file(owner: ReportOwner, id: string): Promise<FileRow> {
    const file = await store.selectFile(this.pool, { ...owner, id });
    if (file === undefined) {
      throw new PennyError({ code: 'resource_missing', param: 'id', message: `No such file upload: '${id.slice(0, 100)}'` });
    }
    return file;
  }

  /** A file's bytes, part by part (one row read at a time). */
  async* contents(file: FileRow): AsyncGenerator<Buffer> {
    for (let position = 0; position < file.parts; position += 1) {
      const part = await store.selectFilePart(this.pool, { merchantId: file.merchantId, fileId: file.id, position });
      if (part === undefined) throw new Error(`part ${position} of ${file.id} is missing`);
      yield part;
    }
  }

  /**
   * One run of the worker: claims up to `limits.reportRunClaimBatchMax` due runs and executes each,
   * one after another. Answers how many finished (succeeded or failed).
   */
  async runDue(): Promise<number> {
    const now = nowMs();
    const claimed = await store.claimDueReportRuns(this.pool, { now: new Date(now).toISOString(),
      leaseUntil: new Date(now + limits.reportRunLeaseMs).toISOString(), limit: limits.reportRunClaimBatchMax });
    let finished = 0;
    for (const run of claimed) {
      if (await this.execute(run)) finished += 1;
    }
    return finished;
  }

  private async execute(run: ReportRunRow): Promise<boolean> {
    const fileId = newId('file');
    try {
      if (run.attemptFileId !== null) {
        await store.deleteFileParts(this.pool, { merchantId: run.merchantId, fileId: run.attemptFileId });
      }
      await store.updateAttemptFile(this.pool, run, fileId);
      const written = await this.writeFile(run, fileId);
      await withTransaction(this.pool, async (client) => {
        const file = await store.insertFile(client, { merchantId: run.merchantId, accountId: run.accountId, id: fileId,
          purpose: 'finance_report_run', type: 'csv', filename: `${run.id}.csv`, sizeBytes: written.sizeBytes,
          parts: written.parts });
        const succeeded = await store.markRunSucceeded(client, run,
          { fileId, at: new Date(nowMs()).toISOString() });
        if (succeeded === undefined) throw new Error(`report run ${run.id} is no longer pending`);
        await recordEvent(client, { merchantId: run.merchantId, account: run.accountId,
          type: 'reporting.report_run.succeeded', object: presentReportRun(succeeded, file, this.options.publicUrl()) });
      });
      return true;
    } catch (error) {
      return this.failed(run, error, fileId);
    }
  }

  /** Writes the run's CSV as parts of the file; answers its size and number of parts. */
  private async writeFile(run: ReportRunRow, fileId: string): Promise<{ sizeBytes: bigint; parts: number }> {
    const columns = [...run.parameters.columns];
    let pending: Buffer[] = [stringifyRows([columns])];
    let pendingBytes = pending[0]?.length ?? 0;
    let parts = 0;
    let sizeBytes = 0n;
    const flush = async () => {
      const data = Buffer.concat(pending);
      await store.insertFilePart(this.pool, { merchantId: run.merchantId, fileId, position: parts, data });
      parts += 1;
      sizeBytes += BigInt(data.length);
      pending = [];
      pendingBytes = 0;
    };
    await withTransaction(this.pool, async (client) => {
      await store.beginReportSnapshot(client);
      const subject = { merchantId: run.merchantId, accountId: run.dataAccountId, reportType: run.reportType,
        parameters: run.parameters };
      for await (const page of reportRows(client, subject)) {
        const bytes = stringifyRows(page);
        pending.push(bytes);
        pendingBytes += bytes.length;
        if (pendingBytes >= limits.reportFilePartBytes) await flush();
      }
    });
    if (pendingBytes > 0) await flush();
    return { sizeBytes, parts };
  }

  /**
   * A refusal of the data (a PennyError: too many rows) fails the run at once; anything else is
   * tried again after a short wait until the attempts run out, then fails the run and raises an alert.
   */
  private async failed(run: ReportRunRow, error: unknown, fileId: string): Promise<boolean> {
    const final = error instanceof PennyError || run.attempts >= limits.reportRunAttemptsMax;
    if (!final) {
      this.options.logger.warn({ err: coerceError(error), run: run.id, attempts: run.attempts },
        'a report run failed; it is tried again');
      await store.updateRunRetryAt(this.pool, run, new Date(nowMs() + limits.reportRunIntervalMs * 10).toISOString());
      return false;
    }
    const message = error instanceof PennyError ? error.message
      : 'Penny could not produce this report; create the run again, or ask the operator.';
    if (!(error instanceof PennyError)) {
      raiseAlert(this.options.logger, 'report_run_failed', { err: coerceError(error), run: run.id,
        attempts: run.attempts }, 'a report run failed and is not tried again');
    }
    // The parts this last attempt wrote, if any: no attempt follows to clear them.
    await store.deleteFileParts(this.pool, { merchantId: run.merchantId, fileId });
    await withTransaction(this.pool, async (client) => {
      const failed = await store.markRunFailed(client, run, message);
      if (failed === undefined) return;
      await recordEvent(client, { merchantId: run.merchantId, account: run.accountId,
        type: 'reporting.report_run.failed', object: presentReportRun(failed, undefined, this.options.publicUrl()) });
    });
    return true;
  }
}

function stringifyRows(rows: readonly (readonly string[])[]): Buffer {
  return Buffer.from(stringify(rows as string[][], { eof: true, record_delimiter: '\n' }), 'utf8');
}
