import type pg from 'pg';
import type { Logger } from 'pino';
import { nowMs } from '../clock.js';
import { limits } from '../config.js';
import type { ConnectorEvent, PspOperation } from '../connectors/connector.js';
import { inSavepoint, type Queryable, withTransaction } from '../db/pool.js';
import { raiseAlert } from '../metrics/metrics.js';
import type { PspEventDecision } from '../payments/payment-psp-events.js';
import * as store from './connector-inbox-store.js';
import type { PspEventRouter } from './psp-event-router.js';

/**
 * PSP webhooks in. A verified event is stored once per (connector, event id) and answered at
 * once; a worker processes each exactly once: it claims the row with FOR UPDATE SKIP LOCKED and,
 * in the same transaction, has the owning domain decide and apply what the event means (through
 * `PspEventRouter`: payouts' events to src/payouts/payout-psp-events.ts, the rest to
 * src/payments/payment-psp-events.ts, under the subject's row lock) and marks the row. The inbox
 * owns storage, deduplication and scheduling: an event payments parks is retried with capped
 * backoff, and after `limits.inboxParkCountMax` tries set aside with an alert.
 */
export async function receiveConnectorEvent(db: Queryable, connector: string, event: ConnectorEvent) {
  const stored = await store.insertInboxEvent(db, { connector, id: event.id, type: event.type,
    operation: event.operation, receivedAt: new Date(nowMs()).toISOString() });
  return { duplicate: !stored };
}

/**
 * A verified webhook that concerns no payment flow (Adyen's ACH/EFT notification of change: Penny
 * keeps no bank account of a shopper to update): stored as received and ignored, once.
 */
export async function receiveIgnoredConnectorWebhook(db: Queryable, connector: string,
  webhook: { id: string; type: string; payload: unknown; note: string }) {
  const stored = await store.insertIgnoredInboxEvent(db, { connector, ...webhook,
    receivedAt: new Date(nowMs()).toISOString() });
  return { duplicate: !stored };
}

/**
 * What a connector's verified webhooks reported for Penny's reference, the latest state of each
 * operation: the look-up of a PSP that has no look-up API of its own (Adyen's Checkout), whose
 * connector is given this as its notification log by the composition root.
 */
export async function reportedOperations(db: Queryable, connector: string, reference: string):
Promise<PspOperation[]> {
  const latest = new Map<string, PspOperation>();
  for (const payload of await store.selectInboxOperations(db, { connector, reference })) {
    const operation = toOperation(payload);
    latest.set(`${operation.kind}:${operation.pspReference}`, operation);
  }
  return [...latest.values()];
}

export class ConnectorInbox {
  constructor(
    private readonly pool: pg.Pool,
    private readonly pspEvents: PspEventRouter,
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
    while (processed < limits.inboxProcessBatchMax && await this.processOne()) processed += 1;
    return echoes + processed;
  }

  /**
   * Marks ignored, in one statement, due authorization events whose attempt Penny has resolved
   * with the very outcome the event reports: what processing one by one would decide for them,
   * without a transaction and two statements each.
   */
  private settleEchoes(): Promise<number> {
    return store.markAppliedAuthorizationEchoes(this.pool,
      { now: new Date(nowMs()).toISOString(), limit: limits.inboxEchoBatchMax });
  }

  private processOne(): Promise<boolean> {
    return withTransaction(this.pool, async (client) => {
      const row = await store.claimNextDueEvent(client, new Date(nowMs()).toISOString());
      if (row === undefined) return false;
      const decision = await this.decideSafely(client, row);
      const parkedOut = decision.status === 'parked' && row.processCount + 1 >= limits.inboxParkCountMax;
      const retryDelayMs = Math.min(limits.inboxRetryDelayFirstMs * 2 ** row.processCount, limits.inboxRetryDelayMaxMs);
      await store.updateInboxEvent(client, row, {
        status: parkedOut ? 'ignored' : decision.status,
        note: parkedOut ? `never matched: ${decision.note}` : decision.note,
        nextProcessAt: new Date(nowMs() + retryDelayMs).toISOString(),
        now: new Date(nowMs()).toISOString(),
      });
      if (parkedOut) await this.setAside(client, row, decision.note);
      return true;
    });
  }

  /** An event that never matched: a case on its payment when Penny knows it, and an alert. */
  private async setAside(client: pg.PoolClient, row: store.InboxRow, note: string): Promise<void> {
    // Under a savepoint: an event too broken to name its payment still gets marked.
    await inSavepoint(client,
      () => this.pspEvents.openUnmatchedCase(client,
        { connector: row.connector, id: row.eventId, operation: toOperation(row.payload) }, note))
      .catch((error: unknown) => this.logger.error({ err: error, event: row.eventId }, 'no case for an event'));
    raiseAlert(this.logger, 'psp_event_unmatched', { event: row.eventId, note },
      'a parked PSP event never matched; it is set aside for an operator');
  }

  /**
   * Decides under a savepoint: an event that cannot be processed (a bug, a shape Penny does not
   * know) is parked with the error and retried with backoff, then set aside with an alert, and
   * never blocks the events behind it.
   */
  private async decideSafely(client: pg.PoolClient, row: store.InboxRow): Promise<PspEventDecision> {
    try {
      // What a failed decision deferred (its events) is rolled back with what it wrote.
      return await inSavepoint(client, () => this.pspEvents.decide(client,
        { connector: row.connector, id: row.eventId, operation: toOperation(row.payload) }));
    } catch (error) {
      this.logger.error({ err: error, event: row.eventId }, 'a PSP event could not be processed');
      const reason = error instanceof Error ? error.message.slice(0, limits.inboxErrorLengthMax) : String(error);
      return { status: 'parked', note: `error: ${reason}` };
    }
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the stored operation (JSON)
function toOperation(payload: any): PspOperation {
  return {
    kind: payload.kind, pspReference: payload.pspReference, reference: payload.reference, outcome: payload.outcome,
    amountMinor: payload.amountMinor === null ? null : BigInt(payload.amountMinor), currency: payload.currency,
    declineCode: payload.declineCode, redirectUrl: payload.redirectUrl ?? null,
    // The fields only some operations carry (a dispute's reason and fee, a payout's failure).
    ...(payload.reason === undefined ? {} : { reason: payload.reason }),
    ...(payload.disputeFeeMinor === undefined || payload.disputeFeeMinor === null ? {}
      : { disputeFeeMinor: BigInt(payload.disputeFeeMinor) }),
    ...(payload.failureCode === undefined ? {} : { failureCode: payload.failureCode }),
    ...(payload.parentPspReference === undefined ? {} : { parentPspReference: payload.parentPspReference }),
    ...(payload.availableImmediately === undefined ? {} : { availableImmediately: payload.availableImmediately }),
    ...(payload.captureAsRequested === undefined ? {} : { captureAsRequested: payload.captureAsRequested }),
    ...(payload.notice === undefined ? {} : { notice: payload.notice }),
  };
}
