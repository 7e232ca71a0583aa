import type pg from 'pg';
import type { Logger } from 'pino';
import { nowMs } from '../clock.js';
import { limits } from '../config.js';
import * as store from './payment-store.js';
import type { PaymentFlows } from './payment-flows.js';

/**
 * Expires uncaptured authorizations `PENNY_AUTHORIZATION_EXPIRY_DAYS` (Stripe: 7) after they were
 * authorized, by the one clock, a bounded batch per run. The period is fixed at authorization
 * (the charge's capture_before), so changing the setting applies to new authorizations. Each expiry
 * runs in its own short transactions (flows.expireAuthorization).
 */

export class PaymentExpiry {
  constructor(
    private readonly pool: pg.Pool,
    private readonly flows: PaymentFlows,
    private readonly options: { logger: Logger },
  ) {}

  async expireDue(): Promise<number> {
    const due = await store.selectExpiredAuthorizations(this.pool, { now: new Date(nowMs()).toISOString(),
      limit: limits.authorizationExpiryBatchMax });
    let expired = 0;
    for (const intent of due) {
      const client = await this.pool.connect();
      try {
        if (await this.flows.expireAuthorization(client, intent) === 'expired') expired += 1;
      } catch (error) {
        // One intent that cannot be expired now (a refused void) does not stop the others.
        this.options.logger.error({ err: error, payment_intent: intent.id }, 'an authorization could not be expired');
      } finally {
        client.release();
      }
    }
    if (expired > 0) this.options.logger.info({ expired }, 'uncaptured authorizations expired');
    return expired;
  }
}
