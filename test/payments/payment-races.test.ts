import Stripe from 'stripe';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { advanceClock, configureClock } from '../../src/clock.js';
import { checkStoredBalances } from '../../src/ledger/ledger-verify.js';
import { createLogger } from '../../src/logger.js';
import { PaymentExpiry } from '../../src/payments/payment-expiry.js';
import { recoveryScheduleMs } from '../../src/payments/payment-recovery.js';
import { parseFaultProfile } from '../../src/sandbox-psp/psp-faults.js';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/**
 * Real concurrent operations on ONE payment, through real connections (the stripe SDK over HTTP,
 * the workers on their own pool connections): exactly one outcome wins, nothing moves twice, at
 * the PSP or in the ledger. Each race runs a few times with fresh intents to make its window likely.
 */
const iterations = 5;
const dayMs = 86_400_000;

let penny: ServedLedger;
/** Two clients, so the racers never share a socket. */
let stripe: Stripe;
let rival: Stripe;
let expiry: PaymentExpiry;

beforeAll(async () => {
  configureClock('controlled');
  penny = await serveTestLedger();
  const created = await penny.merchants.createMerchant('Race Shop');
  stripe = penny.stripeFor(created.secretKey);
  rival = penny.stripeFor(created.secretKey);
  expiry = new PaymentExpiry(penny.pool, penny.flows, { logger: createLogger('silent') });
});

afterEach(() => {
  penny.sandbox.resetFaults();
});

function faults(profile: Record<string, unknown>): void {
  penny.sandbox.injector.set(parseFaultProfile(profile));
}

function script(operation: string, fault: string, times: number): void {
  faults({ script: Array.from({ length: times }, () => ({ operation, fault })) });
}

async function heldAuthorization(amount: number) {
  const intent = await stripe.paymentIntents.create({ amount, currency: 'usd', payment_method: 'pm_card_visa',
    confirm: true, capture_method: 'manual' });
  expect(intent.status).toBe('requires_capture');
  return { intent, chargeId: intent.latest_charge as string };
}

/** What the sandbox PSP did under a merchant reference (a charge for captures/voids, a refund id for refunds). */
async function pspOperations(reference: string): Promise<{ kind: string; amount_minor: bigint | null;
  outcome: string }[]> {
  const result = await penny.pool.query<{ kind: string; amount_minor: bigint | null; outcome: string }>(
    'SELECT kind, amount_minor, outcome FROM sandbox_psp_operations WHERE merchant_reference = $1 ORDER BY created_at',
    [reference]);
  return result.rows;
}

async function finalizationsAtPsp(chargeId: string): Promise<string[]> {
  return (await pspOperations(chargeId)).map((operation) => operation.kind)
    .filter((kind) => kind === 'capture' || kind === 'void');
}

/** The resolutions (hold_post, hold_void, hold_expiry) of a charge's authorization hold, with their posted amounts. */
async function holdResolutions(chargeId: string): Promise<{ kind: string; posted: bigint }[]> {
  const result = await penny.pool.query<{ kind: string; posted: bigint }>(
    `SELECT e.kind, coalesce((SELECT sum(p.amount_minor) FROM ledger_postings p
         WHERE p.entry_id = e.id AND p.phase = 'posted' AND p.direction = 'debit'), 0) AS posted
       FROM ledger_entries e
      WHERE e.hold_entry_id = (SELECT id FROM ledger_entries WHERE external_reference = $1)
      ORDER BY e.sequence`,
    [`penny:charge:${chargeId}:authorization`]);
  return result.rows;
}

async function expectLedgerBalanced(): Promise<void> {
  const { failures } = await checkStoredBalances(penny.pool);
  expect(failures).toEqual([]);
}

/** The HTTP status and code of a settled SDK call that failed, or 'ok'. */
function failureOf(settled: PromiseSettledResult<unknown>): { statusCode?: number; code?: string } | 'ok' {
  if (settled.status === 'fulfilled') return 'ok';
  const error = settled.reason as { statusCode?: number; code?: string };
  return { statusCode: error.statusCode, code: error.code };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe('a capture racing the authorization-expiry worker past capture_before', () => {
  it('either captures and the expiry skips, or the expiry cancels (automatic) and the capture gets 400, never both',
    async () => {
      const outcomes: string[] = [];
      for (let round = 0; round < iterations; round += 1) {
        const { intent, chargeId } = await heldAuthorization(4000 + round);
        advanceClock(7 * dayMs + 1000);
        // PSP latency (20-60 ms) keeps the winner's claim in flight while the other arrives; one side
        // or the other starts a few ms late, by round, so both orders get their chance.
        faults({ latency_ms: { min: 20, max: 60 } });
        const captureDelayMs = round % 2 === 1 ? round : 0;
        const expiryDelayMs = round % 2 === 0 ? round : 0;
        const [captured, expired] = await Promise.allSettled([
          sleep(captureDelayMs).then(() => stripe.paymentIntents.capture(intent.id)),
          sleep(expiryDelayMs).then(() => expiry.expireDue()),
        ]);
        penny.sandbox.resetFaults();
        expect(expired.status).toBe('fulfilled');
        const after = await stripe.paymentIntents.retrieve(intent.id);
        if (captured.status === 'fulfilled') {
          outcomes.push('captured');
          expect(captured.value).toMatchObject({ status: 'succeeded', amount_received: 4000 + round });
          expect(after).toMatchObject({ status: 'succeeded', cancellation_reason: null });
          expect(await finalizationsAtPsp(chargeId)).toEqual(['capture']);
          expect((await holdResolutions(chargeId)).map((entry) => entry.kind)).toEqual(['hold_post']);
        } else {
          outcomes.push('expired');
          expect(failureOf(captured)).toEqual({ statusCode: 400, code: 'payment_intent_unexpected_state' });
          expect(after).toMatchObject({ status: 'canceled', cancellation_reason: 'automatic', amount_received: 0 });
          expect(await finalizationsAtPsp(chargeId)).toEqual(['void']);
          expect((await holdResolutions(chargeId)).map((entry) => entry.kind)).toEqual(['hold_void']);
        }
      }
      expect(outcomes).toHaveLength(iterations);
      await expectLedgerBalanced();
    });
});

describe('a cancel whose void reply was lost', () => {
  it('its client retry and the recovery worker racing end canceled with the merchant\'s reason, voided once',
    async () => {
      for (let round = 0; round < iterations; round += 1) {
        const { intent, chargeId } = await heldAuthorization(5000 + round);
        const key = `race-cancel-${round}-${intent.id}`;
        script('void', 'timeout_after', 3);
        await expect(stripe.paymentIntents.cancel(intent.id, { cancellation_reason: 'requested_by_customer' },
          { idempotencyKey: key })).rejects.toMatchObject({ statusCode: 503, code: 'psp_outcome_unknown' });
        expect(await finalizationsAtPsp(chargeId)).toEqual(['void']);
        faults({ latency_ms: { min: 5, max: 30 } });
        advanceClock(recoveryScheduleMs[0] + 1);
        const [retried, recovered] = await Promise.allSettled([
          rival.paymentIntents.cancel(intent.id, { cancellation_reason: 'requested_by_customer' },
            { idempotencyKey: key }),
          penny.recovery.runDue(),
        ]);
        penny.sandbox.resetFaults();
        expect(recovered.status).toBe('fulfilled');
        expect(failureOf(retried)).toBe('ok');
        if (retried.status === 'fulfilled') {
          expect(retried.value).toMatchObject({ status: 'canceled', cancellation_reason: 'requested_by_customer' });
        }
        expect(await stripe.paymentIntents.retrieve(intent.id))
          .toMatchObject({ status: 'canceled', cancellation_reason: 'requested_by_customer', amount_capturable: 0 });
        expect(await finalizationsAtPsp(chargeId)).toEqual(['void']);
        expect((await holdResolutions(chargeId)).map((entry) => entry.kind)).toEqual(['hold_void']);
        const jobs = await penny.pool.query('SELECT status FROM recovery_jobs WHERE kind = $1 AND subject_id = $2',
          ['cancel', intent.id]);
        expect(jobs.rows).toEqual([{ status: 'resolved' }]);
      }
      await expectLedgerBalanced();
    });
});

describe('a capture whose reply was lost', () => {
  it('its client retry and the recovery worker racing capture once, booked once, for the amount asked', async () => {
    for (let round = 0; round < iterations; round += 1) {
      const { intent, chargeId } = await heldAuthorization(6000);
      const key = `race-capture-${round}-${intent.id}`;
      script('capture', 'timeout_after', 3);
      await expect(stripe.paymentIntents.capture(intent.id, { amount_to_capture: 4500 }, { idempotencyKey: key }))
        .rejects.toMatchObject({ statusCode: 503, code: 'psp_outcome_unknown' });
      expect(await finalizationsAtPsp(chargeId)).toEqual(['capture']);
      faults({ latency_ms: { min: 5, max: 30 } });
      advanceClock(recoveryScheduleMs[0] + 1);
      const [retried, recovered] = await Promise.allSettled([
        rival.paymentIntents.capture(intent.id, { amount_to_capture: 4500 }, { idempotencyKey: key }),
        penny.recovery.runDue(),
      ]);
      penny.sandbox.resetFaults();
      expect(recovered.status).toBe('fulfilled');
      expect(failureOf(retried)).toBe('ok');
      if (retried.status === 'fulfilled') {
        expect(retried.value).toMatchObject({ status: 'succeeded', amount_received: 4500 });
      }
      expect(await stripe.paymentIntents.retrieve(intent.id))
        .toMatchObject({ status: 'succeeded', amount_received: 4500, amount_capturable: 0 });
      expect((await stripe.charges.retrieve(chargeId)).amount_captured).toBe(4500);
      const operations = await pspOperations(chargeId);
      expect(operations.filter((operation) => operation.kind !== 'authorize'))
        .toEqual([{ kind: 'capture', amount_minor: 4500n, outcome: 'captured' }]);
      expect(await holdResolutions(chargeId)).toEqual([{ kind: 'hold_post', posted: 4500n }]);
      const jobs = await penny.pool.query('SELECT status FROM recovery_jobs WHERE kind = $1 AND subject_id = $2',
        ['capture', intent.id]);
      expect(jobs.rows).toEqual([{ status: 'resolved' }]);
    }
    await expectLedgerBalanced();
  });
});

describe('ten concurrent partial refunds and a cancel on a succeeded payment', () => {
  it('refund no more than was captured, the PSP\'s refunds equal Penny\'s, and the cancel gets 400', async () => {
    const amount = 5000;
    const each = 700;
    for (let round = 0; round < 3; round += 1) {
      const intent = await stripe.paymentIntents.create({ amount, currency: 'usd', payment_method: 'pm_card_visa',
        confirm: true });
      expect(intent.status).toBe('succeeded');
      const chargeId = intent.latest_charge as string;
      faults({ latency_ms: { min: 5, max: 30 } });
      const [canceled, ...refunds] = await Promise.allSettled([
        rival.paymentIntents.cancel(intent.id),
        ...Array.from({ length: 10 }, (_, index) => (index % 2 === 0 ? stripe : rival).refunds.create(
          { payment_intent: intent.id, amount: each })),
      ]);
      penny.sandbox.resetFaults();
      expect(failureOf(canceled)).toEqual({ statusCode: 400, code: 'payment_intent_unexpected_state' });
      const succeeded = refunds.flatMap((settled) => (settled.status === 'fulfilled' ? [settled.value] : []));
      const refused = refunds.filter((settled) => settled.status === 'rejected').map(failureOf);
      // Serialized under the charge's lock: as many as fit, the rest refused, none half-done.
      expect(succeeded).toHaveLength(Math.floor(amount / each));
      expect(succeeded.every((refund) => refund.status === 'succeeded')).toBe(true);
      expect(refused).toEqual(Array.from({ length: 10 - succeeded.length },
        () => ({ statusCode: 400, code: 'amount_too_large' })));
      const refundedByPenny = (await stripe.charges.retrieve(chargeId)).amount_refunded;
      expect(refundedByPenny).toBe(succeeded.length * each);
      expect(refundedByPenny).toBeLessThanOrEqual(amount);
      const atPsp = await penny.pool.query<{ total: bigint; count: bigint }>(
        `SELECT coalesce(sum(r.amount_minor), 0) AS total, count(*) AS count FROM sandbox_psp_operations r
          WHERE r.kind = 'refund' AND r.parent_psp_reference = (SELECT psp_reference FROM charges WHERE id = $1)`,
        [chargeId]);
      expect(atPsp.rows[0]).toEqual({ total: BigInt(refundedByPenny), count: BigInt(succeeded.length) });
      const booked = await penny.pool.query<{ count: bigint }>(
        'SELECT count(*) AS count FROM ledger_entries WHERE external_reference = ANY($1)',
        [succeeded.map((refund) => `penny:refund:${refund.id}`)]);
      expect(booked.rows[0]?.count).toBe(BigInt(succeeded.length));
      expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('succeeded');
    }
    await expectLedgerBalanced();
  });
});

describe('a capture racing a cancel on a manual-capture payment', () => {
  it('exactly one wins, the other gets 400, and the PSP shows exactly one of capture or void', async () => {
    const winners: string[] = [];
    for (let round = 0; round < iterations; round += 1) {
      const { intent, chargeId } = await heldAuthorization(7000 + round);
      faults({ latency_ms: { min: 20, max: 60 } });
      const [captured, canceled] = await Promise.allSettled([
        stripe.paymentIntents.capture(intent.id),
        rival.paymentIntents.cancel(intent.id, { cancellation_reason: 'abandoned' }),
      ]);
      penny.sandbox.resetFaults();
      expect([captured.status, canceled.status].sort()).toEqual(['fulfilled', 'rejected']);
      const loser = captured.status === 'rejected' ? captured : canceled;
      expect(failureOf(loser)).toEqual({ statusCode: 400, code: 'payment_intent_unexpected_state' });
      const after = await stripe.paymentIntents.retrieve(intent.id);
      if (captured.status === 'fulfilled') {
        winners.push('capture');
        expect(after).toMatchObject({ status: 'succeeded', amount_received: 7000 + round, cancellation_reason: null });
        expect(await finalizationsAtPsp(chargeId)).toEqual(['capture']);
        expect((await holdResolutions(chargeId)).map((entry) => entry.kind)).toEqual(['hold_post']);
      } else {
        winners.push('cancel');
        expect(after).toMatchObject({ status: 'canceled', amount_received: 0, cancellation_reason: 'abandoned' });
        expect(await finalizationsAtPsp(chargeId)).toEqual(['void']);
        expect((await holdResolutions(chargeId)).map((entry) => entry.kind)).toEqual(['hold_void']);
      }
    }
    expect(winners).toHaveLength(iterations);
    await expectLedgerBalanced();
  });
});
