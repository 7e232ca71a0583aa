import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { advanceClock, configureClock } from '../../src/clock.js';
import { freshDay, today } from '../support/days.js';
import { payOutSettlementBatches } from '../../src/sandbox-psp/psp-settlement.js';
import type { SandboxWebhookSender } from '../../src/sandbox-psp/psp-webhooks.js';
import { ConnectorRegistry, type Connector } from '../../src/connectors/connector.js';
import { createLogger } from '../../src/logger.js';
import { SettlementService } from '../../src/settlement/settlement-service.js';
import { postedOnNormalSide } from '../support/ledger-balances.js';
import {
  deliverSandboxWebhooks, payOutPending, sandboxSenderOf, serveTestLedger, settlementOf, settlementPullWithPlant,
  type ServedLedger,
} from '../support/stripe.js';

/**
 * The PSP's payout to the operator: the settlement report's MerchantPayout line (the PSP paying a
 * settled batch, net of its fees, to the operator's bank) is posted once the day has closed, as one
 * entry of its own that debits the operator's bank account and credits each merchant's PSP
 * receivable its share of the batch. After it, what the PSP owed for the settled charges is paid:
 * each merchant's PSP receivable is zero, or the difference between the fee the PSP kept and the
 * fee Penny expected. Each test works on a day of its own.
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

/** Closes `day`: the clock moves to the next day, and the sandbox PSP pays the day's batches out. */
async function closeAndSettle(day: string) {
  advanceClock(86_400_000);
  expect(today() > day).toBe(true);
  return payOutSettlementBatches(penny.pool, day);
}

async function merchant(name: string): Promise<{ id: string; stripe: Stripe }> {
  const created = await penny.merchants.createMerchant(name);
  return { id: created.merchant.id, stripe: penny.stripeFor(created.secretKey) };
}

function posted(accountId: string): Promise<bigint> {
  return postedOnNormalSide(penny.ledger, accountId);
}

async function receivable(ownerId: string, currency = 'USD'): Promise<bigint> {
  return posted((await penny.balances.accounts.accountsFor(penny.pool, { ownerId, currency })).psp_receivable);
}

async function operatorBank(currency = 'USD'): Promise<bigint> {
  return posted((await penny.balances.accounts.operatorAccountsFor(penny.pool, currency)).operator_bank);
}

async function expectTrialBalanceZero(): Promise<void> {
  const trial = await penny.request({ method: 'GET', url: '/v1/ledger/trial_balance' });
  for (const currency of trial.body.currencies as { currency: string; difference: number }[]) {
    expect(currency.difference, currency.currency).toBe(0);
  }
}

async function entriesOf(reference: string): Promise<number> {
  const result = await penny.pool.query('SELECT 1 FROM ledger_entries WHERE external_reference = $1', [reference]);
  return result.rows.length;
}

async function charge(stripe: Stripe, amount: number, options: Partial<Stripe.PaymentIntentCreateParams> = {}) {
  return stripe.paymentIntents.create({ amount, currency: 'usd', payment_method: 'pm_card_visa', confirm: true,
    ...options });
}

/** The sandbox opens a dispute on the charge, and Penny books it from the PSP's webhook. */
async function dispute(chargeId: string): Promise<void> {
  const row = await penny.pool.query<{ psp_reference: string }>('SELECT psp_reference FROM charges WHERE id = $1',
    [chargeId]);
  const response = await fetch(`${penny.sandbox.url}/control/disputes`, { method: 'POST',
    headers: { 'content-type': 'application/json' }, body: JSON.stringify({ psp_reference: row.rows[0]?.psp_reference }) });
  expect(response.status).toBe(200);
  await deliverSandboxWebhooks(penny, sender);
}

/** Pulls `day` from a report whose MerchantPayout names no payout reference (its Modification Reference blank). */
function pullWithoutPayoutReference(day: string) {
  const blanked: Connector = Object.create(penny.sandbox.connector, { fetchSettlementReport: {
    value: async (input: { day: string; currency?: string }) => {
      const report = await penny.sandbox.connector.fetchSettlementReport(input);
      const [header = '', ...rows] = report.split('\n');
      const at = header.split(',').indexOf('Modification Reference');
      return [header, ...rows.map((row) => {
        const fields = row.split(',');
        if (fields.includes('MerchantPayout')) fields[at] = '';
        return fields.join(',');
      })].join('\n');
    } } }) as Connector;
  const connectors = new ConnectorRegistry();
  connectors.register(blanked);
  return new SettlementService(penny.pool, { connectors, balances: penny.balances, logger: createLogger('silent') })
    .pull({ connectorId: 'sandbox', day });
}

function pullWithWrongFee(day: string) {
  return settlementPullWithPlant(penny, day, ['wrong_fee']);
}

describe('the PSP\'s payout of a closed day', () => {
  it('is posted to the operator\'s bank, and each merchant\'s PSP receivable for the settled charges is paid', async () => {
    const day = freshDay();
    const first = await merchant('Payout Shop A');
    const second = await merchant('Payout Shop B');
    const automatic = await charge(first.stripe, 7000);
    const manual = await charge(first.stripe, 4200, { capture_method: 'manual' });
    await first.stripe.paymentIntents.capture(manual.id, { amount_to_capture: 4000 });
    await first.stripe.refunds.create({ payment_intent: automatic.id, amount: 1000 });
    const disputed = await charge(second.stripe, 3000);
    await charge(second.stripe, 9000);
    await dispute(disputed.latest_charge as string);
    const bankBefore = await operatorBank();

    const payouts = await closeAndSettle(day);
    const usd = payouts.find((payout) => payout.currency === 'USD');
    expect(usd?.amount_minor).toBeGreaterThan(0n);
    const summary = await settlement.pull({ connectorId: 'sandbox', day });

    expect(summary).toMatchObject({ payouts: 1, payoutsAlreadyPosted: 0 });
    expect(await operatorBank() - bankBefore).toBe(usd?.amount_minor);
    expect(await receivable(first.id)).toBe(0n);
    expect(await receivable(second.id)).toBe(0n);
    expect(await entriesOf(`penny:psp_payout:sandbox:${usd?.reference ?? ''}`)).toBe(1);
    await expectTrialBalanceZero();
  });

  it('pulled again posts nothing again', async () => {
    const day = freshDay();
    const shop = await merchant('Payout Twice Shop');
    await charge(shop.stripe, 5100);
    const [payout] = await closeAndSettle(day);
    await settlement.pull({ connectorId: 'sandbox', day });
    const bank = await operatorBank();

    const again = await settlement.pull({ connectorId: 'sandbox', day });

    expect(again).toMatchObject({ payouts: 0, payoutsAlreadyPosted: 1 });
    expect(await operatorBank()).toBe(bank);
    expect(await receivable(shop.id)).toBe(0n);
    expect(await entriesOf(`penny:psp_payout:sandbox:${payout?.reference ?? ''}`)).toBe(1);
    await expectTrialBalanceZero();
  });

  it('of a day still open is not posted: the batch may still grow', async () => {
    const day = freshDay();
    const shop = await merchant('Open Day Shop');
    await charge(shop.stripe, 2300);
    const bank = await operatorBank();

    const summary = await settlement.pull({ connectorId: 'sandbox', day });

    expect(summary).toMatchObject({ settled: 1, payouts: 0, payoutsAlreadyPosted: 0 });
    expect(await operatorBank()).toBe(bank);
  });

  it('leaves on the PSP receivable the difference between the fee the PSP kept and the fee Penny expected', async () => {
    const day = freshDay();
    const shop = await merchant('Wrong Fee Shop');
    await charge(shop.stripe, 6400);
    await closeAndSettle(day);
    const pulled = await pullWithWrongFee(day);

    expect(pulled.payouts).toBe(1);
    expect(await receivable(shop.id)).toBe(7n);
    await expectTrialBalanceZero();
  });

  it('posted once stands: a later report of the same payout, read differently, posts nothing', async () => {
    const day = freshDay();
    const shop = await merchant('Reread Shop');
    await charge(shop.stripe, 3300);
    const [payout] = await closeAndSettle(day);
    await pullWithWrongFee(day);
    const bank = await operatorBank();

    const reread = await settlement.pull({ connectorId: 'sandbox', day });

    expect(reread).toMatchObject({ payouts: 0, payoutsAlreadyPosted: 1 });
    expect(await operatorBank()).toBe(bank);
    expect(await receivable(shop.id)).toBe(7n);
    expect(await entriesOf(`penny:psp_payout:sandbox:${payout?.reference ?? ''}`)).toBe(1);
  });

  it('is what is left of the batch once the PSP has paid the merchants\' payouts: every receivable closes at zero', async () => {
    const day = freshDay();
    const shop = await merchant('Paid Out Batch Shop');
    await charge(shop.stripe, 10_000);
    await charge(shop.stripe, 4000);
    await closeAndSettle(day);
    await settlement.pull({ connectorId: 'sandbox', day });
    const payDay = today();
    await charge(shop.stripe, 6000);
    const payout = await shop.stripe.payouts.create({ amount: 5000, currency: 'usd' });
    await payOutPending(penny, sender);
    expect((await shop.stripe.payouts.retrieve(payout.id)).status).toBe('paid');
    const bankBefore = await operatorBank();

    const [batch] = await closeAndSettle(payDay);
    const pulled = await settlement.pull({ connectorId: 'sandbox', day: payDay });

    // The day's capture nets 6000 − (2% + 20) = 5860; the PSP paid 5000 of it to the merchant.
    expect(batch?.amount_minor).toBe(860n);
    expect(pulled.payouts).toBe(1);
    expect(await operatorBank() - bankBefore).toBe(860n);
    expect(await receivable(shop.id)).toBe(0n);
    await expectTrialBalanceZero();
  });

  it('of a day whose merchant payouts exceed what it took in is collected from the operator\'s bank, and the receivable closes at zero', async () => {
    const day = freshDay();
    const shop = await merchant('Collected Batch Shop');
    await charge(shop.stripe, 10_000);
    await closeAndSettle(day);
    await settlement.pull({ connectorId: 'sandbox', day });
    const payDay = today();
    const payout = await shop.stripe.payouts.create({ amount: 6000, currency: 'usd' });
    await payOutPending(penny, sender);
    expect((await shop.stripe.payouts.retrieve(payout.id)).status).toBe('paid');
    const bankBefore = await operatorBank();

    const [batch] = await closeAndSettle(payDay);
    const pulled = await settlement.pull({ connectorId: 'sandbox', day: payDay });

    expect(batch?.amount_minor).toBe(-6000n);
    expect(pulled.payouts).toBe(1);
    expect(await operatorBank() - bankBefore).toBe(-6000n);
    expect(await receivable(shop.id)).toBe(0n);
    await expectTrialBalanceZero();
  });

  it('of a day collected from the operator\'s bank beyond what the books hold there is refused with nothing posted, and posted once a later payout covers it', async () => {
    // Euros: no other test here pays the operator in them, so its bank starts at zero.
    const shop = await merchant('Uncovered Collection Shop');
    const day = freshDay();
    const disputed = await charge(shop.stripe, 10_000, { currency: 'eur' });
    await dispute(disputed.latest_charge as string);
    const [collection] = await closeAndSettle(day);
    expect(collection?.amount_minor).toBeLessThan(0n);

    await expect(settlement.pull({ connectorId: 'sandbox', day })).rejects.toMatchObject({ code: 'insufficient_funds' });
    expect(await operatorBank('EUR')).toBe(0n);
    expect(await entriesOf(`penny:psp_payout:sandbox:${collection?.reference}`)).toBe(0);

    const nextDay = today();
    await charge(shop.stripe, 20_000, { currency: 'eur' });
    const [paid] = await closeAndSettle(nextDay);
    await settlement.pull({ connectorId: 'sandbox', day: nextDay });
    const again = await settlement.pull({ connectorId: 'sandbox', day });

    expect(again.payouts).toBe(1);
    expect(await operatorBank('EUR')).toBe((paid?.amount_minor ?? 0n) + (collection?.amount_minor ?? 0n));
    expect(await receivable(shop.id, 'EUR')).toBe(0n);
    await expectTrialBalanceZero();
  });

  it('of a closed day that names no payout reference is not posted, and the day is left to read again', async () => {
    const day = freshDay();
    const shop = await merchant('Blank Payout Shop');
    await charge(shop.stripe, 2500);
    await closeAndSettle(day);

    const pulled = await pullWithoutPayoutReference(day);

    expect(pulled).toMatchObject({ settled: 1, payouts: 0 });
    const marked = await penny.pool.query('SELECT 1 FROM settlement_pulls WHERE connector = $1 AND day = $2',
      ['sandbox', day]);
    expect(marked.rows).toHaveLength(0);
    // Read again as the PSP writes it, the payout is posted and the day marked pulled.
    expect(await settlement.pull({ connectorId: 'sandbox', day })).toMatchObject({ payouts: 1 });
  });
});
