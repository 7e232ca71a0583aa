import type pg from 'pg';
import { named, type Queryable, writeAtCommit } from '../db/pool.js';
import { newId } from '../ids.js';

/**
 * The SQL of recovery jobs, one function per statement: the durable rows through which an
 * operation whose PSP outcome is unknown (or whose request died) is looked up and finished.
 */
export type RecoveryKind = 'authorize' | 'capture' | 'cancel' | 'refund';

/** What a job resolves: an authorization (its attempt), a capture or a cancel (its intent), a refund. */
export interface RecoverySubject {
  readonly merchantId: string;
  readonly kind: RecoveryKind;
  readonly subjectId: string;
}

export interface RecoveryJob extends RecoverySubject {
  readonly id: string;
  /** The connector that handled the operation: the one its look-ups and re-sends go to. */
  readonly connector: string;
  readonly createdAt: string;
  readonly runCount: number;
}

/**
 * A subject's job, written when the caller's transaction commits (nothing reads it before). A
 * subject's earlier job, finished (a capture given back, then asked again), is opened anew.
 */
export async function queueRecoveryJobAtCommit(client: pg.PoolClient, job: RecoverySubject & {
  connector: string; nextRunAt: string; createdAt: string;
}): Promise<void> {
  const values = [job.merchantId, newId('rcv'), job.kind, job.subjectId, job.nextRunAt, job.createdAt, job.connector];
  await writeAtCommit(client, `recovery_job:${job.kind}:${job.subjectId}`, () => ({
    text: `INSERT INTO recovery_jobs (merchant_id, id, kind, subject_id, next_run_at, created_at, connector)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (kind, subject_id) DO UPDATE SET status = 'pending', run_count = 0, last_error = NULL,
       resolved_at = NULL, next_run_at = excluded.next_run_at, created_at = excluded.created_at,
       connector = excluded.connector
     WHERE recovery_jobs.status <> 'pending'`,
    values,
  }));
}

/** Brings a pending job's next run forward to `nextRunAt` (never later than it was). */
export async function hastenRecoveryJob(db: Queryable, subject: RecoverySubject, nextRunAt: string): Promise<void> {
  await db.query(named(`UPDATE recovery_jobs SET next_run_at = least(next_run_at, $4)
     WHERE kind = $3 AND subject_id = $1 AND merchant_id = $2 AND status = 'pending'`),
  [subject.subjectId, subject.merchantId, subject.kind, nextRunAt]);
}

/** The subject's outcome is applied: its pending job, if any, is resolved. */
export async function resolveRecoveryJob(db: Queryable, subject: RecoverySubject, resolvedAt: string): Promise<void> {
  await db.query(named(`UPDATE recovery_jobs SET status = 'resolved', resolved_at = $4
     WHERE kind = $3 AND subject_id = $1 AND merchant_id = $2 AND status = 'pending'`),
  [subject.subjectId, subject.merchantId, subject.kind, resolvedAt]);
}

/** Claims the next due job for a lease: its next run moves to `leaseUntil`, and its run count up. */
export async function claimNextRecoveryJob(db: Queryable, now: string, leaseUntil: string):
Promise<RecoveryJob | undefined> {
  const claimed = await db.query(named(`WITH due AS (
       SELECT merchant_id, id FROM recovery_jobs WHERE status = 'pending' AND next_run_at <= $1
        ORDER BY next_run_at LIMIT 1 FOR UPDATE SKIP LOCKED)
     UPDATE recovery_jobs j SET run_count = j.run_count + 1, next_run_at = $2
       FROM due WHERE j.merchant_id = due.merchant_id AND j.id = due.id
     RETURNING j.merchant_id, j.id, j.kind, j.subject_id, j.run_count, j.created_at, j.connector`),
  [now, leaseUntil]);
  const row = claimed.rows[0];
  return row === undefined ? undefined : { merchantId: row.merchant_id, id: row.id, kind: row.kind,
    subjectId: row.subject_id, runCount: row.run_count, createdAt: row.created_at, connector: row.connector };
}

export async function postponeRecoveryJob(db: Queryable, job: Pick<RecoveryJob, 'merchantId' | 'id'>,
  change: { nextRunAt: string; lastError: string }): Promise<void> {
  await db.query(named(`UPDATE recovery_jobs SET next_run_at = $3, last_error = $4
     WHERE merchant_id = $1 AND id = $2 AND status = 'pending'`),
  [job.merchantId, job.id, change.nextRunAt, change.lastError]);
}

export async function finishRecoveryJob(db: Queryable, job: Pick<RecoveryJob, 'merchantId' | 'id'>,
  resolvedAt: string): Promise<void> {
  await db.query(named(`UPDATE recovery_jobs SET status = 'resolved', resolved_at = $3
     WHERE merchant_id = $1 AND id = $2 AND status = 'pending'`), [job.merchantId, job.id, resolvedAt]);
}

/** The job's schedule ran out; false when it was no longer pending (another process finished it). */
export async function moveRecoveryJobToManualReview(db: Queryable, job: Pick<RecoveryJob, 'merchantId' | 'id'>,
  lastError: string): Promise<boolean> {
  const updated = await db.query(named(`UPDATE recovery_jobs SET status = 'manual_review', last_error = $3
     WHERE merchant_id = $1 AND id = $2 AND status = 'pending'`), [job.merchantId, job.id, lastError]);
  return updated.rowCount !== 0;
}
