import { beforeAll, describe, expect, it } from 'vitest';
import type { Connector, PayoutInput } from '../../src/connectors/connector.js';
import { withTransaction } from '../../src/db/pool.js';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/**
 * A payout request that dies after the payout is recorded (here: the PSP call throws something no
 * connector should) is resumed by its retry with the same key from the recovery point: the same
 * payout is sent with the same PSP key, and nothing is recorded or taken twice.
 */
let penny: ServedLedger;
let failNextPayout = false;

beforeAll(async () => {
  penny = await serveTestLedger({
    connectors: (sandbox) => {
      const connector: Connector = Object.create(sandbox.connector) as Connector;
      Object.defineProperty(connector, 'payout', { value: async (input: PayoutInput) => {
        if (failNextPayout) {
          failNextPayout = false;
          throw new Error('the process died here');
        }
        return sandbox.connector.payout(input);
      } });
      return [connector];
    },
  });
});

describe('a payout request that died after recording the payout', () => {
  it('is resumed by its retry: one payout, one PSP payout, the money taken once', async () => {
    const created = await penny.merchants.createMerchant('Resumed Shop');
    const stripe = penny.stripeFor(created.secretKey);
    const intent = await stripe.paymentIntents.create({ amount: 10_000, currency: 'usd',
      payment_method: 'pm_card_visa', confirm: true });
    await withTransaction(penny.pool, (client) => penny.balances.makeChargeAvailable(client, {
      merchantId: created.merchant.id, chargeId: intent.latest_charge as string,
      availableOn: new Date().toISOString() }));
    const before = (await stripe.balance.retrieve()).available[0]?.amount ?? 0;
    failNextPayout = true;
    const died = await stripe.payouts.create({ amount: 2500, currency: 'usd' }, { idempotencyKey: 'resume-me' })
      .catch((caught) => caught);
    expect(died).toMatchObject({ statusCode: 500 });
    const payout = await stripe.payouts.create({ amount: 2500, currency: 'usd' }, { idempotencyKey: 'resume-me' });
    const rows = await penny.pool.query('SELECT id, psp_call FROM payouts WHERE merchant_id = $1',
      [created.merchant.id]);
    expect(rows.rows).toEqual([{ id: payout.id, psp_call: 'sent' }]);
    expect(await penny.sandbox.connector.lookup({ reference: payout.id })).toHaveLength(1);
    expect((await stripe.balance.retrieve()).available[0]?.amount).toBe(before - 2500);
  });
});
