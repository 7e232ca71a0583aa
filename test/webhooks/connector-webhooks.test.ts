import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { advanceClock, configureClock } from '../../src/clock.js';
import { parseFaultProfile } from '../../src/sandbox-psp/psp-faults.js';
import type { SandboxWebhookSender } from '../../src/sandbox-psp/psp-webhooks.js';
import { signPayload } from '../../src/security/hmac-signature.js';
import { sandboxWebhookSecret } from '../support/sandbox-psp.js';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/** PSP webhooks in: verified on raw bytes, stored once, applied exactly once and only forward. */
let penny: ServedLedger;
let stripe: Stripe;
let sender: SandboxWebhookSender;
let webhookUrl: string;

beforeAll(async () => {
  configureClock('controlled');
  penny = await serveTestLedger();
  const created = await penny.merchants.createMerchant('Inbound Shop');
  stripe = penny.stripeFor(created.secretKey);
  webhookUrl = `http://127.0.0.1:${penny.port}/v1/connectors/sandbox/webhooks`;
  sender = penny.sandbox.sender(webhookUrl);
});

afterEach(() => {
  penny.sandbox.resetFaults();
});

function signed(event: object, options: { secret?: string; timestampSeconds?: number } = {}) {
  const body = JSON.stringify(event);
  const signature = signPayload(body, options.secret ?? sandboxWebhookSecret,
    options.timestampSeconds ?? Math.floor(Date.now() / 1000));
  return { body, headers: { 'content-type': 'application/json', 'sandbox-signature': signature } };
}

function post(request: { body: string; headers: Record<string, string> }) {
  return fetch(webhookUrl, { method: 'POST', body: request.body, headers: request.headers });
}

function pspEvent(operation: Record<string, unknown>, type?: string) {
  return { id: `sbxevt_${randomBytes(8).toString('hex')}`, object: 'event',
    type: type ?? `${String(operation.kind)}.${String(operation.outcome)}`, created: Math.floor(Date.now() / 1000),
    data: { object: 'operation', parent_psp_reference: null, created_at: new Date().toISOString(),
      decline_code: null, currency: 'USD', ...operation } };
}

async function inboxCount(): Promise<number> {
  const result = await penny.pool.query<{ count: bigint }>('SELECT count(*) AS count FROM connector_webhook_inbox');
  return Number(result.rows[0]?.count);
}

async function attemptOf(intentId: string) {
  const result = await penny.pool.query<{ id: string; psp_reference: string | null; status: string }>(
    'SELECT id, psp_reference, status FROM payment_attempts WHERE payment_intent_id = $1', [intentId]);
  const attempt = result.rows[0];
  if (attempt === undefined) throw new Error('no attempt');
  return attempt;
}

async function noteOf(eventId: string) {
  const result = await penny.pool.query<{ status: string; note: string }>(
    'SELECT status, note FROM connector_webhook_inbox WHERE event_id = $1', [eventId]);
  return result.rows[0];
}

async function processingIntent(amount: number, options: { captureMethod?: 'manual' } = {}) {
  penny.sandbox.injector.set(parseFaultProfile({
    script: Array.from({ length: 3 }, () => ({ operation: 'authorize', fault: 'timeout_after' })),
  }));
  const intent = await stripe.paymentIntents.create({ amount, currency: 'usd', payment_method: 'pm_card_visa',
    confirm: true, ...(options.captureMethod === undefined ? {} : { capture_method: options.captureMethod }) });
  penny.sandbox.resetFaults();
  expect(intent.status).toBe('processing');
  return intent;
}

describe('signatures', () => {
  const event = pspEvent({ kind: 'payout', psp_reference: 'sbx_x', reference: 'po_x', outcome: 'paid',
    amount_minor: 100 });

  it('refuses a tampered body with 400, storing nothing', async () => {
    const before = await inboxCount();
    const request = signed(event);
    const response = await post({ ...request, body: request.body.replace('100', '900') });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { code: 'webhook_signature_invalid' } });
    expect(await inboxCount()).toBe(before);
  });

  it('refuses a wrong secret, a stale timestamp and a missing header', async () => {
    const before = await inboxCount();
    expect((await post(signed(event, { secret: 'another_secret_0123456789abcdefghijkl' }))).status).toBe(400);
    expect((await post(signed(event, { timestampSeconds: Math.floor(Date.now() / 1000) - 3600 }))).status).toBe(400);
    const unsigned = signed(event);
    expect((await post({ body: unsigned.body, headers: { 'content-type': 'application/json' } })).status).toBe(400);
    expect(await inboxCount()).toBe(before);
  });

  it('refuses a signed event whose data is not an operation, storing nothing', async () => {
    const before = await inboxCount();
    const response = await post(signed({ id: 'sbxevt_nodata', object: 'event', type: 'authorize.captured', data: null }));
    expect(response.status).toBe(400);
    expect(await inboxCount()).toBe(before);
  });

  it('answers a connector Penny does not have as it answers a bad signature (400, nothing said of which exist)',
    async () => {
      const response = await fetch(webhookUrl.replace('/sandbox/', '/nobody/'), { method: 'POST', body: '{}' });
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error: { code: 'webhook_signature_invalid' } });
    });
});

describe('processing', () => {
  it('a webhook from the sandbox resolves an unknown outcome', async () => {
    const intent = await processingIntent(4100);
    while ((await sender.sendDue()) > 0) { /* deliver every due webhook */ }
    await penny.inbox.processDue();
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('succeeded');
    expect((await attemptOf(intent.id)).status).toBe('captured');
  });

  it('one webhook delivered ten times in parallel is stored once and applied once', async () => {
    const intent = await processingIntent(4200);
    const attempt = await attemptOf(intent.id);
    const [operation] = await penny.sandbox.connector.lookup({ reference: attempt.id });
    const event = pspEvent({ kind: 'authorize', psp_reference: operation?.pspReference, reference: attempt.id,
      outcome: 'captured', amount_minor: 4200 });
    const request = signed(event);
    const responses = await Promise.all(Array.from({ length: 10 }, () => post(request)));
    expect(responses.map((response) => response.status)).toEqual(Array.from({ length: 10 }, () => 200));
    const rows = await penny.pool.query('SELECT 1 FROM connector_webhook_inbox WHERE event_id = $1', [event.id]);
    expect(rows.rows).toHaveLength(1);
    await Promise.all([penny.inbox.processDue(), penny.inbox.processDue()]);
    expect(await noteOf(event.id)).toEqual({ status: 'processed', note: 'applied: captured' });
    const charges = await penny.pool.query('SELECT 1 FROM charges WHERE payment_intent_id = $1', [intent.id]);
    expect(charges.rows).toHaveLength(1);
  });

  it('duplicated webhooks from the sandbox are stored once', async () => {
    penny.sandbox.injector.set(parseFaultProfile({ webhooks: { duplicate_rate: 1 } }));
    const intent = await stripe.paymentIntents.create({ amount: 4300, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true });
    while ((await sender.sendDue()) > 0) { /* deliver */ }
    const attempt = await attemptOf(intent.id);
    const stored = await penny.pool.query(
      `SELECT event_id FROM connector_webhook_inbox WHERE payload->>'reference' = $1`, [attempt.id]);
    expect(stored.rows).toHaveLength(1);
    await penny.inbox.processDue();
    expect(await noteOf(stored.rows[0].event_id as string)).toMatchObject({ status: 'ignored', note: 'already applied' });
  });

  it('an event that cannot be processed is parked with its error and does not block the next', async () => {
    await penny.pool.query(`INSERT INTO connector_webhook_inbox (connector, event_id, event_type, payload)
      VALUES ('sandbox', 'sbxevt_broken', 'authorize.captured', '{"kind": "authorize", "amountMinor": "abc"}'),
             ('sandbox', 'sbxevt_strange', 'teleport.done', '{"kind": "teleport", "amountMinor": null}')`);
    const intent = await processingIntent(4350);
    const attempt = await attemptOf(intent.id);
    const event = pspEvent({ kind: 'authorize', psp_reference: 'sbx_after_broken', reference: attempt.id,
      outcome: 'captured', amount_minor: 4350 });
    await post(signed(event));
    await penny.inbox.processDue();
    expect(await noteOf('sbxevt_broken')).toMatchObject({ status: 'parked' });
    expect((await noteOf('sbxevt_broken'))?.note).toMatch(/^error: /);
    expect(await noteOf('sbxevt_strange')).toMatchObject({ status: 'ignored' });
    expect(await noteOf(event.id)).toEqual({ status: 'processed', note: 'applied: captured' });
  });

  it('settles a flood of echoes without starving the event that needs processing', async () => {
    const echoed = await stripe.paymentIntents.create({ amount: 4370, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true });
    const echoedAttempt = await attemptOf(echoed.id);
    const echoes = Array.from({ length: 40 }, () => pspEvent({ kind: 'authorize',
      psp_reference: echoedAttempt.psp_reference, reference: echoedAttempt.id, outcome: 'captured', amount_minor: 4370 }));
    for (const echo of echoes) expect((await post(signed(echo))).status).toBe(200);
    const waiting = await processingIntent(4380);
    const waitingAttempt = await attemptOf(waiting.id);
    const event = pspEvent({ kind: 'authorize', psp_reference: 'sbx_behind_echoes', reference: waitingAttempt.id,
      outcome: 'captured', amount_minor: 4380 });
    await post(signed(event));
    await penny.inbox.processDue();
    expect(await noteOf(event.id)).toEqual({ status: 'processed', note: 'applied: captured' });
    for (const echo of echoes) expect(await noteOf(echo.id)).toEqual({ status: 'ignored', note: 'already applied' });
    expect((await stripe.paymentIntents.retrieve(waiting.id)).status).toBe('succeeded');
  });

  it('a late authorized after captured changes nothing and is recorded', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 4400, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true });
    const attempt = await attemptOf(intent.id);
    const event = pspEvent({ kind: 'authorize', psp_reference: attempt.psp_reference, reference: attempt.id,
      outcome: 'authorized', amount_minor: 4400 });
    expect((await post(signed(event))).status).toBe(200);
    await penny.inbox.processDue();
    expect(await noteOf(event.id)).toEqual({ status: 'ignored', note: 'late: authorized after captured' });
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('succeeded');
  });

  it('an event for a step Penny has not taken yet is parked, then matched once Penny takes it', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 4500, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true, capture_method: 'manual' });
    const event = pspEvent({ kind: 'capture', psp_reference: 'sbx_early', reference: intent.latest_charge,
      outcome: 'captured', amount_minor: 4500 });
    await post(signed(event));
    await penny.inbox.processDue();
    expect(await noteOf(event.id)).toEqual({ status: 'parked', note: 'captured not applied by Penny yet' });
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('requires_capture');
    await stripe.paymentIntents.capture(intent.id);
    advanceClock(5000);
    await penny.inbox.processDue();
    expect(await noteOf(event.id)).toEqual({ status: 'ignored', note: 'already applied' });
  });

  it('an event still unmatched after its last retry is set aside and opens a case on its payment', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 4550, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true, capture_method: 'manual' });
    // The PSP reports a capture Penny never asked for (made behind its back): Penny never books it.
    const event = pspEvent({ kind: 'capture', psp_reference: 'sbx_never', reference: intent.latest_charge,
      outcome: 'captured', amount_minor: 4550 });
    await post(signed(event));
    // And one too broken to name any payment: it is still set aside, with no case.
    await penny.pool.query(`INSERT INTO connector_webhook_inbox (connector, event_id, event_type, payload)
      VALUES ('sandbox', 'sbxevt_broken_capture', 'capture.captured', '{"kind": "capture", "amountMinor": "x"}')`);
    for (let run = 0; run < 25; run += 1) {
      await penny.inbox.processDue();
      advanceClock(3_600_000);
    }
    expect(await noteOf(event.id)).toMatchObject({ status: 'ignored' });
    expect((await noteOf(event.id))?.note).toMatch(/^never matched: /);
    const cases = await penny.pool.query<{ kind: string; payment_intent_id: string }>(
      'SELECT kind, payment_intent_id FROM payment_cases WHERE subject_id = $1', [`${intent.latest_charge}:${event.id}`]);
    expect(cases.rows).toEqual([{ kind: 'unmatched_event', payment_intent_id: intent.id }]);
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('requires_capture');
    expect(await noteOf('sbxevt_broken_capture')).toMatchObject({ status: 'ignored' });
  });

  it('a contradicting event opens a case and rewrites nothing', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 4600, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true });
    const attempt = await attemptOf(intent.id);
    const event = pspEvent({ kind: 'authorize', psp_reference: attempt.psp_reference, reference: attempt.id,
      outcome: 'declined', decline_code: 'generic_decline', amount_minor: 4600 });
    await post(signed(event));
    await penny.inbox.processDue();
    expect((await noteOf(event.id))?.note).toBe('contradiction: Penny has captured, the PSP says declined');
    const cases = await penny.pool.query(`SELECT kind, detail FROM payment_cases WHERE payment_intent_id = $1`,
      [intent.id]);
    expect(cases.rows).toEqual([{ kind: 'contradicting_event',
      detail: { event: event.id, penny: 'captured', psp: 'declined' } }]);
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('succeeded');
  });

  it('a PSP saying a capture failed after Penny booked it opens a case', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 4650, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true });
    const event = pspEvent({ kind: 'capture', psp_reference: 'sbx_late_fail', reference: intent.latest_charge,
      outcome: 'failed', amount_minor: 4650 });
    await post(signed(event));
    await penny.inbox.processDue();
    expect((await noteOf(event.id))?.note).toBe('contradiction: Penny has captured, the PSP says capture failed');
    expect((await stripe.charges.retrieve(intent.latest_charge as string)).captured).toBe(true);
  });

  it('in webhook mode the reply says pending and the outcome follows by webhook', async () => {
    penny.sandbox.injector.set(parseFaultProfile({ results: 'webhook', pending_resolve_ms: 0 }));
    const intent = await stripe.paymentIntents.create({ amount: 4680, currency: 'usd',
      payment_method: 'pm_card_chargeDeclined', confirm: true });
    expect(intent.status).toBe('processing');
    await sender.resolvePending();
    while ((await sender.sendDue()) > 0) { /* deliver */ }
    await penny.inbox.processDue();
    const resolved = await stripe.paymentIntents.retrieve(intent.id);
    expect(resolved).toMatchObject({ status: 'requires_payment_method',
      last_payment_error: { code: 'card_declined', decline_code: 'generic_decline' } });
  });

  it('a pending authorization resolves later, by webhook', async () => {
    penny.sandbox.injector.set(parseFaultProfile({ pending_authorization_rate: 1, pending_resolve_ms: 1000 }));
    const intent = await stripe.paymentIntents.create({ amount: 4700, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true });
    expect(intent.status).toBe('processing');
    advanceClock(1500);
    await sender.resolvePending();
    while ((await sender.sendDue()) > 0) { /* deliver */ }
    await penny.inbox.processDue();
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('succeeded');
  });
});
