import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { advanceClock, configureClock } from '../../src/clock.js';
import { parseFaultProfile } from '../../src/sandbox-psp/psp-faults.js';
import { payOutSettlementBatches } from '../../src/sandbox-psp/psp-settlement.js';
import type { BalanceService } from '../../src/balances/balance-service.js';
import { createLogger } from '../../src/logger.js';
import { SettlementService } from '../../src/settlement/settlement-service.js';
import { freshDay } from '../support/days.js';
import { serveTestLedger, settlementOf, type ServedLedger } from '../support/stripe.js';
import { postedOnNormalSide } from '../support/ledger-balances.js';

/**
 * A capture the PSP performed but Penny books only later (its answer lost, recovery books it), after
 * a settlement pull already read the day's report: its funds become available when it is booked, as
 * of the report's day, and what the PSP's payout left in settlement suspense for it goes to the
 * merchant's PSP receivable, once. Each test works on a day of its own.
 */
let penny: ServedLedger;
let stripe: Stripe;
let merchantId: string;
let settlement: SettlementService;

beforeAll(async () => {
  configureClock('controlled');
  penny = await serveTestLedger();
  const created = await penny.merchants.createMerchant('Late Capture Shop');
  merchantId = created.merchant.id;
  stripe = penny.stripeFor(created.secretKey);
  settlement = settlementOf(penny);
});

afterAll(() => {
  configureClock('system');
});

function lostAnswers(operation: 'authorize' | 'capture') {
  penny.sandbox.injector.set(parseFaultProfile({
    script: Array.from({ length: 3 }, () => ({ operation, fault: 'timeout_after' as const })),
  }));
}

function posted(accountId: string): Promise<bigint> {
  return postedOnNormalSide(penny.ledger, accountId);
}

async function receivableAndSuspense(): Promise<[bigint, bigint]> {
  const accounts = await penny.balances.accounts.accountsFor(penny.pool, { ownerId: merchantId, currency: 'USD' });
  const operator = await penny.balances.accounts.operatorAccountsFor(penny.pool, 'USD');
  return [await posted(accounts.psp_receivable), await posted(operator.settlement_suspense)];
}

async function chargeTransaction(intentId: string) {
  const intent = await stripe.paymentIntents.retrieve(intentId);
  expect(intent.status).toBe('succeeded');
  const { data } = await stripe.balanceTransactions.list({ source: intent.latest_charge as string, type: 'charge' });
  expect(data).toHaveLength(1);
  return data[0] as Stripe.BalanceTransaction;
}

/** An automatic capture whose outcome was lost, its day's report pulled before Penny booked it. */
async function pulledBeforeBooked(amount: number): Promise<Stripe.PaymentIntent> {
  const day = freshDay();
  lostAnswers('authorize');
  const intent = await stripe.paymentIntents.create({ amount, currency: 'usd', payment_method: 'pm_card_visa',
    confirm: true });
  penny.sandbox.resetFaults();
  await payOutSettlementBatches(penny.pool, day);
  advanceClock(86_400_000);
  await settlement.pull({ connectorId: 'sandbox', day });
  return intent;
}

/** What settlement_unbooked_lines holds for the lines naming the intent's charge or attempt. */
async function unbookedRecords(intentId: string) {
  return (await penny.pool.query(`SELECT suspense_minor FROM settlement_unbooked_lines
    WHERE connector = 'sandbox' AND merchant_reference IN (SELECT id FROM payment_attempts WHERE payment_intent_id = $1
      UNION SELECT id FROM charges WHERE payment_intent_id = $1)`, [intentId])).rows;
}

describe('a capture booked after its settlement line was pulled', () => {
  it('becomes available when booked, as of the report day, after a manual capture whose answer was lost', async () => {
    const day = freshDay();
    const before = await receivableAndSuspense();
    const intent = await stripe.paymentIntents.create({ amount: 4000, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true, capture_method: 'manual' });
    lostAnswers('capture');
    await expect(stripe.paymentIntents.capture(intent.id)).rejects.toMatchObject({ statusCode: 503 });
    penny.sandbox.resetFaults();
    await payOutSettlementBatches(penny.pool, day);
    advanceClock(86_400_000);
    const pulled = await settlement.pull({ connectorId: 'sandbox', day });
    expect(pulled).toMatchObject({ settled: 0, alreadyAvailable: 0, unmatched: 1, payouts: 1 });

    await penny.recovery.runDue();
    const transaction = await chargeTransaction(intent.id);
    expect(transaction.status).toBe('available');
    expect(new Date(transaction.available_on * 1000).toISOString().slice(0, 10)).toBe(day);
    // The payout credited the charge's receivable its share (the charge was Penny's): no suspense.
    const after = await receivableAndSuspense();
    expect(after[0] - before[0]).toBe(0n);
    expect(after[1] - before[1]).toBe(0n);
    await settlement.pullClosedDays();
    expect((await chargeTransaction(intent.id)).status).toBe('available');
  });

  it('becomes available when booked, and its share leaves settlement suspense once, after an automatic capture whose outcome was unknown', async () => {
    const day = freshDay();
    const before = await receivableAndSuspense();
    lostAnswers('authorize');
    const intent = await stripe.paymentIntents.create({ amount: 5000, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true });
    penny.sandbox.resetFaults();
    expect(intent.status).toBe('processing');
    await payOutSettlementBatches(penny.pool, day);
    advanceClock(86_400_000);
    const pulled = await settlement.pull({ connectorId: 'sandbox', day });
    expect(pulled).toMatchObject({ settled: 0, unmatched: 1, payouts: 1 });
    // Nobody's share yet: the line's net (5000 − the PSP's 2% + 20 = 120) went to suspense.
    const suspended = await receivableAndSuspense();
    expect(suspended[1] - before[1]).toBe(4880n);

    await penny.recovery.runDue();
    const transaction = await chargeTransaction(intent.id);
    expect(transaction.status).toBe('available');
    expect(new Date(transaction.available_on * 1000).toISOString().slice(0, 10)).toBe(day);
    const after = await receivableAndSuspense();
    expect(after[0] - before[0]).toBe(0n);
    expect(after[1] - before[1]).toBe(0n);
    // Read again, nothing moves twice.
    await settlement.pull({ connectorId: 'sandbox', day });
    expect(await receivableAndSuspense()).toEqual(after);
    const balance = await stripe.balance.retrieve();
    expect(balance.pending.find((entry) => entry.currency === 'usd')?.amount ?? 0).toBe(0);
  });

  it('leaves its share in suspense for its booking to attribute even when recording it failed once with the payout', async () => {
    const day = freshDay();
    const before = await receivableAndSuspense();
    lostAnswers('authorize');
    const intent = await stripe.paymentIntents.create({ amount: 3000, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true });
    penny.sandbox.resetFaults();
    await payOutSettlementBatches(penny.pool, day);
    advanceClock(86_400_000);
    // Recording the line's suspense fails once, as a crash between the payout and it would.
    await penny.pool.query(`CREATE FUNCTION test_fail_suspense() RETURNS trigger LANGUAGE plpgsql AS
      $$ BEGIN RAISE EXCEPTION 'suspense not recorded'; END $$`);
    await penny.pool.query(`CREATE TRIGGER test_fail_suspense BEFORE UPDATE ON settlement_unbooked_lines
      FOR EACH ROW WHEN (NEW.suspense_minor IS NOT NULL) EXECUTE FUNCTION test_fail_suspense()`);
    try {
      await settlement.pull({ connectorId: 'sandbox', day }).catch(() => undefined);
    } finally {
      await penny.pool.query('DROP TRIGGER test_fail_suspense ON settlement_unbooked_lines');
      await penny.pool.query('DROP FUNCTION test_fail_suspense()');
    }
    await settlement.pull({ connectorId: 'sandbox', day });

    await penny.recovery.runDue();
    expect((await chargeTransaction(intent.id)).status).toBe('available');
    const after = await receivableAndSuspense();
    expect(after[0] - before[0]).toBe(0n);
    expect(after[1] - before[1]).toBe(0n);
  });

  it('leaves no record of its line once it is booked and its share has left suspense', async () => {
    const intent = await pulledBeforeBooked(2000);
    expect(await unbookedRecords(intent.id)).toEqual([{ suspense_minor: 1940n }]);

    await penny.recovery.runDue();
    expect((await chargeTransaction(intent.id)).status).toBe('available');
    await settlement.pullClosedDays();
    expect(await unbookedRecords(intent.id)).toEqual([]);
  });

  it('has its record pruned on a later run when a thousand records come before it, a run reading at most a thousand', async () => {
    const intent = await pulledBeforeBooked(2200);
    await penny.recovery.runDue();
    expect((await chargeTransaction(intent.id)).status).toBe('available');
    // Lines of references that are not Penny's never resolve; they sort before Penny's ids.
    await penny.pool.query(`INSERT INTO settlement_unbooked_lines (connector, merchant_reference, available_on)
      SELECT 'sandbox', 'aaa-foreign-' || lpad(n::text, 4, '0'), now() FROM generate_series(1, 1000) n`);
    try {
      expect(await settlement.pruneResolvedLines()).toBe(0);
      expect(await unbookedRecords(intent.id)).toHaveLength(1);
      expect(await settlement.pruneResolvedLines()).toBe(1);
      expect(await unbookedRecords(intent.id)).toHaveLength(0);
    } finally {
      await penny.pool.query("DELETE FROM settlement_unbooked_lines WHERE merchant_reference LIKE 'aaa-foreign-%'");
    }
  });

  it('keeps the record of its line while its capture is not booked', async () => {
    const intent = await pulledBeforeBooked(2100);
    await settlement.pullClosedDays();
    expect(await unbookedRecords(intent.id)).toHaveLength(1);
    await penny.recovery.runDue();
  });

  it('is its merchant\'s share in the payout when booked, and its record pruned, while the payout was being posted', async () => {
    const day = freshDay();
    const before = await receivableAndSuspense();
    lostAnswers('authorize');
    const intent = await stripe.paymentIntents.create({ amount: 2200, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true });
    penny.sandbox.resetFaults();
    await payOutSettlementBatches(penny.pool, day);
    advanceClock(86_400_000);
    // The capture is booked, and its line's record pruned, after the payout found no charge for the
    // line and before it takes the line's lock (the second lock taken for the reference in the pull).
    const locks = new Map<string, number>();
    let raced = false;
    const balances = Object.create(penny.balances, { lockSettlementReferences: {
      value: async (db: Parameters<BalanceService['lockSettlementReferences']>[0],
        key: { connectorId: string; references: readonly string[] }) => {
        for (const reference of key.references) {
          const count = (locks.get(reference) ?? 0) + 1;
          locks.set(reference, count);
          if (count === 2 && reference.startsWith('pa_')) {
            await penny.recovery.runDue();
            expect(await settlement.pruneResolvedLines()).toBeGreaterThan(0);
            raced = true;
          }
        }
        return penny.balances.lockSettlementReferences(db, key);
      } } }) as BalanceService;
    const racing = new SettlementService(penny.pool, { connectors: penny.connectors, balances,
      logger: createLogger('silent') });
    expect(await racing.pull({ connectorId: 'sandbox', day })).toMatchObject({ unmatched: 1, payouts: 1 });
    expect(raced).toBe(true);

    expect((await chargeTransaction(intent.id)).status).toBe('available');
    const after = await receivableAndSuspense();
    expect(after[0] - before[0]).toBe(0n);
    expect(after[1] - before[1]).toBe(0n);
  });
});
