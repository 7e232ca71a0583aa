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

/** A transition the table does not allow is a bug, not a client error: it fails loudly. */
export function assertTransition(from: PaymentIntentStatus, to: PaymentIntentStatus): void {
  if (!(transitions[from] as readonly PaymentIntentStatus[]).includes(to)) {
    throw new Error(`illegal PaymentIntent transition ${from} -> ${to}`);
  }
}

/** The status a new PaymentIntent starts in. */
export function initialStatus(paymentMethod: string | undefined): PaymentIntentStatus {
  return paymentMethod === undefined ? 'requires_payment_method' : 'requires_confirmation';
}
