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
    const due = await this.pool.query<{ merchant_id: string; id: string }>(named(`SELECT merchant_id, id
       FROM payment_intents WHERE status = 'requires_capture' AND updated_at <= $1
       ORDER BY updated_at LIMIT $2`), [cutoff, expiryBatchMax]);
    let expired = 0;
    for (const row of due.rows) {
      const client = await this.pool.connect();
      try {
        if (await this.flows.expireAuthorization(client, row.merchant_id, row.id) === 'expired') expired += 1;
      } finally {
        client.release();
      }
    }
    if (expired > 0) this.options.logger.info({ expired }, 'uncaptured authorizations expired');
    return expired;
  }
}
