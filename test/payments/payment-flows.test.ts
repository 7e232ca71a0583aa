import Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkStoredBalances } from '../../src/ledger/ledger-verify.js';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/** Confirm, capture, cancel and refund through the sandbox PSP, with the ledger entries they post. */
let penny: ServedLedger;
let port: number;
let stripe: Stripe;
let merchantId: string;

beforeAll(async () => {
  penny = await serveTestLedger();
  port = penny.port;
  const created = await penny.merchants.createMerchant('Flow Shop');
  merchantId = created.merchant.id;
  stripe = penny.stripeFor(created.secretKey);
});

/** Posted balances of the merchant's accounts in a currency, by role, on each account's normal side. */
async function balances(currency = 'USD'): Promise<Record<string, bigint>> {
  type Row = { role: string; type: string; dp: bigint; cp: bigint; dpend: bigint; cpend: bigint };
  const rows = await penny.pool.query<Row>(
    `SELECT m.role, a.type, b.debits_posted AS dp, b.credits_posted AS cp, b.debits_pending AS dpend,
            b.credits_pending AS cpend
     FROM merchant_ledger_accounts m JOIN ledger_accounts a ON a.id = m.ledger_account_id
     JOIN ledger_current_balances b ON b.account_id = a.id
     WHERE m.merchant_id = $1 AND m.currency = $2`, [merchantId, currency]);
  const result: Record<string, bigint> = {};
  for (const row of rows.rows) {
    const debitNormal = row.type === 'asset' || row.type === 'expense';
    result[row.role] = debitNormal ? row.dp - row.cp : row.cp - row.dp;
    result[`${row.role}_pending`] = debitNormal ? row.dpend - row.cpend : row.cpend - row.dpend;
  }
  return result;
}

async function sandboxOperations(reference: string): Promise<number> {
  const result = await penny.pool.query<{ count: bigint }>(
    'SELECT count(*) AS count FROM sandbox_psp_operations WHERE merchant_reference = $1', [reference]);
  return Number(result.rows[0]?.count);
}

describe('automatic capture', () => {
  it('succeeds, with a captured charge, and posts capture and both fees', async () => {
    const before = await balances();
    const intent = await stripe.paymentIntents.create({
      amount: 10_000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true,
    });
    expect(intent).toMatchObject({ status: 'succeeded', amount_received: 10_000, amount_capturable: 0 });
    const charge = await stripe.charges.retrieve(intent.latest_charge as string);
    expect(charge).toMatchObject({ amount: 10_000, amount_captured: 10_000, captured: true, paid: true,
      refunded: false, status: 'succeeded', payment_intent: intent.id });
    const after = await balances();
    // Penny's fee: 2.9% of 10,000 + 30 = 320. The sandbox's: 2% + 20 = 220.
    expect((after.psp_receivable ?? 0n) - (before.psp_receivable ?? 0n)).toBe(10_000n - 220n);
    expect((after.merchant_pending ?? 0n) - (before.merchant_pending ?? 0n)).toBe(10_000n - 320n);
    expect((after.penny_revenue ?? 0n) - (before.penny_revenue ?? 0n)).toBe(320n);
    expect((after.psp_fees ?? 0n) - (before.psp_fees ?? 0n)).toBe(220n);
    expect((await checkStoredBalances(penny.pool)).failures).toEqual([]);
  });

  it('declines with 402 card_error, the intent embedded and back in requires_payment_method', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 2000, currency: 'usd' });
    const error = await stripe.paymentIntents.confirm(intent.id, { payment_method: 'pm_card_chargeDeclined' })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Stripe.errors.StripeCardError);
    expect(error).toMatchObject({ statusCode: 402, code: 'card_declined', decline_code: 'generic_decline' });
    const embedded = (error as { payment_intent?: Stripe.PaymentIntent }).payment_intent;
    expect(embedded?.status).toBe('requires_payment_method');
    expect(embedded?.last_payment_error?.decline_code).toBe('generic_decline');
    const failed = await stripe.charges.retrieve(embedded?.latest_charge as string);
    expect(failed).toMatchObject({ status: 'failed', paid: false, captured: false, failure_code: 'card_declined' });
  });

  it('replays a decline for the same key, calling the PSP once', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 2000, currency: 'usd' });
    const confirm = () => stripe.paymentIntents.confirm(intent.id,
      { payment_method: 'pm_card_chargeDeclinedInsufficientFunds' }, { idempotencyKey: `decline-${intent.id}` })
      .catch((caught: unknown) => caught);
    const first = await confirm();
    const second = await confirm();
    expect(first).toMatchObject({ statusCode: 402, decline_code: 'insufficient_funds' });
    expect(second).toMatchObject({ statusCode: 402, decline_code: 'insufficient_funds' });
    expect((second as { headers?: Record<string, string> }).headers?.['idempotent-replayed']).toBe('true');
    const attempts = await penny.pool.query('SELECT id FROM payment_attempts WHERE payment_intent_id = $1', [intent.id]);
    expect(attempts.rows).toHaveLength(1);
  });

  it('asks for authentication, and a further confirm completes it', async () => {
    const intent = await stripe.paymentIntents.create({
      amount: 3000, currency: 'usd', payment_method: 'pm_card_authenticationRequired', confirm: true,
    });
    expect(intent.status).toBe('requires_action');
    expect(intent.next_action?.type).toBe('redirect_to_url');
    const completed = await stripe.paymentIntents.confirm(intent.id);
    expect(completed.status).toBe('succeeded');
  });

  it('makes one payment and one PSP call from 50 concurrent confirms with one key', async () => {
    const retrying = new Stripe((await penny.merchants.createMerchant('Race Shop')).secretKey,
      { host: '127.0.0.1', port, protocol: 'http', maxNetworkRetries: 5 });
    const results = await Promise.all(Array.from({ length: 50 }, () => retrying.paymentIntents.create(
      { amount: 5000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true },
      { idempotencyKey: 'race-confirm-1' })));
    expect(new Set(results.map((result) => result.id)).size).toBe(1);
    const attempt = await penny.pool.query<{ id: string }>(
      'SELECT id FROM payment_attempts WHERE payment_intent_id = $1', [results[0]?.id]);
    expect(attempt.rows).toHaveLength(1);
    expect(await sandboxOperations(attempt.rows[0]?.id as string)).toBe(1);
  });
});

describe('many payments at once', () => {
  it('completes 40 concurrent payments with distinct keys on a pool of 10 connections (no request waits for a second one)', async () => {
    const results = await Promise.all(Array.from({ length: 40 }, (_, index) => stripe.paymentIntents.create(
      { amount: 1000 + index, currency: 'usd', payment_method: 'pm_card_visa', confirm: true, capture_method: 'manual' },
      { idempotencyKey: `many-${index}` })));
    expect(results.every((result) => result.status === 'requires_capture')).toBe(true);
    const captured = await Promise.all(results.map((result) => stripe.paymentIntents.capture(result.id)));
    expect(captured.every((result) => result.status === 'succeeded')).toBe(true);
    expect((await checkStoredBalances(penny.pool)).failures).toEqual([]);
  });
});

describe('manual capture', () => {
  it('holds the amount at authorization and posts only what is captured', async () => {
    const before = await balances();
    const intent = await stripe.paymentIntents.create({
      amount: 1000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true, capture_method: 'manual',
    });
    expect(intent).toMatchObject({ status: 'requires_capture', amount_capturable: 1000 });
    const held = await balances();
    expect((held.merchant_pending_pending ?? 0n) - (before.merchant_pending_pending ?? 0n)).toBe(1000n);
    expect(held.merchant_pending).toBe(before.merchant_pending ?? 0n);

    const captured = await stripe.paymentIntents.capture(intent.id, { amount_to_capture: 600 });
    expect(captured).toMatchObject({ status: 'succeeded', amount_received: 600, amount_capturable: 0 });
    const after = await balances();
    expect(after.merchant_pending_pending).toBe(before.merchant_pending_pending ?? 0n);
    // 600 captured less Penny's fee: round(17.4) + 30 = 47.
    expect((after.merchant_pending ?? 0n) - (before.merchant_pending ?? 0n)).toBe(600n - 47n);
    const charge = await stripe.charges.retrieve(captured.latest_charge as string);
    expect(charge).toMatchObject({ amount_captured: 600, captured: true });
  });

  it('refuses to capture more than is capturable', async () => {
    const intent = await stripe.paymentIntents.create({
      amount: 1000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true, capture_method: 'manual',
    });
    const error = await stripe.paymentIntents.capture(intent.id, { amount_to_capture: 1001 })
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ statusCode: 400, code: 'amount_too_large', param: 'amount_to_capture' });
  });

  it('refuses a partial capture the currency cannot carry, leaving the intent capturable', async () => {
    const intent = await stripe.paymentIntents.create({
      amount: 20_000, currency: 'isk', payment_method: 'pm_card_visa', confirm: true, capture_method: 'manual',
    });
    const error = await stripe.paymentIntents.capture(intent.id, { amount_to_capture: 150 })
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ statusCode: 400, code: 'amount_invalid_for_currency', param: 'amount_to_capture' });
    const captured = await stripe.paymentIntents.capture(intent.id, { amount_to_capture: 10_000 });
    expect(captured).toMatchObject({ status: 'succeeded', amount_received: 10_000 });
  });

  it('cancels an authorization, releasing the hold', async () => {
    const before = await balances();
    const intent = await stripe.paymentIntents.create({
      amount: 1500, currency: 'usd', payment_method: 'pm_card_visa', confirm: true, capture_method: 'manual',
    });
    const canceled = await stripe.paymentIntents.cancel(intent.id, { cancellation_reason: 'requested_by_customer' });
    expect(canceled).toMatchObject({ status: 'canceled', amount_capturable: 0 });
    expect((await balances()).merchant_pending_pending).toBe(before.merchant_pending_pending ?? 0n);
  });

  it('lets exactly one of a capture and a cancel racing each other win', async () => {
    const intent = await stripe.paymentIntents.create({
      amount: 1500, currency: 'usd', payment_method: 'pm_card_visa', confirm: true, capture_method: 'manual',
    });
    const results = await Promise.allSettled([
      stripe.paymentIntents.capture(intent.id), stripe.paymentIntents.cancel(intent.id),
      stripe.paymentIntents.capture(intent.id), stripe.paymentIntents.cancel(intent.id),
    ]);
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    const final = await stripe.paymentIntents.retrieve(intent.id);
    expect(['succeeded', 'canceled']).toContain(final.status);
    expect((await checkStoredBalances(penny.pool)).failures).toEqual([]);
  });
});

describe('cancel from each state that allows it', () => {
  it('cancels from requires_confirmation', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd', payment_method: 'pm_card_visa' });
    expect((await stripe.paymentIntents.cancel(intent.id)).status).toBe('canceled');
  });

  it('cancels from requires_action', async () => {
    const intent = await stripe.paymentIntents.create({
      amount: 1000, currency: 'usd', payment_method: 'pm_card_authenticationRequired', confirm: true,
    });
    expect(intent.status).toBe('requires_action');
    expect((await stripe.paymentIntents.cancel(intent.id)).status).toBe('canceled');
  });

  it('refuses to cancel a succeeded intent', async () => {
    const intent = await stripe.paymentIntents.create({
      amount: 1000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true,
    });
    const error = await stripe.paymentIntents.cancel(intent.id).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ statusCode: 400, code: 'payment_intent_unexpected_state' });
  });
});

describe('currencies', () => {
  it('takes a zero-decimal currency in its own units: JPY 500 is 500 yen in the ledger', async () => {
    const intent = await stripe.paymentIntents.create({
      amount: 500, currency: 'jpy', payment_method: 'pm_card_visa', confirm: true,
    });
    expect(intent.status).toBe('succeeded');
    const after = await balances('JPY');
    // 2.9% of 500 = 14.5, rounded half up to 15, + 30 = 45.
    expect(after.merchant_pending).toBe(500n - 45n);
  });

  it('refuses an unsupported currency with 400', async () => {
    const error = await stripe.paymentIntents.create({ amount: 1000, currency: 'xyz' }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ statusCode: 400, param: 'currency' });
  });
});

describe('charge lists', () => {
  it('page forwards with starting_after and back with ending_before, newest first', async () => {
    const merchant = await penny.merchants.createMerchant('Charge List Shop');
    const client = new Stripe(merchant.secretKey, { host: '127.0.0.1', port, protocol: 'http', maxNetworkRetries: 0 });
    const charges: string[] = [];
    for (let index = 0; index < 5; index += 1) {
      const intent = await client.paymentIntents.create({
        amount: 1000 + index, currency: 'usd', payment_method: 'pm_card_visa', confirm: true,
      });
      charges.push(intent.latest_charge as string);
    }
    const newest = [...charges].reverse();
    const first = await client.charges.list({ limit: 2 });
    expect(first.data.map((charge) => charge.id)).toEqual(newest.slice(0, 2));
    const next = await client.charges.list({ limit: 2, starting_after: newest[1] });
    expect(next.data.map((charge) => charge.id)).toEqual(newest.slice(2, 4));
    const back = await client.charges.list({ limit: 2, ending_before: newest[2] });
    expect(back.data.map((charge) => charge.id)).toEqual(newest.slice(0, 2));
    const seen: string[] = [];
    await client.charges.list({ limit: 2 }).autoPagingEach((charge) => { seen.push(charge.id); });
    expect(seen).toEqual(newest);
  });
});

describe('isolation of idempotency keys', () => {
  it('keeps two merchants\' identical keys apart', async () => {
    const other = new Stripe((await penny.merchants.createMerchant('Key Twin')).secretKey,
      { host: '127.0.0.1', port, protocol: 'http', maxNetworkRetries: 0 });
    const mine = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd' }, { idempotencyKey: 'shared-key' });
    const theirs = await other.paymentIntents.create({ amount: 2000, currency: 'usd' }, { idempotencyKey: 'shared-key' });
    expect(theirs.id).not.toBe(mine.id);
    expect(theirs.amount).toBe(2000);
    const lookup = await other.paymentIntents.retrieve(mine.id).catch((caught: unknown) => caught);
    expect(lookup).toMatchObject({ statusCode: 404 });
  });
});

describe('refunds', () => {
  async function paid(amount: number): Promise<Stripe.PaymentIntent> {
    return stripe.paymentIntents.create({ amount, currency: 'usd', payment_method: 'pm_card_visa', confirm: true });
  }

  it('refunds in parts up to the captured amount, and one cent more is refused', async () => {
    const intent = await paid(1000);
    const first = await stripe.refunds.create({ payment_intent: intent.id, amount: 400 });
    expect(first).toMatchObject({ object: 'refund', amount: 400, status: 'succeeded', payment_intent: intent.id });
    const rest = await stripe.refunds.create({ payment_intent: intent.id });
    expect(rest.amount).toBe(600);
    const charge = await stripe.charges.retrieve(intent.latest_charge as string);
    expect(charge).toMatchObject({ amount_refunded: 1000, refunded: true });
    const more = await stripe.refunds.create({ payment_intent: intent.id, amount: 1 })
      .catch((caught: unknown) => caught);
    expect(more).toMatchObject({ statusCode: 400, code: 'charge_already_refunded' });
  });

  it('refuses a refund of more than remains', async () => {
    const intent = await paid(1000);
    await stripe.refunds.create({ payment_intent: intent.id, amount: 999 });
    const error = await stripe.refunds.create({ payment_intent: intent.id, amount: 2 })
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ statusCode: 400, code: 'amount_too_large', param: 'amount' });
  });

  it('refuses a refund the currency cannot carry, reserving nothing', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 1000, currency: 'kwd', payment_method: 'pm_card_visa',
      confirm: true });
    const error = await stripe.refunds.create({ payment_intent: intent.id, amount: 15 })
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ statusCode: 400, code: 'amount_invalid_for_currency', param: 'amount' });
    const charge = await stripe.charges.retrieve(intent.latest_charge as string);
    expect(charge.amount_refunded).toBe(0);
    expect((await stripe.refunds.list({ payment_intent: intent.id })).data).toEqual([]);
    expect(await stripe.refunds.create({ payment_intent: intent.id })).toMatchObject({ amount: 1000, status: 'succeeded' });
  });

  it('never refunds more than was captured, with ten concurrent refunds', async () => {
    const intent = await paid(1000);
    const results = await Promise.allSettled(Array.from({ length: 10 }, () =>
      stripe.refunds.create({ payment_intent: intent.id, amount: 300 })));
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(3);
    const charge = await stripe.charges.retrieve(intent.latest_charge as string);
    expect(charge.amount_refunded).toBe(900);
  });

  it('debits the merchant and credits the PSP receivable for each refund; Penny keeps its fee', async () => {
    const intent = await paid(2000);
    const before = await balances();
    await stripe.refunds.create({ charge: intent.latest_charge as string, amount: 500 });
    const after = await balances();
    expect((before.merchant_available ?? 0n) - (after.merchant_available ?? 0n)).toBe(500n);
    expect((before.psp_receivable ?? 0n) - (after.psp_receivable ?? 0n)).toBe(500n);
    expect(after.penny_revenue).toBe(before.penny_revenue);
  });

  it('lists a charge\'s refunds and retrieves one', async () => {
    const intent = await paid(1000);
    const refund = await stripe.refunds.create({ payment_intent: intent.id, amount: 100 });
    expect(await stripe.refunds.retrieve(refund.id)).toEqual(refund);
    const listed = await stripe.refunds.list({ payment_intent: intent.id });
    expect(listed.data.map((item) => item.id)).toEqual([refund.id]);
  });
});
