import type pg from 'pg';
import type { Logger } from 'pino';
import type { PspOperation } from '../connectors/connector.js';
import type { Queryable } from '../db/pool.js';
import { raiseAlert } from '../metrics/metrics.js';
import { openCase } from './payment-cases.js';
import type { PaymentDisputes } from './payment-disputes.js';
import {
  capturedAmountMismatch, failRefund, isOpenAttempt, openCaptureAmountCase, recordedAuthorization, reportsClaim,
  type PaymentFlows,
} from './payment-flows.js';
import * as store from './payment-store.js';

/**
 * What a verified PSP event does to a payment, decided under the payment's row lock in the
 * transaction of the inbox worker that claimed it (src/webhooks/connector-inbox.ts stores,
 * deduplicates and schedules; it calls here, never the other way). Transitions only move
 * forward: a repeated or late event changes nothing and is noted; an event for a step Penny has
 * not taken yet is parked and retried; an event that contradicts what Penny booked opens a case
 * and raises an alert, and rewrites nothing.
 */
export type PspEventDecision =
  | { readonly status: 'processed' | 'ignored'; readonly note: string }
  | { readonly status: 'parked'; readonly note: string };

/** A verified PSP event as the inbox stored it: its id and the operation it reports. */
export interface StoredPspEvent {
  /** The connector whose route received it: only a payment of that connector is its subject. */
  readonly connector: string;
  readonly id: string;
  readonly operation: PspOperation;
}

export class PaymentPspEvents {
  constructor(
    private readonly flows: PaymentFlows,
    private readonly logger: Logger,
    private readonly disputes?: PaymentDisputes,
  ) {}

  async decide(client: pg.PoolClient, event: StoredPspEvent): Promise<PspEventDecision> {
    const { operation } = event;
    switch (operation.kind) {
      case 'authorize':
        return this.authorization(client, event);
      case 'capture':
        return this.followUp(client, event, 'captured');
      case 'void':
        return this.followUp(client, event, 'voided');
      case 'refund':
        return this.refund(client, event);
      case 'payout':
        return { status: 'ignored', note: 'payouts are not booked from PSP events yet' };
      case 'chargeback':
        return this.disputes === undefined ? { status: 'ignored', note: 'disputes are not booked here' }
          : this.disputes.applyChargeback(client, event);
      case 'notice':
        return this.notice(client, event);
      default:
        return { status: 'ignored', note: `an operation of kind ${String(operation.kind)} is not known to Penny` };
    }
  }

  /**
   * A case for an event set aside unmatched, on the payment it names when Penny knows it (a step
   * the PSP reports and Penny never took). An event naming nothing Penny knows has only the alert.
   */
  async openUnmatchedCase(client: pg.PoolClient, event: StoredPspEvent, note: string): Promise<void> {
    const { operation } = event;
    const subject = await subjectOf(client, operation);
    if (subject === undefined) return;
    await openCase(client, { merchantId: subject.merchantId, kind: 'unmatched_event',
      paymentIntentId: subject.paymentIntentId, subjectId: `${operation.reference}:${event.id}`,
      detail: { event: event.id, kind: operation.kind, outcome: operation.outcome, note } });
  }

  private async authorization(client: pg.PoolClient, event: StoredPspEvent): Promise<PspEventDecision> {
    const { operation } = event;
    const found = await store.selectAttemptById(client, operation.reference);
    if (found === undefined) return parked(`no attempt ${operation.reference} yet`);
    if (found.connector !== event.connector) return otherConnector(found, event);
    // A challenge the PSP hosts (Adyen's 3-D Secure) ends with the PSP's word: its authorization
    // resolves the attempt, once, if the customer's return has not already.
    if (found.status === 'requires_action' && ['authorized', 'captured', 'declined'].includes(operation.outcome)) {
      const intent = await store.selectPaymentIntent(client,
        { merchantId: found.merchantId, id: found.paymentIntentId }, { forUpdate: true });
      const applied = await this.flows.resolveChallenge(client, found,
        recordedAuthorization(operation, { captureMethod: intent?.captureMethod ?? 'automatic' }));
      if (applied !== undefined) return { status: 'processed', note: `applied after the PSP's challenge: ${operation.outcome}` };
      const now = await store.selectAttempt(client, found.merchantId, found.id) ?? found;
      if (now.status !== 'requires_action') return this.resolvedAlready(client, event, now);
    }
    // A resolved attempt changes only from requires_action to authentication_failed, a change no
    // event reports, so the usual echo of an applied outcome needs no lock.
    if (!isOpenAttempt(found.status)) return this.resolvedAlready(client, event, found);
    // The payment's row lock first, then the attempt as it is under that lock.
    const intent = await store.selectPaymentIntent(client,
      { merchantId: found.merchantId, id: found.paymentIntentId }, { forUpdate: true });
    const attempt = await store.selectAttempt(client, found.merchantId, found.id) ?? found;
    if (!isOpenAttempt(attempt.status)) return this.resolvedAlready(client, event, attempt);
    if (operation.outcome === 'pending') return { status: 'processed', note: 'the PSP has not decided yet' };
    if (intent === undefined) throw new Error(`attempt ${attempt.id} has no intent`);
    await this.flows.applyAuthorization(client, attempt, recordedAuthorization(operation, intent));
    return { status: 'processed', note: `applied: ${operation.outcome}` };
  }

  /**
   * A step the PSP reports that Penny does not apply (Adyen's REFUNDED_REVERSED, TECHNICAL_CANCEL,
   * …): kept in the inbox; when it moved money, a case on its payment and an alert, for a payments
   * engineer to book by hand. Penny's own books are left as they are.
   */
  private async notice(client: pg.PoolClient, event: StoredPspEvent): Promise<PspEventDecision> {
    const { operation } = event;
    const code = operation.notice ?? 'notice';
    if (operation.outcome !== 'money_moved') {
      return { status: 'ignored', note: `${code} ${operation.outcome}: nothing for Penny to apply` };
    }
    const subject = await subjectOf(client, operation);
    if (subject === undefined || subject.connector !== event.connector) {
      raiseAlert(this.logger, 'psp_event_unmatched', { event: event.id, notice: code },
        'the PSP reports a step that moved money on a payment Penny does not know');
      return { status: 'ignored', note: `${code}: names nothing Penny knows` };
    }
    return this.contradiction(client, event, { subject, penny: 'not applied', psp: code });
  }

  /** An event about an attempt Penny has resolved: a repeat, a late step, or a contradiction. */
  private async resolvedAlready(client: pg.PoolClient, event: StoredPspEvent, attempt: store.AttemptRow):
  Promise<PspEventDecision> {
    const { operation } = event;
    if (attempt.status === operation.outcome) return { status: 'ignored', note: 'already applied' };
    const penny = attempt.status;
    // The PSP's echo of the challenge the customer then failed on Penny's test page.
    if (penny === 'authentication_failed' && operation.outcome === 'requires_action') {
      return { status: 'ignored', note: 'late: requires_action after authentication_failed' };
    }
    const moneyMoved = (outcome: string) => outcome === 'authorized' || outcome === 'captured';
    if (operation.outcome === 'pending' || (moneyMoved(penny) && moneyMoved(operation.outcome))) {
      return { status: 'ignored', note: `late: ${operation.outcome} after ${penny}` };
    }
    return this.contradiction(client, event, { subject: attempt, penny, psp: operation.outcome });
  }

  /**
   * A capture or void: applied by Penny's own request; the event confirms it, or waits for it. An
   * event saying the step failed after Penny booked it is a contradiction.
   */
  private async followUp(client: pg.PoolClient, event: StoredPspEvent, succeeded: 'captured' | 'voided'):
  Promise<PspEventDecision> {
    const { operation } = event;
    const found = await store.selectChargeById(client, operation.reference);
    if (found === undefined) {
      if (operation.kind === 'capture') return this.automaticCapture(client, event);
      return parked(`no charge ${operation.reference}`);
    }
    if (found.connector !== event.connector) return otherConnector(found, event);
    const intent = await store.selectPaymentIntent(client, { merchantId: found.merchantId, id: found.paymentIntentId },
      { forUpdate: true });
    // Read again under the payment's lock: Penny's own capture may have just committed.
    const charge = await store.selectCharge(client, { merchantId: found.merchantId, id: found.id }) ?? found;
    const done = succeeded === 'captured' ? charge.captured : intent?.status === 'canceled';
    if (!done && intent?.status === 'processing') {
      const taken = await this.takenFinalization(client, event, { intent, succeeded });
      if (taken !== undefined) return taken;
    }
    if (operation.outcome !== succeeded) {
      if (!done) return parked(`the PSP reports ${operation.kind} ${operation.outcome}; Penny's request decides`);
      return this.contradiction(client, event,
        { subject: charge, penny: succeeded, psp: `${operation.kind} ${operation.outcome}` });
    }
    return done ? { status: 'ignored', note: 'already applied' } : parked(`${succeeded} not applied by Penny yet`);
  }

  /**
   * A capture the PSP made of itself (Adyen's CAPTURE for an automatically captured payment, sent
   * when the account enables it): it names the payment's reference (the attempt), not a charge, and
   * is matched to the attempt's charge by Adyen's payment pspReference. Penny booked the capture
   * with the authorization: success confirms it; failure contradicts it (a case). A capture of a
   * manually captured payment that Penny never asked for is parked, then set aside with a case.
   */
  private async automaticCapture(client: pg.PoolClient, event: StoredPspEvent): Promise<PspEventDecision> {
    const { operation } = event;
    const attempt = await store.selectAttemptById(client, operation.reference);
    if (attempt === undefined) return parked(`no charge ${operation.reference}`);
    if (attempt.connector !== event.connector) return otherConnector(attempt, event);
    const intent = await store.selectPaymentIntent(client,
      { merchantId: attempt.merchantId, id: attempt.paymentIntentId }, { forUpdate: true });
    const charge = await store.selectChargeByAttemptId(client, attempt.id);
    if (intent === undefined || charge === undefined) return parked(`attempt ${attempt.id} has no charge yet`);
    const paymentPsp = operation.parentPspReference ?? operation.pspReference;
    if (charge.pspReference !== paymentPsp) {
      return parked(`capture of Adyen payment ${paymentPsp}, not charge ${charge.id}'s (${charge.pspReference ?? ''})`);
    }
    if (intent.captureMethod === 'manual') return parked(`a capture of ${charge.id} Penny never requested`);
    if (!charge.captured) return parked(`the automatic capture of ${charge.id} is not applied by Penny yet`);
    if (operation.outcome === 'captured') return { status: 'ignored', note: 'already applied: the automatic capture' };
    return this.contradiction(client, event,
      { subject: charge, penny: 'captured', psp: `${operation.kind} ${operation.outcome}` });
  }

  /**
   * A capture or cancel the PSP took and reports only now (Adyen's `received`, then CAPTURE,
   * CAPTURE_FAILED or CANCELLATION): Penny's intent waits in processing with its claim. Success
   * books it now, as Penny's own request would have; failure gives the claim back.
   */
  private async takenFinalization(client: pg.PoolClient, event: StoredPspEvent,
    on: { intent: store.PaymentIntentRow; succeeded: 'captured' | 'voided' }): Promise<PspEventDecision | undefined> {
    // Only the report of the request the PSP took (the claim's PSP reference) settles the claim;
    // a capture whose amount is not the claim's is booked by no one and opens a case.
    const { intent, succeeded } = on;
    const kind = succeeded === 'captured' ? 'capture' : 'cancel';
    const claim = await store.selectFinalization(client, intent);
    if (claim?.kind !== kind) return undefined;
    const { operation } = event;
    if (!reportsClaim(claim, operation)) {
      // An earlier request's failure (its claim given back) moved nothing: it settles nothing now.
      if (operation.outcome !== succeeded) {
        return { status: 'ignored', note: `${operation.kind} ${operation.outcome} of ${operation.pspReference}, `
          + `not the request in flight (${claim.pspReference ?? ''})` };
      }
      return undefined;
    }
    const key = { merchantId: intent.merchantId, id: intent.id };
    if (operation.outcome !== succeeded) {
      await this.flows.failFinalization(client, { merchantId: intent.merchantId, kind, subjectId: intent.id });
      return { status: 'processed', note: `the PSP reports ${event.operation.kind} ${event.operation.outcome}: `
        + 'the claim is given back' };
    }
    if (kind === 'capture') {
      const mismatch = capturedAmountMismatch(intent, claim, operation);
      if (mismatch !== undefined) {
        // Nothing booked: the intent waits in processing with its claim until an operator decides.
        await openCaptureAmountCase(client, { intent, chargeId: operation.reference, operation, mismatch });
        raiseAlert(this.logger, 'psp_event_contradicts_ledger', { event: event.id, subject: intent.id, ...mismatch },
          'the PSP captured another amount than Penny asked; a case is open');
        return { status: 'ignored', note: `contradiction: Penny asked ${mismatch.claimedMinor}, `
          + `the PSP captured ${mismatch.reportedMinor}` };
      }
      await this.flows.applyCapture(client, { ...key, amount: claim.amount ?? intent.amountCapturable });
    } else {
      await this.flows.applyCancel(client, { ...key, reason: claim.cancellationReason });
    }
    return { status: 'processed', note: `applied: ${succeeded}` };
  }

  private async refund(client: pg.PoolClient, event: StoredPspEvent): Promise<PspEventDecision> {
    const { operation } = event;
    const found = await store.selectRefundById(client, operation.reference);
    if (found === undefined) return parked(`no refund ${operation.reference}`);
    if (found.connector !== event.connector) return otherConnector(found, event);
    let refund = found;
    // Taken by the PSP (Adyen's `received`: its PSP reference is kept), reported only now. Under
    // the charge's lock, as applyRefund and failRefund take it; then the refund as it is under it.
    if (found.status === 'pending' && found.pspReference !== null) {
      await store.selectCharge(client, { merchantId: found.merchantId, id: found.chargeId }, { forUpdate: true });
      refund = await store.selectRefund(client, found.merchantId, found.id) ?? found;
    }
    if (refund.status === 'succeeded' && operation.outcome === 'refunded') {
      return { status: 'ignored', note: 'already applied' };
    }
    if (refund.status === 'pending' && refund.pspReference !== null) {
      if (operation.outcome === 'refunded') {
        await this.flows.applyRefund(client, { merchantId: refund.merchantId, id: refund.id,
          pspReference: refund.pspReference });
        return { status: 'processed', note: 'applied: refunded' };
      }
      await failRefund(client, { merchantId: refund.merchantId, id: refund.id });
      return { status: 'processed', note: `the PSP reports refund ${operation.outcome}: the refund failed` };
    }
    if (refund.status === 'pending') return parked('the refund is not applied by Penny yet');
    return this.contradiction(client, event, { subject: refund, penny: refund.status, psp: operation.outcome });
  }

  private async contradiction(client: pg.PoolClient, event: StoredPspEvent, found: {
    subject: { merchantId: string; paymentIntentId: string; id: string }; penny: string; psp: string;
  }): Promise<PspEventDecision> {
    const { subject, ...detail } = found;
    await openCase(client, { merchantId: subject.merchantId, kind: 'contradicting_event',
      paymentIntentId: subject.paymentIntentId, subjectId: `${subject.id}:${event.id}`,
      detail: { event: event.id, ...detail } });
    raiseAlert(this.logger, 'psp_event_contradicts_ledger', { event: event.id, subject: subject.id, ...detail },
      'a PSP event contradicts what Penny booked; a case is open');
    return { status: 'ignored', note: `contradiction: Penny has ${detail.penny}, the PSP says ${detail.psp}` };
  }
}

function parked(note: string): PspEventDecision {
  return { status: 'parked', note };
}

/**
 * An event naming a payment another connector handled is not about it (a reference collision, or
 * a forgery signed with this connector's secret): parked, then set aside with an alert.
 */
function otherConnector(subject: { id: string; connector: string }, event: StoredPspEvent): PspEventDecision {
  return parked(`${subject.id} is handled by connector ${subject.connector}, not ${event.connector}`);
}

/** The merchant and payment an operation names, if Penny knows them. */
async function subjectOf(db: Queryable, operation: PspOperation):
Promise<{ merchantId: string; paymentIntentId: string; id: string; connector: string } | undefined> {
  switch (operation.kind) {
    case 'authorize':
      return store.selectAttemptById(db, operation.reference);
    case 'capture':
    case 'void':
      // A PSP's own capture (Adyen's automatic capture) names the payment's reference, the attempt.
      return await store.selectChargeById(db, operation.reference)
        ?? await store.selectAttemptById(db, operation.reference);
    case 'refund':
      return store.selectRefundById(db, operation.reference);
    case 'notice':
      return await store.selectAttemptById(db, operation.reference)
        ?? await store.selectChargeById(db, operation.reference)
        ?? await store.selectRefundById(db, operation.reference);
    default:
      return undefined;
  }
}
