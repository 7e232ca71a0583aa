import { PennyError } from '../errors.js';

/**
 * A PaymentIntent's statuses are exactly Stripe's, and every transition lives in this one table.
 * An operation asks whether its transition is allowed from the current status; anything else is
 * 400 payment_intent_unexpected_state, as Stripe answers.
 */
export const paymentIntentStatuses = [
  'requires_payment_method', 'requires_confirmation', 'requires_action', 'processing',
  'requires_capture', 'succeeded', 'canceled',
] as const;
export type PaymentIntentStatus = (typeof paymentIntentStatuses)[number];

export type PaymentOperation = 'update' | 'confirm' | 'capture' | 'cancel';

/** From each status, the operations allowed. Terminal statuses allow none. */
export const allowedOperations = {
  requires_payment_method: ['update', 'confirm', 'cancel'],
  requires_confirmation: ['update', 'confirm', 'cancel'],
  requires_action: ['update', 'confirm', 'cancel'],
  processing: [],
  requires_capture: ['capture', 'cancel'],
  succeeded: [],
  canceled: [],
} as const satisfies Record<PaymentIntentStatus, readonly PaymentOperation[]>;

/** The status transitions themselves: from each status, the statuses it may move to. */
export const transitions = {
  requires_payment_method: ['requires_confirmation', 'requires_action', 'processing', 'requires_capture',
    'succeeded', 'requires_payment_method', 'canceled'],
  requires_confirmation: ['requires_payment_method', 'requires_action', 'processing', 'requires_capture',
    'succeeded', 'canceled'],
  requires_action: ['requires_payment_method', 'processing', 'requires_capture', 'succeeded', 'canceled'],
  // requires_payment_method and requires_action: an authorization's unknown outcome resolved; never
  // while a capture or cancel is claimed (transitionsWhileFinalizing).
  processing: ['requires_payment_method', 'requires_action', 'requires_capture', 'succeeded', 'canceled'],
  // processing: the PSP took a capture or cancel and tells its outcome later (Adyen's `received`).
  requires_capture: ['succeeded', 'canceled', 'processing'],
  succeeded: [],
  canceled: [],
} as const satisfies Record<PaymentIntentStatus, readonly PaymentIntentStatus[]>;

/** Refuses an operation the current status does not allow; the error embeds the intent, as Stripe's does. */
export function assertOperationAllowed(
  status: PaymentIntentStatus,
  operation: PaymentOperation,
  presentedIntent: unknown,
): void {
  if ((allowedOperations[status] as readonly PaymentOperation[]).includes(operation)) return;
  throw new PennyError({
    code: 'payment_intent_unexpected_state',
    message: `You cannot ${operation} this PaymentIntent because it has a status of ${status}.`,
    details: { payment_intent: presentedIntent },
  });
}

/**
 * While the intent's capture or cancel is claimed (`processing` because the PSP took it and reports
 * later), the payment is authorized: it is captured, canceled, or given back to requires_capture,
 * never sent back to the customer (requires_payment_method, requires_action), which only an
 * authorization whose outcome is unknown may do.
 */
export const transitionsWhileFinalizing = {
  processing: ['requires_capture', 'succeeded', 'canceled'],
} as const satisfies Partial<Record<PaymentIntentStatus, readonly PaymentIntentStatus[]>>;

/**
 * A transition the table does not allow is a bug, not a client error: it fails loudly.
 * `finalizing`: the intent holds a capture or cancel claim (see transitionsWhileFinalizing).
 */
export function assertTransition(from: PaymentIntentStatus, to: PaymentIntentStatus,
  context: { finalizing?: boolean } = {}): void {
  const narrowed = context.finalizing === true && from === 'processing' ? transitionsWhileFinalizing.processing
    : transitions[from];
  if (!(narrowed as readonly PaymentIntentStatus[]).includes(to)) {
    throw new Error(`illegal PaymentIntent transition ${from} -> ${to}${context.finalizing === true
      ? ' while a capture or cancel is claimed' : ''}`);
  }
}

/** Whether a move from this status depends on a finalization claim (a query the caller makes then). */
export function dependsOnFinalization(from: PaymentIntentStatus, to: PaymentIntentStatus): boolean {
  return from === 'processing' && !(transitionsWhileFinalizing.processing as readonly PaymentIntentStatus[]).includes(to);
}

/** The status a new PaymentIntent starts in. */
export function initialStatus(paymentMethod: string | undefined): PaymentIntentStatus {
  return paymentMethod === undefined ? 'requires_payment_method' : 'requires_confirmation';
}
