import type pg from 'pg';
import type { Logger } from 'pino';
import { nowMs } from '../clock.js';
import { named } from '../db/pool.js';
import type { PaymentFlows } from './payment-flows.js';

/**
 * Expires uncaptured authorizations after `authorizationExpiryDays` (Stripe: 7) by the one clock,
 * a bounded batch per run. Each expiry is its own short transactions (flows.expireAuthorization).
 */
const expiryBatchMax = 32;

export class PaymentExpiry {
  constructor(
    private readonly pool: pg.Pool,
    private readonly flows: PaymentFlows,
    private readonly options: { authorizationExpiryDays: number; logger: Logger },
  ) {}

  async expireDue(): Promise<number> {
    const cutoff = new Date(nowMs() - this.options.authorizationExpiryDays * 86_400_000).toISOString();
    // An intent being captured is left to its capture, and does not take a place in the batch.
    const due = await this.pool.query<{ merchant_id: string; id: string }>(named(`SELECT p.merchant_id, p.id
       FROM payment_intents p WHERE p.status = 'requires_capture' AND p.updated_at <= $1
        AND NOT EXISTS (SELECT 1 FROM payment_intent_finalizations f
          WHERE f.merchant_id = p.merchant_id AND f.payment_intent_id = p.id AND f.kind = 'capture')
        AND NOT EXISTS (SELECT 1 FROM payment_cases c
          WHERE c.kind = 'unresolved_outcome' AND c.subject_id = 'expiry:' || p.id AND c.status = 'open')
       ORDER BY p.updated_at LIMIT $2`), [cutoff, expiryBatchMax]);
    let expired = 0;
    for (const row of due.rows) {
      const client = await this.pool.connect();
      try {
        if (await this.flows.expireAuthorization(client, row.merchant_id, row.id) === 'expired') expired += 1;
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
