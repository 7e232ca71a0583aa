import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { advanceClock, configureClock, nowMs } from '../../src/clock.js';
import { ConnectorRefusedError, type Connector, type PayoutInput } from '../../src/connectors/connector.js';
import { withTransaction } from '../../src/db/pool.js';
import { limits } from '../../src/config.js';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/**
 * The payouts worker sends again, with the same PSP key, a payout whose call is unknown once it
 * is old enough; the request that created it may still be waiting on its own first call. When
 * that first call is then refused (a 429 the PSP did not keep under the key), the refusal proves
 * nothing: the worker's call may still take the payout. Found by a reviewer: the refusal made the
 * payout cancelable, the cancel returned the money, and the worker's call then paid it out too.
 */
let penny: ServedLedger;
const gates: { held: Promise<void>; release: () => void; entered: () => void }[] = [];
let calls = 0;

function gate() {
  let release = () => undefined as void;
  let entered = () => undefined as void;
  const reached = new Promise<void>((resolve) => { entered = resolve; });
  const held = new Promise<void>((resolve) => { release = resolve; });
  return { held, release, entered, reached };
}

beforeAll(async () => {
  configureClock('controlled');
  penny = await serveTestLedger({
    connectors: (sandbox) => {
      const connector: Connector = Object.create(sandbox.connector) as Connector;
      Object.defineProperty(connector, 'payout', { value: async (input: PayoutInput) => {
        const call = calls;
        calls += 1;
        const waiting = gates[call];
        if (waiting === undefined) return sandbox.connector.payout(input);
        waiting.entered();
        await waiting.held;
        if (call === 0) throw new ConnectorRefusedError('sandbox', 429, 'rate_limit', 'Too many requests');
        return sandbox.connector.payout(input);
      } });
      return [connector];
    },
  });
});

afterAll(() => configureClock('system'));

describe('a payout whose first call is refused while the worker sends it again', () => {
  it('stays unknown, so it cannot be canceled while the worker\'s call may take it', async () => {
    const created = await penny.merchants.createMerchant('Resend Race Shop');
    const stripe = penny.stripeFor(created.secretKey);
    const intent = await stripe.paymentIntents.create({ amount: 10_000, currency: 'usd',
      payment_method: 'pm_card_visa', confirm: true });
    await withTransaction(penny.pool, (client) => penny.balances.makeChargeAvailable(client, {
      merchantId: created.merchant.id, chargeId: intent.latest_charge as string,
      availableOn: new Date(nowMs()).toISOString() }));
    const first = gate();
    const second = gate();
    gates.push(first, second);
    const creating = stripe.payouts.create({ amount: 2_500, currency: 'usd' }, { idempotencyKey: 'race-1' });
    await first.reached;
    // The request's first call is still out; the worker finds the payout old enough and sends it again.
    advanceClock(limits.payoutLookupGraceMs + 1_000);
    const resolving = penny.payouts.resolveUnknown();
    await second.reached;
    first.release();
    const payout = await creating;
    const cancel = await stripe.payouts.cancel(payout.id).then(() => 'canceled', (error: { code?: string }) => error.code);
    second.release();
    await resolving;
    const row = await penny.pool.query('SELECT status, psp_call FROM payouts WHERE id = $1', [payout.id]);
    expect(cancel).toBe('payout_not_cancelable');
    expect(row.rows[0]).toEqual({ status: 'pending', psp_call: 'sent' });
    expect(await penny.sandbox.connector.lookup({ reference: payout.id })).toHaveLength(1);
  });
});
