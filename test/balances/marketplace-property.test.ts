import fc from 'fast-check';
import Stripe from 'stripe';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { advanceClock, configureClock, nowMs } from '../../src/clock.js';
import { checkStoredBalances } from '../../src/ledger/ledger-verify.js';
import { parseFaultProfile } from '../../src/sandbox-psp/psp-faults.js';
import { payOutSettlementBatches } from '../../src/sandbox-psp/psp-settlement.js';
import type { SandboxWebhookSender } from '../../src/sandbox-psp/psp-webhooks.js';
import { SettlementService } from '../../src/settlement/settlement-service.js';
import { deliverSandboxWebhooks, sandboxSenderOf, serveTestLedger, settlementOf, type ServedLedger } from '../support/stripe.js';

/**
 * A marketplace under random sequences of everything that moves its money, through the official
 * SDK against a real Penny and the networked sandbox PSP: a platform and two connected accounts;
 * charges (some `pm_card_bypassPending`), partial captures, refunds, separate transfers and their
 * reversals, settlement days (the sandbox settles a day, Penny pulls its report and posts the
 * PSP's payout, which the operator's bank account then holds; a second pull posts nothing),
 * disputes opened and decided by the sandbox, and payouts (made, canceled after the PSP refused
 * them, moved on by the sandbox's results). After every step, for the platform and
 * each connected account: the Balance equals the ledger's accounts and the sum of its balance
 * transactions' nets per currency and status; no charge is refunded beyond its capture; every
 * stored ledger balance is its postings' sum and the trial balance is zero. Every payout, transfer
 * and reversal is checked against the available balance it was taken from (the guard): made when
 * it fits, refused with balance_insufficient when it does not.
 *
 * Steps are commands (`commands` below): each an arbitrary of its parameters and what it runs, so
 * destination charges and their refunds are one more entry each.
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

afterEach(() => {
  penny.sandbox.resetFaults();
});

afterAll(() => {
  configureClock('system');
});

const currencies = ['usd', 'eur'] as const;
type Currency = (typeof currencies)[number];

/** One run's marketplace and what it has made so far. */
interface World {
  readonly stripe: Stripe;
  readonly platformId: string;
  readonly sellers: readonly string[];
  /** Charges made: whether they wait for a manual capture, and the settlement day they were made on. */
  readonly payments: { id: string; day: number; awaitingCapture: boolean; disputed?: boolean }[];
  readonly transfers: { id: string; destination: string }[];
  readonly disputes: string[];
  /** Settlement days closed in this run: an authorization is captured within its 7 days. */
  day: number;
}

/** Whose balance an operation acts on: the platform (undefined) or a connected account. */
type Owner = string | undefined;

interface Command<P> {
  readonly weight: number;
  readonly parameters: fc.Arbitrary<P>;
  run(world: World, parameters: P): Promise<void>;
}

function command<P>(definition: Command<P>): Command<P> {
  return definition;
}

const index = fc.nat(20);
const permille = fc.integer({ min: 1, max: 1000 });
/** Up to 20% beyond what is there, so the guard is tried. */
const reach = fc.integer({ min: 1, max: 1200 });
const chargeCurrency = fc.constantFrom(...currencies);

function pick<T>(items: readonly T[], at: number): T | undefined {
  return items.length === 0 ? undefined : items[at % items.length];
}

/** Charges captured (or whose capture was tried): what refunds and disputes pick from. */
function captured(world: World): World['payments'] {
  return world.payments.filter((payment) => !payment.awaitingCapture);
}

function ownerOptions(owner: Owner): Stripe.RequestOptions {
  return owner === undefined ? {} : { stripeAccount: owner };
}

async function available(world: World, owner: Owner, currency: Currency): Promise<number> {
  const balance = await world.stripe.balance.retrieve({}, ownerOptions(owner));
  return balance.available.find((item) => item.currency === currency)?.amount ?? 0;
}

/** One of the currencies the owner's Balance holds, or undefined when it holds none. */
async function heldCurrency(world: World, owner: Owner, at: number): Promise<Currency | undefined> {
  const balance = await world.stripe.balance.retrieve({}, ownerOptions(owner));
  return pick(balance.available.map((item) => item.currency as Currency).sort(), at);
}

/**
 * A voluntary outflow of `amount` from an available balance of `before`: made when it fits,
 * refused with balance_insufficient when it does not (the posting-level guard).
 */
async function guarded<T>(label: string, amount: number, before: number, make: () => Promise<T>):
Promise<T | undefined> {
  const outcome = await make().then((made) => ({ made }), (error: unknown) => ({ error }));
  if ('made' in outcome) {
    expect(amount, `${label} of ${amount} was made with ${before} available`).toBeLessThanOrEqual(before);
    return outcome.made;
  }
  expect(outcome.error, `${label} of ${amount} with ${before} available`).toMatchObject({
    raw: { code: 'balance_insufficient' } });
  expect(amount, `${label} of ${amount} was refused with ${before} available`).toBeGreaterThan(before);
  return undefined;
}

/** Due sandbox changes a second apart, and their webhooks processed by Penny. */
async function sandboxResults(): Promise<void> {
  await deliverSandboxWebhooks(penny, sender);
  advanceClock(1000);
  await sender.resolvePending();
  await deliverSandboxWebhooks(penny, sender);
}

async function control(path: string, body: unknown): Promise<{ status: number; body: { psp_reference?: string } }> {
  const response = await fetch(`${penny.sandbox.url}${path}`, { method: 'POST',
    headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, body: await response.json() as { psp_reference?: string } };
}

/** The operator's bank account in a currency, posted (an asset: debits less credits). */
async function operatorBank(currencyCode: string): Promise<bigint> {
  const accounts = await penny.balances.accounts.operatorAccountsFor(penny.pool, currencyCode);
  const [bank] = await penny.ledger.getAccounts([accounts.operator_bank]);
  if (bank === undefined) throw new Error(`no operator bank in ${currencyCode}`);
  return bank.balances.debitsPosted - bank.balances.creditsPosted;
}

function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

const commands = {
  charge: command({
    weight: 5,
    parameters: fc.record({ amount: fc.integer({ min: 100, max: 200_000 }), currency: chargeCurrency,
      manual: fc.boolean(), bypassPending: fc.boolean() }),
    async run(world, step) {
      const intent = await world.stripe.paymentIntents.create({ amount: step.amount, currency: step.currency,
        payment_method: step.bypassPending ? 'pm_card_bypassPending' : 'pm_card_visa', confirm: true,
        capture_method: step.manual ? 'manual' : 'automatic' });
      world.payments.push({ id: intent.id, day: world.day, awaitingCapture: step.manual });
    },
  }),
  destinationCharge: command({
    weight: 3,
    parameters: fc.record({ amount: fc.integer({ min: 100, max: 200_000 }), currency: chargeCurrency,
      seller: index, manual: fc.boolean(), bypassPending: fc.boolean(), split: fc.constantFrom('fee', 'amount', 'all'),
      permille }),
    async run(world, step) {
      const destination = pick(world.sellers, step.seller) as string;
      const part = Math.floor(step.amount * step.permille / 1000);
      const intent = await world.stripe.paymentIntents.create({ amount: step.amount, currency: step.currency,
        payment_method: step.bypassPending ? 'pm_card_bypassPending' : 'pm_card_visa', confirm: true,
        capture_method: step.manual ? 'manual' : 'automatic',
        transfer_data: { destination, ...(step.split === 'amount' ? { amount: Math.max(1, part) } : {}) },
        ...(step.split === 'fee' ? { application_fee_amount: part } : {}) });
      world.payments.push({ id: intent.id, day: world.day, awaitingCapture: step.manual });
    },
  }),
  applicationFeeRefund: command({
    weight: 1,
    parameters: fc.record({ payment: index, reach }),
    async run(world, step) {
      const fees = (await world.stripe.applicationFees.list({ limit: 100 })).data
        .filter((fee) => fee.amount_refunded < fee.amount);
      const fee = pick(fees, step.payment);
      if (fee === undefined) return;
      const left = fee.amount - fee.amount_refunded;
      const amount = Math.max(1, Math.min(left, Math.floor(left * step.reach / 1000)));
      const before = await available(world, undefined, fee.currency as Currency);
      await guarded('application fee refund', amount, before,
        () => world.stripe.applicationFees.createRefund(fee.id, { amount }));
    },
  }),
  capture: command({
    weight: 2,
    parameters: fc.record({ payment: index, permille }),
    async run(world, step) {
      const payment = pick(world.payments.filter((item) => item.awaitingCapture), step.payment);
      if (payment === undefined || world.day - payment.day >= 7) return;
      payment.awaitingCapture = false;
      const intent = await world.stripe.paymentIntents.retrieve(payment.id);
      if (intent.status !== 'requires_capture') return;
      // A destination charge's capture covers what it passes on or keeps as a fee (else it is refused).
      const floor = Math.max(1, intent.transfer_data?.amount ?? 0, intent.application_fee_amount ?? 0);
      const amount = Math.max(floor, Math.floor(intent.amount_capturable * step.permille / 1000));
      await world.stripe.paymentIntents.capture(intent.id, { amount_to_capture: amount });
    },
  }),
  refund: command({
    weight: 2,
    parameters: fc.record({ payment: index, permille, reverseTransfer: fc.boolean(), refundFee: fc.boolean() }),
    async run(world, step) {
      const payment = pick(captured(world), step.payment);
      if (payment === undefined) return;
      const intent = await world.stripe.paymentIntents.retrieve(payment.id);
      if (intent.latest_charge === null) return;
      const charge = await world.stripe.charges.retrieve(intent.latest_charge as string);
      const left = charge.amount_captured - charge.amount_refunded;
      if (left <= 0) return;
      const refund = world.stripe.refunds.create({ payment_intent: intent.id,
        amount: Math.max(1, Math.floor(left * step.permille / 1000)),
        // A destination charge's refund may take back the transfer's and the fee's shares.
        ...(step.reverseTransfer && charge.transfer !== null ? { reverse_transfer: true } : {}),
        ...(step.refundFee && charge.application_fee !== null ? { refund_application_fee: true } : {}) });
      // Stripe refuses to refund a disputed charge: the dispute took its money back already.
      if (charge.disputed) {
        await expect(refund).rejects.toMatchObject({ raw: { code: 'charge_disputed' } });
        return;
      }
      await refund;
    },
  }),
  transfer: command({
    weight: 2,
    parameters: fc.record({ seller: index, currency: index, reach }),
    async run(world, step) {
      const destination = pick(world.sellers, step.seller) as string;
      // In a currency the platform holds: one it never held is refused otherwise (not by the guard).
      const currency = await heldCurrency(world, undefined, step.currency);
      if (currency === undefined) return;
      const before = await available(world, undefined, currency);
      const amount = Math.max(1, Math.floor(Math.max(before, 0) * step.reach / 1000));
      const transfer = await guarded('transfer', amount, before, () =>
        world.stripe.transfers.create({ amount, currency, destination }));
      if (transfer !== undefined) world.transfers.push({ id: transfer.id, destination });
    },
  }),
  reverseTransfer: command({
    weight: 1,
    parameters: fc.record({ transfer: index, permille }),
    async run(world, step) {
      const made = pick(world.transfers, step.transfer);
      if (made === undefined) return;
      const transfer = await world.stripe.transfers.retrieve(made.id);
      const left = transfer.amount - transfer.amount_reversed;
      if (left <= 0) return;
      const amount = Math.max(1, Math.floor(left * step.permille / 1000));
      const before = await available(world, made.destination, transfer.currency as Currency);
      await guarded('transfer reversal', amount, before, () =>
        world.stripe.transfers.createReversal(made.id, { amount }));
    },
  }),
  settle: command({
    weight: 2,
    parameters: fc.constant(null),
    async run(world) {
      // The day closes: the sandbox pays its batches out, Penny reads its report and posts the payout.
      const day = utcDay(nowMs());
      advanceClock(86_400_000);
      world.day += 1;
      const paid = await payOutSettlementBatches(penny.pool, day);
      const banks = await Promise.all(paid.map((payout) => operatorBank(payout.currency)));
      // A negative batch is collected from the operator's bank, which never goes below zero in the
      // books (docs/accounting.md): a collection it cannot cover is refused, and that day waits.
      const uncovered = paid.filter((payout, position) => -payout.amount_minor > (banks[position] ?? 0n));
      const pulled = settlement.pull({ connectorId: 'sandbox', day });
      if (uncovered.length > 0) {
        await expect(pulled, `${day}: a collection beyond the operator's bank`).rejects
          .toMatchObject({ code: 'insufficient_funds' });
      } else {
        expect((await pulled).payoutsAlreadyPosted, `the payouts of ${day} were posted before`).toBe(0);
      }
      // The operator's bank holds what the PSP paid into it (and nothing of a refused collection).
      for (const [position, payout] of paid.entries()) {
        const refused = uncovered.includes(payout);
        expect(await operatorBank(payout.currency) - (banks[position] ?? 0n), `${payout.reference} in the bank`)
          .toBe(refused ? 0n : payout.amount_minor);
      }
      if (uncovered.length > 0) return;
      const again = await settlement.pull({ connectorId: 'sandbox', day });
      expect(again, `a second pull of ${day}`).toMatchObject({ settled: 0, payouts: 0 });
    },
  }),
  openDispute: command({
    weight: 2,
    parameters: fc.record({ payment: index }),
    async run(world, step) {
      const payment = pick(captured(world), step.payment);
      if (payment === undefined) return;
      const intent = await world.stripe.paymentIntents.retrieve(payment.id);
      if (intent.latest_charge === null) return;
      const charge = await world.stripe.charges.retrieve(intent.latest_charge as string);
      if (!charge.captured || payment.disputed === true || charge.amount_refunded >= charge.amount_captured) return;
      payment.disputed = true;
      const row = await penny.pool.query<{ psp_reference: string }>('SELECT psp_reference FROM charges WHERE id = $1',
        [charge.id]);
      const opened = await control('/control/disputes', { psp_reference: row.rows[0]?.psp_reference });
      expect(opened.status, JSON.stringify(opened.body)).toBe(200);
      world.disputes.push(opened.body.psp_reference as string);
      await deliverSandboxWebhooks(penny, sender);
    },
  }),
  decideDispute: command({
    weight: 1,
    parameters: fc.record({ dispute: index, won: fc.boolean() }),
    async run(world, step) {
      const dispute = pick(world.disputes, step.dispute);
      if (dispute === undefined) return;
      world.disputes.splice(world.disputes.indexOf(dispute), 1);
      const decided = await control(`/control/disputes/${dispute}/decide`, { outcome: step.won ? 'won' : 'lost' });
      expect(decided.status, JSON.stringify(decided.body)).toBe(200);
      await deliverSandboxWebhooks(penny, sender);
    },
  }),
  payout: command({
    weight: 2,
    parameters: fc.record({ owner: fc.nat(2), currency: index, reach, refusedByPsp: fc.boolean() }),
    async run(world, step) {
      const owner = step.owner === 0 ? undefined : world.sellers[step.owner - 1];
      // In a currency the owner holds: one it never held is refused otherwise (not by the guard).
      const currency = await heldCurrency(world, owner, step.currency);
      if (currency === undefined) return;
      const before = await available(world, owner, currency);
      const amount = Math.max(1, Math.floor(Math.max(before, 0) * step.reach / 1000));
      if (step.refusedByPsp) {
        penny.sandbox.injector.set(parseFaultProfile({ script: Array.from({ length: 3 },
          () => ({ operation: 'payout', fault: 'error_429' })) }));
      }
      const payout = await guarded('payout', amount, before, () =>
        world.stripe.payouts.create({ amount, currency }, ownerOptions(owner)));
      penny.sandbox.resetFaults();
      // The PSP never took it: the payout can be canceled, and its money returns.
      if (payout !== undefined && step.refusedByPsp) {
        expect((await world.stripe.payouts.cancel(payout.id, {}, ownerOptions(owner))).status).toBe('canceled');
      }
    },
  }),
  payoutResults: command({
    weight: 1,
    parameters: fc.constant(null),
    run: () => sandboxResults(),
  }),
};

type CommandName = keyof typeof commands;
type Step = { [K in CommandName]: { kind: K; parameters: Parameters<(typeof commands)[K]['run']>[1] } }[CommandName];

const step: fc.Arbitrary<Step> = fc.oneof(...(Object.keys(commands) as CommandName[]).map((kind) => ({
  weight: commands[kind].weight,
  arbitrary: (commands[kind].parameters as fc.Arbitrary<unknown>).map((parameters) => ({ kind, parameters }) as Step),
})));

function runStep(world: World, next: Step): Promise<void> {
  return (commands[next.kind] as Command<unknown>).run(world, next.parameters);
}

/** What the ledger holds for an owner, per currency: its available and pending accounts, posted. */
async function ledgerBalance(ownerId: string): Promise<Map<string, { available: number; pending: number }>> {
  const rows = await penny.pool.query<{ currency: string; role: string; ledger_account_id: string }>(
    `SELECT currency, role, ledger_account_id FROM merchant_ledger_accounts
      WHERE merchant_id = $1 AND role IN ('merchant_available', 'merchant_pending')`, [ownerId]);
  const accounts = new Map((await penny.ledger.getAccounts(rows.rows.map((row) => row.ledger_account_id)))
    .map((account) => [account.id, account]));
  const byCurrency = new Map<string, { available: number; pending: number }>();
  for (const row of rows.rows) {
    const balances = accounts.get(row.ledger_account_id)?.balances;
    if (balances === undefined) throw new Error(`no ledger account ${row.ledger_account_id}`);
    const owed = Number(balances.creditsPosted - balances.debitsPosted);
    const currencyCode = row.currency.trim().toLowerCase();
    const current = byCurrency.get(currencyCode) ?? { available: 0, pending: 0 };
    byCurrency.set(currencyCode, row.role === 'merchant_available' ? { ...current, available: owed }
      : { ...current, pending: owed });
  }
  return byCurrency;
}

async function expectBalanceExplained(world: World, owner: Owner, context: string): Promise<void> {
  const options = ownerOptions(owner);
  const balance = await world.stripe.balance.retrieve({}, options);
  const ledger = await ledgerBalance(owner ?? world.platformId);
  for (const currencyCode of currencies) {
    const shown = {
      available: balance.available.find((item) => item.currency === currencyCode)?.amount ?? 0,
      pending: balance.pending.find((item) => item.currency === currencyCode)?.amount ?? 0,
    };
    const where = `${context}: ${owner ?? 'platform'} ${currencyCode}`;
    expect(shown, `${where}, the ledger`).toEqual(ledger.get(currencyCode) ?? { available: 0, pending: 0 });
    const sums = { available: 0, pending: 0 };
    for await (const transaction of world.stripe.balanceTransactions.list({ currency: currencyCode, limit: 100 },
      options)) {
      sums[transaction.status as 'available' | 'pending'] += transaction.net;
    }
    expect(shown, `${where}, its transactions`).toEqual(sums);
  }
}

async function expectRefundsWithinCaptures(world: World, context: string): Promise<void> {
  for await (const charge of world.stripe.charges.list({ limit: 100 })) {
    expect(charge.amount_refunded, `${context}: ${charge.id}`).toBeLessThanOrEqual(charge.amount_captured);
  }
}

async function expectLedgerBalanced(context: string): Promise<void> {
  expect((await checkStoredBalances(penny.pool)).failures, context).toEqual([]);
  const trial = await penny.request({ method: 'GET', url: '/v1/ledger/trial_balance' });
  for (const row of trial.body.currencies as { currency: string; difference: number }[]) {
    expect(row.difference, `${context}: ${row.currency}`).toBe(0);
  }
}

async function newWorld(run: number): Promise<World> {
  const created = await penny.merchants.createMerchant(`Marketplace ${run}`);
  const stripe = penny.stripeFor(created.secretKey);
  const sellers: string[] = [];
  for (const country of ['US', 'DE']) {
    const account = await stripe.accounts.create({ type: 'custom', country });
    await stripe.accounts.createExternalAccount(account.id, { external_account: { object: 'bank_account',
      country: 'US', currency: 'usd', account_number: '000123456789', routing_number: '110000000' } });
    await stripe.accounts.createExternalAccount(account.id, { external_account: { object: 'bank_account',
      country: 'DE', currency: 'eur', account_number: 'DE89370400440532013000' } });
    sellers.push(account.id);
  }
  // Funds available from the start (the PSP makes them available at once), so the guarded outflows
  // are made as well as refused.
  const funding = await stripe.paymentIntents.create({ amount: 50_000, currency: 'usd',
    payment_method: 'pm_card_bypassPending', confirm: true });
  return { stripe, platformId: created.merchant.id, sellers,
    payments: [{ id: funding.id, day: 0, awaitingCapture: false }], transfers: [], disputes: [], day: 0 };
}

describe('a marketplace under random charges, captures, refunds, transfers, settlements, disputes and payouts', () => {
  it('keeps every Balance equal to the ledger and its transactions, within the guard, and the ledger balanced',
    async () => {
      let runs = 0;
      await fc.assert(fc.asyncProperty(fc.array(step, { minLength: 4, maxLength: 12 }), async (steps) => {
        runs += 1;
        const world = await newWorld(runs);
        for (const [position, next] of steps.entries()) {
          await runStep(world, next);
          const context = `step ${position} (${next.kind}) of ${JSON.stringify(steps)}`;
          for (const owner of [undefined, ...world.sellers]) await expectBalanceExplained(world, owner, context);
          await expectRefundsWithinCaptures(world, context);
          await expectLedgerBalanced(context);
        }
      }), { numRuns: 12 });
    }, 120_000);
});
