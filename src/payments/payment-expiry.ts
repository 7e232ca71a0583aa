import type pg from 'pg';
import type { Logger } from 'pino';
import { nowMs } from '../clock.js';
import { named } from '../db/pool.js';
import type { PaymentFlows } from './payment-flows.js';

/**
 * Expires uncaptured authorizations `PENNY_AUTHORIZATION_EXPIRY_DAYS` (Stripe: 7) after they were
 * authorized, by the one clock, a bounded batch per run. The period is fixed at authorization
 * (the charge's capture_before), so changing the setting applies to new authorizations. Each expiry
 * runs in its own short transactions (flows.expireAuthorization).
 */
const expiryBatchMax = 32;

export class PaymentExpiry {
  constructor(
    private readonly pool: pg.Pool,
    private readonly flows: PaymentFlows,
    private readonly options: { logger: Logger },
  ) {}

  async expireDue(): Promise<number> {
    // Due by Penny's clock: the charge's capture_before, written at authorization (for charges
    // from before it existed, their hold's expiry, then the same instant). An intent being
    // captured, or canceled by its merchant (the cancel's recovery job finishes it), is left to
    // that, and does not take a place in the batch.
    const due = await this.pool.query<{ merchant_id: string; id: string }>(named(`SELECT p.merchant_id, p.id
       FROM payment_intents p
       JOIN charges c ON c.merchant_id = p.merchant_id AND c.id = p.latest_charge
       LEFT JOIN ledger_entries h ON h.id = c.authorization_entry_id
       WHERE p.status = 'requires_capture' AND coalesce(c.capture_before, h.expires_at) <= $1
        AND NOT EXISTS (SELECT 1 FROM payment_intent_finalizations f
          WHERE f.merchant_id = p.merchant_id AND f.payment_intent_id = p.id
            AND (f.kind = 'capture' OR f.cancellation_reason IS DISTINCT FROM 'automatic'))
        AND NOT EXISTS (SELECT 1 FROM payment_cases pc
          WHERE pc.kind = 'unresolved_outcome' AND pc.subject_id = 'expiry:' || p.id AND pc.status = 'open')
       ORDER BY p.updated_at LIMIT $2`), [new Date(nowMs()).toISOString(), expiryBatchMax]);
    let expired = 0;
    for (const row of due.rows) {
      const client = await this.pool.connect();
      try {
        if (await this.flows.expireAuthorization(client, { merchantId: row.merchant_id, id: row.id }) === 'expired') expired += 1;
      } catch (error) {
        // One intent that cannot be expired now (a refused void) does not stop the others.
        this.options.logger.error({ err: error, payment_intent: row.id }, 'an authorization could not be expired');
      } finally {
        client.release();
      }
    }
    if (expired > 0) this.options.logger.info({ expired }, 'uncaptured authorizations expired');
    return expired;
  }
}
