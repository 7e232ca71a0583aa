import type pg from 'pg';
import type { Logger } from 'pino';
import { nowMs } from '../clock.js';
import type { ConnectorEvent, PspOperation } from '../connectors/connector.js';
import { inSavepoint, named, type Queryable, withTransaction } from '../db/pool.js';
import { stringifyJson } from '../json.js';
import { raiseAlert } from '../metrics/metrics.js';
import type { PaymentFlows } from '../payments/payment-flows.js';
import { openCase } from '../payments/payment-cases.js';
import { authorizationFromRecord } from '../connectors/decline-codes.js';
import * as store from '../payments/payment-store.js';

/**
 * PSP webhooks in. A verified event is stored once per (connector, event id) and answered at
 * once; a worker processes each exactly once: it claims the row with FOR UPDATE SKIP LOCKED and,
 * in the same transaction, locks the payment, applies the event and marks the row processed.
 * Transitions only move forward: a repeated or late event changes nothing and is noted; an event
 * for a step Penny has not taken yet is parked and retried; an event that contradicts what Penny
 * booked opens a case and raises an alert, and rewrites nothing.
 */
const processBatchMax = 32;
/** Echoes of applied authorizations settled per statement. */
const echoBatchMax = 128;
const parkCountMax = 20;

export async function receiveConnectorEvent(db: Queryable, connector: string, event: ConnectorEvent) {
  const result = await db.query(named(`INSERT INTO connector_webhook_inbox (connector, event_id, event_type, payload,
       next_process_at) VALUES ($1, $2, $3, $4::jsonb, $5) ON CONFLICT (connector, event_id) DO NOTHING`),
  [connector, event.id, event.type, stringifyJson(event.operation), new Date(nowMs()).toISOString()]);
  return { duplicate: result.rowCount === 0 };
}

type Decision =
  | { readonly status: 'processed' | 'ignored'; readonly note: string }
  | { readonly status: 'parked'; readonly note: string };

export class ConnectorInbox {
  constructor(
    private readonly pool: pg.Pool,
    private readonly flows: PaymentFlows,
    private readonly logger: Logger,
  ) {}

  /**
   * Processes due events; returns how many were handled. The usual event, the PSP's echo of an
   * authorization Penny has already applied, is settled in bulk first; every other event is
   * processed in a transaction of its own.
   */
  async processDue(): Promise<number> {
    const echoes = await this.settleEchoes();
    // Its own budget: a flood of echoes never starves the events that need processing.
    let processed = 0;
    while (processed < processBatchMax && await this.processOne()) processed += 1;
    return echoes + processed;
  }

  /**
   * Marks ignored, in one statement, due authorization events whose attempt Penny has resolved
   * with the very outcome the event reports: what `resolvedAlready` decides for them, without a
   * transaction and two statements each. A resolved attempt never changes again, so no lock is
   * needed; the rows themselves are claimed with SKIP LOCKED as the one-by-one path claims them.
   */
  private async settleEchoes(): Promise<number> {
    const now = new Date(nowMs()).toISOString();
    const result = await this.pool.query(named(`WITH echoes AS (
         SELECT i.connector, i.event_id FROM connector_webhook_inbox i
         JOIN payment_attempts a ON a.id = i.payload->>'reference'
         WHERE i.status IN ('received', 'parked') AND i.next_process_at <= $1
           AND i.payload->>'kind' = 'authorize' AND a.status = i.payload->>'outcome'
         ORDER BY i.next_process_at LIMIT $2 FOR UPDATE OF i SKIP LOCKED)
       UPDATE connector_webhook_inbox t SET status = 'ignored', note = 'already applied',
         process_count = t.process_count + 1, processed_at = $1
       FROM echoes e WHERE t.connector = e.connector AND t.event_id = e.event_id`),
    [now, echoBatchMax]);
    return result.rowCount ?? 0;
  }

  private processOne(): Promise<boolean> {
    return withTransaction(this.pool, async (client) => {
      const claimed = await client.query(named(`SELECT * FROM connector_webhook_inbox
         WHERE status IN ('received', 'parked') AND next_process_at <= $1
         ORDER BY next_process_at, received_at LIMIT 1 FOR UPDATE SKIP LOCKED`), [new Date(nowMs()).toISOString()]);
      const row = claimed.rows[0];
      if (row === undefined) return false;
      const decision = await this.decideSafely(client, row.event_id, row.payload);
      const parkedOut = decision.status === 'parked' && row.process_count + 1 >= parkCountMax;
      const status = parkedOut ? 'ignored' : decision.status;
      await client.query(named(`UPDATE connector_webhook_inbox SET status = $3, note = $4,
           process_count = process_count + 1, next_process_at = $5,
           processed_at = CASE WHEN $3 IN ('processed', 'ignored') THEN $6::timestamptz END
         WHERE connector = $1 AND event_id = $2`),
      [row.connector, row.event_id, status, parkedOut ? `never matched: ${decision.note}` : decision.note,
        new Date(nowMs() + Math.min(1000 * 2 ** row.process_count, 3_600_000)).toISOString(),
        new Date(nowMs()).toISOString()]);
      if (parkedOut) {
        // Under a savepoint: an event too broken to name its payment still gets marked below.
        await inSavepoint(client, () => this.openUnmatchedCase(client, row.event_id, row.payload, decision.note))
          .catch((error: unknown) => this.logger.error({ err: error, event: row.event_id }, 'no case for an event'));
        raiseAlert(this.logger, 'psp_event_unmatched', { event: row.event_id, note: decision.note },
          'a parked PSP event never matched; it is set aside for an operator');
      }
      return true;
    });
  }

  /**
   * Decides under a savepoint: an event that cannot be processed (a bug, a shape Penny does not
   * know) is parked with the error and retried with backoff, then set aside with an alert, and
   * never blocks the events behind it.
   */
  private async decideSafely(client: pg.PoolClient, eventId: string, payload: unknown): Promise<Decision> {
    try {
      // What a failed decision deferred (its events) is rolled back with what it wrote.
      return await inSavepoint(client, () => this.decide(client, eventId, toOperation(payload)));
    } catch (error) {
      this.logger.error({ err: error, event: eventId }, 'a PSP event could not be processed');
      return parked(`error: ${error instanceof Error ? error.message.slice(0, 300) : String(error)}`);
    }
  }

  private async decide(client: pg.PoolClient, eventId: string, operation: PspOperation): Promise<Decision> {
    switch (operation.kind) {
      case 'authorize':
        return this.authorization(client, eventId, operation);
      case 'capture':
        return this.followUp(client, eventId, operation, 'captured');
      case 'void':
        return this.followUp(client, eventId, operation, 'voided');
      case 'refund':
        return this.refund(client, eventId, operation);
      case 'payout':
        return { status: 'ignored', note: 'payouts are not booked from PSP events yet' };
      case 'chargeback':
        return { status: 'ignored', note: 'disputes are not booked from PSP events yet' };
      default:
        return { status: 'ignored', note: `an operation of kind ${String(operation.kind)} is not known to Penny` };
    }
  }

  private async authorization(client: pg.PoolClient, eventId: string, operation: PspOperation): Promise<Decision> {
    const found = await store.selectAttemptById(client, operation.reference);
    if (found === undefined) return { status: 'parked', note: `no attempt ${operation.reference} yet` };
    // A resolved attempt never changes again, so the usual echo of an applied outcome needs no lock.
    if (!isOpen(found.status)) return this.resolvedAlready(client, eventId, found, operation);
    // The payment's row lock first, then the attempt as it is under that lock.
    await store.selectPaymentIntent(client, found.merchantId, found.paymentIntentId, { forUpdate: true });
    const attempt = await store.selectAttempt(client, found.merchantId, found.id) ?? found;
    if (!isOpen(attempt.status)) return this.resolvedAlready(client, eventId, attempt, operation);
    if (operation.outcome === 'pending') return { status: 'processed', note: 'the PSP has not decided yet' };
    await this.flows.applyAuthorization(client, attempt, authorizationFromRecord(operation));
    return { status: 'processed', note: `applied: ${operation.outcome}` };
  }

  /**
   * A case for an event set aside unmatched, on the payment it names when Penny knows it (a step
   * the PSP reports and Penny never took). An event naming nothing Penny knows has only the alert.
   */
  private async openUnmatchedCase(client: pg.PoolClient, eventId: string, payload: unknown, note: string):
  Promise<void> {
    const operation = toOperation(payload);
    const subject = await subjectOf(client, operation);
    if (subject === undefined) return;
    await openCase(client, { merchantId: subject.merchantId, kind: 'unmatched_event',
      paymentIntentId: subject.paymentIntentId, subjectId: `${operation.reference}:${eventId}`,
      detail: { event: eventId, kind: operation.kind, outcome: operation.outcome, note } });
  }

  /** An event about an attempt Penny has resolved: a repeat, a late step, or a contradiction. */
  private async resolvedAlready(client: pg.PoolClient, eventId: string, attempt: store.AttemptRow,
    operation: PspOperation): Promise<Decision> {
    if (attempt.status === operation.outcome) return { status: 'ignored', note: 'already applied' };
    const penny = attempt.status;
    const moneyMoved = (outcome: string) => outcome === 'authorized' || outcome === 'captured';
    if (operation.outcome === 'pending' || (moneyMoved(penny) && moneyMoved(operation.outcome))) {
      return { status: 'ignored', note: `late: ${operation.outcome} after ${penny}` };
    }
    return this.contradiction(client, eventId, attempt.merchantId, attempt.paymentIntentId, attempt.id,
      { penny, psp: operation.outcome });
  }

  /**
   * A capture or void: applied by Penny's own request; the event confirms it, or waits for it. An
   * event saying the step failed after Penny booked it is a contradiction.
   */
  private async followUp(client: pg.PoolClient, eventId: string, operation: PspOperation,
    succeeded: 'captured' | 'voided'): Promise<Decision> {
    const found = await chargeById(client, operation.reference);
    if (found === undefined) return parked(`no charge ${operation.reference}`);
    const intent = await store.selectPaymentIntent(client, found.merchantId, found.paymentIntentId,
      { forUpdate: true });
    // Read again under the payment's lock: Penny's own capture may have just committed.
    const charge = await store.selectCharge(client, found.merchantId, found.id) ?? found;
    const done = succeeded === 'captured' ? charge.captured : intent?.status === 'canceled';
    if (operation.outcome !== succeeded) {
      if (!done) return parked(`the PSP reports ${operation.kind} ${operation.outcome}; Penny's request decides`);
      return this.contradiction(client, eventId, charge.merchantId, charge.paymentIntentId, charge.id,
        { penny: succeeded, psp: `${operation.kind} ${operation.outcome}` });
    }
    return done ? { status: 'ignored', note: 'already applied' } : parked(`${succeeded} not applied by Penny yet`);
  }

  private async refund(client: pg.PoolClient, eventId: string, operation: PspOperation): Promise<Decision> {
    const refund = await refundById(client, operation.reference);
    if (refund === undefined) return parked(`no refund ${operation.reference}`);
    if (refund.status === 'succeeded') return { status: 'ignored', note: 'already applied' };
    if (refund.status === 'pending') return parked('the refund is not applied by Penny yet');
    return this.contradiction(client, eventId, refund.merchantId, refund.paymentIntentId, refund.id,
      { penny: refund.status, psp: operation.outcome });
  }

  private async contradiction(client: pg.PoolClient, eventId: string, merchantId: string, paymentIntentId: string,
    subjectId: string, detail: { penny: string; psp: string }): Promise<Decision> {
    await openCase(client, { merchantId, kind: 'contradicting_event', paymentIntentId,
      subjectId: `${subjectId}:${eventId}`, detail: { event: eventId, ...detail } });
    raiseAlert(this.logger, 'psp_event_contradicts_ledger', { event: eventId, subject: subjectId, ...detail },
      'a PSP event contradicts what Penny booked; a case is open');
    return { status: 'ignored', note: `contradiction: Penny has ${detail.penny}, the PSP says ${detail.psp}` };
  }
}

/** An attempt whose outcome Penny does not know yet. */
function isOpen(status: string): boolean {
  return status === 'started' || status === 'unknown' || status === 'manual_review';
}

function parked(note: string): Decision {
  return { status: 'parked', note };
}

/** The merchant and payment an operation names, if Penny knows them. */
async function subjectOf(db: Queryable, operation: PspOperation):
Promise<{ merchantId: string; paymentIntentId: string } | undefined> {
  switch (operation.kind) {
    case 'authorize':
      return store.selectAttemptById(db, operation.reference);
    case 'capture':
    case 'void':
      return chargeById(db, operation.reference);
    case 'refund':
      return refundById(db, operation.reference);
    default:
      return undefined;
  }
}

async function chargeById(db: Queryable, id: string) {
  const result = await db.query<{ merchant_id: string }>(named('SELECT merchant_id FROM charges WHERE id = $1'), [id]);
  const merchantId = result.rows[0]?.merchant_id;
  return merchantId === undefined ? undefined : store.selectCharge(db, merchantId, id);
}

async function refundById(db: Queryable, id: string) {
  const result = await db.query<{ merchant_id: string }>(named('SELECT merchant_id FROM refunds WHERE id = $1'), [id]);
  const merchantId = result.rows[0]?.merchant_id;
  return merchantId === undefined ? undefined : store.selectRefund(db, merchantId, id);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the stored operation (JSON)
function toOperation(payload: any): PspOperation {
  return {
    kind: payload.kind, pspReference: payload.pspReference, reference: payload.reference, outcome: payload.outcome,
    amountMinor: payload.amountMinor === null ? null : BigInt(payload.amountMinor), currency: payload.currency,
    declineCode: payload.declineCode, redirectUrl: payload.redirectUrl ?? null,
  };
}
