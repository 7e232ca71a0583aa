import type pg from 'pg';
import type { Logger } from 'pino';
import { nowMs } from '../clock.js';
import { ConnectorUnknownOutcomeError, type ConnectorRegistry } from '../connectors/connector.js';
import { limits } from '../config.js';
import { inTransaction, withTransaction } from '../db/pool.js';
import { openCase } from './payment-cases.js';
import { PennyError } from '../errors.js';
import { raiseAlert } from '../metrics/metrics.js';
import {
  capturedAmountMismatch, failRefund, openCaptureAmountCase, recordedAuthorization, reportsClaim,
  type AuthorizationResult, type PaymentFlows,
} from './payment-flows.js';
import * as store from './payment-store.js';
import * as recoveryStore from './recovery-store.js';
import type { RecoveryJob } from './recovery-store.js';

/**
 * Resolves authorizations whose outcome is unknown. Jobs are durable rows, claimed with FOR
 * UPDATE SKIP LOCKED and moved forward by a lease, so a worker that dies leaves them to another.
 * Each run looks the attempt up at the PSP by Penny's reference and applies what the PSP recorded.
 * Finding nothing, it re-sends the authorization with the same idempotency key while the PSP still
 * keeps that key, and afterwards takes the PSP's record (nothing) as the answer. When the bounded
 * schedule runs out, the attempt goes to manual review with an alert: never a guess, never a
 * second charge.
 */
export const recoveryScheduleMs = limits.recoveryScheduleMs;

export interface PaymentRecoveryDependencies {
  readonly connectors: ConnectorRegistry;
  readonly flows: PaymentFlows;
  readonly logger: Logger;
}

export class PaymentRecovery {
  private readonly connectors: ConnectorRegistry;
  private readonly flows: PaymentFlows;
  private readonly logger: Logger;

  constructor(private readonly pool: pg.Pool, dependencies: PaymentRecoveryDependencies) {
    this.connectors = dependencies.connectors;
    this.flows = dependencies.flows;
    this.logger = dependencies.logger;
  }

  /**
   * Runs up to `limits.recoveryBatchMax` due jobs, each claimed just before it runs, so each has the
   * whole lease: a slow job never lets another process take the jobs queued behind it.
   */
  async runDue(): Promise<number> {
    let ran = 0;
    for (; ran < limits.recoveryBatchMax; ran += 1) {
      const job = await this.claimNext();
      if (job === undefined) break;
      await this.run(job);
    }
    return ran;
  }

  private claimNext(): Promise<RecoveryJob | undefined> {
    const now = nowMs();
    return recoveryStore.claimNextRecoveryJob(this.pool, new Date(now).toISOString(),
      new Date(now + limits.recoveryLeaseMs).toISOString());
  }

  private async run(job: RecoveryJob): Promise<void> {
    try {
      const done = await this.runKind(job);
      if (done) return this.finish(job);
      return this.later(job, 'the PSP has not decided yet');
    } catch (error) {
      // A refusal is an answer: the claim was given back (or the refund failed) where it was raised.
      if (error instanceof PennyError && error.code === 'psp_refused') return this.finish(job);
      // Any failure counts against the bounded schedule, so even a bug ends in manual review.
      if (!(error instanceof ConnectorUnknownOutcomeError) && !(error instanceof PennyError && error.resumable)) {
        this.logger.error({ err: error, job: job.id, subject: job.subjectId }, 'a recovery run failed');
      }
      return this.later(job, error instanceof Error ? error.message : String(error));
    }
  }

  private runKind(job: RecoveryJob): Promise<boolean> {
    switch (job.kind) {
      case 'authorize':
        return this.runAuthorization(job);
      case 'capture':
        return this.runCapture(job);
      case 'cancel':
        return this.runCancel(job);
      case 'refund':
        return this.runRefund(job);
    }
  }

  /**
   * A claimed cancel: applied if the PSP voided; the void re-sent with its key while the PSP keeps
   * it; after that, the PSP's silence means no void, and the claim is given back (the payment can
   * be captured, canceled again, or expire).
   */
  private async runCancel(job: RecoveryJob): Promise<boolean> {
    const intent = await store.selectPaymentIntent(this.pool, { merchantId: job.merchantId, id: job.subjectId });
    const claim = intent === undefined ? undefined : await store.selectFinalization(this.pool, intent);
    if (!awaitingFinalization(intent?.status) || claim?.kind !== 'cancel' || intent?.latestCharge == null) return true;
    const chargeId = intent.latestCharge;
    const key = { merchantId: job.merchantId, id: job.subjectId };
    // Only the claim's own request: an earlier cancel's failure for this charge settles nothing.
    const operations = (await this.connectors.get(job.connector).lookup({ reference: chargeId }))
      .filter((operation) => operation.kind === 'void' && reportsClaim(claim, operation));
    const voided = operations.find((operation) => operation.outcome === 'voided');
    const failed = operations.find((operation) => operation.outcome === 'failed');
    return this.withClient(async (client) => {
      if (voided !== undefined) {
        await inTransaction(client, () =>
          this.flows.applyCancel(client, { ...key, reason: claim.cancellationReason }));
      } else if (failed !== undefined) {
        await this.flows.giveBack(client, { merchantId: job.merchantId, kind: 'cancel', subjectId: job.subjectId });
      } else if (intent.status === 'processing') {
        // Taken by the PSP (`received`), its outcome not reported yet: asked again later.
        return false;
      } else if (this.withinRetention(job)) {
        const sent = await this.flows.sendVoid(client, { ...key, reason: claim.cancellationReason,
          claimKey: claim.pspIdempotencyKey ?? undefined });
        // Taken by the PSP (`received`): its report is awaited, the job kept.
        if (sent.status === 'processing') return false;
      } else {
        await this.flows.giveBack(client, { merchantId: job.merchantId, kind: 'cancel', subjectId: job.subjectId });
      }
      return true;
    });
  }

  /**
   * A claimed capture: applied if the PSP captured; re-sent with its key while the PSP keeps it;
   * after that, the PSP's silence means no capture, and the claim is given back.
   */
  private async runCapture(job: RecoveryJob): Promise<boolean> {
    const intent = await store.selectPaymentIntent(this.pool, { merchantId: job.merchantId, id: job.subjectId });
    const claim = intent === undefined ? undefined : await store.selectFinalization(this.pool, intent);
    if (!awaitingFinalization(intent?.status) || claim?.kind !== 'capture' || claim.amount === null
      || intent?.latestCharge == null) return true;
    const amount = claim.amount;
    const chargeId = intent.latestCharge;
    const key = { merchantId: job.merchantId, id: job.subjectId };
    // Only the claim's own request: an earlier capture's failure for this charge settles nothing.
    const operations = (await this.connectors.get(job.connector).lookup({ reference: chargeId }))
      .filter((operation) => operation.kind === 'capture' && reportsClaim(claim, operation));
    const captured = operations.find((operation) => operation.outcome === 'captured');
    const failed = operations.find((operation) => operation.outcome === 'failed');
    const mismatch = captured === undefined ? undefined : capturedAmountMismatch(intent, claim, captured);
    return this.withClient(async (client) => {
      if (captured !== undefined && mismatch !== undefined) {
        // Another amount than the claim's: booked by no one; a case, and the job ends in manual review.
        await withTransaction(this.pool, (other) => openCaptureAmountCase(other,
          { intent, chargeId, operation: captured, mismatch }));
        return false;
      } else if (captured !== undefined) {
        // Under the intent's lock, in one transaction, as the request applies it.
        await inTransaction(client, () => this.flows.applyCapture(client, { ...key, amount }));
      } else if (failed !== undefined) {
        await this.flows.giveBack(client, { merchantId: job.merchantId, kind: 'capture', subjectId: job.subjectId });
      } else if (intent.status === 'processing') {
        // Taken by the PSP (`received`), its outcome not reported yet: asked again later.
        return false;
      } else if (this.withinRetention(job)) {
        // The claim read above, and no other: its key, with its amount.
        const sent = await this.flows.sendCapture(client,
          { ...key, amount, claimKey: claim.pspIdempotencyKey ?? undefined });
        // Taken by the PSP (`received`): its report is awaited, the job kept.
        if (sent.status === 'processing') return false;
      } else {
        await this.flows.giveBack(client, { merchantId: job.merchantId, kind: 'capture', subjectId: job.subjectId });
      }
      return true;
    });
  }

  /** A reserved refund: completed if the PSP refunded; re-sent while it keeps the key; else failed. */
  private async runRefund(job: RecoveryJob): Promise<boolean> {
    const refund = await store.selectRefund(this.pool, job.merchantId, job.subjectId);
    if (refund?.status !== 'pending') return true;
    const operations = (await this.connectors.get(job.connector).lookup({ reference: refund.id }))
      .filter((operation) => operation.kind === 'refund');
    const refunded = operations.find((operation) => operation.outcome === 'refunded');
    const failed = operations.find((operation) => operation.outcome === 'failed');
    return this.withClient(async (client) => {
      if (refunded !== undefined) {
        await inTransaction(client, () => this.flows.applyRefund(client, { merchantId: job.merchantId, id: refund.id,
          pspReference: refunded.pspReference }));
      } else if (failed !== undefined) {
        await withTransaction(this.pool, (other) => failRefund(other, { merchantId: job.merchantId, id: refund.id }));
      } else if (refund.pspReference !== null) {
        // Taken by the PSP (`received`), its outcome not reported yet: asked again later.
        return false;
      } else if (this.withinRetention(job)) {
        const sent = await this.flows.sendRefund(client, { merchantId: job.merchantId, id: refund.id });
        // Taken by the PSP (`received`): its report is awaited, the job kept.
        if (sent.status === 'pending') return false;
      } else {
        await withTransaction(this.pool, (other) => failRefund(other, { merchantId: job.merchantId, id: refund.id }));
      }
      return true;
    });
  }

  private withinRetention(job: RecoveryJob): boolean {
    const connector = this.connectors.get(job.connector);
    return nowMs() - Date.parse(job.createdAt) < connector.capabilities.idempotencyKeyRetentionMs;
  }

  private async withClient<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      return await work(client);
    } finally {
      client.release();
    }
  }

  private async runAuthorization(job: RecoveryJob): Promise<boolean> {
    const attempt = await store.selectAttempt(this.pool, job.merchantId, job.subjectId);
    if (attempt === undefined) throw new Error(`recovery job ${job.id} names a missing attempt ${job.subjectId}`);
    if (attempt.status !== 'unknown' && attempt.status !== 'started') return true;
    const result = await this.resolve(attempt, job);
    await withTransaction(this.pool, (client) => this.flows.applyAuthorization(client, attempt, result));
    return result.outcome !== 'unknown' && result.outcome !== 'pending';
  }

  /** What the PSP says of the attempt: its record, or (not found) a re-send, or its silence after the window. */
  private async resolve(attempt: store.AttemptRow, job: RecoveryJob): Promise<AuthorizationResult> {
    const connector = this.connectors.get(job.connector);
    const intent = await store.selectPaymentIntent(this.pool,
      { merchantId: attempt.merchantId, id: attempt.paymentIntentId });
    if (intent === undefined) throw new Error(`attempt ${attempt.id} has no intent`);
    const operations = await connector.lookup({ reference: attempt.id });
    const authorization = operations.find((operation) => operation.kind === 'authorize');
    // Read against the intent's capture method, as the webhook path reads it.
    if (authorization !== undefined) return recordedAuthorization(authorization, intent);
    if (this.withinRetention(job)) {
      return this.flows.sendAuthorization(attempt, intent);
    }
    // Past the key's retention the PSP's record is final: it never performed the authorization.
    return { outcome: 'declined', pspReference: null, code: 'processing_error', declineCode: 'processing_error',
      message: 'The payment processor has no record of this payment; nothing was charged. Try again.' };
  }

  private async later(job: RecoveryJob, reason: string): Promise<void> {
    const delayMs = recoveryScheduleMs[job.runCount];
    if (delayMs === undefined) return this.toManualReview(job, reason);
    await recoveryStore.postponeRecoveryJob(this.pool, job, { nextRunAt: new Date(nowMs() + delayMs).toISOString(),
      lastError: reason.slice(0, limits.recoveryErrorLengthMax) });
  }

  private async finish(job: RecoveryJob): Promise<void> {
    await recoveryStore.finishRecoveryJob(this.pool, job, new Date(nowMs()).toISOString());
  }

  private async toManualReview(job: RecoveryJob, reason: string): Promise<void> {
    const moved = await withTransaction(this.pool, async (client) => {
      const lastError = reason.slice(0, limits.recoveryErrorLengthMax);
      if (!await recoveryStore.moveRecoveryJobToManualReview(client, job, lastError)) return false;
      const attempt = job.kind === 'authorize' ? await store.selectAttempt(client, job.merchantId, job.subjectId)
        : undefined;
      if (attempt !== undefined) await store.markAttemptManualReview(client, attempt);
      const refund = job.kind === 'refund' ? await store.selectRefund(client, job.merchantId, job.subjectId) : undefined;
      await openCase(client, { merchantId: job.merchantId, kind: 'unresolved_outcome',
        paymentIntentId: attempt?.paymentIntentId ?? refund?.paymentIntentId ?? job.subjectId,
        subjectId: job.subjectId, detail: { kind: job.kind, reason, runs: job.runCount } });
      return true;
    });
    if (!moved) return;
    raiseAlert(this.logger, 'payment_outcome_unresolved', { kind: job.kind, subject: job.subjectId, reason },
      'a PSP outcome could not be resolved; it needs manual review');
  }
}

/** A claimed capture or cancel not applied yet: still requires_capture, or processing (the PSP took it). */
function awaitingFinalization(status: string | undefined): boolean {
  return status === 'requires_capture' || status === 'processing';
}
