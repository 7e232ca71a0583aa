import Stripe from 'stripe';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { advanceClock, configureClock } from '../../src/clock.js';
import { freshDay, today } from '../support/days.js';
import { ConnectorRegistry, type Connector } from '../../src/connectors/connector.js';
import { createLogger } from '../../src/logger.js';
import { parseFaultProfile } from '../../src/sandbox-psp/psp-faults.js';
import { payOutSettlementBatches } from '../../src/sandbox-psp/psp-settlement.js';
import type { SandboxWebhookSender } from '../../src/sandbox-psp/psp-webhooks.js';
import { SettlementService } from '../../src/settlement/settlement-service.js';
import {
  deliverSandboxWebhooks, payOutPending, sandboxSenderOf, serveTestLedger, type ServedLedger,
} from '../support/stripe.js';

/**
 * The settlement pull and what a report line names that Penny may have missed: a dispute opened or
 * reversed (Chargeback, ChargebackReversed), a merchant payout paid (PaidOut). When the webhook was
 * lost, Penny asks the PSP and applies its answer; when Penny already holds what the line says, it
 * does not ask, so the pull's calls to the PSP grow with what was missed, not with the day. Each
 * test works on a day of its own.
 */
let penny: ServedLedger;
let sender: SandboxWebhookSender;
let lookups: string[];
let settlement: SettlementService;

beforeAll(async () => {
  configureClock('controlled');
  penny = await serveTestLedger();
  sender = sandboxSenderOf(penny);
  // The sandbox connector, its look-ups counted.
  const counted: Connector = Object.create(penny.sandbox.connector, { lookup: {
    value: (input: { reference: string }) => {
      lookups.push(input.reference);
      return penny.sandbox.connector.lookup(input);
    } } }) as Connector;
  const connectors = new ConnectorRegistry();
  connectors.register(counted);
  settlement = new SettlementService(penny.pool, { connectors, balances: penny.balances,
    logger: createLogger('silent'), chargebacks: penny.disputes, payouts: penny.payouts });
});

afterEach(() => {
  penny.sandbox.resetFaults();
});

afterAll(() => {
  configureClock('system');
});

/** Closes `day` at the sandbox, then pulls it, counting the look-ups the pull makes. */
async function closeAndPull(day: string): Promise<string[]> {
  advanceClock(86_400_000);
  await payOutSettlementBatches(penny.pool, day);
  lookups = [];
  await settlement.pull({ connectorId: 'sandbox', day });
  return lookups;
}

async function shop(name: string): Promise<Stripe> {
  const created = await penny.merchants.createMerchant(name);
  return penny.stripeFor(created.secretKey);
}

/** A disputed charge, and one more so that the day's batch nets above zero (paid, not collected). */
async function disputedCharge(stripe: Stripe): Promise<string> {
  await stripe.paymentIntents.create({ amount: 10_000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true });
  const intent = await stripe.paymentIntents.create({ amount: 3000, currency: 'usd', payment_method: 'pm_card_visa',
    confirm: true });
  const charge = await penny.pool.query<{ psp_reference: string }>('SELECT psp_reference FROM charges WHERE id = $1',
    [intent.latest_charge]);
  const response = await fetch(`${penny.sandbox.url}/control/disputes`, { method: 'POST',
    headers: { 'content-type': 'application/json' }, body: JSON.stringify({ psp_reference: charge.rows[0]?.psp_reference }) });
  expect(response.status).toBe(200);
  return intent.latest_charge as string;
}

async function disputesOf(chargeId: string): Promise<string[]> {
  const result = await penny.pool.query<{ status: string }>('SELECT status FROM disputes WHERE charge_id = $1',
    [chargeId]);
  return result.rows.map((row) => row.status);
}

describe('a Chargeback line', () => {
  it('whose webhook was lost: Penny asks the PSP and opens the dispute', async () => {
    const day = freshDay();
    const stripe = await shop('Lost Dispute Shop');
    penny.sandbox.injector.set(parseFaultProfile({ webhooks: { lost_rate: 1 } }));
    const chargeId = await disputedCharge(stripe);
    await deliverSandboxWebhooks(penny, sender);
    expect(await disputesOf(chargeId)).toEqual([]);

    const asked = await closeAndPull(day);

    expect(asked).toHaveLength(1);
    expect(await disputesOf(chargeId)).toEqual(['needs_response']);
  });

  it('of a dispute Penny knows from its webhook: the pull does not ask the PSP', async () => {
    const day = freshDay();
    const stripe = await shop('Known Dispute Shop');
    const chargeId = await disputedCharge(stripe);
    await deliverSandboxWebhooks(penny, sender);
    expect(await disputesOf(chargeId)).toEqual(['needs_response']);

    expect(await closeAndPull(day)).toEqual([]);
  });
});

describe('a PaidOut line', () => {
  async function paidOut(stripe: Stripe): Promise<{ id: string; day: string }> {
    await stripe.paymentIntents.create({ amount: 10_000, currency: 'usd', payment_method: 'pm_card_bypassPending',
      confirm: true });
    const payout = await stripe.payouts.create({ amount: 4000, currency: 'usd' });
    await payOutPending(penny, sender);
    return { id: payout.id, day: today() };
  }

  it('whose webhooks were lost: Penny asks the PSP and marks the payout paid', async () => {
    freshDay();
    const stripe = await shop('Lost Payout Shop');
    penny.sandbox.injector.set(parseFaultProfile({ webhooks: { lost_rate: 1 } }));
    const payout = await paidOut(stripe);
    expect((await stripe.payouts.retrieve(payout.id)).status).not.toBe('paid');

    const asked = await closeAndPull(payout.day);

    expect(asked).toEqual([payout.id]);
    expect((await stripe.payouts.retrieve(payout.id)).status).toBe('paid');
  });

  it('of a payout Penny knows is paid: the pull does not ask the PSP', async () => {
    freshDay();
    const stripe = await shop('Known Payout Shop');
    const payout = await paidOut(stripe);
    expect((await stripe.payouts.retrieve(payout.id)).status).toBe('paid');

    expect(await closeAndPull(payout.day)).toEqual([]);
  });
});
