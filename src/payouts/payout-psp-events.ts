import type pg from 'pg';
import type { PspEventDecision, StoredPspEvent } from '../payments/payment-psp-events.js';
import type { PayoutService } from './payout-service.js';

/**
 * What a verified PSP event of kind `payout` does to a payout, decided under the payout's row
 * lock in the transaction of the inbox worker that claimed it (src/webhooks/ calls here, never
 * the other way). Forward only: a repeat or a late report is ignored with a note; a report of a
 * payout Penny has not recorded yet is parked and retried.
 */
export class PayoutPspEvents {
  constructor(private readonly payouts: PayoutService) {}

  decide(client: pg.PoolClient, event: StoredPspEvent): Promise<PspEventDecision> {
    return this.payouts.applyPspOperation(client, { ...event.operation, connector: event.connector });
  }
}
