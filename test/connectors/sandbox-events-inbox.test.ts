import Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import { advanceClock, configureClock } from '../../src/clock.js';
import type { SandboxWebhookSender } from '../../src/sandbox-psp/psp-webhooks.js';
import { sandboxSenderOf, serveTestLedger, type ServedLedger } from '../support/stripe.js';

/**
 * The sandbox's new events reach Penny verified and parsed: a dispute's are booked (a Dispute on
 * the charge); payout events go to payouts, which park those of a payout Penny never recorded
 * (test/payouts/ covers payouts Penny made).
 */
let penny: ServedLedger;
let stripe: Stripe;
let sender: SandboxWebhookSender;

beforeAll(async () => {
  configureClock('controlled');
  penny = await serveTestLedger();
  const created = await penny.merchants.createMerchant('Dispute Shop');
  stripe = penny.stripeFor(created.secretKey);
  sender = sandboxSenderOf(penny);
});

async function deliverAndProcess(): Promise<void> {
  await sender.resolvePending();
  while ((await sender.sendDue()) > 0) { /* deliver */ }
  await penny.inbox.processDue();
}

async function inboxRows(eventType: string) {
  const result = await penny.pool.query<{ status: string; note: string; payload: Record<string, unknown> }>(
    'SELECT status, note, payload FROM connector_webhook_inbox WHERE event_type = $1', [eventType]);
  return result.rows;
}

describe('Penny\'s inbox and the sandbox\'s dispute and payout events', () => {
  it('stores a dispute\'s events with their fields, and books the dispute a pm_card_createDispute charge gets',
    async () => {
      const intent = await stripe.paymentIntents.create({ amount: 2400, currency: 'usd',
        payment_method: 'pm_card_createDispute', confirm: true });
      expect(intent.status).toBe('succeeded');
      advanceClock(2000);
      await deliverAndProcess();
      const [row] = await inboxRows('chargeback.needs_response');
      expect(row).toMatchObject({ status: 'processed', note: 'dispute opened',
        payload: { reason: 'fraudulent', disputeFeeMinor: 1500, amountMinor: 2400 } });
      expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('succeeded');
      const { data } = await stripe.disputes.list({ payment_intent: intent.id });
      expect(data).toEqual([expect.objectContaining({ status: 'needs_response', amount: 2400, reason: 'fraudulent' })]);
    });

  it('stores each state of a payout Penny never recorded, with its failure code, and parks them', async () => {
    await penny.sandbox.connector.payout({ reference: 'po_inbox1', idempotencyKey: 'po:inbox1', amountMinor: 900n,
      currency: 'USD', destination: '000111111116' });
    await deliverAndProcess();
    for (let step = 0; step < 2; step += 1) {
      advanceClock(1000);
      await deliverAndProcess();
    }
    const failed = await inboxRows('payout.failed');
    expect(failed).toEqual([expect.objectContaining({ status: 'parked',
      note: 'payout po_inbox1 is not known yet', payload: expect.objectContaining({
        failureCode: 'no_account' }) })]);
    expect((await inboxRows('payout.pending')).map((item) => item.status)).toEqual(['parked']);
    expect((await inboxRows('payout.in_transit')).map((item) => item.status)).toEqual(['parked']);
  });
});
