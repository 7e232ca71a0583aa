import type pg from 'pg';
import type { PaymentPspEvents, PspEventDecision, StoredPspEvent } from '../payments/payment-psp-events.js';
import type { PayoutPspEvents } from '../payouts/payout-psp-events.js';

/**
 * Hands each stored PSP event to the domain that owns its subject: payouts' events to payouts,
 * every other kind to payments. The inbox calls the domain; the domain never calls the inbox.
 */
export class PspEventRouter {
  constructor(private readonly deciders: { payments: PaymentPspEvents; payouts: PayoutPspEvents }) {}

  decide(client: pg.PoolClient, event: StoredPspEvent): Promise<PspEventDecision> {
    return event.operation.kind === 'payout' ? this.deciders.payouts.decide(client, event)
      : this.deciders.payments.decide(client, event);
  }

  /** An unmatched event's case: only payments keep cases; a payout's alert is enough. */
  async openUnmatchedCase(client: pg.PoolClient, event: StoredPspEvent, note: string): Promise<void> {
    if (event.operation.kind === 'payout') return;
    await this.deciders.payments.openUnmatchedCase(client, event, note);
  }
}
