import type pg from 'pg';
import type { Logger } from 'pino';
import { nowMs } from '../clock.js';
import { ConnectorUnknownOutcomeError, type ConnectorRegistry, type PspOperation } from '../connectors/connector.js';
import { named, withTransaction } from '../db/pool.js';
import { declineAnswer } from './decline-codes.js';
import { openCase } from './payment-cases.js';
import type { AuthorizationResult, PaymentFlows } from './payment-flows.js';
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

  async runDue(): Promise<number> {
    const now = nowMs();
    const claimed = await this.pool.query(named(`WITH due AS (
         SELECT merchant_id, id FROM recovery_jobs WHERE status = 'pending' AND next_run_at <= $1
          ORDER BY next_run_at LIMIT $2 FOR UPDATE SKIP LOCKED)
       UPDATE recovery_jobs j SET run_count = j.run_count + 1, next_run_at = $3
         FROM due WHERE j.merchant_id = due.merchant_id AND j.id = due.id
       RETURNING j.merchant_id, j.id, j.subject_id, j.run_count`),
    [new Date(now).toISOString(), recoveryBatchMax, new Date(now + recoveryLeaseMs).toISOString()]);
    for (const row of claimed.rows) {
      await this.run({ merchantId: row.merchant_id, id: row.id, subjectId: row.subject_id, runCount: row.run_count });
    }
    return claimed.rows.length;
  }

  private async run(job: RecoveryJob): Promise<void> {
    const attempt = await store.selectAttempt(this.pool, job.merchantId, job.subjectId);
    if (attempt === undefined) throw new Error(`recovery job ${job.id} names a missing attempt ${job.subjectId}`);
    if (attempt.status !== 'unknown' && attempt.status !== 'started') return this.finish(job, 'resolved');
    try {
      const result = await this.resolve(attempt);
      if (result !== undefined) {
        await withTransaction(this.pool, (client) => this.flows.applyAuthorization(client, attempt, result));
        if (result.outcome !== 'unknown' && result.outcome !== 'pending') return this.finish(job, 'resolved');
      }
      return this.later(job, 'the PSP has not decided yet');
    } catch (error) {
      // Any failure counts against the bounded schedule, so even a bug ends in manual review.
      if (!(error instanceof ConnectorUnknownOutcomeError)) {
        this.logger.error({ err: error, job: job.id, attempt: job.subjectId }, 'a recovery run failed');
      }
      return this.later(job, error instanceof Error ? error.message : String(error));
    }
  }

  /** What the PSP says of the attempt: its record, or (not found) a re-send, or its silence after the window. */
  private async resolve(attempt: store.AttemptRow): Promise<AuthorizationResult | undefined> {
    const connector = this.connectors.get(attempt.connector);
    const operations = await connector.lookup({ reference: attempt.id });
    const authorization = operations.find((operation) => operation.kind === 'authorize');
    if (authorization !== undefined) return authorizationFromRecord(authorization);
    const ageMs = nowMs() - Date.parse(attempt.createdAt);
    if (ageMs < connector.capabilities.idempotencyKeyRetentionMs) {
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
       WHERE merchant_id = $1 AND id = $2`),
    [job.merchantId, job.id, new Date(nowMs() + delayMs).toISOString(), reason.slice(0, 500)]);
  }

  private async finish(job: RecoveryJob, status: 'resolved'): Promise<void> {
    await this.pool.query(named(`UPDATE recovery_jobs SET status = $3, resolved_at = $4
       WHERE merchant_id = $1 AND id = $2`), [job.merchantId, job.id, status, new Date(nowMs()).toISOString()]);
  }

  private async toManualReview(job: RecoveryJob, reason: string): Promise<void> {
    await withTransaction(this.pool, async (client) => {
      await client.query(named(`UPDATE recovery_jobs SET status = 'manual_review', last_error = $3
         WHERE merchant_id = $1 AND id = $2`), [job.merchantId, job.id, reason.slice(0, 500)]);
      const attempt = await store.selectAttempt(client, job.merchantId, job.subjectId);
      await client.query(named(`UPDATE payment_attempts SET status = 'manual_review', updated_at = clock_timestamp()
         WHERE merchant_id = $1 AND id = $2 AND status IN ('started', 'unknown')`), [job.merchantId, job.subjectId]);
      await openCase(client, { merchantId: job.merchantId, kind: 'unresolved_outcome',
        paymentIntentId: attempt?.paymentIntentId ?? '', subjectId: job.subjectId,
        detail: { reason, runs: job.runCount } });
    });
    this.logger.error({ alert: 'payment_outcome_unresolved', attempt: job.subjectId, reason },
      'ALERT: an authorization outcome could not be resolved; it needs manual review');
  }
}

/** An authorization as the PSP recorded it, in the terms applyAuthorization takes. */
export function authorizationFromRecord(operation: PspOperation): AuthorizationResult {
  const pspReference = operation.pspReference;
  switch (operation.outcome) {
    case 'authorized':
    case 'captured':
    case 'pending':
      return { outcome: operation.outcome, pspReference };
    case 'requires_action':
      return { outcome: 'requires_action', pspReference,
        redirectUrl: `https://sandbox.penny.invalid/3ds/${operation.reference}` };
    case 'declined':
      return { outcome: 'declined', pspReference, ...declineAnswer(operation.declineCode) };
    default:
      throw new Error(`an authorization recorded with outcome ${operation.outcome}`);
  }
}
