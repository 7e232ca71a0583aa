import type { Queryable } from '../db/pool.js';
import { changedAttributes, recordEvent } from '../events/event-store.js';
import { presentCharge, presentPaymentIntent, presentRefund } from './payment-presenter.js';
import type { PaymentIntentStatus } from './payment-state.js';
import type { ChargeRow, PaymentIntentRow, RefundRow } from './payment-store.js';

/**
 * The events a payment's state changes write, with Stripe's names, in the transaction of the
 * change. `previous_attributes` holds the fields that changed, as they were before.
 */
const intentEventByStatus: Readonly<Partial<Record<PaymentIntentStatus, string>>> = {
  processing: 'payment_intent.processing',
  requires_action: 'payment_intent.requires_action',
  requires_capture: 'payment_intent.amount_capturable_updated',
  succeeded: 'payment_intent.succeeded',
  canceled: 'payment_intent.canceled',
};

/** The event for an intent's change of status; none when the status did not change. */
export function intentEventType(before: PaymentIntentRow | undefined, after: PaymentIntentRow): string | undefined {
  if (before === undefined) return 'payment_intent.created';
  if (before.status === after.status) return undefined;
  if (after.status === 'requires_payment_method') {
    return after.lastPaymentError === null ? undefined : 'payment_intent.payment_failed';
  }
  return intentEventByStatus[after.status];
}

export async function recordIntentEvent(
  db: Queryable,
  before: PaymentIntentRow | undefined,
  after: PaymentIntentRow,
): Promise<void> {
  const type = intentEventType(before, after);
  if (type === undefined) return;
  const object = presentPaymentIntent(after);
  await recordEvent(db, {
    merchantId: after.merchantId, type, object,
    previousAttributes: before === undefined ? undefined : changedAttributes(presentPaymentIntent(before), object),
  });
}

/** A charge's event; `before`, when given, names the fields that changed (previous_attributes). */
export async function recordChargeEvent(db: Queryable, event: {
  type: 'charge.succeeded' | 'charge.failed' | 'charge.captured' | 'charge.refunded';
  charge: ChargeRow;
  before?: ChargeRow;
}): Promise<void> {
  const { type, charge, before } = event;
  const object = presentCharge(charge);
  await recordEvent(db, {
    merchantId: charge.merchantId, type, object,
    previousAttributes: before === undefined ? undefined : changedAttributes(presentCharge(before), object),
  });
}

/** A refund's event; `before`, when given, names the fields that changed (previous_attributes). */
export async function recordRefundEvent(db: Queryable, event: {
  type: 'refund.created' | 'refund.updated' | 'refund.failed';
  refund: RefundRow;
  before?: RefundRow;
}): Promise<void> {
  const { type, refund, before } = event;
  const object = presentRefund(refund);
  await recordEvent(db, {
    merchantId: refund.merchantId, type, object,
    previousAttributes: before === undefined ? undefined : changedAttributes(presentRefund(before), object),
  });
}
