import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureClock, nowMs } from '../../src/clock.js';
import { SettlementService } from '../../src/settlement/settlement-service.js';
import type { SandboxWebhookSender } from '../../src/sandbox-psp/psp-webhooks.js';
import { deliverSandboxWebhooks, sandboxSenderOf, serveTestLedger, settlementOf, type ServedLedger } from '../support/stripe.js';

/**
 * Destination charges, as Stripe Connect makes them: the platform's PaymentIntent names a
 * connected account (transfer_data[destination]); its capture transfers the seller's share and
 * takes the platform's application fee, both pending with the charge and available with its
 * settlement; refunds reverse the transfer and refund the fee in proportion (rounded down, the
 * last refund taking the remainder); a dispute debits the platform. Through the official SDK.
 */
let penny: ServedLedger;
let settlement: SettlementService;
let sender: SandboxWebhookSender;

beforeAll(async () => {
  configureClock('controlled');
  penny = await serveTestLedger();
  settlement = settlementOf(penny);
  sender = sandboxSenderOf(penny);
});

afterAll(() => {
  configureClock('system');
});

async function marketplace(name: string) {
  const created = await penny.merchants.createMerchant(name);
  const stripe = penny.stripeFor(created.secretKey);
  const seller = await stripe.accounts.create({ type: 'custom', country: 'US' });
  return { stripe, seller, merchantId: created.merchant.id };
}

function usd(items: readonly { currency: string; amount: number }[]): number {
  return items.find((item) => item.currency === 'usd')?.amount ?? 0;
}

async function balances(stripe: Stripe, seller: string) {
  const platform = await stripe.balance.retrieve();
  const connected = await stripe.balance.retrieve({}, { stripeAccount: seller });
  return { platform: { available: usd(platform.available), pending: usd(platform.pending) },
    seller: { available: usd(connected.available), pending: usd(connected.pending) } };
}

async function pennyFeeOf(stripe: Stripe, charge: string): Promise<number> {
  const { data } = await stripe.balanceTransactions.list({ source: charge, type: 'charge' });
  return data[0]?.fee ?? Number.NaN;
}

async function expectTrialBalanceZero(): Promise<void> {
  const trial = await penny.request({ method: 'GET', url: '/v1/ledger/trial_balance' });
  for (const currency of trial.body.currencies as { currency: string; difference: number }[]) {
    expect(currency.difference, currency.currency).toBe(0);
  }
}

describe('a destination charge with an application fee', () => {
  it('shows its Connect fields on the PaymentIntent and the Charge, with the Transfer and the ApplicationFee', async () => {
    const { stripe, seller } = await marketplace('Fields Market');
    const intent = await stripe.paymentIntents.create({ amount: 10_000, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true, application_fee_amount: 1_230, transfer_data: { destination: seller.id },
      on_behalf_of: seller.id, transfer_group: 'order-7' });
    expect(intent).toMatchObject({ status: 'succeeded', application_fee_amount: 1_230, on_behalf_of: seller.id,
      transfer_data: { destination: seller.id }, transfer_group: 'order-7' });
    const charge = await stripe.charges.retrieve(intent.latest_charge as string);
    expect(charge).toMatchObject({ application_fee_amount: 1_230, transfer_data: { destination: seller.id },
      transfer_group: 'order-7' });
    const transfer = await stripe.transfers.retrieve(charge.transfer as string);
    expect(transfer).toMatchObject({ amount: 10_000, destination: seller.id, source_transaction: charge.id,
      transfer_group: 'order-7', destination_payment: expect.stringMatching(/^py_/) });
    const fee = await stripe.applicationFees.retrieve(charge.application_fee as string);
    expect(fee).toMatchObject({ object: 'application_fee', amount: 1_230, amount_refunded: 0, account: seller.id,
      charge: charge.id, refunded: false });
    expect((await stripe.applicationFees.list({ charge: charge.id })).data.map((item) => item.id)).toEqual([fee.id]);
  });

  it('leaves the seller the amount less the fee, and the platform the fee less Penny\'s, all pending', async () => {
    const { stripe, seller } = await marketplace('Pending Market');
    const intent = await stripe.paymentIntents.create({ amount: 10_000, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true, application_fee_amount: 1_000, transfer_data: { destination: seller.id } });
    const pennyFee = await pennyFeeOf(stripe, intent.latest_charge as string);
    expect(await balances(stripe, seller.id)).toEqual({ platform: { available: 0, pending: 1_000 - pennyFee },
      seller: { available: 0, pending: 9_000 } });
    const sellerSide = await stripe.balanceTransactions.list({}, { stripeAccount: seller.id });
    expect(sellerSide.data).toEqual([expect.objectContaining({ type: 'payment', amount: 10_000, fee: 1_000, net: 9_000,
      status: 'pending', fee_details: [expect.objectContaining({ type: 'application_fee', amount: 1_000 })] })]);
    await expectTrialBalanceZero();
  });

  it('becomes available on both sides when the charge settles, once', async () => {
    const { stripe, seller } = await marketplace('Settled Market');
    const intent = await stripe.paymentIntents.create({ amount: 20_000, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true, application_fee_amount: 2_500, transfer_data: { destination: seller.id } });
    const pennyFee = await pennyFeeOf(stripe, intent.latest_charge as string);
    const day = new Date(nowMs()).toISOString().slice(0, 10);
    await settlement.pull({ connectorId: 'sandbox', day });
    await settlement.pull({ connectorId: 'sandbox', day });
    expect(await balances(stripe, seller.id)).toEqual({ platform: { available: 2_500 - pennyFee, pending: 0 },
      seller: { available: 17_500, pending: 0 } });
    const sellerSide = await stripe.balanceTransactions.list({}, { stripeAccount: seller.id });
    expect(sellerSide.data.map((transaction) => transaction.status)).toEqual(['available']);
    await expectTrialBalanceZero();
  });

  it('tells the seller its funds are available (balance.available naming its account)', async () => {
    const { stripe, seller } = await marketplace('Announced Market');
    await stripe.paymentIntents.create({ amount: 3_000, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true, application_fee_amount: 300, transfer_data: { destination: seller.id } });
    await settlement.pull({ connectorId: 'sandbox', day: new Date(nowMs()).toISOString().slice(0, 10) });
    const events = (await stripe.events.list({ type: 'balance.available' }, { stripeAccount: seller.id })).data;
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ account: seller.id,
      data: { object: { available: [expect.objectContaining({ currency: 'usd', amount: 2_700 })] } } });
  });

  it('records transfer.created and application_fee.created', async () => {
    const { stripe, seller } = await marketplace('Evented Market');
    const intent = await stripe.paymentIntents.create({ amount: 5_000, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true, application_fee_amount: 500, transfer_data: { destination: seller.id } });
    const charge = await stripe.charges.retrieve(intent.latest_charge as string);
    const types = (await stripe.events.list({ limit: 100 })).data.map((event) => event.type);
    expect(types).toEqual(expect.arrayContaining(['transfer.created', 'application_fee.created']));
    expect(charge.transfer).toMatch(/^tr_/);
  });
});

describe('a destination charge with transfer_data[amount]', () => {
  it('passes on that amount only, and the platform keeps the rest less Penny\'s fee', async () => {
    const { stripe, seller } = await marketplace('Amount Market');
    const intent = await stripe.paymentIntents.create({ amount: 10_000, currency: 'usd',
      payment_method: 'pm_card_bypassPending', confirm: true, transfer_data: { destination: seller.id, amount: 8_000 } });
    const pennyFee = await pennyFeeOf(stripe, intent.latest_charge as string);
    expect(await balances(stripe, seller.id)).toEqual({ platform: { available: 2_000 - pennyFee, pending: 0 },
      seller: { available: 8_000, pending: 0 } });
    const charge = await stripe.charges.retrieve(intent.latest_charge as string);
    expect(charge.application_fee).toBeNull();
  });

  it('captured in part passes on its amount when the capture covers it, and refuses a capture below it', async () => {
    const { stripe, seller } = await marketplace('Partial Market');
    const intent = await stripe.paymentIntents.create({ amount: 10_000, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true, capture_method: 'manual', transfer_data: { destination: seller.id, amount: 6_000 } });
    const refusal = await stripe.paymentIntents.capture(intent.id, { amount_to_capture: 5_000 })
      .catch((error: unknown) => error);
    expect(refusal).toMatchObject({ statusCode: 400, raw: { code: 'amount_too_large', param: 'amount_to_capture' } });
    const captured = await stripe.paymentIntents.capture(intent.id, { amount_to_capture: 7_000 });
    const charge = await stripe.charges.retrieve(captured.latest_charge as string);
    expect((await stripe.transfers.retrieve(charge.transfer as string)).amount).toBe(6_000);
    expect((await balances(stripe, seller.id)).seller.pending).toBe(6_000);
  });
});

describe('a refund of a destination charge', () => {
  it('with reverse_transfer and refund_application_fee takes back their proportional shares', async () => {
    const { stripe, seller } = await marketplace('Refunded Market');
    const intent = await stripe.paymentIntents.create({ amount: 10_000, currency: 'usd',
      payment_method: 'pm_card_bypassPending', confirm: true, application_fee_amount: 1_000,
      transfer_data: { destination: seller.id } });
    const before = await balances(stripe, seller.id);
    const refund = await stripe.refunds.create({ payment_intent: intent.id, amount: 2_500, reverse_transfer: true,
      refund_application_fee: true });
    expect(refund.transfer_reversal).toMatch(/^trr_/);
    const after = await balances(stripe, seller.id);
    // The platform pays the refund, gets back 2,500 of the transfer and gives back 250 of its fee.
    expect(after.platform.available - before.platform.available).toBe(-2_500 + 2_500 - 250);
    expect(after.seller.available - before.seller.available).toBe(-2_500 + 250);
    const charge = await stripe.charges.retrieve(intent.latest_charge as string);
    expect(await stripe.applicationFees.retrieve(charge.application_fee as string)).toMatchObject({
      amount_refunded: 250, refunds: { data: [expect.objectContaining({ amount: 250 })] } });
    expect(await stripe.transfers.retrieve(charge.transfer as string)).toMatchObject({ amount_reversed: 2_500,
      reversals: { data: [expect.objectContaining({ amount: 2_500, source_refund: refund.id })] } });
    await expectTrialBalanceZero();
  });

  it('rounds each share down, and the refund completing the charge takes the remainder', async () => {
    const { stripe, seller } = await marketplace('Rounding Market');
    const intent = await stripe.paymentIntents.create({ amount: 1_000, currency: 'usd',
      payment_method: 'pm_card_bypassPending', confirm: true, application_fee_amount: 333,
      transfer_data: { destination: seller.id } });
    const shares = [];
    for (const amount of [300, 300, 400]) {
      await stripe.refunds.create({ payment_intent: intent.id, amount, reverse_transfer: true,
        refund_application_fee: true });
      const charge = await stripe.charges.retrieve(intent.latest_charge as string);
      shares.push((await stripe.applicationFees.retrieve(charge.application_fee as string)).amount_refunded);
    }
    // 333 × 300 / 1000 = 99.9 → 99, twice; the last takes 333 − 198 = 135.
    expect(shares).toEqual([99, 198, 333]);
    const charge = await stripe.charges.retrieve(intent.latest_charge as string);
    expect((await stripe.transfers.retrieve(charge.transfer as string)).amount_reversed).toBe(1_000);
    await expectTrialBalanceZero();
  });

  it('without the flags leaves the transfer and the fee as they are', async () => {
    const { stripe, seller } = await marketplace('Kept Market');
    const intent = await stripe.paymentIntents.create({ amount: 4_000, currency: 'usd',
      payment_method: 'pm_card_bypassPending', confirm: true, application_fee_amount: 400,
      transfer_data: { destination: seller.id } });
    const before = await balances(stripe, seller.id);
    const refund = await stripe.refunds.create({ payment_intent: intent.id, amount: 1_000 });
    expect(refund.transfer_reversal).toBeNull();
    const after = await balances(stripe, seller.id);
    expect(after.seller).toEqual(before.seller);
    expect(after.platform.available - before.platform.available).toBe(-1_000);
  });

  it('with reverse_transfer on a charge of the platform\'s own is refused, writing nothing', async () => {
    const { stripe } = await marketplace('Own Market');
    const intent = await stripe.paymentIntents.create({ amount: 4_000, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true });
    const refusal = await stripe.refunds.create({ payment_intent: intent.id, reverse_transfer: true })
      .catch((error: unknown) => error);
    expect(refusal).toMatchObject({ statusCode: 400, raw: { code: 'parameter_invalid', param: 'reverse_transfer' } });
    expect((await stripe.refunds.list({ payment_intent: intent.id })).data).toEqual([]);
  });
});

describe('an application fee refund', () => {
  it('returns part of the fee from the platform\'s available balance to the seller\'s', async () => {
    const { stripe, seller } = await marketplace('Fee Refund Market');
    const intent = await stripe.paymentIntents.create({ amount: 10_000, currency: 'usd',
      payment_method: 'pm_card_bypassPending', confirm: true, application_fee_amount: 1_500,
      transfer_data: { destination: seller.id } });
    const charge = await stripe.charges.retrieve(intent.latest_charge as string);
    const before = await balances(stripe, seller.id);
    const feeRefund = await stripe.applicationFees.createRefund(charge.application_fee as string, { amount: 500,
      metadata: { reason: 'goodwill' } });
    expect(feeRefund).toMatchObject({ object: 'fee_refund', amount: 500, fee: charge.application_fee,
      metadata: { reason: 'goodwill' } });
    const after = await balances(stripe, seller.id);
    expect(after.platform.available - before.platform.available).toBe(-500);
    expect(after.seller.available - before.seller.available).toBe(500);
    expect(await stripe.applicationFees.retrieve(charge.application_fee as string)).toMatchObject({
      amount_refunded: 500, refunded: false });
    const listed = (await stripe.applicationFees.list({ charge: charge.id })).data;
    expect(listed.map((fee) => fee.refunds.data.map((refund) => refund.amount))).toEqual([[500]]);
    const types = (await stripe.events.list({ limit: 100 })).data.map((event) => event.type);
    expect(types).toContain('application_fee.refunded');
  });

  it('beyond the platform\'s available balance is refused with balance_insufficient (a voluntary outflow)', async () => {
    const { stripe, seller } = await marketplace('Fee Poor Market');
    const intent = await stripe.paymentIntents.create({ amount: 10_000, currency: 'usd',
      payment_method: 'pm_card_bypassPending', confirm: true, application_fee_amount: 1_500,
      transfer_data: { destination: seller.id } });
    const charge = await stripe.charges.retrieve(intent.latest_charge as string);
    const before = await balances(stripe, seller.id);
    expect(before.platform.available).toBeLessThan(1_500);
    const refusal = await stripe.applicationFees.createRefund(charge.application_fee as string)
      .catch((error: unknown) => error);
    expect(refusal).toMatchObject({ statusCode: 400, raw: { code: 'balance_insufficient', param: 'amount' } });
    expect(await balances(stripe, seller.id)).toEqual(before);
  });

  it('beyond what is left is refused with amount_too_large', async () => {
    const { stripe, seller } = await marketplace('Fee Excess Market');
    const intent = await stripe.paymentIntents.create({ amount: 10_000, currency: 'usd',
      payment_method: 'pm_card_bypassPending', confirm: true, application_fee_amount: 100,
      transfer_data: { destination: seller.id } });
    const charge = await stripe.charges.retrieve(intent.latest_charge as string);
    const refusal = await stripe.applicationFees.createRefund(charge.application_fee as string, { amount: 101 })
      .catch((error: unknown) => error);
    expect(refusal).toMatchObject({ statusCode: 400, raw: { code: 'amount_too_large', param: 'amount' } });
  });
});

describe('a dispute on a destination charge', () => {
  it('debits the platform, not the seller', async () => {
    const { stripe, seller } = await marketplace('Disputed Market');
    const intent = await stripe.paymentIntents.create({ amount: 6_000, currency: 'usd',
      payment_method: 'pm_card_bypassPending', confirm: true, application_fee_amount: 600,
      transfer_data: { destination: seller.id } });
    const before = await balances(stripe, seller.id);
    const row = await penny.pool.query<{ psp_reference: string }>('SELECT psp_reference FROM charges WHERE id = $1',
      [intent.latest_charge]);
    const opened = await fetch(`${penny.sandbox.url}/control/disputes`, { method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ psp_reference: row.rows[0]?.psp_reference, reason: 'fraudulent' }) });
    expect(opened.status).toBe(200);
    await deliverSandboxWebhooks(penny, sender);
    const dispute = (await stripe.disputes.list({ payment_intent: intent.id })).data[0];
    const after = await balances(stripe, seller.id);
    expect(after.seller).toEqual(before.seller);
    expect(after.platform.available - before.platform.available).toBe(-6_000 - 1_500);
    expect(dispute?.amount).toBe(6_000);
  });
});

describe('a connected account with a destination charge on its way', () => {
  it('cannot be deleted before the charge is captured or canceled', async () => {
    const { stripe, seller } = await marketplace('Held Market');
    const intent = await stripe.paymentIntents.create({ amount: 3_000, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true, capture_method: 'manual', transfer_data: { destination: seller.id } });
    const refusal = await stripe.accounts.del(seller.id).catch((error: unknown) => error);
    expect(refusal).toMatchObject({ statusCode: 400, raw: { code: 'account_balance_not_zero' } });
    await stripe.paymentIntents.cancel(intent.id);
    expect(await stripe.accounts.del(seller.id)).toMatchObject({ deleted: true });
  });
});

describe('a destination charge\'s bad input', () => {
  const refused = (promise: Promise<unknown>) => promise.then(() => undefined, (error: unknown) => error);

  it('naming another platform\'s account is a 404 on transfer_data[destination], creating nothing', async () => {
    const { stripe } = await marketplace('Lonely Market');
    const other = await marketplace('Other Market');
    const refusal = await refused(stripe.paymentIntents.create({ amount: 1_000, currency: 'usd',
      transfer_data: { destination: other.seller.id } }));
    expect(refusal).toMatchObject({ statusCode: 404,
      raw: { code: 'resource_missing', param: 'transfer_data[destination]' } });
    expect((await stripe.paymentIntents.list()).data).toEqual([]);
  });

  it('an application fee above the amount is refused', async () => {
    const { stripe, seller } = await marketplace('Greedy Market');
    const refusal = await refused(stripe.paymentIntents.create({ amount: 1_000, currency: 'usd',
      application_fee_amount: 1_001, transfer_data: { destination: seller.id } }));
    expect(refusal).toMatchObject({ statusCode: 400, raw: { code: 'amount_too_large', param: 'application_fee_amount' } });
  });

  it('an application fee without a destination is refused (Penny makes no direct charges)', async () => {
    const { stripe } = await marketplace('Direct Market');
    const refusal = await refused(stripe.paymentIntents.create({ amount: 1_000, currency: 'usd',
      application_fee_amount: 100 }));
    expect(refusal).toMatchObject({ statusCode: 400, raw: { param: 'application_fee_amount' } });
  });

  it('an application fee with transfer_data[amount] is refused', async () => {
    const { stripe, seller } = await marketplace('Both Market');
    const refusal = await refused(stripe.paymentIntents.create({ amount: 1_000, currency: 'usd',
      application_fee_amount: 100, transfer_data: { destination: seller.id, amount: 500 } }));
    expect(refusal).toMatchObject({ statusCode: 400, raw: { param: 'application_fee_amount' } });
  });

  it('passes on a transfer_data[amount] below a charge\'s minimum, and refuses one the currency cannot carry',
    async () => {
      const { stripe, seller } = await marketplace('Small Market');
      const intent = await stripe.paymentIntents.create({ amount: 1_000, currency: 'usd',
        payment_method: 'pm_card_visa', confirm: true, transfer_data: { destination: seller.id, amount: 7 } });
      const charge = await stripe.charges.retrieve(intent.latest_charge as string);
      expect((await stripe.transfers.retrieve(charge.transfer as string)).amount).toBe(7);
      const refusal = await refused(stripe.paymentIntents.create({ amount: 1_000, currency: 'kwd',
        transfer_data: { destination: seller.id, amount: 7 } }));
      expect(refusal).toMatchObject({ statusCode: 400,
        raw: { code: 'amount_invalid_for_currency', param: 'transfer_data[amount]' } });
    });

  it('transfer_data[amount] above the amount is refused', async () => {
    const { stripe, seller } = await marketplace('Overpaid Market');
    const refusal = await refused(stripe.paymentIntents.create({ amount: 1_000, currency: 'usd',
      transfer_data: { destination: seller.id, amount: 1_001 } }));
    expect(refusal).toMatchObject({ statusCode: 400, raw: { param: 'transfer_data[amount]' } });
  });

  it('on_behalf_of other than the destination is refused', async () => {
    const { stripe, seller } = await marketplace('Behalf Market');
    const second = await stripe.accounts.create({ type: 'custom', country: 'US' });
    const refusal = await refused(stripe.paymentIntents.create({ amount: 1_000, currency: 'usd',
      on_behalf_of: second.id, transfer_data: { destination: seller.id } }));
    expect(refusal).toMatchObject({ statusCode: 400, raw: { param: 'on_behalf_of' } });
  });

  it('an update of the amount below transfer_data[amount] is refused, changing nothing', async () => {
    const { stripe, seller } = await marketplace('Shrinking Market');
    const intent = await stripe.paymentIntents.create({ amount: 1_000, currency: 'usd',
      transfer_data: { destination: seller.id, amount: 900 } });
    const refusal = await refused(stripe.paymentIntents.update(intent.id, { amount: 500 }));
    expect(refusal).toMatchObject({ statusCode: 400, raw: { code: 'amount_too_small', param: 'amount' } });
    expect((await stripe.paymentIntents.retrieve(intent.id)).amount).toBe(1_000);
  });

  it('an update of the currency to one that cannot carry the application fee is refused, changing nothing',
    async () => {
      const { stripe, seller } = await marketplace('Krona Market');
      const intent = await stripe.paymentIntents.create({ amount: 20_000, currency: 'usd',
        application_fee_amount: 1_230, transfer_data: { destination: seller.id } });
      const refusal = await refused(stripe.paymentIntents.update(intent.id, { currency: 'isk' }));
      expect(refusal).toMatchObject({ statusCode: 400, raw: { code: 'amount_invalid_for_currency', param: 'currency' } });
      expect((await stripe.paymentIntents.retrieve(intent.id)).currency).toBe('usd');
    });

  it('a confirmation of an intent whose split no longer fits its amount is refused before the PSP is called',
    async () => {
      const { stripe, seller } = await marketplace('Stale Split Market');
      const intent = await stripe.paymentIntents.create({ amount: 1_000, currency: 'usd',
        transfer_data: { destination: seller.id, amount: 900 } });
      // As an update made before updates checked the split left it.
      await penny.pool.query('UPDATE payment_intents SET amount = 500 WHERE id = $1', [intent.id]);
      const refusal = await refused(stripe.paymentIntents.confirm(intent.id, { payment_method: 'pm_card_visa' }));
      expect(refusal).toMatchObject({ statusCode: 400, raw: { code: 'amount_too_small', param: 'amount' } });
      const attempts = await penny.pool.query('SELECT 1 FROM payment_attempts WHERE payment_intent_id = $1', [intent.id]);
      expect(attempts.rowCount).toBe(0);
      expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('requires_payment_method');
    });
});

