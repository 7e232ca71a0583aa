import Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/**
 * Separate charges and transfers: a platform passes funds from its available balance to its
 * connected accounts, never beyond what is available (also under concurrent requests), and takes
 * them back by reversals. Through the official SDK.
 */
let penny: ServedLedger;

beforeAll(async () => {
  penny = await serveTestLedger();
});

function available(balance: Stripe.Balance, currency = 'usd'): number {
  return balance.available.find((item) => item.currency === currency)?.amount ?? 0;
}

/** A platform with `amount` less Penny's fee available at once (pm_card_bypassPending), and a seller. */
async function platformWithFunds(amount: number) {
  const created = await penny.merchants.createMerchant(`Platform ${amount}`);
  const stripe = penny.stripeFor(created.secretKey);
  const intent = await stripe.paymentIntents.create({ amount, currency: 'usd', payment_method: 'pm_card_bypassPending',
    confirm: true });
  const seller = await stripe.accounts.create({ type: 'custom', country: 'US' });
  return { stripe, seller, intent, funds: available(await stripe.balance.retrieve()),
    merchantId: created.merchant.id, secretKey: created.secretKey };
}

describe('a transfer', () => {
  it('moves funds from the platform\'s available balance to the connected account\'s', async () => {
    const { stripe, seller, funds } = await platformWithFunds(100_000);
    const transfer = await stripe.transfers.create({ amount: 40_000, currency: 'usd', destination: seller.id,
      transfer_group: 'order-1', metadata: { order: '1' } });
    expect(transfer).toMatchObject({ object: 'transfer', amount: 40_000, amount_reversed: 0, reversed: false,
      destination: seller.id, transfer_group: 'order-1', metadata: { order: '1' } });
    expect(available(await stripe.balance.retrieve())).toBe(funds - 40_000);
    expect(available(await stripe.balance.retrieve({}, { stripeAccount: seller.id }))).toBe(40_000);
    const platformSide = await stripe.balanceTransactions.list({ source: transfer.id });
    expect(platformSide.data).toEqual([expect.objectContaining({ type: 'transfer', amount: -40_000 })]);
    const sellerSide = await stripe.balanceTransactions.list({ source: transfer.id }, { stripeAccount: seller.id });
    expect(sellerSide.data).toEqual([expect.objectContaining({ type: 'payment', amount: 40_000 })]);
  });

  it('above the available balance is refused with balance_insufficient, writing nothing', async () => {
    const { stripe, seller, funds } = await platformWithFunds(5000);
    const refusal = await stripe.transfers.create({ amount: funds + 1, currency: 'usd', destination: seller.id })
      .catch((error: unknown) => error);
    expect(refusal).toMatchObject({ statusCode: 400, raw: { code: 'balance_insufficient', param: 'amount' } });
    expect(available(await stripe.balance.retrieve())).toBe(funds);
    expect((await stripe.transfers.list()).data).toEqual([]);
  });

  it('to another platform\'s account is a 404 naming destination', async () => {
    const { stripe } = await platformWithFunds(5000);
    const other = await platformWithFunds(5000);
    const refusal = await stripe.transfers.create({ amount: 100, currency: 'usd', destination: other.seller.id })
      .catch((error: unknown) => error);
    expect(refusal).toMatchObject({ statusCode: 404, raw: { code: 'resource_missing', param: 'destination' } });
  });

  it('never passes on more than its source charge kept', async () => {
    const { stripe, seller, intent } = await platformWithFunds(20_000);
    const charge = intent.latest_charge as string;
    await stripe.transfers.create({ amount: 15_000, currency: 'usd', destination: seller.id,
      source_transaction: charge });
    const refusal = await stripe.transfers.create({ amount: 5001, currency: 'usd', destination: seller.id,
      source_transaction: charge }).catch((error: unknown) => error);
    expect(refusal).toMatchObject({ statusCode: 400, raw: { code: 'amount_too_large', param: 'amount' } });
  });

  it('naming its source charge by the charge\'s attempt counts what earlier transfers from that charge passed on',
    async () => {
      const { stripe, seller, intent } = await platformWithFunds(20_000);
      // Funds enough beyond the charge, so only the charge's bound can refuse.
      await stripe.paymentIntents.create({ amount: 20_000, currency: 'usd', payment_method: 'pm_card_bypassPending',
        confirm: true });
      const charge = intent.latest_charge as string;
      const attempt = await penny.pool.query<{ attempt_id: string }>('SELECT attempt_id FROM charges WHERE id = $1',
        [charge]);
      const attemptId = attempt.rows[0]?.attempt_id ?? '';
      expect(attemptId).toMatch(/^pa_/);
      await stripe.transfers.create({ amount: 15_000, currency: 'usd', destination: seller.id,
        source_transaction: charge });
      const refusal = await stripe.transfers.create({ amount: 5001, currency: 'usd', destination: seller.id,
        source_transaction: attemptId }).catch((error: unknown) => error);
      expect(refusal).toMatchObject({ statusCode: 400, raw: { code: 'amount_too_large', param: 'amount' } });
      const allowed = await stripe.transfers.create({ amount: 5000, currency: 'usd', destination: seller.id,
        source_transaction: attemptId });
      expect(allowed.source_transaction).toBe(charge);
    });

  it('ten racing for one balance over real connections never take more than is available', async () => {
    const { stripe, seller, funds } = await platformWithFunds(10_000);
    const each = Math.floor(funds / 4);
    const results = await Promise.allSettled(Array.from({ length: 10 }, () =>
      stripe.transfers.create({ amount: each, currency: 'usd', destination: seller.id })));
    const made = results.filter((result) => result.status === 'fulfilled').length;
    const reasons = results.flatMap((result) => result.status === 'rejected'
      ? [(result.reason as { raw?: { code?: string } }).raw?.code ?? String(result.reason)] : []);
    expect(new Set(reasons)).toEqual(new Set(['balance_insufficient']));
    expect(made).toBe(4);
    expect(available(await stripe.balance.retrieve())).toBe(funds - 4 * each);
    expect(available(await stripe.balance.retrieve({}, { stripeAccount: seller.id }))).toBe(4 * each);
  });
});

describe('transfers racing for one source charge', () => {
  it('two to different connected accounts over real connections never pass on more than the charge kept',
    async () => {
      // Funds enough for both (the balance guard must not be what stops the second), and two sellers,
      // so the destination's lock does not serialize them either: only the source charge can.
      const { stripe, seller, secretKey } = await platformWithFunds(100_000);
      const other = await stripe.accounts.create({ type: 'custom', country: 'US' });
      for (let round = 0; round < 12; round += 1) {
        const intent = await stripe.paymentIntents.create({ amount: 10_000, currency: 'usd',
          payment_method: 'pm_card_bypassPending', confirm: true });
        const source = intent.latest_charge as string;
        // Each request on a client of its own, so each has its own connection.
        const results = await Promise.allSettled([seller, other].map((destination) =>
          penny.stripeFor(secretKey).transfers.create({ amount: 6000, currency: 'usd', destination: destination.id,
            source_transaction: source })));
        const made = results.filter((result) => result.status === 'fulfilled').length;
        const refused = results.flatMap((result) => result.status === 'rejected' ? [result.reason] : []);
        expect({ round, made }).toEqual({ round, made: 1 });
        expect(refused).toEqual([expect.objectContaining({ statusCode: 400,
          raw: expect.objectContaining({ code: 'amount_too_large', param: 'amount' }) })]);
      }
    });
});

describe('a transfer reversal', () => {
  it('takes funds back in part, then the rest, and no more', async () => {
    const { stripe, seller, funds } = await platformWithFunds(30_000);
    const transfer = await stripe.transfers.create({ amount: 10_000, currency: 'usd', destination: seller.id });
    await stripe.transfers.createReversal(transfer.id, { amount: 4000 });
    expect(available(await stripe.balance.retrieve({}, { stripeAccount: seller.id }))).toBe(6000);
    await stripe.transfers.createReversal(transfer.id);
    const reversed = await stripe.transfers.retrieve(transfer.id);
    expect(reversed).toMatchObject({ amount_reversed: 10_000, reversed: true });
    expect(reversed.reversals.data.map((item) => item.amount)).toEqual([4000, 6000]);
    expect(available(await stripe.balance.retrieve())).toBe(funds);
    const again = await stripe.transfers.createReversal(transfer.id, { amount: 1 }).catch((error: unknown) => error);
    expect(again).toMatchObject({ statusCode: 400, raw: { code: 'amount_too_large' } });
  });
});

describe('a transfer racing the delete of its destination', () => {
  it('either lands and the delete is refused, or finds the account deleted (404 on destination) and moves nothing',
    async () => {
      const { stripe, funds, merchantId, secretKey } = await platformWithFunds(100_000);
      const amount = 100;
      const outcomes = { landed: 0, deleted: 0 };
      let transferred = 0;
      for (let round = 0; round < 25; round += 1) {
        const seller = await stripe.accounts.create({ type: 'custom', country: 'US' });
        // Two requests on their own connections, racing.
        const [transfer, deletion] = await Promise.allSettled([
          penny.stripeFor(secretKey).transfers.create({ amount, currency: 'usd', destination: seller.id }),
          penny.stripeFor(secretKey).accounts.del(seller.id),
        ]);
        const sellerBalance = await penny.balances.balance({ merchantId, accountId: seller.id });
        const held = sellerBalance.reduce((sum, item) => sum + item.availableMinor + item.pendingMinor, 0n);
        if (deletion.status === 'fulfilled') {
          expect(transfer.status).toBe('rejected');
          expect((transfer as PromiseRejectedResult).reason).toMatchObject({ statusCode: 404,
            raw: { code: 'resource_missing', param: 'destination' } });
          expect(held).toBe(0n);
          outcomes.deleted += 1;
        } else {
          expect(deletion.reason).toMatchObject({ statusCode: 400, raw: { code: 'account_balance_not_zero' } });
          expect(transfer.status).toBe('fulfilled');
          expect(held).toBe(BigInt(amount));
          transferred += amount;
          outcomes.landed += 1;
        }
      }
      expect(outcomes.landed + outcomes.deleted).toBe(25);
      expect(available(await stripe.balance.retrieve())).toBe(funds - transferred);
    });
});

