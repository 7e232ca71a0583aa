import fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type Stripe from 'stripe';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { accountsDueOn, payoutDayOf, setPlatformPayoutSchedule } from '../../src/accounts/payout-schedules.js';
import { advanceClock, configureClock, nowMs } from '../../src/clock.js';
import { limits } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { PayoutScheduler } from '../../src/payouts/payout-scheduler.js';
import type { SandboxWebhookSender } from '../../src/sandbox-psp/psp-webhooks.js';
import { deliverSandboxWebhooks, sandboxSenderOf, serveTestLedger, type ServedLedger } from '../support/stripe.js';

/**
 * Automatic payouts: on each UTC day, every account (a platform or a connected account) whose
 * schedule is due pays out its whole available balance in each currency, once per account,
 * currency and day, even with schedulers racing or rerun; the controlled clock moves the days.
 */
let penny: ServedLedger;
let sender: SandboxWebhookSender;

beforeAll(async () => {
  configureClock('controlled');
  penny = await serveTestLedger();
  sender = sandboxSenderOf(penny);
});

afterAll(() => {
  configureClock('system');
});

function scheduler(): PayoutScheduler {
  return new PayoutScheduler(penny.pool, { payouts: penny.payouts, balances: penny.balances,
    logger: createLogger('silent') });
}

/** Moves Penny's clock (and the sandbox's) to the start of the next UTC day, through the operator route. */
async function nextDay(): Promise<string> {
  const untilMidnightS = Math.ceil((86_400_000 - (nowMs() % 86_400_000)) / 1000) + 60;
  const moved = await penny.request({ method: 'POST', url: '/v1/test_helpers/clock/advance',
    body: { by: `${untilMidnightS}s` } });
  expect(moved.status).toBe(200);
  return new Date(nowMs()).toISOString().slice(0, 10);
}

function available(balance: Stripe.Balance, currency = 'usd'): number {
  return balance.available.find((item) => item.currency === currency)?.amount ?? 0;
}

/** A platform whose available balance holds the net of a `amount` USD charge (pm_card_bypassPending). */
async function fundedPlatform(name: string, amount = 10_000) {
  const created = await penny.merchants.createMerchant(name);
  const stripe = penny.stripeFor(created.secretKey);
  await stripe.paymentIntents.create({ amount, currency: 'usd', payment_method: 'pm_card_bypassPending',
    confirm: true });
  return { stripe, merchantId: created.merchant.id, secretKey: created.secretKey,
    funds: available(await stripe.balance.retrieve()) };
}

/** A connected account of the platform on `schedule`, with a US bank account unless told not to, and `funds` of USD. */
async function seller(stripe: Stripe, options: { schedule: Stripe.AccountCreateParams.Settings.Payouts.Schedule;
  funds: number; bank?: boolean }) {
  const account = await stripe.accounts.create({ type: 'custom', country: 'US',
    settings: { payouts: { schedule: options.schedule } } });
  if (options.bank !== false) {
    await stripe.accounts.createExternalAccount(account.id, { external_account: { object: 'bank_account',
      country: 'US', currency: 'usd', account_number: '000123456789', routing_number: '110000000' } });
  }
  if (options.funds > 0) {
    await stripe.transfers.create({ amount: options.funds, currency: 'usd', destination: account.id });
  }
  return account;
}

async function payoutsOf(stripe: Stripe, stripeAccount?: string): Promise<Stripe.Payout[]> {
  return (await stripe.payouts.list({ limit: 100 }, stripeAccount === undefined ? {} : { stripeAccount })).data;
}

describe('an automatic payout', () => {
  it('pays out a daily platform\'s whole available balance once on each new day, to where a manual payout goes',
    async () => {
      const { stripe, merchantId, funds } = await fundedPlatform('Daily Platform');
      await setPlatformPayoutSchedule(penny.pool, merchantId, { interval: 'daily' });
      await nextDay();
      expect(await scheduler().runDue()).toBeGreaterThanOrEqual(1);
      const [payout, ...others] = await payoutsOf(stripe);
      expect(others).toEqual([]);
      expect(payout).toMatchObject({ amount: funds, currency: 'usd', automatic: true, status: 'pending',
        destination: 'NL39RABO0300065264', method: 'standard' });
      expect(available(await stripe.balance.retrieve())).toBe(0);
      const transaction = await stripe.balanceTransactions.retrieve(payout?.balance_transaction as string);
      expect(transaction).toMatchObject({ type: 'payout', amount: -funds, source: payout?.id });
      const events = await stripe.events.list({ type: 'payout.created' });
      expect(events.data.map((event) => (event.data.object as Stripe.Payout).id)).toEqual([payout?.id]);
      // The PSP took it with Penny's key for the payout, and pays it as it pays a manual one.
      expect(await penny.sandbox.connector.lookup({ reference: payout?.id as string })).toHaveLength(1);
      for (let round = 0; round < 3; round += 1) {
        await deliverSandboxWebhooks(penny, sender);
        advanceClock(1000);
        await sender.resolvePending();
      }
      await deliverSandboxWebhooks(penny, sender);
      expect((await stripe.payouts.retrieve(payout?.id as string)).status).toBe('paid');
    });

  it('is made once a day: the same day again pays nothing, though money came in meanwhile', async () => {
    const { stripe, merchantId, secretKey } = await fundedPlatform('Once A Day Platform');
    await setPlatformPayoutSchedule(penny.pool, merchantId, { interval: 'daily' });
    await nextDay();
    await scheduler().runDue();
    expect(await payoutsOf(stripe)).toHaveLength(1);
    await penny.stripeFor(secretKey).paymentIntents.create({ amount: 5000, currency: 'usd',
      payment_method: 'pm_card_bypassPending', confirm: true });
    const later = available(await stripe.balance.retrieve());
    expect(later).toBeGreaterThan(0);
    // A new process (a rerun after a crash) on the same day.
    await scheduler().runDue();
    expect(await payoutsOf(stripe)).toHaveLength(1);
    await nextDay();
    await scheduler().runDue();
    const payouts = await payoutsOf(stripe);
    expect(payouts).toHaveLength(2);
    expect(payouts[0]).toMatchObject({ amount: later, automatic: true });
  });

  it('racing in four schedulers at once pays each account once, never more than it had', async () => {
    const { stripe, funds } = await fundedPlatform('Racing Schedulers Platform', 100_000);
    const sellers = [];
    for (let index = 0; index < 5; index += 1) {
      sellers.push(await seller(stripe, { schedule: { interval: 'daily' }, funds: 1000 * (index + 1) }));
    }
    expect(available(await stripe.balance.retrieve())).toBe(funds - 15_000);
    await nextDay();
    const made = await Promise.all(Array.from({ length: 4 }, () => scheduler().runDue()));
    expect(made.reduce((sum, count) => sum + count, 0)).toBeGreaterThanOrEqual(5);
    for (const [index, account] of sellers.entries()) {
      const payouts = await payoutsOf(stripe, account.id);
      expect(payouts).toHaveLength(1);
      expect(payouts[0]).toMatchObject({ amount: 1000 * (index + 1), automatic: true });
      expect(payouts[0]?.destination).toMatch(/^ba_/);
      expect(available(await stripe.balance.retrieve({}, { stripeAccount: account.id }))).toBe(0);
    }
    const rows = await penny.pool.query(`SELECT account_id, count(*)::int AS n FROM payouts
       WHERE account_id = ANY($1::text[]) GROUP BY account_id`, [sellers.map((account) => account.id)]);
    expect(rows.rows.every((row) => row.n === 1)).toBe(true);
  });

  it('of a weekly account comes only on its anchor weekday', async () => {
    const { stripe } = await fundedPlatform('Weekly Platform', 50_000);
    const account = await seller(stripe, { schedule: { interval: 'weekly', weekly_anchor: 'wednesday' },
      funds: 7000 });
    const paidOn: string[] = [];
    for (let day = 0; day < 7; day += 1) {
      const today = await nextDay();
      await scheduler().runDue();
      const count = (await payoutsOf(stripe, account.id)).length;
      if (count > paidOn.length) paidOn.push(today);
    }
    expect(paidOn).toHaveLength(1);
    expect(new Date(`${paidOn[0]}T00:00:00Z`).getUTCDay()).toBe(3);
    expect((await payoutsOf(stripe, account.id))[0]).toMatchObject({ amount: 7000, automatic: true });
  });

  it('passes over quietly an account with nothing available, one with no bank account, and a manual one', async () => {
    const { stripe } = await fundedPlatform('Quiet Platform', 50_000);
    const empty = await seller(stripe, { schedule: { interval: 'daily' }, funds: 0 });
    const unbanked = await seller(stripe, { schedule: { interval: 'daily' }, funds: 2000, bank: false });
    const manual = await seller(stripe, { schedule: { interval: 'manual' }, funds: 3000 });
    await nextDay();
    await expect(scheduler().runDue()).resolves.toBeGreaterThanOrEqual(0);
    for (const account of [empty, unbanked, manual]) expect(await payoutsOf(stripe, account.id)).toEqual([]);
    expect(available(await stripe.balance.retrieve({}, { stripeAccount: unbanked.id }))).toBe(2000);
    // A manual payout stays allowed, on any schedule.
    await stripe.accounts.createExternalAccount(manual.id, { external_account: { object: 'bank_account',
      country: 'US', currency: 'usd', account_number: '000123456789', routing_number: '110000000' } });
    const payout = await stripe.payouts.create({ amount: 1000, currency: 'usd' }, { stripeAccount: manual.id });
    expect(payout).toMatchObject({ automatic: false, amount: 1000 });
  });

  it('of a connected account names the account on its events, as Connect\'s do', async () => {
    const { stripe } = await fundedPlatform('Connect Events Platform', 20_000);
    const account = await seller(stripe, { schedule: { interval: 'daily' }, funds: 4000 });
    await nextDay();
    await scheduler().runDue();
    const [payout] = await payoutsOf(stripe, account.id);
    for (let round = 0; round < 3; round += 1) {
      await deliverSandboxWebhooks(penny, sender);
      advanceClock(1000);
      await sender.resolvePending();
    }
    await deliverSandboxWebhooks(penny, sender);
    const events = (await stripe.events.list({ limit: 100 })).data
      .filter((item) => (item.data.object as Stripe.Payout).id === payout?.id);
    expect(events.map((item) => item.type).sort()).toEqual(['payout.created', 'payout.paid', 'payout.updated',
      'payout.updated']);
    for (const event of events) expect(event.account).toBe(account.id);
    // The platform's own payouts' events name no account.
    await stripe.payouts.create({ amount: 100, currency: 'usd' });
    const own = (await stripe.events.list({ type: 'payout.created', limit: 100 })).data
      .filter((item) => (item.data.object as Stripe.Payout).destination === 'NL39RABO0300065264');
    expect(own.length).toBeGreaterThan(0);
    for (const event of own) expect('account' in event).toBe(false);
  });
});

/** The nets of the transactions a payout pays (those linked to it, its own aside), by type. */
async function paidBy(stripe: Stripe, payout: Stripe.Payout) {
  const linked = (await stripe.balanceTransactions.list({ payout: payout.id, limit: 100 })).data
    .filter((transaction) => transaction.source !== payout.id || transaction.type !== 'payout');
  return { types: linked.map((transaction) => transaction.type).sort(),
    netSum: linked.reduce((sum, transaction) => sum + transaction.net, 0) };
}

describe('the transactions an automatic payout is linked to', () => {
  it('sum exactly to its amount, a remainder below the payout step held for the next payout', async () => {
    const created = await penny.merchants.createMerchant('HUF Platform');
    const stripe = penny.stripeFor(created.secretKey);
    await stripe.paymentIntents.create({ amount: 17550, currency: 'huf', payment_method: 'pm_card_bypassPending',
      confirm: true });
    await setPlatformPayoutSchedule(penny.pool, created.merchant.id, { interval: 'daily' });
    await nextDay();
    await scheduler().runDue();

    const [payout] = (await stripe.payouts.list({ limit: 10 })).data;
    if (payout === undefined) throw new Error('no payout');
    // 17550 less Penny's fee (2.9% + 30 = 539) nets 17011: whole forints pay 17000, 11 stays.
    expect(payout.amount).toBe(17000);
    expect(await paidBy(stripe, payout)).toEqual({ types: ['charge', 'payout_minimum_balance_hold'],
      netSum: 17000 });
    expect(available(await stripe.balance.retrieve(), 'huf')).toBe(11);

    // The next payout takes the remainder back with what came in since.
    await stripe.paymentIntents.create({ amount: 20000, currency: 'huf', payment_method: 'pm_card_bypassPending',
      confirm: true });
    await nextDay();
    await scheduler().runDue();
    const next = (await stripe.payouts.list({ limit: 10 })).data.find((item) => item.id !== payout.id);
    if (next === undefined) throw new Error('no second payout');
    const paid = await paidBy(stripe, next);
    expect(paid.netSum).toBe(next.amount);
    expect(paid.types).toContain('payout_minimum_balance_release');
  });

  it('are those read in the payout\'s own transaction, with what became available after the scheduler\'s read', async () => {
    const { stripe, merchantId, funds } = await fundedPlatform('Late Funds Platform');
    await stripe.paymentIntents.create({ amount: 5_000, currency: 'usd', payment_method: 'pm_card_bypassPending',
      confirm: true });
    const now = available(await stripe.balance.retrieve());
    expect(now).toBeGreaterThan(funds);
    // The scheduler read `funds`; another charge became available before the payout's transaction.
    const payout = await penny.payouts.payOutAutomatically({ owner: { merchantId, accountId: merchantId },
      currency: 'usd', availableMinor: BigInt(funds), day: new Date(nowMs()).toISOString().slice(0, 10) });
    const retrieved = await stripe.payouts.retrieve(payout?.id as string);
    expect(retrieved.amount).toBe(now);
    expect(await paidBy(stripe, retrieved)).toEqual({ types: ['charge', 'charge'], netSum: now });
  });
});

describe('a remainder an automatic payout left before it was linked to exactly what it pays', () => {
  it('is paid by the next automatic payout once migration 0051 has run', async () => {
    const created = await penny.merchants.createMerchant('Old Remainder Platform');
    const merchantId = created.merchant.id;
    const stripe = penny.stripeFor(created.secretKey);
    await stripe.paymentIntents.create({ amount: 17550, currency: 'huf', payment_method: 'pm_card_bypassPending',
      confirm: true });
    await setPlatformPayoutSchedule(penny.pool, merchantId, { interval: 'daily' });
    await nextDay();
    await scheduler().runDue();
    const [old] = (await stripe.payouts.list({ limit: 10 })).data;
    if (old === undefined) throw new Error('no payout');
    expect(old.amount).toBe(17000);
    // The rows as the code before did write them: the charge (17011) and the payout's own (−17000)
    // linked, no hold and no release, so 11 stays available with no unlinked transaction.
    await penny.pool.query(`DELETE FROM balance_transactions WHERE merchant_id = $1 AND source_id = $2
       AND type IN ('payout_minimum_balance_hold', 'payout_minimum_balance_release')`, [merchantId, old.id]);
    expect(available(await stripe.balance.retrieve(), 'huf')).toBe(11);

    const migration = await fs.readFile(fileURLToPath(new URL(
      '../../src/db/migrations/0051_payout_remainders_before_0048.sql', import.meta.url)), 'utf8');
    await penny.pool.query(migration);
    await penny.pool.query(migration);
    expect(await paidBy(stripe, old)).toEqual({ types: ['charge', 'payout_minimum_balance_hold'], netSum: 17000 });

    // 20000 nets 19390; with the old 11, 19401: the payout is 19400 and 1 is held again.
    await stripe.paymentIntents.create({ amount: 20000, currency: 'huf', payment_method: 'pm_card_bypassPending',
      confirm: true });
    await nextDay();
    await scheduler().runDue();
    const next = (await stripe.payouts.list({ limit: 10 })).data.find((item) => item.id !== old.id);
    if (next === undefined) throw new Error('no second payout');
    expect(next.amount).toBe(19400);
    const paid = await paidBy(stripe, next);
    expect(paid.netSum).toBe(19400);
    expect(paid.types).toEqual(['charge', 'payout_minimum_balance_hold', 'payout_minimum_balance_release']);
    expect(available(await stripe.balance.retrieve(), 'huf')).toBe(1);
    const unpaid = await penny.pool.query(`SELECT sum(net_minor)::int AS net FROM balance_transactions
       WHERE merchant_id = $1 AND payout_id IS NULL AND status = 'available'`, [merchantId]);
    expect(unpaid.rows[0].net).toBe(1);
  });
});

describe('an automatic payout past its bound of transactions', () => {
  /** The bounds are constants; these tests lower them to two transactions, read two a statement. */
  const mutableLimits = limits as unknown as { payoutLinkBatchRowsMax: number; automaticPayoutTransactionsMax: number };
  const saved = { ...mutableLimits };
  afterEach(() => {
    mutableLimits.payoutLinkBatchRowsMax = saved.payoutLinkBatchRowsMax;
    mutableLimits.automaticPayoutTransactionsMax = saved.automaticPayoutTransactionsMax;
  });

  async function charge(stripe: Stripe, amount: number): Promise<Stripe.PaymentIntent> {
    return stripe.paymentIntents.create({ amount, currency: 'usd', payment_method: 'pm_card_bypassPending',
      confirm: true });
  }

  function payOut(merchantId: string, availableMinor: number) {
    return penny.payouts.payOutAutomatically({ owner: { merchantId, accountId: merchantId }, currency: 'usd',
      availableMinor: BigInt(availableMinor), day: new Date(nowMs()).toISOString().slice(0, 10) });
  }

  it('reads on while the oldest net to nothing (a refund older than the capture), and pays the whole', async () => {
    const created = await penny.merchants.createMerchant('Refunds First Platform');
    const stripe = penny.stripeFor(created.secretKey);
    const first = await charge(stripe, 10_000);
    await stripe.refunds.create({ payment_intent: first.id });
    await charge(stripe, 5_000);
    // 9680 − 10000 + 4825: the oldest two net −320, all three 4505.
    const funds = available(await stripe.balance.retrieve());
    expect(funds).toBe(4505);
    mutableLimits.payoutLinkBatchRowsMax = 2;
    mutableLimits.automaticPayoutTransactionsMax = 2;
    const payout = await payOut(created.merchant.id, funds);
    const retrieved = await stripe.payouts.retrieve(payout?.id as string);
    expect(retrieved).toMatchObject({ amount: 4505, automatic: true });
    expect(await paidBy(stripe, retrieved)).toEqual({ types: ['charge', 'charge', 'refund'], netSum: 4505 });
    expect(available(await stripe.balance.retrieve())).toBe(0);
  });

  it('pays no more than all unpaid transactions net to when newer ones are refunds, holding the rest', async () => {
    const created = await penny.merchants.createMerchant('Refunds Last Platform');
    const stripe = penny.stripeFor(created.secretKey);
    await charge(stripe, 10_000);
    const second = await charge(stripe, 5_000);
    await stripe.refunds.create({ payment_intent: second.id });
    // The oldest two net 9680 + 4825 = 14505; with the refund, 9505 is all there is.
    const funds = available(await stripe.balance.retrieve());
    expect(funds).toBe(9505);
    mutableLimits.payoutLinkBatchRowsMax = 2;
    mutableLimits.automaticPayoutTransactionsMax = 2;
    const payout = await payOut(created.merchant.id, funds);
    const retrieved = await stripe.payouts.retrieve(payout?.id as string);
    expect(retrieved).toMatchObject({ amount: 9505, automatic: true });
    expect(await paidBy(stripe, retrieved)).toEqual({ types: ['charge', 'charge', 'payout_minimum_balance_hold'],
      netSum: 9505 });
    expect(available(await stripe.balance.retrieve())).toBe(0);
    // The release (+5000) and the refund (−5000) are left for the next payout: they net to the balance.
    const unpaid = await penny.pool.query(`SELECT type, net_minor::int AS net FROM balance_transactions
       WHERE merchant_id = $1 AND payout_id IS NULL AND status = 'available' ORDER BY type`, [created.merchant.id]);
    expect(unpaid.rows).toEqual([{ type: 'payout_minimum_balance_release', net: 5000 }, { type: 'refund', net: -5000 }]);
  });
});

describe('a payout schedule', () => {
  /** Whether the worker's query (accountsDueOn) finds an account of this schedule due on the day. */
  async function dueOn(schedule: Stripe.AccountCreateParams.Settings.Payouts.Schedule, day: string):
  Promise<boolean> {
    const created = await penny.merchants.createMerchant(`Schedule ${day}`);
    const account = await penny.stripeFor(created.secretKey).accounts.create({ type: 'custom', country: 'US',
      settings: { payouts: { schedule } } });
    const due = await accountsDueOn(penny.pool, payoutDayOf(Date.parse(`${day}T12:00:00Z`)),
      { after: { merchantId: created.merchant.id, accountId: '' }, limit: 10 });
    return due.some((item) => item.accountId === account.id);
  }

  it('monthly on a day past the month\'s end is due on the month\'s last day', async () => {
    const on31 = { interval: 'monthly', monthly_anchor: 31 } as const;
    expect(await dueOn(on31, '2027-04-30')).toBe(true);
    expect(await dueOn(on31, '2027-04-29')).toBe(false);
    expect(await dueOn(on31, '2027-02-28')).toBe(true);
    expect(await dueOn({ interval: 'monthly', monthly_anchor: 29 }, '2028-02-29')).toBe(true);
    expect(await dueOn({ interval: 'monthly', monthly_anchor: 30 }, '2028-02-29')).toBe(true);
    expect(await dueOn({ interval: 'monthly', monthly_anchor: 15 }, '2027-05-15')).toBe(true);
    expect(await dueOn({ interval: 'monthly', monthly_anchor: 15 }, '2027-05-31')).toBe(false);
    expect(await dueOn(on31, '2027-05-31')).toBe(true);
  });

  it('weekly is due on its weekday, daily every day, manual never', async () => {
    expect(payoutDayOf(Date.parse('2027-01-06T00:00:00Z')).weekday).toBe('wednesday');
    expect(await dueOn({ interval: 'weekly', weekly_anchor: 'wednesday' }, '2027-01-06')).toBe(true);
    expect(await dueOn({ interval: 'weekly', weekly_anchor: 'monday' }, '2027-01-06')).toBe(false);
    expect(await dueOn({ interval: 'daily' }, '2027-01-06')).toBe(true);
    expect(await dueOn({ interval: 'manual' }, '2027-01-06')).toBe(false);
  });

  it('of a platform is manual until set, and GET /v1/account shows it', async () => {
    const created = await penny.merchants.createMerchant('Scheduled Platform');
    const stripe = penny.stripeFor(created.secretKey);
    expect((await stripe.accounts.retrieveCurrent()).settings?.payouts?.schedule)
      .toEqual({ delay_days: 0, interval: 'manual' });
    await setPlatformPayoutSchedule(penny.pool, created.merchant.id, { interval: 'monthly', monthlyAnchor: 31 });
    expect((await stripe.accounts.retrieveCurrent()).settings?.payouts?.schedule)
      .toEqual({ delay_days: 0, interval: 'monthly', monthly_anchor: 31 });
  });
});
