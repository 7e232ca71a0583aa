import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { advanceClock, configureClock, nowIso } from '../../src/clock.js';
import { parseFaultProfile } from '../../src/sandbox-psp/psp-faults.js';
import { settlementBatches } from '../../src/sandbox-psp/psp-settlement.js';
import type { SandboxWebhookSender } from '../../src/sandbox-psp/psp-webhooks.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startTestSandboxPsp, type TestSandboxPsp } from '../support/sandbox-psp.js';
import {
  callSandbox, capturedCharge, eventsFor, startWebhookReceiver, unique, type ReceivedWebhook,
} from './psp-test-helpers.js';

/**
 * Disputes at the sandbox: opened on a captured charge by a control call, by the test card
 * pm_card_createDispute, decided won or lost by a control call or after a delay, each state sent
 * by signed webhook, and booked on the settlement report of the day it happens.
 */
let database: TestDatabase;
let sandbox: TestSandboxPsp;
let sender: SandboxWebhookSender;
let received: ReceivedWebhook[];

beforeAll(async () => {
  configureClock('controlled');
  database = await createTestDatabase();
  sandbox = await startTestSandboxPsp(database.url);
  const receiver = await startWebhookReceiver();
  received = receiver.received;
  sender = sandbox.sender(receiver.url);
});

afterEach(() => {
  sandbox.resetFaults();
});

const openDispute = (body: Record<string, unknown>) => callSandbox(sandbox, 'POST', '/control/disputes', body);
const decide = (id: string, outcome: string) =>
  callSandbox(sandbox, 'POST', `/control/disputes/${id}/decide`, { outcome });

async function later(ms: number): Promise<void> {
  advanceClock(ms);
  await sender.resolvePending();
}

async function deliver(): Promise<void> {
  while ((await sender.sendDue()) > 0) { /* deliver every due copy */ }
}

async function disputeOf(reference: string) {
  return (await sandbox.connector.lookup({ reference })).find((operation) => operation.kind === 'chargeback');
}

describe('POST /control/disputes', () => {
  it('opens a dispute on a captured charge named by Penny\'s reference, needing a response', async () => {
    const charge = await capturedCharge(sandbox);
    const opened = await openDispute({ charge_reference: charge.reference });
    expect(opened.status).toBe(200);
    expect(opened.body).toMatchObject({ kind: 'chargeback', outcome: 'needs_response', reference: charge.reference,
      parent_psp_reference: charge.pspReference, amount_minor: 10_000, currency: 'EUR' });
  });

  it('takes the captured amount, the reason fraudulent and the 1500 dispute fee by default', async () => {
    const charge = await capturedCharge(sandbox, { amountMinor: 4200 });
    const opened = await openDispute({ charge_reference: charge.reference });
    expect(opened.body).toMatchObject({ amount_minor: 4200, reason: 'fraudulent', fee_minor: 1500 });
  });

  it('takes an amount and a reason', async () => {
    const charge = await capturedCharge(sandbox);
    const opened = await openDispute({ charge_reference: charge.reference, amount_minor: 2500,
      reason: 'product_not_received' });
    expect(opened.body).toMatchObject({ amount_minor: 2500, reason: 'product_not_received' });
  });

  it('finds a manually captured charge by the PSP reference of its capture, and names the capture\'s reference',
    async () => {
      const held = await capturedCharge(sandbox, { capture: false });
      const chargeId = `ch_${unique()}`;
      const capture = await callSandbox(sandbox, 'POST', '/v1/captures', { reference: chargeId,
        psp_reference: held.pspReference, amount_minor: 6000 }, `capture:${chargeId}`);
      const opened = await openDispute({ psp_reference: capture.body.psp_reference });
      expect(opened.body).toMatchObject({ reference: chargeId, parent_psp_reference: held.pspReference,
        amount_minor: 6000 });
    });

  it('refuses more than was captured', async () => {
    const charge = await capturedCharge(sandbox, { amountMinor: 1000 });
    const refused = await openDispute({ charge_reference: charge.reference, amount_minor: 1001 });
    expect(refused.status).toBe(400);
    expect(refused.body.error.param).toBe('amount_minor');
  });

  it('refuses a second dispute on one charge', async () => {
    const charge = await capturedCharge(sandbox);
    await openDispute({ charge_reference: charge.reference });
    const again = await openDispute({ psp_reference: charge.pspReference });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('invalid_state');
  });

  it('refuses a charge with nothing captured', async () => {
    const held = await capturedCharge(sandbox, { capture: false });
    expect((await openDispute({ charge_reference: held.reference })).status).toBe(409);
  });

  it('refuses an unknown charge with 404', async () => {
    const refused = await openDispute({ charge_reference: `pa_missing${unique()}` });
    expect(refused.status).toBe(404);
    expect(refused.body.error.param).toBe('charge_reference');
  });

  it('refuses a body naming the charge both ways, or neither', async () => {
    expect((await openDispute({})).status).toBe(400);
    expect((await openDispute({ charge_reference: 'a', psp_reference: 'b' })).status).toBe(400);
  });

  it('refuses a reason Stripe does not know', async () => {
    const charge = await capturedCharge(sandbox);
    const refused = await openDispute({ charge_reference: charge.reference, reason: 'bored' });
    expect(refused.body.error.param).toBe('reason');
  });
});

describe('deciding a dispute', () => {
  it('is won by POST /control/disputes/:id/decide', async () => {
    const charge = await capturedCharge(sandbox);
    const opened = await openDispute({ charge_reference: charge.reference });
    const decided = await decide(opened.body.psp_reference as string, 'won');
    expect(decided.body).toMatchObject({ outcome: 'won', decided_at: expect.any(String) });
    expect((await disputeOf(charge.reference))?.outcome).toBe('won');
  });

  it('is refused once decided', async () => {
    const charge = await capturedCharge(sandbox);
    const opened = await openDispute({ charge_reference: charge.reference });
    await decide(opened.body.psp_reference as string, 'lost');
    const again = await decide(opened.body.psp_reference as string, 'won');
    expect(again.status).toBe(409);
    expect((await disputeOf(charge.reference))?.outcome).toBe('lost');
  });

  it('refuses an outcome other than won or lost, and an unknown dispute', async () => {
    const charge = await capturedCharge(sandbox);
    const opened = await openDispute({ charge_reference: charge.reference });
    expect((await decide(opened.body.psp_reference as string, 'maybe')).status).toBe(400);
    expect((await decide('sbx_nothing', 'won')).status).toBe(404);
  });

  it('decides itself after its own decide_after_ms on the sandbox\'s clock', async () => {
    const charge = await capturedCharge(sandbox);
    await openDispute({ charge_reference: charge.reference, decide_after_ms: 60_000, decide_outcome: 'lost' });
    await later(59_000);
    expect((await disputeOf(charge.reference))?.outcome).toBe('needs_response');
    await later(1000);
    expect((await disputeOf(charge.reference))?.outcome).toBe('lost');
  });

  it('decides itself after the fault profile\'s dispute_decide_after_ms', async () => {
    sandbox.injector.set(parseFaultProfile({ dispute_decide_after_ms: 5000, dispute_decide_outcome: 'won' }));
    const charge = await capturedCharge(sandbox);
    await openDispute({ charge_reference: charge.reference });
    await later(5000);
    expect((await disputeOf(charge.reference))?.outcome).toBe('won');
  });

  it('a decision by control call before the delay stands; the delay then changes nothing', async () => {
    const charge = await capturedCharge(sandbox);
    const opened = await openDispute({ charge_reference: charge.reference, decide_after_ms: 1000,
      decide_outcome: 'won' });
    await decide(opened.body.psp_reference as string, 'lost');
    await later(1000);
    expect((await disputeOf(charge.reference))?.outcome).toBe('lost');
  });
});

describe('dispute webhooks', () => {
  it('sends a signed webhook for each state with the amount, currency, reason and fee', async () => {
    const charge = await capturedCharge(sandbox, { amountMinor: 3100, currency: 'USD' });
    const opened = await openDispute({ charge_reference: charge.reference, reason: 'duplicate' });
    await deliver();
    await decide(opened.body.psp_reference as string, 'lost');
    await deliver();
    const events = eventsFor(sandbox.connector, received, charge.reference)
      .filter((event) => event.operation.kind === 'chargeback');
    expect(events.map((event) => event.type)).toEqual(['chargeback.needs_response', 'chargeback.lost']);
    expect(events[0]?.operation).toMatchObject({ outcome: 'needs_response', amountMinor: 3100n, currency: 'USD',
      reason: 'duplicate', disputeFeeMinor: 1500n, parentPspReference: charge.pspReference });
  });

  it('sends won when a dispute decides itself', async () => {
    const charge = await capturedCharge(sandbox);
    await openDispute({ charge_reference: charge.reference, decide_after_ms: 10 });
    await later(10);
    await deliver();
    expect(eventsFor(sandbox.connector, received, charge.reference).map((event) => event.type))
      .toContain('chargeback.won');
  });
});

describe('test payment methods', () => {
  it('pm_card_bypassPending: the charge is available at once, in the reply and the look-up', async () => {
    const charge = await capturedCharge(sandbox, { paymentMethod: 'pm_card_bypassPending' });
    expect(charge.answer).toMatchObject({ outcome: 'captured', available_immediately: true });
    expect((await sandbox.connector.lookup({ reference: charge.reference }))[0]?.availableImmediately).toBe(true);
  });

  it('an ordinary card waits for settlement', async () => {
    const charge = await capturedCharge(sandbox);
    expect((await sandbox.connector.lookup({ reference: charge.reference }))[0]?.availableImmediately).toBe(false);
  });

  it('pm_card_bypassPending captured manually: the capture is available at once too', async () => {
    const held = await capturedCharge(sandbox, { paymentMethod: 'pm_card_bypassPending', capture: false });
    const chargeId = `ch_${unique()}`;
    const capture = await callSandbox(sandbox, 'POST', '/v1/captures', { reference: chargeId,
      psp_reference: held.pspReference, amount_minor: 10_000 }, `capture:${chargeId}`);
    expect(capture.body.available_immediately).toBe(true);
  });

  it('pm_card_createDispute: disputed once the clock passes create_dispute_after_ms after the capture', async () => {
    const charge = await capturedCharge(sandbox, { paymentMethod: 'pm_card_createDispute' });
    // The controlled clock runs with the wall clock too: a margin for the time the test itself takes.
    await later(1500);
    expect(await disputeOf(charge.reference)).toBeUndefined();
    await later(500);
    expect(await disputeOf(charge.reference)).toMatchObject({ outcome: 'needs_response', amountMinor: 10_000n,
      reason: 'fraudulent', disputeFeeMinor: 1500n });
  });

  it('pm_card_createDispute captured manually: disputed after the capture, not the authorization', async () => {
    const held = await capturedCharge(sandbox, { paymentMethod: 'pm_card_createDispute', capture: false });
    await later(5000);
    expect(await disputeOf(held.reference)).toBeUndefined();
    const chargeId = `ch_${unique()}`;
    await callSandbox(sandbox, 'POST', '/v1/captures', { reference: chargeId, psp_reference: held.pspReference,
      amount_minor: 7000 }, `capture:${chargeId}`);
    await later(2000);
    expect(await disputeOf(chargeId)).toMatchObject({ outcome: 'needs_response', amountMinor: 7000n });
  });

  it('pm_card_createDispute: with the system clock, disputed within a few seconds', async () => {
    configureClock('system');
    try {
      const charge = await capturedCharge(sandbox, { paymentMethod: 'pm_card_createDispute' });
      const started = Date.now();
      while (await disputeOf(charge.reference) === undefined && Date.now() - started < 10_000) {
        await sender.resolvePending();
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(await disputeOf(charge.reference)).toBeDefined();
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      configureClock('controlled');
    }
  });

  it('pm_card_createDispute: a pending authorization that resolves captured is disputed in its turn', async () => {
    sandbox.injector.set(parseFaultProfile({ pending_authorization_rate: 1, pending_resolve_ms: 1000 }));
    const charge = await capturedCharge(sandbox, { paymentMethod: 'pm_card_createDispute' });
    expect(charge.answer.outcome).toBe('pending');
    await later(1000);
    await later(2000);
    expect((await disputeOf(charge.reference))?.outcome).toBe('needs_response');
  });
});

describe('the settlement report\'s dispute lines', () => {
  async function linesOf(day: string, reference: string) {
    const batches = await settlementBatches(database.pool, day);
    return batches.flatMap((batch) => batch.rows).filter((row) => row.merchantReference === reference);
  }

  it('a dispute is a Chargeback debit with its fee on the day it opens, and won, a ChargebackReversed credit on '
    + 'the day it is decided', async () => {
    const charge = await capturedCharge(sandbox, { amountMinor: 8000 });
    const opened = await openDispute({ charge_reference: charge.reference });
    const openedOn = nowIso().slice(0, 10);
    await later(86_400_000);
    await decide(opened.body.psp_reference as string, 'won');
    const decidedOn = nowIso().slice(0, 10);
    expect((await linesOf(openedOn, charge.reference)).find((row) => row.type === 'Chargeback')).toMatchObject({
      pspReference: opened.body.psp_reference, grossDebitMinor: 8000n, markupMinor: 1500n, netDebitMinor: 9500n });
    const reversed = (await linesOf(decidedOn, charge.reference));
    expect(reversed.map((row) => row.type)).toEqual(['ChargebackReversed']);
    expect(reversed[0]).toMatchObject({ grossCreditMinor: 8000n, netCreditMinor: 8000n, markupMinor: null });
  });

  it('a dispute opened and won on one day has both lines that day', async () => {
    const charge = await capturedCharge(sandbox, { amountMinor: 500 });
    const opened = await openDispute({ charge_reference: charge.reference });
    await decide(opened.body.psp_reference as string, 'won');
    expect((await linesOf(nowIso().slice(0, 10), charge.reference)).map((row) => row.type))
      .toEqual(['Settled', 'Chargeback', 'ChargebackReversed']);
  });

  it('a lost dispute has no reversal', async () => {
    const charge = await capturedCharge(sandbox, { amountMinor: 600 });
    const opened = await openDispute({ charge_reference: charge.reference });
    await decide(opened.body.psp_reference as string, 'lost');
    expect((await linesOf(nowIso().slice(0, 10), charge.reference)).map((row) => row.type))
      .toEqual(['Settled', 'Chargeback']);
  });
});
