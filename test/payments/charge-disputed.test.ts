import Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import type { SandboxWebhookSender } from '../../src/sandbox-psp/psp-webhooks.js';
import { deliverSandboxWebhooks, sandboxSenderOf, serveTestLedger, type ServedLedger } from '../support/stripe.js';

/**
 * The Charge after a dispute, as Stripe's: it says it is disputed, and it is refunded no more
 * (found by the marketplace property test, test/balances/marketplace-property.test.ts).
 */
let penny: ServedLedger;
let stripe: Stripe;
let sender: SandboxWebhookSender;

beforeAll(async () => {
  penny = await serveTestLedger();
  stripe = penny.stripeFor((await penny.merchants.createMerchant('Disputed Charge Shop')).secretKey);
  sender = sandboxSenderOf(penny);
});

/** A captured charge the sandbox PSP disputes, booked by Penny from the PSP's webhook. */
async function disputedCharge(): Promise<string> {
  const intent = await stripe.paymentIntents.create({ amount: 4000, currency: 'usd', payment_method: 'pm_card_visa',
    confirm: true });
  const charge = intent.latest_charge as string;
  const row = await penny.pool.query<{ psp_reference: string }>('SELECT psp_reference FROM charges WHERE id = $1',
    [charge]);
  const response = await fetch(`${penny.sandbox.url}/control/disputes`, { method: 'POST',
    headers: { 'content-type': 'application/json' }, body: JSON.stringify({ psp_reference: row.rows[0]?.psp_reference }) });
  expect(response.status).toBe(200);
  await deliverSandboxWebhooks(penny, sender);
  expect((await stripe.disputes.list({ charge })).data).toHaveLength(1);
  return charge;
}

describe('a disputed charge', () => {
  it('shows disputed: true, as Stripe\'s does', async () => {
    const charge = await disputedCharge();
    expect((await stripe.charges.retrieve(charge)).disputed).toBe(true);
  });

  // The dispute already took the money back, so a refund would return it twice.
  it('cannot be refunded: 400 charge_disputed, as Stripe answers', async () => {
    const charge = await disputedCharge();
    const refusal = await stripe.refunds.create({ charge, amount: 1000 }).catch((error: unknown) => error);
    expect(refusal).toMatchObject({ statusCode: 400, raw: { code: 'charge_disputed' } });
  });
});
