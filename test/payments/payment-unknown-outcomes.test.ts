import Stripe from 'stripe';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { advanceClock, configureClock } from '../../src/clock.js';
import { recoveryScheduleMs } from '../../src/payments/payment-recovery.js';
import { parseFaultProfile } from '../../src/sandbox-psp/psp-faults.js';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/** A PSP call whose outcome is unknown is resolved by asking the PSP: never guessed, never charged twice. */
let penny: ServedLedger;
let stripe: Stripe;

beforeAll(async () => {
  configureClock('controlled');
  penny = await serveTestLedger();
  const created = await penny.merchants.createMerchant('Unknown Outcomes Shop');
  stripe = penny.stripeFor(created.secretKey);
});

afterEach(() => {
  penny.sandbox.resetFaults();
});

function script(operation: string, fault: string, times: number) {
  const steps = Array.from({ length: times }, () => ({ operation, fault }));
  penny.sandbox.injector.set(parseFaultProfile({ script: steps }));
}

async function attemptOf(intentId: string): Promise<{ id: string; status: string }> {
  const result = await penny.pool.query<{ id: string; status: string }>(
    'SELECT id, status FROM payment_attempts WHERE payment_intent_id = $1 ORDER BY attempt_number DESC LIMIT 1',
    [intentId]);
  const attempt = result.rows[0];
  if (attempt === undefined) throw new Error(`no attempt for ${intentId}`);
  return attempt;
}

async function pspOperations(reference: string) {
  return penny.sandbox.connector.lookup({ reference });
}

/** Capture entries of a charge: the automatic capture's own entry, or the posting of its authorization hold. */
async function captureEntries(chargeId: string | null): Promise<number> {
  const result = await penny.pool.query<{ count: bigint }>(
    `SELECT count(*) AS count FROM ledger_entries WHERE external_reference = $1
       OR (kind = 'hold_post' AND hold_entry_id = (SELECT id FROM ledger_entries WHERE external_reference = $2))`,
    [`penny:charge:${chargeId}:capture`, `penny:charge:${chargeId}:authorization`]);
  return Number(result.rows[0]?.count);
}

async function recoverAfter(ms: number): Promise<void> {
  advanceClock(ms);
  await penny.recovery.runDue();
}

describe('an authorization whose reply is lost on every try', () => {
  it('answers processing, replays processing, and books nothing yet', async () => {
    script('authorize', 'timeout_after', 3);
    const params = { amount: 2500, currency: 'usd', payment_method: 'pm_card_visa', confirm: true };
    const intent = await stripe.paymentIntents.create(params, { idempotencyKey: 'lost-reply-1' });
    expect(intent.status).toBe('processing');
    expect(intent.latest_charge).toBeNull();
    const replay = await stripe.paymentIntents.create(params, { idempotencyKey: 'lost-reply-1' });
    expect(replay).toEqual(intent);
    expect((await attemptOf(intent.id)).status).toBe('unknown');
    expect(await pspOperations((await attemptOf(intent.id)).id)).toHaveLength(1);
  });

  it('ends with exactly one charge at the sandbox and one capture in the ledger', async () => {
    script('authorize', 'timeout_after', 3);
    const intent = await stripe.paymentIntents.create({
      amount: 2600, currency: 'usd', payment_method: 'pm_card_visa', confirm: true });
    const attempt = await attemptOf(intent.id);
    await recoverAfter(recoveryScheduleMs[0] + 1);
    const resolved = await stripe.paymentIntents.retrieve(intent.id);
    expect(resolved.status).toBe('succeeded');
    expect(await pspOperations(attempt.id)).toHaveLength(1);
    expect(await captureEntries(resolved.latest_charge as string)).toBe(1);
    const events = await stripe.events.list({ type: 'payment_intent.succeeded', limit: 5 });
    expect(events.data.map((event) => (event.data.object as { id: string }).id)).toContain(intent.id);
  });
});

describe('an authorization that never reached the PSP', () => {
  it('is re-sent by recovery with the same key, and charged once', async () => {
    for (const fault of ['timeout_before', 'error_500'] as const) {
      script('authorize', fault, 3);
      const intent = await stripe.paymentIntents.create({
        amount: 2700, currency: 'usd', payment_method: 'pm_card_visa', confirm: true });
      expect(intent.status).toBe('processing');
      const attempt = await attemptOf(intent.id);
      expect(await pspOperations(attempt.id)).toEqual([]);
      await recoverAfter(recoveryScheduleMs[0] + 1);
      expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('succeeded');
      expect(await pspOperations(attempt.id)).toHaveLength(1);
    }
  });

  it('past the PSP\'s key retention it only looks up: nothing found means nothing charged, never a re-send',
    async () => {
      script('authorize', 'timeout_before', 3);
      const intent = await stripe.paymentIntents.create({
        amount: 2750, currency: 'usd', payment_method: 'pm_card_visa', confirm: true });
      const attempt = await attemptOf(intent.id);
      await recoverAfter(25 * 3_600_000);
      expect(await stripe.paymentIntents.retrieve(intent.id)).toMatchObject({ status: 'requires_payment_method',
        last_payment_error: { code: 'processing_error' } });
      expect(await pspOperations(attempt.id)).toEqual([]);
    });

  it('a refusal of the authorization itself (429 after retries) is a processing error decline', async () => {
    script('authorize', 'error_429', 3);
    const intent = await stripe.paymentIntents.create({ amount: 2800, currency: 'usd' });
    await expect(stripe.paymentIntents.confirm(intent.id, { payment_method: 'pm_card_visa' }))
      .rejects.toMatchObject({ statusCode: 402, code: 'processing_error' });
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('requires_payment_method');
  });
});

describe('3-D Secure through recovery', () => {
  it('a re-sent authorization says again that the customer authenticated', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 2950, currency: 'usd',
      payment_method: 'pm_card_authenticationRequired', confirm: true });
    expect(intent.status).toBe('requires_action');
    script('authorize', 'timeout_before', 3);
    const confirmed = await stripe.paymentIntents.confirm(intent.id);
    expect(confirmed.status).toBe('processing');
    await recoverAfter(recoveryScheduleMs[0] + 1);
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('succeeded');
  });
});

describe('when the PSP cannot be asked', () => {
  it('moves the attempt to manual review with a case when the schedule runs out, charging nothing', async () => {
    penny.sandbox.injector.set(parseFaultProfile({ rates: { error_503: 1 }, operations: ['authorize', 'lookup'] }));
    const intent = await stripe.paymentIntents.create({
      amount: 2900, currency: 'usd', payment_method: 'pm_card_visa', confirm: true });
    const attempt = await attemptOf(intent.id);
    for (const delayMs of recoveryScheduleMs) await recoverAfter(delayMs + 1);
    await recoverAfter(recoveryScheduleMs.at(-1) ?? 0);
    expect((await attemptOf(intent.id)).status).toBe('manual_review');
    const cases = await penny.pool.query('SELECT kind, status FROM payment_cases WHERE subject_id = $1', [attempt.id]);
    expect(cases.rows).toEqual([{ kind: 'unresolved_outcome', status: 'open' }]);
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('processing');
    penny.sandbox.resetFaults();
    expect(await pspOperations(attempt.id)).toEqual([]);
  });
});

describe('follow-ups', () => {
  it('refuses to capture a payment whose authorization is still unknown', async () => {
    script('authorize', 'timeout_after', 3);
    const intent = await stripe.paymentIntents.create({ amount: 3000, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true, capture_method: 'manual' });
    expect(intent.status).toBe('processing');
    await expect(stripe.paymentIntents.capture(intent.id))
      .rejects.toMatchObject({ statusCode: 400, code: 'payment_intent_unexpected_state' });
  });

  it('a capture whose reply is lost answers 503, and its retry with the same key captures once', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 3100, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true, capture_method: 'manual' });
    script('capture', 'timeout_after', 3);
    await expect(stripe.paymentIntents.capture(intent.id, {}, { idempotencyKey: 'capture-lost-1' }))
      .rejects.toMatchObject({ statusCode: 503, code: 'psp_outcome_unknown' });
    const captured = await stripe.paymentIntents.capture(intent.id, {}, { idempotencyKey: 'capture-lost-1' });
    expect(captured.status).toBe('succeeded');
    const operations = await pspOperations(intent.latest_charge as string);
    expect(operations.filter((operation) => operation.kind === 'capture')).toHaveLength(1);
    expect(await captureEntries(intent.latest_charge as string)).toBe(1);
  });

  it('a capture whose reply is lost and that the client never retries is completed by recovery', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 3120, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true, capture_method: 'manual' });
    script('capture', 'timeout_after', 3);
    await expect(stripe.paymentIntents.capture(intent.id)).rejects.toMatchObject({ statusCode: 503 });
    penny.sandbox.resetFaults();
    await recoverAfter(recoveryScheduleMs[0] + 1);
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('succeeded');
    const operations = await pspOperations(intent.latest_charge as string);
    expect(operations.filter((operation) => operation.kind === 'capture')).toHaveLength(1);
    expect(await captureEntries(intent.latest_charge as string)).toBe(1);
  });

  it('a refund that never reached the PSP and is never retried is sent and completed by recovery', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 3130, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true });
    script('refund', 'timeout_before', 3);
    await expect(stripe.refunds.create({ payment_intent: intent.id, amount: 500 }))
      .rejects.toMatchObject({ statusCode: 503, code: 'psp_outcome_unknown' });
    penny.sandbox.resetFaults();
    await recoverAfter(recoveryScheduleMs[0] + 1);
    const refunds = await stripe.refunds.list({ payment_intent: intent.id });
    expect(refunds.data.map((refund) => refund.status)).toEqual(['succeeded']);
    const operations = await pspOperations(refunds.data[0]?.id ?? '');
    expect(operations.filter((operation) => operation.kind === 'refund')).toHaveLength(1);
  });

  it('a refund failed by recovery past the key retention is not sent again by the client\'s late retry',
    async () => {
      const intent = await stripe.paymentIntents.create({ amount: 3140, currency: 'usd',
        payment_method: 'pm_card_visa', confirm: true });
      script('refund', 'timeout_before', 3);
      await expect(stripe.refunds.create({ payment_intent: intent.id, amount: 400 }, { idempotencyKey: 'late-1' }))
        .rejects.toMatchObject({ statusCode: 503 });
      penny.sandbox.resetFaults();
      await recoverAfter(25 * 3_600_000);
      const late = await stripe.refunds.create({ payment_intent: intent.id, amount: 400 }, { idempotencyKey: 'late-1' });
      expect(late.status).toBe('failed');
      expect((await pspOperations(late.id)).filter((operation) => operation.kind === 'refund')).toEqual([]);
    });

  it('a capture claimed again after one was given back goes to the PSP under a new key', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 3170, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true, capture_method: 'manual' });
    script('capture', 'timeout_before', 3);
    await expect(stripe.paymentIntents.capture(intent.id)).rejects.toMatchObject({ statusCode: 503 });
    const first = await penny.pool.query<{ psp_idempotency_key: string }>(
      'SELECT psp_idempotency_key FROM payment_intent_finalizations WHERE payment_intent_id = $1', [intent.id]);
    const firstKey = first.rows[0]?.psp_idempotency_key;
    expect(firstKey).toMatch(/^penny:ch_\w+:capture:fin_/);
    penny.sandbox.resetFaults();
    await recoverAfter(25 * 3_600_000);
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('requires_capture');
    expect((await stripe.paymentIntents.capture(intent.id)).status).toBe('succeeded');
    const captures = await penny.pool.query<{ idempotency_key: string }>(
      `SELECT idempotency_key FROM sandbox_psp_operations WHERE merchant_reference = $1 AND kind = 'capture'`,
      [intent.latest_charge]);
    expect(captures.rows).toHaveLength(1);
    expect(captures.rows[0]?.idempotency_key).toMatch(/^penny:ch_\w+:capture:fin_/);
    expect(captures.rows[0]?.idempotency_key).not.toBe(firstKey);
  });

  it('a stale retry of a capture given back never sends the newer capture\'s key with its own amount', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 3180, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true, capture_method: 'manual' });
    script('capture', 'timeout_before', 3);
    await expect(stripe.paymentIntents.capture(intent.id, { amount_to_capture: 1000 }, { idempotencyKey: 'stale-1' }))
      .rejects.toMatchObject({ statusCode: 503 });
    penny.sandbox.resetFaults();
    await recoverAfter(25 * 3_600_000);
    script('capture', 'timeout_before', 3);
    await expect(stripe.paymentIntents.capture(intent.id, { amount_to_capture: 2000 }, { idempotencyKey: 'newer-1' }))
      .rejects.toMatchObject({ statusCode: 503 });
    penny.sandbox.resetFaults();
    await expect(stripe.paymentIntents.capture(intent.id, { amount_to_capture: 1000 }, { idempotencyKey: 'stale-1' }))
      .rejects.toMatchObject({ statusCode: 400, code: 'payment_intent_unexpected_state' });
    expect((await pspOperations(intent.latest_charge as string)).filter((item) => item.kind === 'capture')).toEqual([]);
    const captured = await stripe.paymentIntents.capture(intent.id, { amount_to_capture: 2000 },
      { idempotencyKey: 'newer-1' });
    expect(captured).toMatchObject({ status: 'succeeded', amount_received: 2000 });
  });

  it('a capture the PSP rate-limits answers 503, and its retry with the same key captures', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 3150, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true, capture_method: 'manual' });
    script('capture', 'error_429', 3);
    await expect(stripe.paymentIntents.capture(intent.id, {}, { idempotencyKey: 'capture-busy-1' }))
      .rejects.toMatchObject({ statusCode: 503, code: 'psp_unavailable' });
    expect((await stripe.paymentIntents.capture(intent.id, {}, { idempotencyKey: 'capture-busy-1' })).status)
      .toBe('succeeded');
  });

  it('a capture the PSP refuses gives the intent back: it is not stuck as being captured', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 3160, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true, capture_method: 'manual' });
    const charge = await stripe.charges.retrieve(intent.latest_charge as string);
    const [authorization] = await pspOperations((await attemptOf(intent.id)).id);
    // Voided at the PSP behind Penny's back: the PSP refuses the capture (409).
    await penny.sandbox.connector.void({ reference: charge.id, idempotencyKey: `outside:${charge.id}`,
      pspReference: authorization?.pspReference ?? '' });
    await expect(stripe.paymentIntents.capture(intent.id))
      .rejects.toMatchObject({ statusCode: 400, code: 'psp_refused' });
    const claims = await penny.pool.query('SELECT 1 FROM payment_intent_finalizations WHERE payment_intent_id = $1',
      [intent.id]);
    expect(claims.rows).toEqual([]);
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('requires_capture');
  });

  it('a refund the PSP refuses fails, releases its amount and says so in an event', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 3200, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true });
    // Refunded in full at the PSP behind Penny's back: the PSP refuses Penny's refund.
    const [authorization] = await pspOperations((await attemptOf(intent.id)).id);
    await penny.sandbox.connector.refund({ reference: 're_outside', idempotencyKey: `outside:${intent.id}`,
      pspReference: authorization?.pspReference ?? '', amountMinor: 3200n, currency: 'USD' });
    const refund = await stripe.refunds.create({ payment_intent: intent.id, amount: 1000 });
    expect(refund.status).toBe('failed');
    expect((await stripe.charges.retrieve(intent.latest_charge as string)).amount_refunded).toBe(0);
    const events = await stripe.events.list({ type: 'refund.failed', limit: 1 });
    expect(events.data[0]?.data.object).toMatchObject({ id: refund.id, status: 'failed' });
    expect((await stripe.charges.retrieve(intent.latest_charge as string)).refunded).toBe(false);
  });
});

describe('cancels whose void is unknown', () => {
  /** Hold entries of a charge's authorization that are voided (the hold released in full). */
  async function holdVoids(chargeId: string | null): Promise<number> {
    const result = await penny.pool.query<{ count: bigint }>(
      `SELECT count(*) AS count FROM ledger_entries WHERE kind = 'hold_void'
         AND hold_entry_id = (SELECT id FROM ledger_entries WHERE external_reference = $1)`,
      [`penny:charge:${chargeId}:authorization`]);
    return Number(result.rows[0]?.count);
  }

  async function manualIntent(amount: number) {
    return stripe.paymentIntents.create({ amount, currency: 'usd', payment_method: 'pm_card_visa', confirm: true,
      capture_method: 'manual' });
  }

  it('a void whose reply is lost and that the client never retries is completed by recovery, with the reason asked',
    async () => {
      const intent = await manualIntent(3300);
      script('void', 'timeout_after', 3);
      await expect(stripe.paymentIntents.cancel(intent.id, { cancellation_reason: 'requested_by_customer' }))
        .rejects.toMatchObject({ statusCode: 503, code: 'psp_outcome_unknown' });
      penny.sandbox.resetFaults();
      await recoverAfter(recoveryScheduleMs[0] + 1);
      const canceled = await stripe.paymentIntents.retrieve(intent.id);
      expect(canceled).toMatchObject({ status: 'canceled', cancellation_reason: 'requested_by_customer' });
      const voids = (await pspOperations(intent.latest_charge as string)).filter((item) => item.kind === 'void');
      expect(voids).toHaveLength(1);
      expect(await holdVoids(intent.latest_charge as string)).toBe(1);
    });

  it('a void that never reached the PSP is sent by recovery with the same key, once', async () => {
    const intent = await manualIntent(3310);
    script('void', 'timeout_before', 3);
    await expect(stripe.paymentIntents.cancel(intent.id)).rejects.toMatchObject({ statusCode: 503 });
    expect(await pspOperations(intent.latest_charge as string)).not.toContainEqual(
      expect.objectContaining({ kind: 'void' }));
    penny.sandbox.resetFaults();
    await recoverAfter(recoveryScheduleMs[0] + 1);
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('canceled');
    const voids = (await pspOperations(intent.latest_charge as string)).filter((item) => item.kind === 'void');
    expect(voids).toHaveLength(1);
    expect(await holdVoids(intent.latest_charge as string)).toBe(1);
  });

  it('past the key retention a void never performed is given back: the payment can still be captured', async () => {
    const intent = await manualIntent(3320);
    script('void', 'timeout_before', 3);
    await expect(stripe.paymentIntents.cancel(intent.id, {}, { idempotencyKey: 'void-late-1' }))
      .rejects.toMatchObject({ statusCode: 503 });
    penny.sandbox.resetFaults();
    await recoverAfter(25 * 3_600_000);
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('requires_capture');
    expect(await holdVoids(intent.latest_charge as string)).toBe(0);
    // The client's late retry is not sent again: the cancel was given up.
    await expect(stripe.paymentIntents.cancel(intent.id, {}, { idempotencyKey: 'void-late-1' }))
      .rejects.toMatchObject({ statusCode: 400, code: 'payment_intent_unexpected_state' });
    expect((await pspOperations(intent.latest_charge as string)).filter((item) => item.kind === 'void')).toEqual([]);
    expect((await stripe.paymentIntents.capture(intent.id)).status).toBe('succeeded');
  });
});
