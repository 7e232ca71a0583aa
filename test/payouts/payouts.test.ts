import { Readable } from 'node:stream';
import Stripe from 'stripe';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { advanceClock, configureClock, nowMs } from '../../src/clock.js';
import { limits } from '../../src/config.js';
import { withTransaction } from '../../src/db/pool.js';
import { ReconciliationImports } from '../../src/reconciliation/recon-import.js';
import { ReconciliationRuns } from '../../src/reconciliation/recon-run.js';
import { parseFaultProfile } from '../../src/sandbox-psp/psp-faults.js';
import type { SandboxWebhookSender } from '../../src/sandbox-psp/psp-webhooks.js';
import { setPlatformBankAccount, BankAccountVault } from '../../src/accounts/bank-accounts.js';
import { signPayload } from '../../src/security/hmac-signature.js';
import { testPepper } from '../support/app.js';
import { sandboxWebhookSecret } from '../support/sandbox-psp.js';
import { deliverSandboxWebhooks, sandboxSenderOf, serveTestLedger, type ServedLedger } from '../support/stripe.js';

/**
 * Payouts through the official SDK: money leaves the available balance at once (a guarded ledger
 * entry, a `payout` balance transaction), the sandbox PSP moves the payout on by webhooks
 * (in_transit, paid or failed), a failed payout returns its money, and no payout, alone or racing
 * others, ever exceeds the available balance.
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

afterEach(() => {
  penny.sandbox.resetFaults();
});

/** A new merchant whose available balance holds the net of one settled USD charge of `amount`. */
async function fundedMerchant(name: string, amount = 10_000) {
  const created = await penny.merchants.createMerchant(name);
  const stripe = penny.stripeFor(created.secretKey);
  const intent = await stripe.paymentIntents.create({ amount, currency: 'usd', payment_method: 'pm_card_visa',
    confirm: true });
  await withTransaction(penny.pool, (client) => penny.balances.makeChargeAvailable(client, {
    merchantId: created.merchant.id, chargeId: intent.latest_charge as string,
    availableOn: new Date(nowMs()).toISOString() }));
  return { merchantId: created.merchant.id, stripe, secretKey: created.secretKey,
    available: await availableUsd(stripe) };
}

async function availableUsd(stripe: Stripe): Promise<number> {
  const balance = await stripe.balance.retrieve();
  return balance.available.find((item) => item.currency === 'usd')?.amount ?? 0;
}

/** Runs the sandbox's due changes a step apart and delivers their webhooks to Penny's inbox. */
async function step(): Promise<void> {
  await deliver();
  advanceClock(1000);
  await sender.resolvePending();
  await deliver();
}

function deliver(): Promise<void> {
  return deliverSandboxWebhooks(penny, sender);
}

async function eventTypes(merchantId: string, payoutId: string): Promise<string[]> {
  const result = await penny.pool.query<{ type: string }>(`SELECT type FROM events WHERE merchant_id = $1
     AND data->'object'->>'id' = $2 ORDER BY created_at, id`, [merchantId, payoutId]);
  return result.rows.map((row) => row.type);
}

describe('a payout', () => {
  it('takes the money at once and goes pending → in_transit → paid by the PSP\'s webhooks', async () => {
    const { stripe, merchantId, available } = await fundedMerchant('Paid Out Shop');
    const payout = await stripe.payouts.create({ amount: 5000, currency: 'usd', description: 'Weekly',
      statement_descriptor: 'PENNY', metadata: { batch: '7' } });
    expect(payout).toMatchObject({ object: 'payout', amount: 5000, currency: 'usd', status: 'pending',
      method: 'standard', automatic: false, destination: 'NL39RABO0300065264', description: 'Weekly',
      statement_descriptor: 'PENNY', metadata: { batch: '7' }, failure_code: null, livemode: false,
      type: 'bank_account', failure_balance_transaction: null });
    expect(payout.id).toMatch(/^po_/);
    expect(await availableUsd(stripe)).toBe(available - 5000);
    const transaction = await stripe.balanceTransactions.retrieve(payout.balance_transaction as string);
    expect(transaction).toMatchObject({ type: 'payout', reporting_category: 'payout', amount: -5000, net: -5000,
      status: 'available', source: payout.id });
    await step();
    expect((await stripe.payouts.retrieve(payout.id)).status).toBe('in_transit');
    await step();
    expect((await stripe.payouts.retrieve(payout.id)).status).toBe('paid');
    await step();
    expect(await eventTypes(merchantId, payout.id)).toEqual(['payout.created', 'payout.updated', 'payout.updated',
      'payout.paid']);
    expect(await availableUsd(stripe)).toBe(available - 5000);
    const row = await penny.pool.query('SELECT connector, psp_call, psp_reference FROM payouts WHERE id = $1',
      [payout.id]);
    expect(row.rows[0]).toMatchObject({ connector: 'sandbox', psp_call: 'sent' });
    expect(row.rows[0].psp_reference).toEqual(expect.any(String));
    // The sandbox bank's statement of the test account shows it, named by the payout.
    const day = new Date(nowMs()).toISOString().slice(0, 10);
    const statement = await fetch(`${penny.sandbox.url}/v1/bank_statements/${day}?account=NL39RABO0300065264` +
      '&currency=USD').then((response) => response.text());
    expect(statement).toContain(`SANDBOX PAYOUT ${payout.id}`);
  });

  it('to a failing test bank account fails and returns the money with payout_failure', async () => {
    const { stripe, merchantId, available } = await fundedMerchant('Failing Bank Shop');
    const vault = new BankAccountVault(testPepper);
    await withTransaction(penny.pool, async (client) => setPlatformBankAccount(client, vault, {
      merchantId, command: { country: 'US', currency: 'usd', accountNumber: '000111111116', routingNumber: '110000000',
        accountHolderName: null, accountHolderType: null, defaultForCurrency: true, metadata: {} },
      params: { country: 'country', currency: 'currency', accountNumber: 'account_number',
        routingNumber: 'routing_number' } }));
    const payout = await stripe.payouts.create({ amount: 3000, currency: 'usd' });
    expect(payout.destination).toMatch(/^ba_/);
    expect(await availableUsd(stripe)).toBe(available - 3000);
    for (let round = 0; round < 4; round += 1) await step();
    const failed = await stripe.payouts.retrieve(payout.id);
    expect(failed).toMatchObject({ status: 'failed', failure_code: 'no_account' });
    expect(failed.failure_message).toEqual(expect.any(String));
    const returned = await stripe.balanceTransactions.retrieve(failed.failure_balance_transaction as string);
    expect(returned).toMatchObject({ type: 'payout_failure', amount: 3000, status: 'available', source: payout.id });
    expect(await availableUsd(stripe)).toBe(available);
    expect(await eventTypes(merchantId, payout.id)).toContain('payout.failed');
    // A repeated failure report changes nothing.
    for (let round = 0; round < 2; round += 1) await step();
    expect(await availableUsd(stripe)).toBe(available);
    // The Balance is what its available transactions add up to.
    const { data } = await stripe.balanceTransactions.list({ limit: 100 });
    const availableNet = data.filter((item) => item.status === 'available').reduce((sum, item) => sum + item.net, 0);
    expect(availableNet).toBe(available);
  });

  it('paid, then returned by the bank (payout.failed after payout.paid, the event duplicated), fails and returns its money once',
    async () => {
      const { stripe, merchantId, available } = await fundedMerchant('Returned Payout Shop');
      const payout = await stripe.payouts.create({ amount: 4000, currency: 'usd' });
      for (let round = 0; round < 3; round += 1) await step();
      expect((await stripe.payouts.retrieve(payout.id)).status).toBe('paid');
      expect(await availableUsd(stripe)).toBe(available - 4000);
      // The PSP reports the return: one event delivered twice, and the same report again under another id.
      const record = await fetch(`${penny.sandbox.url}/v1/operations?reference=${payout.id}`)
        .then(async (response) => (await response.json() as { data: Record<string, unknown>[] }).data)
        .then((data) => data.find((operation) => operation.kind === 'payout'));
      const returned = { ...record, outcome: 'failed', failure_code: 'account_closed' };
      for (const id of ['sbxevt_returned1', 'sbxevt_returned1', 'sbxevt_returned2']) {
        const body = JSON.stringify({ id, object: 'event', type: 'payout.failed', created: Math.floor(nowMs() / 1000),
          data: returned });
        const response = await fetch(`http://127.0.0.1:${penny.port}/v1/connectors/sandbox/webhooks`, {
          method: 'POST', body, headers: { 'content-type': 'application/json',
            'Sandbox-Signature': signPayload(body, sandboxWebhookSecret, Math.floor(Date.now() / 1000)) } });
        expect(response.status).toBeLessThan(300);
        await deliver();
      }
      const failed = await stripe.payouts.retrieve(payout.id);
      expect(failed).toMatchObject({ status: 'failed', failure_code: 'account_closed',
        failure_message: 'The bank account has been closed.' });
      const transaction = await stripe.balanceTransactions.retrieve(failed.failure_balance_transaction as string);
      expect(transaction).toMatchObject({ type: 'payout_failure', amount: 4000, status: 'available',
        source: payout.id });
      expect(await availableUsd(stripe)).toBe(available);
      const types = await eventTypes(merchantId, payout.id);
      expect(types.filter((type) => type === 'payout.failed')).toHaveLength(1);
      expect(types.slice(-2)).toEqual(['payout.updated', 'payout.failed']);
      const entries = await penny.pool.query(`SELECT count(*)::int AS n FROM balance_transactions
         WHERE source_id = $1 AND type = 'payout_failure'`, [payout.id]);
      expect(entries.rows[0].n).toBe(1);
    });

  /** The sandbox's payout.failed (account_closed) for the payout, signed and sent to Penny, then delivered. */
  async function returnedByTheBank(payoutId: string, eventId: string): Promise<void> {
    const record = await fetch(`${penny.sandbox.url}/v1/operations?reference=${payoutId}`)
      .then(async (response) => (await response.json() as { data: Record<string, unknown>[] }).data)
      .then((data) => data.find((operation) => operation.kind === 'payout'));
    const body = JSON.stringify({ id: eventId, object: 'event', type: 'payout.failed',
      created: Math.floor(nowMs() / 1000), data: { ...record, outcome: 'failed', failure_code: 'account_closed' } });
    await fetch(`http://127.0.0.1:${penny.port}/v1/connectors/sandbox/webhooks`, { method: 'POST', body,
      headers: { 'content-type': 'application/json',
        'Sandbox-Signature': signPayload(body, sandboxWebhookSecret, Math.floor(Date.now() / 1000)) } });
    await deliver();
  }

  /** Today's sandbox report imported and reconciled: the breaks of the payout's lines, and its item's matches. */
  async function reconciledToday(payoutId: string) {
    const day = new Date(nowMs()).toISOString().slice(0, 10);
    const report = await (await fetch(`${penny.sandbox.url}/v1/settlement_reports/${day}?currency=USD`)).text();
    await new ReconciliationImports(penny.pool).importFile({ body: Readable.from([Buffer.from(report, 'utf8')]),
      filename: `returned-${payoutId}.csv`, source: 'sandbox' });
    await new ReconciliationRuns(penny.pool).run({ asOf: day });
    const breaks = await penny.pool.query(`SELECT b.type FROM reconciliation_breaks b
       JOIN reconciliation_records r ON r.id = b.record_id WHERE r.merchant_reference = $1`, [payoutId]);
    const matched = await penny.pool.query(`SELECT 1 FROM reconciliation_items i
       JOIN reconciliation_record_matches m ON m.item_id = i.id WHERE i.kind = 'payout' AND i.reference = $1`, [payoutId]);
    return { breaks: breaks.rows, matched: matched.rows };
  }

  it('paid, then returned by the bank before reconciliation collected it, is still the item its PaidOut line matches',
    async () => {
      const { stripe } = await fundedMerchant('Returned Before Run Shop');
      const payout = await stripe.payouts.create({ amount: 3300, currency: 'usd' });
      for (let round = 0; round < 3; round += 1) await step();
      await returnedByTheBank(payout.id, 'sbxevt_returned_before_run');
      expect((await stripe.payouts.retrieve(payout.id)).status).toBe('failed');
      const reconciled = await reconciledToday(payout.id);
      expect(reconciled.breaks).toEqual([]);
      expect(reconciled.matched).toHaveLength(1);
    });

  it('failed before it was paid, is no item for a PaidOut line: the PSP paying it all the same is a break', async () => {
    const { stripe } = await fundedMerchant('Failed Before Paid Shop');
    const payout = await stripe.payouts.create({ amount: 3400, currency: 'usd' });
    await returnedByTheBank(payout.id, 'sbxevt_failed_before_paid');
    expect((await stripe.payouts.retrieve(payout.id)).status).toBe('failed');
    // The sandbox pays it nonetheless; Penny, the payout failed, ignores that.
    for (let round = 0; round < 3; round += 1) await step();
    const reconciled = await reconciledToday(payout.id);
    expect(reconciled.matched).toEqual([]);
    expect(reconciled.breaks.length).toBeGreaterThan(0);
  });

  it('above the available balance is 400 balance_insufficient, and nothing is written', async () => {
    const { stripe, merchantId, available } = await fundedMerchant('Greedy Shop');
    const error = await stripe.payouts.create({ amount: available + 1, currency: 'usd' }).catch((caught) => caught);
    expect(error).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(error).toMatchObject({ statusCode: 400, code: 'balance_insufficient' });
    const rows = await penny.pool.query('SELECT 1 FROM payouts WHERE merchant_id = $1', [merchantId]);
    expect(rows.rows).toHaveLength(0);
    const transactions = await penny.pool.query(`SELECT 1 FROM balance_transactions WHERE merchant_id = $1
       AND type = 'payout'`, [merchantId]);
    expect(transactions.rows).toHaveLength(0);
    expect(await availableUsd(stripe)).toBe(available);
  });

  it('ten racing over real connections never pay out more than the available balance', async () => {
    const { stripe, secretKey, available } = await fundedMerchant('Racing Shop');
    const each = Math.ceil(available / 3);
    const clients = Array.from({ length: 10 }, () => penny.stripeFor(secretKey));
    const results = await Promise.allSettled(clients.map((client) => client.payouts.create({ amount: each,
      currency: 'usd' })));
    const made = results.filter((result) => result.status === 'fulfilled');
    const refused = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
    expect(made.length * each).toBeLessThanOrEqual(available);
    expect(made.length).toBe(Math.floor(available / each));
    for (const result of refused) expect(result.reason).toMatchObject({ code: 'balance_insufficient' });
    expect(await availableUsd(stripe)).toBe(available - made.length * each);
  });

  it('racing a refund: the payout is taken from what is available when it posts, never more', async () => {
    const created = await penny.merchants.createMerchant('Refund Race Shop');
    const stripe = penny.stripeFor(created.secretKey);
    const intent = await stripe.paymentIntents.create({ amount: 10_000, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true });
    await withTransaction(penny.pool, (client) => penny.balances.makeChargeAvailable(client, {
      merchantId: created.merchant.id, chargeId: intent.latest_charge as string,
      availableOn: new Date(nowMs()).toISOString() }));
    const available = await availableUsd(stripe);
    const [payout, refund] = await Promise.allSettled([
      penny.stripeFor(created.secretKey).payouts.create({ amount: available - 1000, currency: 'usd' }),
      penny.stripeFor(created.secretKey).refunds.create({ payment_intent: intent.id, amount: 2000 }),
    ]);
    expect(refund.status).toBe('fulfilled');
    const paidOut = payout.status === 'fulfilled' ? available - 1000 : 0;
    if (payout.status === 'rejected') expect(payout.reason).toMatchObject({ code: 'balance_insufficient' });
    // A refund may take the merchant negative (it is not guarded); the payout never may.
    expect(await availableUsd(stripe)).toBe(available - paidOut - 2000);
    const { data } = await stripe.balanceTransactions.list({ limit: 100 });
    expect(data.filter((item) => item.status === 'available').reduce((sum, item) => sum + item.net, 0))
      .toBe(available - paidOut - 2000);
  });

  it('retried with the same idempotency key is one payout', async () => {
    const { stripe, merchantId, available } = await fundedMerchant('Retrying Shop');
    const first = await stripe.payouts.create({ amount: 1000, currency: 'usd' }, { idempotencyKey: 'payout-once' });
    const again = await stripe.payouts.create({ amount: 1000, currency: 'usd' }, { idempotencyKey: 'payout-once' });
    expect(again.id).toBe(first.id);
    const rows = await penny.pool.query('SELECT 1 FROM payouts WHERE merchant_id = $1', [merchantId]);
    expect(rows.rows).toHaveLength(1);
    expect(await availableUsd(stripe)).toBe(available - 1000);
  });

  it('is listed with Stripe\'s list shape and filters', async () => {
    const { stripe } = await fundedMerchant('Listing Shop');
    const first = await stripe.payouts.create({ amount: 1000, currency: 'usd' });
    const second = await stripe.payouts.create({ amount: 1100, currency: 'usd' });
    const list = await stripe.payouts.list();
    expect(list.object).toBe('list');
    expect(list.data.map((payout) => payout.id)).toEqual([second.id, first.id]);
    const pending = await stripe.payouts.list({ status: 'paid' });
    expect(pending.data).toHaveLength(0);
    const page = await stripe.payouts.list({ limit: 1 });
    expect(page).toMatchObject({ has_more: true });
  });

  it('of another merchant is a 404', async () => {
    const { stripe } = await fundedMerchant('Owner Shop');
    const payout = await stripe.payouts.create({ amount: 1000, currency: 'usd' });
    const other = await penny.merchants.createMerchant('Other Shop');
    const error = await penny.stripeFor(other.secretKey).payouts.retrieve(payout.id).catch((caught) => caught);
    expect(error).toMatchObject({ statusCode: 404, code: 'resource_missing' });
    const cancel = await penny.stripeFor(other.secretKey).payouts.cancel(payout.id).catch((caught) => caught);
    expect(cancel).toMatchObject({ statusCode: 404, code: 'resource_missing' });
  });
});

describe('canceling a payout', () => {
  it('the PSP has taken is refused with 400', async () => {
    const { stripe } = await fundedMerchant('Late Cancel Shop');
    const payout = await stripe.payouts.create({ amount: 1000, currency: 'usd' });
    const error = await stripe.payouts.cancel(payout.id).catch((caught) => caught);
    expect(error).toMatchObject({ statusCode: 400, code: 'payout_not_cancelable' });
  });

  it('the PSP refused returns the money with payout_cancel', async () => {
    const { stripe, merchantId, available } = await fundedMerchant('Cancel Shop');
    penny.sandbox.injector.set(parseFaultProfile({ script: Array.from({ length: 3 },
      () => ({ operation: 'payout', fault: 'error_429' })) }));
    const payout = await stripe.payouts.create({ amount: 2000, currency: 'usd' });
    expect(payout.status).toBe('pending');
    expect(await availableUsd(stripe)).toBe(available - 2000);
    const canceled = await stripe.payouts.cancel(payout.id);
    expect(canceled.status).toBe('canceled');
    const returned = await stripe.balanceTransactions.retrieve(canceled.failure_balance_transaction as string);
    expect(returned).toMatchObject({ type: 'payout_cancel', amount: 2000 });
    expect(await availableUsd(stripe)).toBe(available);
    expect(await eventTypes(merchantId, payout.id)).toEqual(['payout.created', 'payout.updated', 'payout.canceled']);
  });
});

describe('a payout the PSP definitely refused', () => {
  it('stays pending with its money withdrawn, is never sent again (retry, worker, time), until canceled',
    async () => {
      const { stripe, merchantId, available } = await fundedMerchant('Refused Payout Shop');
      // Rate-limited on every try: a definite refusal (nothing happened at the PSP).
      penny.sandbox.injector.set(parseFaultProfile({ script: Array.from({ length: 10 },
        () => ({ operation: 'payout', fault: 'error_429' })) }));
      const payout = await stripe.payouts.create({ amount: 2500, currency: 'usd' }, { idempotencyKey: 'refused-1' });
      expect(payout).toMatchObject({ status: 'pending', failure_code: null });
      const pspCall = async () => (await penny.pool.query('SELECT psp_call FROM payouts WHERE id = $1',
        [payout.id])).rows[0].psp_call as string;
      expect(await pspCall()).toBe('refused');
      penny.sandbox.resetFaults();
      // The same request again is the stored answer; nothing is sent.
      const again = await stripe.payouts.create({ amount: 2500, currency: 'usd' }, { idempotencyKey: 'refused-1' });
      expect(again).toEqual(payout);
      // Neither the look-up worker nor time sends it again: the PSP never hears of it.
      advanceClock(limits.payoutLookupGraceMs + 60_000);
      await penny.payouts.resolveUnknown();
      for (let round = 0; round < 3; round += 1) await step();
      expect(await penny.sandbox.connector.lookup({ reference: payout.id })).toEqual([]);
      expect(await pspCall()).toBe('refused');
      expect(await stripe.payouts.retrieve(payout.id)).toMatchObject({ status: 'pending' });
      expect(await availableUsd(stripe)).toBe(available - 2500);
      // The merchant cancels it: the money returns with payout_cancel.
      const canceled = await stripe.payouts.cancel(payout.id);
      expect(canceled.status).toBe('canceled');
      expect(await stripe.balanceTransactions.retrieve(canceled.failure_balance_transaction as string))
        .toMatchObject({ type: 'payout_cancel', amount: 2500, source: payout.id });
      expect(await availableUsd(stripe)).toBe(available);
      expect(await eventTypes(merchantId, payout.id)).toEqual(['payout.created', 'payout.updated', 'payout.canceled']);
      expect(await penny.sandbox.connector.lookup({ reference: payout.id })).toEqual([]);
    });
});

describe('a payout whose PSP answer was lost', () => {
  it('answers pending, and the look-up finds the one payout the PSP made', async () => {
    const { stripe, available } = await fundedMerchant('Lost Answer Shop');
    penny.sandbox.injector.set(parseFaultProfile({ script: Array.from({ length: 3 },
      () => ({ operation: 'payout', fault: 'timeout_after' })) }));
    const payout = await stripe.payouts.create({ amount: 1500, currency: 'usd' });
    expect(payout.status).toBe('pending');
    penny.sandbox.resetFaults();
    const cancel = await stripe.payouts.cancel(payout.id).catch((caught) => caught);
    expect(cancel).toMatchObject({ code: 'payout_not_cancelable' });
    advanceClock(limits.payoutLookupGraceMs + 1);
    expect(await penny.payouts.resolveUnknown()).toBeGreaterThanOrEqual(1);
    const row = await penny.pool.query('SELECT psp_call FROM payouts WHERE id = $1', [payout.id]);
    expect(row.rows[0]).toMatchObject({ psp_call: 'sent' });
    for (let round = 0; round < 3; round += 1) await step();
    expect((await stripe.payouts.retrieve(payout.id)).status).toBe('paid');
    expect(await availableUsd(stripe)).toBe(available - 1500);
  });
});

describe('a payout the PSP never received', () => {
  it('is sent again by the worker with the same key; a refusal of that retry proves nothing', async () => {
    const { stripe } = await fundedMerchant('Never Received Shop');
    penny.sandbox.injector.set(parseFaultProfile({ script: Array.from({ length: 3 },
      () => ({ operation: 'payout', fault: 'timeout_before' })) }));
    const payout = await stripe.payouts.create({ amount: 1200, currency: 'usd' });
    expect(payout.status).toBe('pending');
    expect(await penny.sandbox.connector.lookup({ reference: payout.id })).toEqual([]);
    const pspCall = async () => (await penny.pool.query('SELECT psp_call FROM payouts WHERE id = $1',
      [payout.id])).rows[0].psp_call as string;
    // The worker's re-send is refused: an earlier try may have gone through, so it stays unknown.
    penny.sandbox.injector.set(parseFaultProfile({ script: Array.from({ length: 3 },
      () => ({ operation: 'payout', fault: 'error_429' })) }));
    advanceClock(limits.payoutLookupGraceMs + 1);
    await penny.payouts.resolveUnknown();
    expect(await pspCall()).toBe('unknown');
    expect((await stripe.payouts.cancel(payout.id).catch((caught) => caught)).code).toBe('payout_not_cancelable');
    penny.sandbox.resetFaults();
    // The refused re-send counts as a try: the next waits out the grace again.
    expect(await penny.payouts.resolveUnknown()).toBe(0);
    advanceClock(limits.payoutLookupGraceMs + 1);
    await penny.payouts.resolveUnknown();
    expect(await pspCall()).toBe('sent');
    expect(await penny.sandbox.connector.lookup({ reference: payout.id })).toHaveLength(1);
    for (let round = 0; round < 3; round += 1) await step();
    expect((await stripe.payouts.retrieve(payout.id)).status).toBe('paid');
  });
});

describe('a dispute arriving while a payout is in flight', () => {
  it('still takes its amount and fee (it may take the balance negative); the payout is paid once, and the Balance equals its transactions',
    async () => {
      const { stripe, merchantId, available } = await fundedMerchant('Disputed While Paying Out', 10_000);
      const payout = await stripe.payouts.create({ amount: available, currency: 'usd' });
      expect(payout.status).toBe('pending');
      const charge = (await stripe.charges.list({ limit: 1 })).data[0] as Stripe.Charge;
      const row = await penny.pool.query<{ psp_reference: string }>('SELECT psp_reference FROM charges WHERE id = $1',
        [charge.id]);
      const opened = await fetch(`${penny.sandbox.url}/control/disputes`, { method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ psp_reference: row.rows[0]?.psp_reference, reason: 'fraudulent' }) });
      expect(opened.status).toBe(200);
      for (let round = 0; round < 4; round += 1) await step();
      expect((await stripe.payouts.retrieve(payout.id)).status).toBe('paid');
      expect((await stripe.disputes.list({ charge: charge.id })).data).toHaveLength(1);
      // The payout took everything available; the dispute's amount and fee take the balance below zero.
      expect(await availableUsd(stripe)).toBe(-10_000 - 1500);
      let nets = 0;
      for await (const transaction of stripe.balanceTransactions.list({ currency: 'usd', limit: 100 })) {
        if (transaction.status === 'available') nets += transaction.net;
      }
      expect(nets).toBe(-10_000 - 1500);
      expect(await eventTypes(merchantId, payout.id)).toContain('payout.paid');
    });
});

