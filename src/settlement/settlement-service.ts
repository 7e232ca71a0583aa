import type pg from 'pg';
import type { Logger } from 'pino';
import { nowMs } from '../clock.js';
import { limits } from '../config.js';
import type { ConnectorRegistry, PspSyncRequest } from '../connectors/connector.js';
import { withTransaction } from '../db/pool.js';
import type { BalanceOwner, BalanceService } from '../balances/balance-service.js';
import type { Queryable } from '../db/pool.js';
import { raiseAlert } from '../metrics/metrics.js';
import { chargeOfReference, refundOfReference, type ChargeRow } from '../payments/payment-service.js';
import { payoutOfReference } from '../payouts/payout-service.js';
import { parseSettlementReport, type SettledLine } from './settlement-report.js';
import * as store from './settlement-store.js';

/**
 * Settlement: the seed's "settled". Penny learns from the PSP's settlement report (pulled by the
 * worker once a day has closed, or by `penny settlement pull --date D`; Adyen's, which Penny
 * cannot pull, from the file downloaded or imported into reconciliation, `settleImportedReports`,
 * read by the same worker) that captured funds have settled; each settled capture's funds move
 * from pending to available (one ledger entry, its balance transaction `available` as of the
 * report's day) and each merchant whose funds moved gets `balance.available`. Idempotent: a report
 * read twice moves nothing twice. A capture the report does not name stays pending; reconciliation
 * reports it once its window passes.
 *
 * The report's `MerchantPayout` line, the PSP paying the batch (net of its fees) to the operator's
 * bank, is posted once the day has closed (an open day's batch may still grow, and its payout with
 * it; an Adyen report is of a closed batch): one entry of its own per payout reference, crediting
 * each merchant's PSP receivable its share, the net of the batch's lines that are its own
 * (docs/accounting.md, "The PSP pays the operator").
 */
export interface SettlementSummary {
  readonly connector: string;
  readonly day: string;
  /** Captures whose funds this pull made available. */
  readonly settled: number;
  /** Captures the report names whose funds were available already (a second pull, bypassPending). */
  readonly alreadyAvailable: number;
  /**
   * Settled lines naming no capture Penny has booked on this connector (yet): recorded, so that a
   * capture booked later is made available at once (reconciliation's to report otherwise).
   */
  readonly unmatched: number;
  /** PSP payouts to the operator this pull posted (closed days only). */
  readonly payouts: number;
  /** PSP payouts the report names that were posted already (a second pull). */
  readonly payoutsAlreadyPosted: number;
}

export interface SettlementDependencies {
  readonly connectors: ConnectorRegistry;
  readonly balances: BalanceService;
  readonly logger: Logger;
  /** Applies the disputes of a charge the report names, as the PSP tells them (their webhooks may be lost). */
  readonly chargebacks?: PspSync;
  /** Applies the state of a payout the report says was paid, as the PSP tells it. */
  readonly payouts?: PspSync;
}

/**
 * Asks the PSP about what a report line names, and applies its answer as the webhook would have;
 * or nothing, without asking, when Penny already holds what the line says (the usual case: the
 * pull's calls to the PSP grow with what Penny missed, not with the day's activity).
 */
export interface PspSync {
  syncFromPsp(connectors: ConnectorRegistry, request: PspSyncRequest): Promise<void>;
}

/**
 * Report lines whose event Penny may have missed (a lost webhook), asked about before the report
 * is read: a dispute opened or reversed, a merchant payout paid.
 */
const syncedLineTypes: Readonly<Partial<Record<string, 'chargebacks' | 'payouts'>>> &
  Readonly<Record<PspSyncRequest['lineType'], 'chargebacks' | 'payouts'>> = {
  Chargeback: 'chargebacks', ChargebackReversed: 'chargebacks', PaidOut: 'payouts',
};

export class SettlementService {
  constructor(private readonly pool: pg.Pool, private readonly dependencies: SettlementDependencies) {}

  /**
   * Reads the connector's report of `day` (one batch per currency some merchant's PSP receivable is
   * kept in), settles the captures it names and, for a closed day, posts its payouts.
   */
  async pull(request: { connectorId: string; day: string }): Promise<SettlementSummary> {
    const connector = this.dependencies.connectors.get(request.connectorId);
    const closed = request.day < utcDay(nowMs());
    const summary = { connector: request.connectorId, day: request.day, settled: 0, alreadyAvailable: 0, unmatched: 0,
      payouts: 0, payoutsAlreadyPosted: 0 };
    const owners: BalanceOwner[] = [];
    const charges = new ChargeLookup(request.connectorId);
    // A report Penny cannot read stops its own currency only; the day then stays unpulled, to be read again.
    const failures: unknown[] = [];
    // A batch the PSP has not paid yet (lines, no payout) is read again later, until its payout is posted.
    let batchesOpen = 0;
    for (const currency of await this.dependencies.balances.receivableCurrencies()) {
      try {
        const report = await connector.fetchSettlementReport({ day: request.day, currency });
        const lines = await parseSettlementReport(report,
          `${request.connectorId} settlement report ${request.day} ${currency}`);
        // First what a lost webhook may have kept from Penny, so that each line is attributed.
        await this.syncMissed(request.connectorId, lines);
        const posted = await this.applyBatch(charges, lines, { postPayout: closed, summary, owners });
        if (closed && payoutUnread(lines, posted)) batchesOpen += 1;
      } catch (error) {
        failures.push(error);
      }
    }
    await this.dependencies.balances.announceAvailableTo(owners);
    if (failures.length > 0) throw failures[0];
    // Only a closed day is marked pulled (the PSP may still add to today's report), once the PSP has paid its batches.
    if (closed && batchesOpen === 0) {
      await store.insertSettlementPull(this.pool, { connector: request.connectorId, day: request.day,
        settledCount: summary.settled });
    }
    return summary;
  }

  /**
   * Pulls, from every connector that publishes reports, the closed days not pulled yet: every one
   * of the last `limits.settlementLookbackDays`, each tick; and, of the older ones since the first
   * day pulled in the last `limits.settlementCatchUpDaysMax` (Penny was down, a pull failed, the
   * PSP had not paid a batch yet), at most `limits.settlementPullDaysPerTickMax` a tick, oldest
   * first, each tried at most once in `settlementCatchUpRetryMs`, so days that keep failing take
   * turns with the rest rather than hold them back. None pulled in that window: the look-back only,
   * as on a new install (older days by hand, `penny settlement pull --date D`). What the
   * `settlement-pull` worker runs.
   */
  async pullClosedDays(): Promise<number> {
    // The reports that reached Penny as files (Adyen's) first: a pull below never reads their connectors.
    await this.settleImportedReports();
    await this.pruneResolvedLines();
    let pulled = 0;
    for (const connectorId of this.dependencies.connectors.ids()) {
      if (!this.dependencies.connectors.get(connectorId).capabilities.settlementReports) continue;
      for (const day of await this.daysToPull(connectorId)) {
        this.catchUpTriedAt.set(`${connectorId} ${day}`, nowMs());
        // One day Penny cannot read never holds back the days after it: it is alerted and read again next run.
        const summary = await this.pull({ connectorId, day }).catch((error: unknown) => {
          raiseAlert(this.dependencies.logger, 'settlement_report_unreadable', { connector: connectorId, day,
            error: error instanceof Error ? error.message : String(error) }, 'a settlement report could not be read');
          return undefined;
        });
        if (summary === undefined) continue;
        if (summary.settled > 0 || summary.payouts > 0) {
          this.dependencies.logger.info(summary, 'settled captures made available, PSP payouts posted');
        }
        pulled += 1;
      }
    }
    return pulled;
  }

  /** When each older day (by connector and day) was last tried, so that it waits its turn. */
  private readonly catchUpTriedAt = new Map<string, number>();

  /** The closed days a tick pulls of a connector, oldest first (see pullClosedDays). */
  private async daysToPull(connectorId: string): Promise<string[]> {
    const now = nowMs();
    for (const [key, at] of this.catchUpTriedAt) {
      if (at <= now - settlementCatchUpRetryMs) this.catchUpTriedAt.delete(key);
    }
    const yesterday = utcDay(now - 86_400_000);
    const lookbackFrom = utcDay(now - limits.settlementLookbackDays * 86_400_000);
    const first = await store.selectFirstSettlementPull(this.pool, { connector: connectorId,
      since: utcDay(now - limits.settlementCatchUpDaysMax * 86_400_000) });
    const from = first !== undefined && first < lookbackFrom ? first : lookbackFrom;
    if (from > yesterday) return [];
    const pulled = await store.selectSettlementPulledDays(this.pool, { connector: connectorId, from, to: yesterday });
    const unpulled: string[] = [];
    for (let ms = Date.parse(`${from}T00:00:00Z`); utcDay(ms) <= yesterday; ms += 86_400_000) {
      if (!pulled.has(utcDay(ms))) unpulled.push(utcDay(ms));
    }
    const older = unpulled.filter((day) => day < lookbackFrom && !this.catchUpTriedAt.has(`${connectorId} ${day}`))
      .slice(0, limits.settlementPullDaysPerTickMax);
    return [...older, ...unpulled.filter((day) => day >= lookbackFrom)];
  }

  /**
   * Settles the PSP's Settlement details reports that reached Penny as files rather than by a pull
   * (Adyen's: downloaded on its REPORT_AVAILABLE notification by the report-downloads worker, or
   * imported with `penny recon import` or `POST /v1/reconciliation/files`), each file once: its
   * lines of each Adyen account of Penny's (connector_accounts; a line of any other account is
   * left to reconciliation), one batch per currency, are applied exactly as a pulled report's
   * (`syncMissed`, `applyBatch`): each Settled line makes its charge available as of its booking
   * day, and the batch's MerchantPayout is posted to the operator's bank (Adyen publishes a
   * batch's report once the batch has closed, so its payout is final). Amounts are the records'
   * as the report's parser read them: the report's decimals in ISO minor units, whatever
   * exponent Adyen writes them with (ISK 1000.00 is 1000). The postings are
   * idempotent by their references (a charge made available once, a payout posted once per
   * reference), so a file read twice, two files with the same lines, or a pull of the same batch
   * move nothing twice; `settlement_report_files` says a file was read, so it is not read again.
   * A file that fails is not marked read: each failed attempt is recorded
   * (settlement_report_file_attempts: its count, the error, when it is due again), alerted
   * (`settlement_report_unreadable`), and the file is read again after a backoff doubling from a
   * minute to six hours; after `importedReportAttemptsMax` attempts it is held for an operator
   * (`settlement_report_held`, penny_waiting{what="settlement_reports_held"}). As a pull leaves a
   * day unpulled while a batch has no payout it can read (two `MerchantPayout` lines, one without
   * a reference, none for a batch that does not net to zero), such a file is not marked read
   * either: it is held at once, since its lines cannot change. Each run takes the files due longest
   * first, so files that keep failing never keep a newer report waiting for more than their turn.
   * Answers how many files were read.
   */
  async settleImportedReports(): Promise<number> {
    let read = 0;
    const due = await store.selectUnsettledReportFiles(this.pool, { now: new Date(nowMs()).toISOString(),
      limit: importedReportFilesPerRunMax });
    for (const file of due) {
      const summary = { settled: 0, alreadyAvailable: 0, unmatched: 0, payouts: 0, payoutsAlreadyPosted: 0 };
      const owners: BalanceOwner[] = [];
      try {
        const batches = new Map<string, SettledLine[]>();
        for (const { connector, ...line } of await store.selectImportedReportLines(this.pool, file.id)) {
          const key = `${connector}\u0000${line.currency}`;
          const batch = batches.get(key);
          if (batch === undefined) batches.set(key, [line]);
          else batch.push(line);
        }
        const unreadable: string[] = [];
        for (const [key, lines] of batches) {
          const connectorId = key.slice(0, key.indexOf('\u0000'));
          // The account's connector is registered once a payment or notification of it has needed it.
          if (this.dependencies.connectors.has(connectorId)) await this.syncMissed(connectorId, lines);
          const posted = await this.applyBatch(new ChargeLookup(connectorId), lines,
            { postPayout: true, summary, owners });
          // The pull's rule: a batch with something to pay and no payout Penny can read leaves its report
          // unread. It stops its own batch only: the file's other batches (accounts, currencies) are applied.
          if (payoutUnread(lines, posted)) {
            unreadable.push(`the ${connectorId} batch in ${lines[0]?.currency ?? ''} has no payout Penny can read `
              + `(${lines.filter((line) => line.type === 'MerchantPayout').length} MerchantPayout lines)`);
          }
        }
        if (unreadable.length > 0) throw new UnreadablePayoutError(unreadable.join('; '));
      } catch (error) {
        await this.failedAttempt(file, error);
        continue;
      } finally {
        await this.dependencies.balances.announceAvailableTo(owners);
      }
      await withTransaction(this.pool, async (client) => {
        await store.insertSettledReportFile(client, { fileId: file.id, settledCount: summary.settled,
          payoutCount: summary.payouts });
        await store.deleteReportFileAttempts(client, file.id);
      });
      if (summary.settled > 0 || summary.payouts > 0) {
        this.dependencies.logger.info({ file: file.id, filename: file.filename, ...summary },
          'an imported settlement report made captures available and posted PSP payouts');
      }
      read += 1;
    }
    return read;
  }

  /**
   * An imported report that could not be settled: the attempt recorded, and the file due again
   * after the backoff or, after the last attempt or when reading it again cannot help, held.
   */
  private async failedAttempt(file: store.UnsettledReportFile, error: unknown): Promise<void> {
    const attemptCount = file.attemptCount + 1;
    const message = error instanceof Error ? error.message : String(error);
    const held = error instanceof UnreadablePayoutError || attemptCount >= importedReportAttemptsMax;
    const nextAttemptAt = held ? null : new Date(nowMs() + importedReportRetryDelayMs(attemptCount)).toISOString();
    await store.upsertReportFileAttempt(this.pool, { fileId: file.id, attemptCount, error: message, nextAttemptAt });
    const fields = { file: file.id, filename: file.filename, attempts: attemptCount, error: message };
    if (held) {
      raiseAlert(this.dependencies.logger, 'settlement_report_held', fields,
        'an imported settlement report is held for an operator (settlement_report_file_attempts); it is not read again');
    } else {
      raiseAlert(this.dependencies.logger, 'settlement_report_unreadable', { ...fields, next_attempt_at: nextAttemptAt },
        'an imported settlement report could not be settled; it is read again later');
    }
  }

  /** Where the next prune's scan of settlement_unbooked_lines starts (its key order; wraps at the end). */
  private pruneCursor = { connector: '', reference: '' };

  /**
   * Deletes the records of lines read before their capture was booked (settlement_unbooked_lines)
   * that have done their work: the capture is booked and available, and what a payout left in
   * suspense for the line has been moved to the merchant's PSP receivable. Each run reads the next
   * `unbookedLinesScannedPerRunMax` records in key order from where the last stopped, starting over
   * after the last, so a run costs the same however many records never resolve (a reference that
   * is not Penny's, a capture never booked: reconciliation's to explain). Each deletion is made
   * under its reference's lock and checked again under it. Answers how many were deleted.
   */
  async pruneResolvedLines(): Promise<number> {
    const scanned = await store.selectUnbookedLinesAfter(this.pool,
      { after: this.pruneCursor, limit: unbookedLinesScannedPerRunMax });
    const last = scanned.at(-1);
    this.pruneCursor = scanned.length < unbookedLinesScannedPerRunMax || last === undefined
      ? { connector: '', reference: '' } : { connector: last.connector, reference: last.reference };
    let pruned = 0;
    for (const line of scanned.filter((candidate) => candidate.resolved)) {
      const deleted = await withTransaction(this.pool, async (client) => {
        await this.dependencies.balances.lockSettlementReferences(client, { connectorId: line.connector,
          references: [line.reference] });
        return store.deleteResolvedUnbookedLine(client, line);
      });
      if (deleted) pruned += 1;
    }
    return pruned;
  }

  /** Asks the PSP about the lines whose webhook Penny may have missed (a dispute, a payout), before they are read. */
  private async syncMissed(connectorId: string, lines: readonly SettledLine[]): Promise<void> {
    for (const line of lines) {
      const sync = syncedLineTypes[line.type];
      if (sync === undefined) continue;
      await this.dependencies[sync]?.syncFromPsp(this.dependencies.connectors, {
        connectorId, reference: line.merchantReference, pspReference: line.pspReference,
        lineType: line.type as PspSyncRequest['lineType'],
      });
    }
  }

  /**
   * One batch of a report, in one currency, as settlement reads it whether pulled or imported:
   * each Settled line's charge made available as of the line's day, then (`postPayout`: the batch
   * is closed) its MerchantPayout posted. Counts into `summary`; the owners whose funds moved
   * into `owners`. Answers as `postPayout` does (undefined: no payout posted or readable).
   */
  private async applyBatch(charges: ChargeLookup, lines: readonly SettledLine[], into: { postPayout: boolean;
    summary: Record<'settled' | 'alreadyAvailable' | 'unmatched' | 'payouts' | 'payoutsAlreadyPosted', number>;
    owners: BalanceOwner[]; }): Promise<boolean | undefined> {
    for (const line of lines.filter((item) => item.type === 'Settled')) {
      const outcome = await this.settle(charges, line);
      into.summary[outcome.result] += 1;
      into.owners.push(...outcome.owners);
    }
    if (!into.postPayout) return undefined;
    const posted = await this.postPayout(charges, lines);
    if (posted !== undefined) into.summary[posted ? 'payouts' : 'payoutsAlreadyPosted'] += 1;
    return posted;
  }

  /**
   * One batch's payout: each line in the payout's currency is attributed to the merchant whose
   * capture, refund or dispute it is (its share, summed); a batch `Fee` line is the operator's; a
   * line Penny cannot attribute is left to the suspense account. Answers whether it was posted now
   * (false: posted before), or undefined when the batch has no payout Penny can read.
   */
  private async postPayout(charges: ChargeLookup, lines: readonly SettledLine[]): Promise<boolean | undefined> {
    const { connectorId } = charges;
    const payoutLines = lines.filter((line) => line.type === 'MerchantPayout');
    const payout = payoutLines[0];
    if (payout === undefined) return undefined;
    // A Net Credit payout is the PSP collecting a negative batch from the operator's bank.
    if (payoutLines.length > 1 || payout.netMinor === 0n
      || payout.modificationReference === '') {
      this.dependencies.logger.warn({ connector: connectorId, payouts: payoutLines.length,
        reference: payout.modificationReference }, 'a settlement batch whose payout cannot be read is left to reconciliation');
      return undefined;
    }
    const payoutMinor = -payout.netMinor;
    const shares = new Map<string, bigint>();
    const suspended: SettledLine[] = [];
    let batchFeesMinor = 0n;
    for (const line of lines) {
      if (line.type === 'MerchantPayout' || line.currency !== payout.currency) continue;
      if (line.type === 'Fee') {
        batchFeesMinor -= line.netMinor;
        continue;
      }
      const owner = await ownerOf(charges, line, this.pool);
      if (owner !== undefined) shares.set(owner, (shares.get(owner) ?? 0n) + line.netMinor);
      else if (line.type === 'Settled') suspended.push(line);
    }
    // The payout and what it leaves in suspense for each line Penny has not booked commit together:
    // recorded afterwards, a crash in between would leave a later booking nothing to attribute, and
    // the line's net in suspense for good. The lines' locks come first, as a capture's booking takes
    // them before its ledger entries; under them each line's charge is read again, and one Penny
    // holds by now is its merchant's share (so a line whose record was pruned once its charge was
    // settled, `pruneResolvedLines`, never leaves its net in suspense with nothing to attribute it).
    const { balances } = this.dependencies;
    const result = await withTransaction(this.pool, async (client) => {
      await balances.lockSettlementReferences(client, { connectorId,
        references: suspended.map((line) => line.merchantReference) });
      const finalShares = new Map(shares);
      const unbooked: SettledLine[] = [];
      for (const line of suspended) {
        const charge = await bookedOn(client, connectorId, line.merchantReference);
        if (charge === undefined) unbooked.push(line);
        else finalShares.set(charge.merchantId, (finalShares.get(charge.merchantId) ?? 0n) + line.netMinor);
      }
      const posting = await balances.postPspPayout(client, { connectorId, payoutReference: payout.modificationReference,
        currency: payout.currency, payoutMinor, shares: finalShares, batchFeesMinor });
      if (posting.posted) {
        for (const line of unbooked) {
          await balances.suspendedLine(client, { connectorId, reference: line.merchantReference,
            currency: line.currency, netMinor: line.netMinor, charge: undefined });
        }
      }
      return posting;
    });
    if (result.differs) {
      this.dependencies.logger.warn({ connector: connectorId, reference: payout.modificationReference },
        'a PSP payout posted before reads differently now: the first posting stands, for reconciliation to explain');
    }
    return result.posted;
  }

  /**
   * A `Settled` line, under its reference's lock, the charge read again under it (a capture booked
   * since the report was first read is seen; one booked after waits for this line and reads it).
   */
  private async settle(charges: ChargeLookup, line: SettledLine):
  Promise<{ result: 'settled' | 'alreadyAvailable' | 'unmatched'; owners: readonly BalanceOwner[] }> {
    const { connectorId } = charges;
    const availableOn = `${line.bookingDay || new Date(nowMs()).toISOString().slice(0, 10)}T00:00:00.000Z`;
    return withTransaction(this.pool, async (client) => {
      const reference = line.merchantReference;
      await this.dependencies.balances.lockSettlementReferences(client, { connectorId, references: [reference] });
      const charge = await bookedOn(client, connectorId, reference);
      return this.dependencies.balances.settleCapture(client, { connectorId, reference, availableOn,
        charge: charge === undefined ? undefined : { merchantId: charge.merchantId, chargeId: charge.id } });
    });
  }

}

/** The charge a reference names, when Penny holds it on the connector. */
async function bookedOn(db: Queryable, connectorId: string, reference: string): Promise<ChargeRow | undefined> {
  const charge = await chargeOfReference(db, reference);
  return charge?.connector === connectorId ? charge : undefined;
}

/**
 * The charges one pull's report names, each looked up once (a settled line is read for settling and
 * again for the payout's shares): only those Penny booked on the report's connector.
 */
class ChargeLookup {
  private readonly found = new Map<string, Promise<ChargeRow | undefined>>();

  constructor(readonly connectorId: string) {}

  of(db: Queryable, reference: string): Promise<ChargeRow | undefined> {
    let charge = this.found.get(reference);
    if (charge === undefined) {
      charge = bookedOn(db, this.connectorId, reference);
      this.found.set(reference, charge);
    }
    return charge;
  }
}

/**
 * The owner whose capture, refund, dispute or payout a line is, when Penny booked it on the report's
 * connector: a payout's is the account paid out (the platform or a connected account), whose PSP
 * receivable its entry credited.
 */
async function ownerOf(charges: ChargeLookup, line: SettledLine, db: Queryable): Promise<string | undefined> {
  if (line.type === 'PaidOut' || line.type === 'PaidOutReversed') {
    const payout = await payoutOfReference(db, line.merchantReference);
    return payout?.connector === charges.connectorId ? payout.accountId : undefined;
  }
  if (line.type !== 'Refunded') return (await charges.of(db, line.merchantReference))?.merchantId;
  const refund = await refundOfReference(db, line.merchantReference);
  return refund?.connector === charges.connectorId ? refund.merchantId : undefined;
}

/** The imported reports one run of the worker reads at most (the rest wait for the next run). */
const importedReportFilesPerRunMax = 20;

/** An older day the catch-up tried and could not pull waits this long before it is tried again. */
const settlementCatchUpRetryMs = 3_600_000;

/** Records of unbooked lines a prune run reads (and, at most, deletes). */
const unbookedLinesScannedPerRunMax = 1000;

/** Failed attempts at reading an imported report after which it is held for an operator. */
const importedReportAttemptsMax = 10;

/** The wait before reading a failed report again: a minute, doubling, at most six hours. */
function importedReportRetryDelayMs(attemptCount: number): number {
  return Math.min(60_000 * 2 ** (attemptCount - 1), 6 * 3_600_000);
}

/** A batch of an imported report with no payout Penny can read: reading the file again cannot change it. */
class UnreadablePayoutError extends Error {}

/**
 * Whether a closed batch leaves its report unread: its lines (the `MerchantPayout` aside) net to
 * something the PSP has to pay, and no payout of it was posted now or before (`posted` undefined:
 * none, or none Penny can read). A batch that nets to zero has nothing to pay, and no payout line.
 */
function payoutUnread(lines: readonly SettledLine[], posted: boolean | undefined): boolean {
  if (posted !== undefined) return false;
  return lines.reduce((sum, line) => (line.type === 'MerchantPayout' ? sum : sum + line.netMinor), 0n) !== 0n;
}

function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}
