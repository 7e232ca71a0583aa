import Stripe from 'stripe';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { advanceClock, configureClock } from '../../src/clock.js';
import type {
  AuthorizeInput, CaptureInput, Connector, ConnectorCapabilities, RefundInput, VoidInput,
} from '../../src/connectors/connector.js';
import { sandboxConnectorId } from '../../src/connectors/sandbox/sandbox-connector.js';
import { recoveryScheduleMs } from '../../src/payments/payment-recovery.js';
import { parseFaultProfile } from '../../src/sandbox-psp/psp-faults.js';
import { receiveConnectorEvent } from '../../src/webhooks/connector-inbox.js';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';
import type { TestSandboxPsp } from '../support/sandbox-psp.js';

/**
 * One connector per charge: a payment's captures, voids, refunds, look-ups and recovery go to the
 * connector that authorized it, whatever new payments are routed to since; and a connector's
 * declared capabilities are checked before anything is recorded or sent.
 *
 * Two connectors of their own ids, each the real sandbox connector over HTTP (the same sandbox PSP
 * behind both), record which of them Penny called for what: `second` declares fewer capabilities.
 */
interface Call {
  readonly connector: string;
  readonly operation: string;
  readonly reference: string;
}

const calls: Call[] = [];

function recording(sandbox: TestSandboxPsp, id: string, capabilities: Partial<ConnectorCapabilities>): Connector {
  const inner = sandbox.connector;
  const record = (operation: string, reference: string) => calls.push({ connector: id, operation, reference });
  return {
    id,
    capabilities: { ...inner.capabilities, ...capabilities },
    priceList: inner.priceList,
    authorize: (input: AuthorizeInput) => { record('authorize', input.reference); return inner.authorize(input); },
    capture: (input: CaptureInput) => { record('capture', input.reference); return inner.capture(input); },
    void: (input: VoidInput) => { record('void', input.reference); return inner.void(input); },
    refund: (input: RefundInput) => { record('refund', input.reference); return inner.refund(input); },
    payout: (input) => { record('payout', input.reference); return inner.payout(input); },
    lookup: (input) => { record('lookup', input.reference); return inner.lookup(input); },
    parseWebhook: (input) => inner.parseWebhook(input),
    fetchSettlementReport: (input) => inner.fetchSettlementReport(input),
  };
}

let penny: ServedLedger;
let stripe: Stripe;
let routedTo = 'first';

beforeAll(async () => {
  configureClock('controlled');
  penny = await serveTestLedger({
    connectors: (sandbox) => [
      recording(sandbox, 'first', {}),
      recording(sandbox, 'second', { partialCapture: false, refunds: false }),
      recording(sandbox, 'third', { manualCapture: false }),
      sandbox.connector,
    ],
    route: () => routedTo,
  });
  const created = await penny.merchants.createMerchant('Two Connectors Shop');
  stripe = penny.stripeFor(created.secretKey);
});

afterEach(() => {
  penny.sandbox.resetFaults();
  routedTo = 'first';
});

function callsFor(reference: string): Call[] {
  return calls.filter((call) => call.reference === reference);
}

async function authorizedOn(connector: string, amount = 5000) {
  routedTo = connector;
  const intent = await stripe.paymentIntents.create({ amount, currency: 'usd', payment_method: 'pm_card_visa',
    confirm: true, capture_method: 'manual' });
  expect(intent.status).toBe('requires_capture');
  return intent;
}

async function recordedConnector(table: 'charges' | 'refunds', id: string): Promise<string | undefined> {
  const result = await penny.pool.query<{ connector: string }>(`SELECT connector FROM ${table} WHERE id = $1`, [id]);
  return result.rows[0]?.connector;
}

describe('a payment stays with the connector that authorized it', () => {
  it('records the connector on the charge and its refund', async () => {
    const intent = await authorizedOn('first');
    routedTo = sandboxConnectorId;
    await stripe.paymentIntents.capture(intent.id);
    const refund = await stripe.refunds.create({ payment_intent: intent.id, amount: 1000 });
    expect(await recordedConnector('charges', intent.latest_charge as string)).toBe('first');
    expect(await recordedConnector('refunds', refund.id)).toBe('first');
  });

  it('captures and refunds through it after new payments are routed elsewhere', async () => {
    const intent = await authorizedOn('first');
    routedTo = 'third';
    await stripe.paymentIntents.capture(intent.id);
    const refund = await stripe.refunds.create({ payment_intent: intent.id });
    const charge = intent.latest_charge as string;
    expect(callsFor(charge).map((call) => `${call.connector}:${call.operation}`)).toEqual(['first:capture']);
    expect(callsFor(refund.id).map((call) => `${call.connector}:${call.operation}`)).toEqual(['first:refund']);
  });

  it('voids through it after new payments are routed elsewhere', async () => {
    const intent = await authorizedOn('first');
    routedTo = 'third';
    await stripe.paymentIntents.cancel(intent.id);
    expect(callsFor(intent.latest_charge as string).map((call) => `${call.connector}:${call.operation}`))
      .toEqual(['first:void']);
  });

  it('recovers a lost capture by looking it up and re-sending it there, not at the registry\'s first connector',
    async () => {
      const intent = await authorizedOn('second');
      penny.sandbox.injector.set(parseFaultProfile({ script: [{ operation: 'capture', fault: 'timeout_after' },
        { operation: 'capture', fault: 'timeout_after' }, { operation: 'capture', fault: 'timeout_after' }] }));
      await expect(stripe.paymentIntents.capture(intent.id)).rejects.toMatchObject({ statusCode: 503 });
      penny.sandbox.resetFaults();
      advanceClock(recoveryScheduleMs[0] + 1);
      await penny.recovery.runDue();
      expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('succeeded');
      const connectors = new Set(callsFor(intent.latest_charge as string).map((call) => call.connector));
      expect(connectors).toEqual(new Set(['second']));
      expect(callsFor(intent.latest_charge as string).map((call) => call.operation)).toContain('lookup');
    });
});

describe('a payment\'s own connector, beyond the charge', () => {
  it('completes a 3-D Secure challenge through the connector that asked for it, not the one routed to now',
    async () => {
      routedTo = 'second';
      const intent = await stripe.paymentIntents.create({ amount: 3000, currency: 'usd',
        payment_method: 'pm_card_authenticationRequired', confirm: true, return_url: 'https://shop.example/done' });
      expect(intent.status).toBe('requires_action');
      routedTo = 'first';
      const opened = await fetch(intent.next_action?.redirect_to_url?.url as string, { redirect: 'manual' });
      expect(opened.status).toBe(302);
      const attempts = await penny.pool.query<{ connector: string }>(
        'SELECT connector FROM payment_attempts WHERE payment_intent_id = $1 ORDER BY attempt_number', [intent.id]);
      expect(attempts.rows.map((row) => row.connector)).toEqual(['second', 'second']);
      expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('succeeded');
    });

  it('does not apply an event another connector\'s route received about its charge: it is parked', async () => {
    const intent = await authorizedOn('second');
    const charge = intent.latest_charge as string;
    await receiveConnectorEvent(penny.pool, 'first', { id: `evt_other_${charge}`, type: 'capture.succeeded',
      operation: { kind: 'capture', pspReference: 'sbx_other', reference: charge, outcome: 'captured',
        amountMinor: 5000n, currency: 'USD', declineCode: null, redirectUrl: null } });
    await penny.inbox.processDue();
    const stored = await penny.pool.query<{ status: string; note: string }>(
      'SELECT status, note FROM connector_webhook_inbox WHERE event_id = $1', [`evt_other_${charge}`]);
    expect(stored.rows).toEqual([{ status: 'parked',
      note: `${charge} is handled by connector second, not first` }]);
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('requires_capture');
  });
});

describe('a connector\'s declared capabilities', () => {
  it('refuse a partial capture the connector cannot do, with 400 naming it, sending nothing', async () => {
    const intent = await authorizedOn('second');
    const refusal = await stripe.paymentIntents.capture(intent.id, { amount_to_capture: 2000 })
      .catch((error: unknown) => error);
    expect(refusal).toMatchObject({ statusCode: 400, type: 'StripeInvalidRequestError',
      raw: { code: 'connector_capability_unsupported', param: 'amount_to_capture', capability: 'partial capture' } });
    expect(callsFor(intent.latest_charge as string)).toEqual([]);
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('requires_capture');
  });

  it('let the same connector capture in full', async () => {
    const intent = await authorizedOn('second');
    expect((await stripe.paymentIntents.capture(intent.id)).status).toBe('succeeded');
  });

  it('refuse a refund the connector cannot do, reserving nothing on the charge', async () => {
    const intent = await authorizedOn('second');
    await stripe.paymentIntents.capture(intent.id);
    const refusal = await stripe.refunds.create({ payment_intent: intent.id }).catch((error: unknown) => error);
    expect(refusal).toMatchObject({ statusCode: 400,
      raw: { code: 'connector_capability_unsupported', param: 'payment_intent', capability: 'refunds' } });
    const charge = await stripe.charges.retrieve(intent.latest_charge as string);
    expect(charge.amount_refunded).toBe(0);
    expect((await stripe.refunds.list({ payment_intent: intent.id })).data).toEqual([]);
    expect(callsFor(intent.latest_charge as string).map((call) => call.operation)).toEqual(['capture']);
  });

  it('refuse a manual-capture confirmation on a connector without manual capture, before any attempt', async () => {
    routedTo = 'third';
    const created = await stripe.paymentIntents.create({ amount: 4000, currency: 'usd',
      payment_method: 'pm_card_visa', capture_method: 'manual' });
    const refusal = await stripe.paymentIntents.confirm(created.id).catch((error: unknown) => error);
    expect(refusal).toMatchObject({ statusCode: 400,
      raw: { code: 'connector_capability_unsupported', param: 'capture_method' } });
    const attempts = await penny.pool.query('SELECT 1 FROM payment_attempts WHERE payment_intent_id = $1',
      [created.id]);
    expect(attempts.rows).toEqual([]);
    expect((await stripe.paymentIntents.retrieve(created.id)).status).toBe('requires_confirmation');
  });
});
