import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { advanceClock, configureClock, nowMs } from '../../src/clock.js';
import { ConnectorRegistry } from '../../src/connectors/connector.js';
import { createLogger } from '../../src/logger.js';
import { payOutSettlementBatches } from '../../src/sandbox-psp/psp-settlement.js';
import { SettlementService } from '../../src/settlement/settlement-service.js';
import { serveTestLedger, settlementOf, type ServedLedger } from '../support/stripe.js';

/**
 * Settlement, the seed's "settled": the PSP's settlement report says which captures settled, and
 * their funds move from pending to available, once, however often the report is read.
 */
let penny: ServedLedger;
let stripe: Stripe;
let merchantId: string;
let settlement: SettlementService;

beforeAll(async () => {
  configureClock('controlled');
  penny = await serveTestLedger();
  const created = await penny.merchants.createMerchant('Settled Shop');
  merchantId = created.merchant.id;
  stripe = penny.stripeFor(created.secretKey);
  settlement = settlementOf(penny);
});

afterAll(() => {
  configureClock('system');
});

function today(): string {
  return new Date(nowMs()).toISOString().slice(0, 10);
}

async function chargeTransactionOf(intent: Stripe.PaymentIntent) {
  const { data } = await stripe.balanceTransactions.list({ source: intent.latest_charge as string, type: 'charge' });
  expect(data).toHaveLength(1);
  return data[0] as Stripe.BalanceTransaction;
}

async function balanceEvents(): Promise<number> {
  const result = await penny.pool.query(`SELECT 1 FROM events WHERE merchant_id = $1 AND type = 'balance.available'`,
    [merchantId]);
  return result.rows.length;
}

describe('a settlement report', () => {
  it('makes the funds of the captures it names available, as of its day, with balance.available', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 7000, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true });
    const eventsBefore = await balanceEvents();
    const before = await stripe.balance.retrieve();
    const summary = await settlement.pull({ connectorId: 'sandbox', day: today() });
    expect(summary.settled).toBeGreaterThanOrEqual(1);
    const transaction = await chargeTransactionOf(intent);
    expect(transaction).toMatchObject({ status: 'available',
      available_on: Math.floor(Date.parse(`${today()}T00:00:00Z`) / 1000) });
    const after = await stripe.balance.retrieve();
    const available = (balance: Stripe.Balance) => balance.available.find((item) => item.currency === 'usd')?.amount ?? 0;
    expect(available(after) - available(before)).toBe(transaction.net);
    expect(await balanceEvents()).toBe(eventsBefore + 1);
  });

  it('read again moves nothing again', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 3100, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true });
    await settlement.pull({ connectorId: 'sandbox', day: today() });
    const balance = await stripe.balance.retrieve();
    const again = await settlement.pull({ connectorId: 'sandbox', day: today() });
    expect(again.settled).toBe(0);
    expect(await stripe.balance.retrieve()).toEqual(balance);
    const entries = await penny.pool.query('SELECT 1 FROM ledger_entries WHERE external_reference = $1',
      [`penny:charge:${intent.latest_charge as string}:available`]);
    expect(entries.rows).toHaveLength(1);
  });

  it('settles a manual capture named by its charge', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 4200, currency: 'eur', payment_method: 'pm_card_visa',
      confirm: true, capture_method: 'manual' });
    await stripe.paymentIntents.capture(intent.id, { amount_to_capture: 4000 });
    await settlement.pull({ connectorId: 'sandbox', day: today() });
    expect(await chargeTransactionOf(intent)).toMatchObject({ status: 'available', amount: 4000 });
  });

  it('of a day that names no capture of Penny\'s leaves pending funds pending', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 2600, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true });
    const summary = await settlement.pull({ connectorId: 'sandbox', day: '2020-01-01' });
    expect(summary).toMatchObject({ settled: 0, alreadyAvailable: 0 });
    expect((await chargeTransactionOf(intent)).status).toBe('pending');
  });
});

describe('the settlement worker', () => {
  it('makes a day\'s funds available once the day is over, and reads it again while the PSP has not paid it', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 5200, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true });
    const day = today();
    advanceClock(86_400_000);
    await settlement.pullClosedDays();
    expect((await chargeTransactionOf(intent)).status).toBe('available');
    const pulled = await penny.pool.query('SELECT 1 FROM settlement_pulls WHERE connector = $1 AND day = $2',
      ['sandbox', day]);
    expect(pulled.rows).toHaveLength(0);
    await payOutSettlementBatches(penny.pool, day);
    expect(await settlement.pullClosedDays()).toBeGreaterThanOrEqual(1);
    const marked = await penny.pool.query('SELECT 1 FROM settlement_pulls WHERE connector = $1 AND day = $2',
      ['sandbox', day]);
    expect(marked.rows).toHaveLength(1);
  });

  it('pulls each closed day once the day is over and paid, and not again', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 5300, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true });
    const day = today();
    advanceClock(86_400_000);
    await payOutSettlementBatches(penny.pool, day);
    expect(await settlement.pullClosedDays()).toBeGreaterThanOrEqual(1);
    expect((await chargeTransactionOf(intent)).status).toBe('available');
    const pulled = await penny.pool.query('SELECT 1 FROM settlement_pulls WHERE connector = $1 AND day = $2',
      ['sandbox', day]);
    expect(pulled.rows).toHaveLength(1);
    expect(await settlement.pullClosedDays()).toBe(0);
  });

  it('catches up, from the last day it pulled, the days Penny was down beyond the look-back', async () => {
    // Up to date: every closed day so far pulled.
    advanceClock(86_400_000);
    await payOutSettlementBatches(penny.pool, today());
    advanceClock(86_400_000);
    await settlement.pullClosedDays();
    const intent = await stripe.paymentIntents.create({ amount: 4700, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true });
    const day = today();
    // Penny is down for six days (twice the look-back); the PSP pays the day's batch meanwhile.
    advanceClock(6 * 86_400_000);
    await payOutSettlementBatches(penny.pool, day);
    await settlement.pullClosedDays();
    expect((await chargeTransactionOf(intent)).status).toBe('available');
    const payout = await penny.pool.query('SELECT 1 FROM ledger_entries WHERE external_reference LIKE $1',
      [`penny:psp_payout:sandbox:%`]);
    expect(payout.rows.length).toBeGreaterThanOrEqual(1);
    const pulled = await penny.pool.query('SELECT 1 FROM settlement_pulls WHERE connector = $1 AND day = $2',
      ['sandbox', day]);
    expect(pulled.rows).toHaveLength(1);
    expect(await settlement.pullClosedDays()).toBe(0);
  });

  it('catches up at most seven older days a tick, oldest first, with the look-back\'s days', async () => {
    await settlement.pullClosedDays();
    const firstMissed = today();
    advanceClock(12 * 86_400_000);
    const firstTick = await settlement.pullClosedDays();
    const pulled = await penny.pool.query<{ day: string }>(`SELECT min(day)::text AS day FROM settlement_pulls
       WHERE connector = 'sandbox' AND day >= $1`, [firstMissed]);
    const secondTick = await settlement.pullClosedDays();

    expect(firstTick).toBe(10);
    expect(pulled.rows[0]?.day).toBe(firstMissed);
    expect(secondTick).toBe(2);
  });

  it('pulls the look-back\'s days while seven older days keep failing', async () => {
    await settlement.pullClosedDays();
    // Seven days whose batches the PSP has not paid: read each tick, never marked pulled.
    const unpaid: string[] = [];
    for (let index = 0; index < 7; index += 1) {
      await stripe.paymentIntents.create({ amount: 3100 + index, currency: 'usd', payment_method: 'pm_card_visa',
        confirm: true });
      unpaid.push(today());
      advanceClock(86_400_000);
    }
    advanceClock(2 * 86_400_000);
    const intent = await stripe.paymentIntents.create({ amount: 3900, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true });
    const day = today();
    await payOutSettlementBatches(penny.pool, day);
    advanceClock(86_400_000);
    await settlement.pullClosedDays();
    const marked = await penny.pool.query('SELECT 1 FROM settlement_pulls WHERE connector = $1 AND day = $2',
      ['sandbox', day]);
    expect(marked.rows).toHaveLength(1);
    for (const stuck of unpaid) await payOutSettlementBatches(penny.pool, stuck);
    await settlement.pullClosedDays();
    expect((await chargeTransactionOf(intent)).status).toBe('available');
  });

  it('pulls, once the PSP pays it, a day left unpulled while later days were pulled, past the look-back', async () => {
    await settlement.pullClosedDays();
    await stripe.paymentIntents.create({ amount: 3800, currency: 'usd', payment_method: 'pm_card_visa', confirm: true });
    const gap = today();
    for (let index = 0; index < 5; index += 1) {
      advanceClock(86_400_000);
      await settlement.pullClosedDays();
    }
    await payOutSettlementBatches(penny.pool, gap);
    advanceClock(2 * 3_600_000);
    await settlement.pullClosedDays();
    const marked = await penny.pool.query('SELECT 1 FROM settlement_pulls WHERE connector = $1 AND day = $2',
      ['sandbox', gap]);
    expect(marked.rows).toHaveLength(1);
  });

  it('reads the days after one whose report it cannot read, and leaves that one to read again', async () => {
    const broken = today();
    advanceClock(86_400_000);
    const intent = await stripe.paymentIntents.create({ amount: 4100, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true });
    const day = today();
    advanceClock(86_400_000);
    await payOutSettlementBatches(penny.pool, day);
    // The sandbox as it is, but for one day whose report has a line Penny cannot read.
    const sandbox = penny.connectors.get('sandbox');
    const connectors = new ConnectorRegistry();
    connectors.register(Object.assign(Object.create(sandbox) as typeof sandbox, {
      fetchSettlementReport: async (request: { day: string; currency: string }) => request.day === broken
        ? 'Merchant Account,Batch Number\nPenny,not-a-number\n' : sandbox.fetchSettlementReport(request) }));
    const lenient = new SettlementService(penny.pool, { connectors, balances: penny.balances,
      logger: createLogger('silent') });
    await lenient.pullClosedDays();
    expect((await chargeTransactionOf(intent)).status).toBe('available');
    const pulled = await penny.pool.query<{ day: string }>(
      'SELECT day::text AS day FROM settlement_pulls WHERE connector = $1 AND day = ANY($2::date[])',
      ['sandbox', [broken, day]]);
    expect(pulled.rows.map((row) => row.day)).toEqual([day]);
  });
});
