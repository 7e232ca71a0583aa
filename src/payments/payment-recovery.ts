import type pg from 'pg';
import type { Logger } from 'pino';
import { nowMs } from '../clock.js';
import { ConnectorUnknownOutcomeError, type ConnectorRegistry } from '../connectors/connector.js';
import { inTransaction, named, withTransaction } from '../db/pool.js';
import { authorizationFromRecord } from '../connectors/decline-codes.js';
import { openCase } from './payment-cases.js';
import { PennyError } from '../errors.js';
import { raiseAlert } from '../metrics/metrics.js';
import { failRefund, type AuthorizationResult, type PaymentFlows } from './payment-flows.js';
import * as store from './payment-store.js';

/**
 * Resolves authorizations whose outcome is unknown. Jobs are durable rows, claimed with FOR
 * UPDATE SKIP LOCKED and moved forward by a lease, so a worker that dies leaves them to another.
 * Each run looks the attempt up at the PSP by Penny's reference and applies what the PSP recorded.
 * Finding nothing, it re-sends the authorization with the same idempotency key while the PSP still
 * keeps that key, and afterwards takes the PSP's record (nothing) as the answer. When the bounded
 * schedule runs out, the attempt goes to manual review with an alert: never a guess, never a
 * second charge.
 */
export const recoveryScheduleMs = [2_000, 10_000, 30_000, 120_000, 600_000, 1_800_000, 7_200_000, 21_600_000,
  43_200_000, 86_400_000] as const;
const recoveryLeaseMs = 60_000;
const recoveryBatchMax = 16;

interface RecoveryJob {
  readonly merchantId: string;
  readonly id: string;
  readonly kind: 'authorize' | 'capture' | 'cancel' | 'refund';
  readonly createdAt: string;
  readonly subjectId: string;
  readonly runCount: number;
}

export class PaymentRecovery {
  constructor(
    private readonly pool: pg.Pool,
    private readonly connectors: ConnectorRegistry,
    private readonly flows: PaymentFlows,
    private readonly logger: Logger,
  ) {}

  /**
   * Runs up to `recoveryBatchMax` due jobs, each claimed just before it runs, so each has the
   * whole lease: a slow job never lets another process take the jobs queued behind it.
   */
  async runDue(): Promise<number> {
    let ran = 0;
    for (; ran < recoveryBatchMax; ran += 1) {
      const job = await this.claimNext();
      if (job === undefined) break;
      await this.run(job);
    }
    return ran;
  }

  private async claimNext(): Promise<RecoveryJob | undefined> {
    const now = nowMs();
    const claimed = await this.pool.query(named(`WITH due AS (
         SELECT merchant_id, id FROM recovery_jobs WHERE status = 'pending' AND next_run_at <= $1
          ORDER BY next_run_at LIMIT 1 FOR UPDATE SKIP LOCKED)
       UPDATE recovery_jobs j SET run_count = j.run_count + 1, next_run_at = $2
         FROM due WHERE j.merchant_id = due.merchant_id AND j.id = due.id
       RETURNING j.merchant_id, j.id, j.kind, j.subject_id, j.run_count, j.created_at`),
    [new Date(now).toISOString(), new Date(now + recoveryLeaseMs).toISOString()]);
    const row = claimed.rows[0];
    return row === undefined ? undefined : { merchantId: row.merchant_id, id: row.id, kind: row.kind,
      subjectId: row.subject_id, runCount: row.run_count, createdAt: row.created_at };
  }

  private async run(job: RecoveryJob): Promise<void> {
    try {
      const done = await this.runKind(job);
      if (done) return this.finish(job, 'resolved');
      return this.later(job, 'the PSP has not decided yet');
    } catch (error) {
      // A refusal is an answer: the claim was given back (or the refund failed) where it was raised.
      if (error instanceof PennyError && error.code === 'psp_refused') return this.finish(job, 'resolved');
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
    const intent = await store.selectPaymentIntent(this.pool, job.merchantId, job.subjectId);
    const claim = intent === undefined ? undefined : await store.selectFinalization(this.pool, intent);
    if (intent?.status !== 'requires_capture' || claim?.kind !== 'cancel' || intent.latestCharge === null) return true;
    const chargeId = intent.latestCharge;
    const voided = (await this.connectors.get(followUpConnector(this.connectors)).lookup({ reference: chargeId }))
      .find((operation) => operation.kind === 'void' && operation.outcome === 'voided');
    return this.withClient(async (client) => {
      if (voided !== undefined) {
        await inTransaction(client, () =>
          this.flows.applyCancel(client, job.merchantId, job.subjectId, claim.cancellationReason));
      } else if (this.withinRetention(job)) {
        await this.flows.sendVoid(client, job.merchantId, job.subjectId, claim.cancellationReason,
          claim.pspIdempotencyKey ?? undefined);
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
    const intent = await store.selectPaymentIntent(this.pool, job.merchantId, job.subjectId);
    const claim = intent === undefined ? undefined : await store.selectFinalization(this.pool, intent);
    const amount = claim?.kind === 'capture' ? claim.amount : null;
    if (intent?.status !== 'requires_capture' || amount === null || intent.latestCharge === null) return true;
    const chargeId = intent.latestCharge;
    const captured = (await this.connectors.get(followUpConnector(this.connectors)).lookup({ reference: chargeId }))
      .find((operation) => operation.kind === 'capture');
    return this.withClient(async (client) => {
      if (captured !== undefined) {
        // Under the intent's lock, in one transaction, as the request applies it.
        await inTransaction(client, () => this.flows.applyCapture(client, job.merchantId, job.subjectId, amount));
      } else if (this.withinRetention(job)) {
        // The claim read above, and no other: its key, with its amount.
        await this.flows.sendCapture(client, job.merchantId, job.subjectId, amount,
          claim?.pspIdempotencyKey ?? undefined);
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
    const refunded = (await this.connectors.get(followUpConnector(this.connectors)).lookup({ reference: refund.id }))
      .find((operation) => operation.kind === 'refund');
    return this.withClient(async (client) => {
      if (refunded !== undefined) {
        await inTransaction(client, () => this.flows.applyRefund(client, job.merchantId, refund.id,
          refunded.pspReference));
      } else if (this.withinRetention(job)) {
        await this.flows.sendRefund(client, job.merchantId, refund.id);
      } else {
        await withTransaction(this.pool, (other) => failRefund(other, job.merchantId, refund.id));
      }
      return true;
    });
  }

  private withinRetention(job: RecoveryJob): boolean {
    const connector = this.connectors.get(followUpConnector(this.connectors));
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
    const connector = this.connectors.get(attempt.connector);
    const operations = await connector.lookup({ reference: attempt.id });
    const authorization = operations.find((operation) => operation.kind === 'authorize');
    if (authorization !== undefined) return authorizationFromRecord(authorization);
    if (this.withinRetention(job)) {
      const intent = await store.selectPaymentIntent(this.pool, attempt.merchantId, attempt.paymentIntentId);
      if (intent === undefined) throw new Error(`attempt ${attempt.id} has no intent`);
      return this.flows.sendAuthorization(attempt, intent);
    }
    // Past the key's retention the PSP's record is final: it never performed the authorization.
    return { outcome: 'declined', pspReference: null, code: 'processing_error', declineCode: 'processing_error',
      message: 'The payment processor has no record of this payment; nothing was charged. Try again.' };
  }

  private async later(job: RecoveryJob, reason: string): Promise<void> {
    const delayMs = recoveryScheduleMs[job.runCount];
    if (delayMs === undefined) return this.toManualReview(job, reason);
    await this.pool.query(named(`UPDATE recovery_jobs SET next_run_at = $3, last_error = $4
       WHERE merchant_id = $1 AND id = $2 AND status = 'pending'`),
    [job.merchantId, job.id, new Date(nowMs() + delayMs).toISOString(), reason.slice(0, 500)]);
  }

  private async finish(job: RecoveryJob, status: 'resolved'): Promise<void> {
    await this.pool.query(named(`UPDATE recovery_jobs SET status = $3, resolved_at = $4
       WHERE merchant_id = $1 AND id = $2 AND status = 'pending'`), [job.merchantId, job.id, status, new Date(nowMs()).toISOString()]);
  }

  private async toManualReview(job: RecoveryJob, reason: string): Promise<void> {
    const moved = await withTransaction(this.pool, async (client) => {
      const updated = await client.query(named(`UPDATE recovery_jobs SET status = 'manual_review', last_error = $3
         WHERE merchant_id = $1 AND id = $2 AND status = 'pending'`), [job.merchantId, job.id, reason.slice(0, 500)]);
      if (updated.rowCount === 0) return false;
      const attempt = job.kind === 'authorize' ? await store.selectAttempt(client, job.merchantId, job.subjectId)
        : undefined;
      if (attempt !== undefined) {
        await client.query(named(`UPDATE payment_attempts SET status = 'manual_review', updated_at = clock_timestamp()
           WHERE merchant_id = $1 AND id = $2 AND status IN ('started', 'unknown')`), [job.merchantId, job.subjectId]);
      }
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

/** Follow-ups go to the connector the payments use (one today: the flows' default). */
function followUpConnector(connectors: ConnectorRegistry): string {
  return connectors.defaultId();
}
