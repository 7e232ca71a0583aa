import Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import type { SandboxWebhookSender } from '../../src/sandbox-psp/psp-webhooks.js';
import { deliverSandboxWebhooks, sandboxSenderOf, serveTestLedger, type ServedLedger } from '../support/stripe.js';

/**
 * Disputes: the sandbox PSP opens and decides them and tells Penny by webhook; Penny opens the
 * Dispute, withdraws the amount and the PSP's fee from the available balance, returns the amount
 * when it is won, and lets the merchant answer or accept. Through the official SDK.
 */
let penny: ServedLedger;
let stripe: Stripe;
let sender: SandboxWebhookSender;

beforeAll(async () => {
  penny = await serveTestLedger();
  stripe = penny.stripeFor((await penny.merchants.createMerchant('Disputed Shop')).secretKey);
  sender = sandboxSenderOf(penny);
});

/** Every due sandbox webhook sent and every stored event processed (each bounded). */
function deliverWebhooks(): Promise<void> {
  return deliverSandboxWebhooks(penny, sender);
}

async function control(path: string, body: unknown): Promise<{ psp_reference: string }> {
  const response = await fetch(`${penny.sandbox.url}${path}`, { method: 'POST',
    headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(response.status).toBe(200);
  return await response.json() as { psp_reference: string };
}

async function disputed(amount = 10_000, reason = 'fraudulent') {
  const intent = await stripe.paymentIntents.create({ amount, currency: 'usd', payment_method: 'pm_card_visa',
    confirm: true });
  const charge = intent.latest_charge as string;
  const row = await penny.pool.query<{ psp_reference: string }>('SELECT psp_reference FROM charges WHERE id = $1',
    [charge]);
  const opened = await control('/control/disputes', { psp_reference: row.rows[0]?.psp_reference, reason });
  await deliverWebhooks();
  const { data } = await stripe.disputes.list({ charge });
  expect(data).toHaveLength(1);
  return { intent, charge, dispute: data[0] as Stripe.Dispute, pspDispute: opened.psp_reference };
}

function availableUsd(balance: Stripe.Balance): number {
  return balance.available.find((item) => item.currency === 'usd')?.amount ?? 0;
}

describe('a dispute the PSP opens', () => {
  it('becomes a Dispute on the charge, needing a response, with its reason and amount', async () => {
    const { intent, charge, dispute } = await disputed(10_000, 'fraudulent');
    expect(dispute).toMatchObject({ object: 'dispute', status: 'needs_response', amount: 10_000, currency: 'usd',
      reason: 'fraudulent', charge, payment_intent: intent.id, livemode: false });
    expect((await stripe.disputes.retrieve(dispute.id)).id).toBe(dispute.id);
  });

  it('withdraws the amount and the PSP\'s dispute fee from the available balance, as a dispute adjustment', async () => {
    const before = availableUsd(await stripe.balance.retrieve());
    const { dispute } = await disputed(8000);
    expect(availableUsd(await stripe.balance.retrieve()) - before).toBe(-8000 - 1500);
    const { data } = await stripe.balanceTransactions.list({ source: dispute.id });
    expect(data).toEqual([expect.objectContaining({ type: 'adjustment', reporting_category: 'dispute',
      amount: -8000, fee: 1500, net: -9500, status: 'available' })]);
  });

  it('says so in charge.dispute.created and charge.dispute.funds_withdrawn', async () => {
    const { dispute } = await disputed(3000);
    const events = await penny.pool.query<{ type: string }>(
      `SELECT type FROM events WHERE data->'object'->>'id' = $1 ORDER BY created_at, id`, [dispute.id]);
    expect(events.rows.map((row) => row.type)).toEqual(['charge.dispute.created', 'charge.dispute.funds_withdrawn']);
  });
});

describe('a dispute the PSP decides', () => {
  it('won: the amount returns to the available balance, the fee does not', async () => {
    const { dispute, pspDispute } = await disputed(6000);
    const before = availableUsd(await stripe.balance.retrieve());
    await control(`/control/disputes/${pspDispute}/decide`, { outcome: 'won' });
    await deliverWebhooks();
    expect((await stripe.disputes.retrieve(dispute.id)).status).toBe('won');
    expect(availableUsd(await stripe.balance.retrieve()) - before).toBe(6000);
    const { data } = await stripe.balanceTransactions.list({ source: dispute.id });
    expect(data.map((transaction) => transaction.reporting_category).sort()).toEqual(['dispute', 'dispute_reversal']);
  });

  it('lost: the funds stay withdrawn and the dispute is closed', async () => {
    const { dispute, pspDispute } = await disputed(4000);
    const before = availableUsd(await stripe.balance.retrieve());
    await control(`/control/disputes/${pspDispute}/decide`, { outcome: 'lost' });
    await deliverWebhooks();
    expect((await stripe.disputes.retrieve(dispute.id)).status).toBe('lost');
    expect(availableUsd(await stripe.balance.retrieve())).toBe(before);
  });
});

describe('the merchant', () => {
  it('answers with evidence and metadata: the dispute is under review', async () => {
    const { dispute } = await disputed(2000);
    const updated = await stripe.disputes.update(dispute.id, {
      evidence: { uncategorized_text: 'Delivered, signed for.' }, metadata: { ticket: '42' } });
    expect(updated).toMatchObject({ status: 'under_review', metadata: { ticket: '42' },
      evidence: { uncategorized_text: 'Delivered, signed for.' } });
  });

  it('accepts (closes) it: lost, once; a second close is refused, and the PSP\'s later verdict changes nothing',
    async () => {
      const { dispute, pspDispute } = await disputed(2500);
      expect((await stripe.disputes.close(dispute.id)).status).toBe('lost');
      const again = await stripe.disputes.close(dispute.id).catch((error: unknown) => error);
      expect(again).toMatchObject({ statusCode: 400, raw: { code: 'dispute_already_closed' } });
      const before = availableUsd(await stripe.balance.retrieve());
      await control(`/control/disputes/${pspDispute}/decide`, { outcome: 'won' });
      await deliverWebhooks();
      expect((await stripe.disputes.retrieve(dispute.id)).status).toBe('lost');
      expect(availableUsd(await stripe.balance.retrieve())).toBe(before);
    });

  it('of another merchant sees none of it: a 404', async () => {
    const { dispute } = await disputed(1800);
    const other = penny.stripeFor((await penny.merchants.createMerchant('Other Disputed Shop')).secretKey);
    expect(await other.disputes.retrieve(dispute.id).catch((error: unknown) => error)).toMatchObject({
      statusCode: 404 });
  });
});
