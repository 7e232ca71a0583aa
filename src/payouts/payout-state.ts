/**
 * A Payout's statuses are exactly Stripe's, and every transition lives in this one table. The
 * PSP's reports move a payout forward only: a repeated or late report (in_transit after paid)
 * changes nothing. A paid payout can still fail, as Stripe's can: the bank returns it days later
 * (`payout.failed` after `payout.paid`), and its money comes back.
 */
export const payoutStatuses = ['pending', 'in_transit', 'paid', 'failed', 'canceled'] as const;
export type PayoutStatus = (typeof payoutStatuses)[number];

export const payoutTransitions = {
  pending: ['in_transit', 'paid', 'failed', 'canceled'],
  in_transit: ['paid', 'failed'],
  paid: ['failed'],
  failed: [],
  canceled: [],
} as const satisfies Record<PayoutStatus, readonly PayoutStatus[]>;

export function canMove(from: PayoutStatus, to: PayoutStatus): boolean {
  return (payoutTransitions[from] as readonly PayoutStatus[]).includes(to);
}

/** A transition the table does not allow is a bug, not a client error: it fails loudly. */
export function assertPayoutTransition(from: PayoutStatus, to: PayoutStatus): void {
  if (!canMove(from, to)) throw new Error(`illegal Payout transition ${from} -> ${to}`);
}

export function isPayoutStatus(value: string): value is PayoutStatus {
  return (payoutStatuses as readonly string[]).includes(value);
}
