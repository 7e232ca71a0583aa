import fc from 'fast-check';
import Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import { advanceClock, configureClock, nowMs } from '../../src/clock.js';
import { checkStoredBalances } from '../../src/ledger/ledger-verify.js';
import { paymentIntentStatuses } from '../../src/payments/payment-state.js';
import { parseFaultProfile, type PspOperation } from '../../src/sandbox-psp/psp-faults.js';
import type { SandboxWebhookSender } from '../../src/sandbox-psp/psp-webhooks.js';
import { sandboxSenderOf, serveTestLedger, type ServedLedger } from '../support/stripe.js';

/**
 * Payments under random sequences, through the official stripe SDK against a real Penny and the
 * sandbox PSP: payments confirmed at once (automatic or manual capture, approved or declined),
 * captures in full or in part, cancels, refunds of any amount, retries of earlier requests with
 * their Idempotency-Key, PSP faults on single calls, and time passing with recovery and the PSP's
 * webhooks. Each step's answer is checked against what the payment's state allows; after every
 * step, Penny never books ahead of the PSP and the ledger balances; once everything is resolved,
 * Penny, the ledger and the PSP agree on every amount, and the PSP moved each amount once.
 */
let penny: ServedLedger;
let sender: SandboxWebhookSender;
let runs = 0;
const outcomesSeen = new Map<string, number>();

beforeAll(async () => {
  configureClock('controlled');
  penny = await serveTestLedger();
  sender = sandboxSenderOf(penny);
});

// ---------------------------------------------------------------------------------------------
// Operations

/** A fault the sandbox injects on the next call(s) of the step's PSP operation: 3 outlast the connector's retries. */
interface InjectedFault {
  readonly fault: 'timeout_after' | 'timeout_before' | 'error_503';
  readonly times: 1 | 3;
}

/** An amount, relative to what is left to capture or refund when the step runs. */
type AmountChoice =
  | { readonly mode: 'omitted' }
  | { readonly mode: 'share'; readonly permille: number }
  | { readonly mode: 'absolute'; readonly amount: number }
  | { readonly mode: 'over'; readonly extra: number };

type Operation =
  | { readonly kind: 'create'; readonly amount: number; readonly manual: boolean; readonly declined: boolean;
      readonly fault: InjectedFault | null }
  | { readonly kind: 'capture'; readonly intent: number; readonly amount: AmountChoice; readonly fault: InjectedFault | null }
  | { readonly kind: 'cancel'; readonly intent: number; readonly reason: 'requested_by_customer' | null;
      readonly fault: InjectedFault | null }
  | { readonly kind: 'refund'; readonly intent: number; readonly amount: AmountChoice; readonly fault: InjectedFault | null }
  | { readonly kind: 'retry'; readonly request: number; readonly fault: InjectedFault | null }
  | { readonly kind: 'recover'; readonly waitMs: number;
      readonly fault: (InjectedFault & { readonly operation: PspOperation }) | null }
  | { readonly kind: 'webhooks'; readonly waitMs: number };

const faultKind = fc.constantFrom('timeout_after' as const, 'timeout_before' as const, 'error_503' as const);
const faultTimes = fc.constantFrom(3 as const, 1 as const);
const injectedFault = fc.record({ fault: faultKind, times: faultTimes });

/** Most calls go through; one in four meets a fault. */
const faultArbitrary: fc.Arbitrary<InjectedFault | null> = fc.oneof(
  { arbitrary: fc.constant(null), weight: 3 },
  { arbitrary: injectedFault, weight: 1 },
);

const amountArbitrary: fc.Arbitrary<AmountChoice> = fc.oneof(
  { arbitrary: fc.constant({ mode: 'omitted' as const }), weight: 2 },
  { arbitrary: fc.integer({ min: 1, max: 1000 }).map((permille) => ({ mode: 'share' as const, permille })), weight: 4 },
  { arbitrary: fc.integer({ min: 1, max: 20_000 }).map((amount) => ({ mode: 'absolute' as const, amount })), weight: 1 },
  { arbitrary: fc.integer({ min: 1, max: 500 }).map((extra) => ({ mode: 'over' as const, extra })), weight: 1 },
);

const intentIndex = fc.nat({ max: 7 });

const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({
    kind: fc.constant('create' as const),
    amount: fc.integer({ min: 50, max: 20_000 }),
    manual: fc.boolean(),
    declined: fc.oneof({ arbitrary: fc.constant(false), weight: 9 }, { arbitrary: fc.constant(true), weight: 1 }),
    fault: faultArbitrary,
  }) },
  { weight: 3, arbitrary: fc.record({
    kind: fc.constant('capture' as const), intent: intentIndex, amount: amountArbitrary, fault: faultArbitrary }) },
  { weight: 2, arbitrary: fc.record({
    kind: fc.constant('cancel' as const), intent: intentIndex,
    reason: fc.constantFrom(null, 'requested_by_customer' as const), fault: faultArbitrary }) },
  { weight: 4, arbitrary: fc.record({
    kind: fc.constant('refund' as const), intent: intentIndex, amount: amountArbitrary, fault: faultArbitrary }) },
  { weight: 3, arbitrary: fc.record({
    kind: fc.constant('retry' as const), request: fc.nat({ max: 30 }), fault: faultArbitrary }) },
  { weight: 2, arbitrary: fc.record({
    kind: fc.constant('recover' as const),
    waitMs: fc.oneof(
      { arbitrary: fc.constant(2_001), weight: 3 },
      { arbitrary: fc.constant(10_001), weight: 2 },
      { arbitrary: fc.constant(60_001), weight: 2 },
      { arbitrary: fc.constant(600_001), weight: 1 },
      // Past the PSP's 24-hour key retention: recovery only looks up, and gives up what never happened.
      { arbitrary: fc.constant(25 * 3_600_000), weight: 1 },
    ),
    fault: fc.oneof(
      { arbitrary: fc.constant(null), weight: 2 },
      { arbitrary: fc.record({
        operation: fc.constantFrom<PspOperation>('lookup', 'authorize', 'capture', 'void', 'refund'),
        fault: faultKind, times: faultTimes,
      }), weight: 1 },
    ),
  }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('webhooks' as const), waitMs: fc.constantFrom(0, 31_000) }) },
);

// ---------------------------------------------------------------------------------------------
// Requests, answers and replays

type Call =
  | { readonly kind: 'create'; readonly params: Stripe.PaymentIntentCreateParams }
  | { readonly kind: 'capture'; readonly intent: string; readonly params: Stripe.PaymentIntentCaptureParams }
  | { readonly kind: 'cancel'; readonly intent: string; readonly params: Stripe.PaymentIntentCancelParams }
  | { readonly kind: 'refund'; readonly params: Stripe.RefundCreateParams };

const pspOperationOf: Record<Call['kind'], PspOperation> = {
  create: 'authorize', capture: 'capture', cancel: 'void', refund: 'refund',
};

/** What the client saw: the status, the error code, and the JSON body as the SDK received it. */
interface Answer {
  readonly status: number;
  readonly code: string | undefined;
  readonly body: string;
  readonly object: Record<string, unknown>;
}

interface SentRequest {
  readonly call: Call;
  readonly key: string;
  /** The first answer that was not a 503: Penny stores it, and every retry with the key must repeat it. */
  stored: Answer | undefined;
}

interface Run {
  readonly stripe: Stripe;
  readonly merchantId: string;
  readonly name: string;
  readonly intents: string[];
  readonly requests: SentRequest[];
  step: number;
  context: string;
}

/** Fields the SDK adds to an error's body from the transport; they differ per request. */
const transportFields = new Set(['headers', 'statusCode', 'requestId']);

function invoke(stripe: Stripe, call: Call, idempotencyKey: string): Promise<unknown> {
  const options = { idempotencyKey };
  switch (call.kind) {
    case 'create':
      return stripe.paymentIntents.create(call.params, options);
    case 'capture':
      return stripe.paymentIntents.capture(call.intent, call.params, options);
    case 'cancel':
      return stripe.paymentIntents.cancel(call.intent, call.params, options);
    case 'refund':
      return stripe.refunds.create(call.params, options);
  }
}

async function send(run: Run, call: Call, key: string, fault: InjectedFault | null): Promise<Answer> {
  injectFaults(run, pspOperationOf[call.kind], fault);
  let answer: Answer;
  try {
    const body = JSON.stringify(await invoke(run.stripe, call, key));
    answer = { status: 200, code: undefined, body, object: JSON.parse(body) as Record<string, unknown> };
  } catch (error) {
    // A connection error (no status) is not an answer: it fails the property.
    if (!(error instanceof Stripe.errors.StripeError) || error.statusCode === undefined) throw error;
    const fields = Object.entries(error.raw as Record<string, unknown>).filter(([name]) => !transportFields.has(name));
    const body = JSON.stringify({ error: Object.fromEntries(fields) });
    answer = { status: error.statusCode, code: error.code, body, object: JSON.parse(body) as Record<string, unknown> };
  } finally {
    penny.sandbox.resetFaults();
  }
  // Refusals are 4xx, unknown outcomes a resumable 503; never a 500.
  expect([200, 400, 402, 404, 503], `${run.context}: ${answer.body}`).toContain(answer.status);
  if (answer.status === 503) expect(['psp_outcome_unknown', 'psp_unavailable'], run.context).toContain(answer.code);
  return answer;
}

/** Sends a new request under a key of its own, remembered so a later step can retry it. */
async function request(run: Run, call: Call, fault: InjectedFault | null): Promise<Answer> {
  const sent: SentRequest = { call, key: `${run.name}-request-${run.requests.length}`, stored: undefined };
  run.requests.push(sent);
  const answer = await send(run, call, sent.key, fault);
  if (answer.status !== 503) sent.stored = answer;
  return answer;
}

/**
 * The sandbox for one step: its webhooks now and then lost, duplicated or late (so reordered),
 * drawn from the step's number; and the step's fault, if any, on its next PSP call(s).
 */
function injectFaults(run: Run, operation: PspOperation, fault: InjectedFault | null): void {
  penny.sandbox.injector.set(parseFaultProfile({
    seed: run.step + 1,
    webhooks: { duplicate_rate: 0.3, lost_rate: 0.1, delay_ms: { min: 0, max: 30_000 } },
    script: fault === null ? [] : Array.from({ length: fault.times }, () => ({ operation, fault: fault.fault })),
  }));
}

function outcomeOf(answer: Answer): string {
  if (answer.status !== 200) return `${answer.status} ${answer.code ?? ''}`;
  return `200 ${String(answer.object.status)}`;
}

function see(outcome: string): void {
  outcomesSeen.set(outcome, (outcomesSeen.get(outcome) ?? 0) + 1);
}

/** Counting back from the latest: small indices (and shrinking) favour what was just made. */
function recent<T>(items: readonly T[], index: number): T {
  return items[items.length - 1 - (index % items.length)] as T;
}

function chosenAmount(choice: AmountChoice, left: number): number | undefined {
  switch (choice.mode) {
    case 'omitted':
      return undefined;
    case 'share':
      return Math.max(1, Math.floor((left * choice.permille) / 1000));
    case 'absolute':
      return choice.amount;
    case 'over':
      return left + choice.extra;
  }
}

// ---------------------------------------------------------------------------------------------
// What Penny holds, read straight from its tables

interface IntentState {
  readonly status: string;
  readonly amount: number;
  readonly capturable: number;
  /** A capture or cancel claimed and not settled yet (its PSP outcome unknown). */
  readonly claimed: boolean;
  readonly charge: { readonly amount: number; readonly captured: boolean; readonly remaining: number } | undefined;
}

async function intentState(run: Run, intentId: string): Promise<IntentState> {
  const result = await penny.pool.query<{ status: string; amount: bigint; amount_capturable: bigint; claimed: boolean;
    charge_amount: bigint | null; captured: boolean | null; amount_captured: bigint | null;
    amount_refunded: bigint | null }>(
    `SELECT i.status, i.amount, i.amount_capturable,
       EXISTS (SELECT 1 FROM payment_intent_finalizations f
         WHERE f.merchant_id = i.merchant_id AND f.payment_intent_id = i.id) AS claimed,
       c.amount AS charge_amount, c.captured, c.amount_captured, c.amount_refunded
     FROM payment_intents i LEFT JOIN charges c ON c.merchant_id = i.merchant_id AND c.id = i.latest_charge
     WHERE i.merchant_id = $1 AND i.id = $2`, [run.merchantId, intentId]);
  const row = result.rows[0];
  if (row === undefined) throw new Error(`${run.context}: no intent ${intentId}`);
  return {
    status: row.status, amount: Number(row.amount), capturable: Number(row.amount_capturable), claimed: row.claimed,
    charge: row.charge_amount === null ? undefined : {
      amount: Number(row.charge_amount), captured: row.captured === true,
      remaining: Number((row.amount_captured ?? 0n) - (row.amount_refunded ?? 0n)),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Steps: each answer is what the payment's state allows

async function create(run: Run, operation: Extract<Operation, { kind: 'create' }>): Promise<void> {
  const params: Stripe.PaymentIntentCreateParams = {
    amount: operation.amount, currency: 'usd', confirm: true,
    payment_method: operation.declined ? 'pm_card_chargeDeclined' : 'pm_card_visa',
    capture_method: operation.manual ? 'manual' : 'automatic',
  };
  const answer = await request(run, { kind: 'create', params }, operation.fault);
  const expected = operation.fault?.times === 3 ? '200 processing'
    : operation.declined ? '402 card_declined'
      : operation.manual ? '200 requires_capture' : '200 succeeded';
  expect(outcomeOf(answer), `${run.context}: ${answer.body}`).toBe(expected);
  see(`create ${expected}`);
  if (answer.status === 200) {
    expect(answer.object, run.context).toMatchObject({
      amount: operation.amount,
      amount_received: expected === '200 succeeded' ? operation.amount : 0,
      amount_capturable: expected === '200 requires_capture' ? operation.amount : 0,
    });
    run.intents.push(String(answer.object.id));
  } else {
    const embedded = (answer.object.error as { payment_intent?: { id: string; status: string } }).payment_intent;
    expect(embedded?.status, run.context).toBe('requires_payment_method');
    run.intents.push(String(embedded?.id));
  }
}

async function capture(run: Run, operation: Extract<Operation, { kind: 'capture' }>): Promise<void> {
  const intentId = recent(run.intents, operation.intent);
  const before = await intentState(run, intentId);
  const amount = chosenAmount(operation.amount, before.capturable > 0 ? before.capturable : before.amount);
  const params = amount === undefined ? {} : { amount_to_capture: amount };
  const answer = await request(run, { kind: 'capture', intent: intentId, params }, operation.fault);
  const expected = before.status !== 'requires_capture' ? '400 payment_intent_unexpected_state'
    : (amount ?? 0) > before.capturable ? '400 amount_too_large'
      : before.claimed ? '400 payment_intent_unexpected_state'
        : operation.fault?.times === 3 ? '503 psp_outcome_unknown' : '200 succeeded';
  expect(outcomeOf(answer), `${run.context} (${before.status}): ${answer.body}`).toBe(expected);
  see(`capture ${expected}`);
  if (answer.status === 200) {
    expect(answer.object, run.context)
      .toMatchObject({ amount_received: amount ?? before.capturable, amount_capturable: 0 });
    see(amount === undefined || amount === before.capturable ? 'captured in full' : 'captured in part');
  }
}

async function cancel(run: Run, operation: Extract<Operation, { kind: 'cancel' }>): Promise<void> {
  const intentId = recent(run.intents, operation.intent);
  const before = await intentState(run, intentId);
  const params = operation.reason === null ? {} : { cancellation_reason: operation.reason };
  const answer = await request(run, { kind: 'cancel', intent: intentId, params }, operation.fault);
  const expected = ['requires_payment_method', 'requires_confirmation', 'requires_action'].includes(before.status)
    ? '200 canceled'
    : before.status !== 'requires_capture' || before.claimed ? '400 payment_intent_unexpected_state'
      : operation.fault?.times === 3 ? '503 psp_outcome_unknown' : '200 canceled';
  expect(outcomeOf(answer), `${run.context} (${before.status}): ${answer.body}`).toBe(expected);
  see(`cancel ${expected}`);
  if (answer.status === 200) {
    expect(answer.object, run.context).toMatchObject({ amount_capturable: 0, amount_received: 0,
      cancellation_reason: operation.reason });
  }
}

async function refund(run: Run, operation: Extract<Operation, { kind: 'refund' }>): Promise<void> {
  const intentId = recent(run.intents, operation.intent);
  const before = await intentState(run, intentId);
  const charge = before.charge;
  const remaining = charge?.remaining ?? 0;
  const amount = chosenAmount(operation.amount, remaining > 0 ? remaining : charge?.amount ?? before.amount);
  const params = { payment_intent: intentId, ...(amount === undefined ? {} : { amount }) };
  const answer = await request(run, { kind: 'refund', params }, operation.fault);
  const expected = charge === undefined ? '404 resource_missing'
    : !charge.captured ? '400 charge_not_refundable'
      : remaining === 0 ? '400 charge_already_refunded'
        : (amount ?? remaining) > remaining ? '400 amount_too_large'
          : operation.fault?.times === 3 ? '503 psp_outcome_unknown' : '200 succeeded';
  expect(outcomeOf(answer), `${run.context} (${before.status}, ${remaining} left): ${answer.body}`).toBe(expected);
  see(`refund ${expected}`);
  if (answer.status === 200) expect(answer.object.amount, run.context).toBe(amount ?? remaining);
}

/** The same request with the same key: the stored answer byte for byte, or (after a 503) the request resumed. */
async function retry(run: Run, operation: Extract<Operation, { kind: 'retry' }>): Promise<void> {
  const sent = recent(run.requests, operation.request);
  const answer = await send(run, sent.call, sent.key, operation.fault);
  if (sent.stored !== undefined) {
    expect(answer.body, `${run.context}: a retry of ${sent.key} (${sent.call.kind})`).toBe(sent.stored.body);
    see('retry replayed');
  } else {
    see(`retry of a 503 ${outcomeOf(answer)}`);
    if (answer.status !== 503) sent.stored = answer;
  }
}

/** Time passes and recovery runs, its own PSP calls (look-ups, re-sends) perhaps faulted. */
async function recover(run: Run, operation: Extract<Operation, { kind: 'recover' }>): Promise<void> {
  advanceClock(operation.waitMs);
  injectFaults(run, operation.fault?.operation ?? 'lookup', operation.fault);
  try {
    see(`recovery ran ${(await penny.recovery.runDue()) > 0 ? 'jobs' : 'nothing'}`);
  } finally {
    penny.sandbox.resetFaults();
  }
}

/** The PSP's webhooks due now come in (late ones after their delay), and Penny's inbox processes what is due. */
async function deliverWebhooks(): Promise<void> {
  for (let round = 0; round < 20 && (await sender.sendDue()) > 0; round += 1);
  for (let round = 0; round < 20 && (await penny.inbox.processDue()) > 0; round += 1);
}

/**
 * With the PSP healthy again, the clock moves to whatever is due next (a recovery job, a late
 * webhook, a parked event) until nothing is left: every outcome is then known to Penny.
 */
async function settle(): Promise<void> {
  penny.sandbox.resetFaults();
  for (let round = 0; round < 60; round += 1) {
    await deliverWebhooks();
    const due = await penny.pool.query<{ next: string | null }>(`SELECT least(
         (SELECT min(next_run_at) FROM recovery_jobs WHERE status = 'pending'),
         (SELECT min(deliver_at) FROM sandbox_psp_webhooks WHERE delivered_at IS NULL AND attempt_count < 8),
         (SELECT min(next_process_at) FROM connector_webhook_inbox WHERE status IN ('received', 'parked'))) AS next`);
    const next = due.rows[0]?.next ?? null;
    if (next === null) break;
    advanceClock(Math.max(0, Date.parse(next) - nowMs()) + 1);
    await penny.recovery.runDue();
  }
}

// ---------------------------------------------------------------------------------------------
// Invariants

interface Facts {
  readonly intents: { id: string; status: string; amount: bigint; amount_capturable: bigint; amount_received: bigint;
    latest_charge: string | null }[];
  /** Each charge, with what the ledger booked for it: captured, refunded, and how its authorization hold ended. */
  readonly charges: { id: string; payment_intent_id: string; attempt_id: string; amount: bigint;
    amount_captured: bigint; amount_refunded: bigint; captured: boolean; status: string;
    authorization_entry_id: string | null; ledger_captured: bigint; ledger_refunded: bigint;
    hold_resolutions: string | null }[];
  readonly refunds: { id: string; charge_id: string; amount: bigint; status: string }[];
  readonly attempts: { id: string; payment_intent_id: string; status: string }[];
  /** The sandbox's operations on this merchant's authorizations: each authorization and its follow-ups. */
  readonly psp: { attempt_id: string; kind: string; outcome: string; amount_minor: bigint | null;
    merchant_reference: string }[];
}

async function factsOf(merchantId: string): Promise<Facts> {
  const [intents, charges, refunds, attempts, psp] = await Promise.all([
    penny.pool.query(`SELECT id, status, amount, amount_capturable, amount_received, latest_charge
       FROM payment_intents WHERE merchant_id = $1`, [merchantId]),
    penny.pool.query(`SELECT c.id, c.payment_intent_id, c.attempt_id, c.amount, c.amount_captured, c.amount_refunded,
         c.captured, c.status, c.authorization_entry_id,
         (SELECT coalesce(sum(p.amount_minor), 0) FROM ledger_entries e JOIN ledger_postings p ON p.entry_id = e.id
           WHERE p.direction = 'debit' AND p.phase = 'posted'
             AND (e.external_reference = 'penny:charge:' || c.id || ':capture'
               OR (e.kind = 'hold_post' AND e.hold_entry_id = c.authorization_entry_id))) AS ledger_captured,
         (SELECT coalesce(sum(p.amount_minor), 0) FROM refunds r
           JOIN ledger_entries e ON e.external_reference = 'penny:refund:' || r.id
           JOIN ledger_postings p ON p.entry_id = e.id AND p.direction = 'debit' AND p.phase = 'posted'
           WHERE r.merchant_id = c.merchant_id AND r.charge_id = c.id) AS ledger_refunded,
         (SELECT string_agg(e.kind, ',') FROM ledger_entries e WHERE e.hold_entry_id = c.authorization_entry_id)
           AS hold_resolutions
       FROM charges c WHERE c.merchant_id = $1`, [merchantId]),
    penny.pool.query('SELECT id, charge_id, amount, status FROM refunds WHERE merchant_id = $1', [merchantId]),
    penny.pool.query('SELECT id, payment_intent_id, status FROM payment_attempts WHERE merchant_id = $1', [merchantId]),
    penny.pool.query(`WITH authorizations AS (
         SELECT o.merchant_reference AS attempt_id, o.psp_reference FROM sandbox_psp_operations o
         JOIN payment_attempts a ON a.id = o.merchant_reference
         WHERE a.merchant_id = $1 AND o.kind = 'authorize')
       SELECT a.attempt_id, o.kind, o.outcome, o.amount_minor, o.merchant_reference
       FROM authorizations a JOIN sandbox_psp_operations o
         ON o.psp_reference = a.psp_reference OR o.parent_psp_reference = a.psp_reference`, [merchantId]),
  ]);
  return {
    intents: intents.rows, charges: charges.rows, refunds: refunds.rows, attempts: attempts.rows, psp: psp.rows,
  };
}

function sum(values: readonly bigint[]): bigint {
  return values.reduce((total, value) => total + value, 0n);
}

/** What the PSP did on an attempt's authorization. */
function pspOf(facts: Facts, attemptId: string) {
  const operations = facts.psp.filter((operation) => operation.attempt_id === attemptId);
  const authorizations = operations.filter((operation) => operation.kind === 'authorize');
  const authorization = authorizations[0];
  const captures = operations.filter((operation) => operation.kind === 'capture');
  const capturedMinor = authorization?.outcome === 'captured' ? authorization.amount_minor ?? 0n
    : sum(captures.map((operation) => operation.amount_minor ?? 0n));
  return {
    authorizations, authorization, captures, capturedMinor,
    voids: operations.filter((operation) => operation.kind === 'void'),
    refunds: operations.filter((operation) => operation.kind === 'refund'),
    approved: authorization?.outcome === 'authorized' || authorization?.outcome === 'captured',
  };
}

/** The ledger, alone: every stored balance is its postings' sum, and each currency's trial balance is zero. */
async function expectLedgerBalanced(context: string): Promise<void> {
  expect((await checkStoredBalances(penny.pool)).failures, context).toEqual([]);
  const trial = await penny.request({ method: 'GET', url: '/v1/ledger/trial_balance' });
  expect(trial.status, context).toBe(200);
  for (const currency of trial.body.currencies as { currency: string; difference: number; debits_pending: number;
    credits_pending: number }[]) {
    expect(currency.difference, `${context}: ${currency.currency} posted`).toBe(0);
    expect(currency.debits_pending, `${context}: ${currency.currency} pending`).toBe(currency.credits_pending);
  }
}

/**
 * What holds after every step, whatever is still unknown: amounts stay within their bounds,
 * statuses are Stripe's and agree with the charge, the ledger books exactly what Penny records,
 * and Penny never records what the PSP has not done (the PSP may be ahead, never behind).
 */
async function expectInvariants(run: Run): Promise<Facts> {
  const context = run.context;
  await expectLedgerBalanced(context);
  const facts = await factsOf(run.merchantId);
  const charges = new Map(facts.charges.map((charge) => [charge.id, charge]));
  for (const intent of facts.intents) {
    const where = `${context}: intent ${intent.id} (${intent.status})`;
    expect(paymentIntentStatuses, where).toContain(intent.status);
    const charge = intent.latest_charge === null ? undefined : charges.get(intent.latest_charge);
    if (intent.status === 'succeeded') {
      expect(intent.amount_capturable, where).toBe(0n);
      expect(charge?.captured, where).toBe(true);
      expect(intent.amount_received, where).toBe(charge?.amount_captured);
    } else {
      expect(intent.amount_received, where).toBe(0n);
    }
    if (intent.status === 'requires_capture') {
      expect(intent.amount_capturable, where).toBe(intent.amount);
      expect({ status: charge?.status, captured: charge?.captured }, where).toEqual({ status: 'succeeded', captured: false });
    } else {
      expect(intent.amount_capturable, where).toBe(0n);
    }
    if (intent.status === 'processing') expect(intent.latest_charge, where).toBeNull();
  }
  const intentStatus = new Map(facts.intents.map((intent) => [intent.id, intent.status]));
  for (const charge of facts.charges) {
    const where = `${context}: charge ${charge.id} (intent ${intentStatus.get(charge.payment_intent_id)})`;
    const refunds = facts.refunds.filter((item) => item.charge_id === charge.id);
    const succeeded = refunds.filter((item) => item.status === 'succeeded');
    expect(charge.amount_captured <= charge.amount, where).toBe(true);
    expect(charge.amount_refunded <= charge.amount_captured, where).toBe(true);
    // Reserved (pending) and completed refunds count against the charge; failed ones gave their amount back.
    expect(charge.amount_refunded, where)
      .toBe(sum(refunds.filter((item) => item.status !== 'failed').map((item) => item.amount)));
    expect(charge.ledger_captured, `${where}: captured in the ledger`).toBe(charge.amount_captured);
    expect(charge.ledger_refunded, `${where}: refunded in the ledger`).toBe(sum(succeeded.map((item) => item.amount)));
    if (charge.authorization_entry_id !== null) {
      const resolution = { requires_capture: null, succeeded: 'hold_post', canceled: 'hold_void' }[
        intentStatus.get(charge.payment_intent_id) as 'requires_capture' | 'succeeded' | 'canceled'];
      expect(charge.hold_resolutions, `${where}: the authorization hold`).toBe(resolution);
    }

    const psp = pspOf(facts, charge.attempt_id);
    expect(psp.authorizations.length, `${where}: authorizations at the PSP`).toBeLessThanOrEqual(1);
    expect(psp.captures.length + psp.voids.length, `${where}: captures and voids at the PSP`).toBeLessThanOrEqual(1);
    expect(sum(psp.refunds.map((item) => item.amount_minor ?? 0n)) <= psp.capturedMinor, where).toBe(true);
    // Penny is never ahead of the PSP...
    if (charge.status === 'succeeded') expect(psp.approved, `${where}: approved at the PSP`).toBe(true);
    if (charge.captured) expect(psp.capturedMinor, `${where}: captured at the PSP`).toBe(charge.amount_captured);
    if (intentStatus.get(charge.payment_intent_id) === 'canceled' && charge.authorization_entry_id !== null) {
      expect(psp.voids.length, `${where}: voided at the PSP`).toBe(1);
    }
    for (const item of succeeded) {
      expect(psp.refunds.filter((operation) => operation.merchant_reference === item.id)
        .map((operation) => operation.amount_minor), `${where}: refund ${item.id} at the PSP`).toEqual([item.amount]);
    }
    // ...and never contradicts it: what the PSP did, Penny has not declared failed or voided.
    if (psp.approved) expect(charge.status, `${where}: approved at the PSP`).toBe('succeeded');
    if (psp.captures.length > 0) expect(intentStatus.get(charge.payment_intent_id), where).not.toBe('canceled');
    if (psp.voids.length > 0) expect(charge.captured, `${where}: voided at the PSP`).toBe(false);
    for (const operation of psp.refunds) {
      const booked = refunds.find((item) => item.id === operation.merchant_reference);
      expect({ amount: booked?.amount, failed: booked?.status === 'failed' }, `${where}: PSP refund ${operation.merchant_reference}`)
        .toEqual({ amount: operation.amount_minor, failed: false });
    }
  }
  return facts;
}

/** Once every outcome is known: nothing is left open, and Penny, its ledger and the PSP agree on every amount. */
async function expectSettled(run: Run): Promise<void> {
  const facts = await expectInvariants(run);
  const context = `${run.context}, settled`;
  const open = await penny.pool.query(`SELECT kind, subject_id, status, last_error FROM recovery_jobs
     WHERE merchant_id = $1 AND status <> 'resolved'`, [run.merchantId]);
  expect(open.rows, `${context}: recovery jobs`).toEqual([]);
  const cases = await penny.pool.query('SELECT kind, subject_id, detail FROM payment_cases WHERE merchant_id = $1',
    [run.merchantId]);
  expect(cases.rows, `${context}: cases`).toEqual([]);
  // Every PSP event was delivered and processed, and none contradicted Penny or failed to process.
  const undelivered = await penny.pool.query('SELECT id, type FROM sandbox_psp_webhooks WHERE delivered_at IS NULL');
  expect(undelivered.rows, `${context}: undelivered PSP events`).toEqual([]);
  const events = await penny.pool.query(`SELECT event_type, status, note FROM connector_webhook_inbox
     WHERE status IN ('received', 'parked') OR note LIKE 'contradiction%' OR note LIKE 'never matched%'
       OR note LIKE 'error:%'`);
  expect(events.rows, `${context}: PSP events`).toEqual([]);
  expect(facts.intents.filter((intent) => intent.status === 'processing'), context).toEqual([]);
  expect(facts.refunds.filter((item) => item.status === 'pending'), context).toEqual([]);
  expect(facts.attempts.filter((attempt) => ['started', 'unknown', 'manual_review'].includes(attempt.status)), context)
    .toEqual([]);
  const intentStatus = new Map(facts.intents.map((intent) => [intent.id, intent.status]));
  for (const attempt of facts.attempts) {
    const where = `${context}: attempt ${attempt.id}`;
    const charges = facts.charges.filter((charge) => charge.attempt_id === attempt.id);
    expect(charges.length, `${where}: charges`).toBe(1);
    const charge = charges[0];
    const psp = pspOf(facts, attempt.id);
    expect(charge?.status, `${where}: approved at the PSP is a successful charge`)
      .toBe(psp.approved ? 'succeeded' : 'failed');
    if (charge === undefined) continue;
    const refunds = facts.refunds.filter((item) => item.charge_id === charge.id);
    expect(psp.capturedMinor, `${where}: captured at the PSP and in Penny`).toBe(charge.amount_captured);
    expect(sum(psp.refunds.map((item) => item.amount_minor ?? 0n)), `${where}: refunded at the PSP and in Penny`)
      .toBe(charge.amount_refunded);
    expect(charge.amount_refunded, where)
      .toBe(sum(refunds.filter((item) => item.status === 'succeeded').map((item) => item.amount)));
    const voided = intentStatus.get(charge.payment_intent_id) === 'canceled' && charge.authorization_entry_id !== null;
    expect(psp.voids.length, `${where}: voided at the PSP`).toBe(voided ? 1 : 0);
    for (const item of refunds.filter((candidate) => candidate.status === 'failed')) {
      expect(psp.refunds.filter((operation) => operation.merchant_reference === item.id), `${where}: failed ${item.id}`)
        .toEqual([]);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The property

async function runSequence(operations: readonly Operation[]): Promise<void> {
  runs += 1;
  penny.sandbox.resetFaults();
  const created = await penny.merchants.createMerchant(`Property Shop ${runs}`);
  const run: Run = {
    stripe: penny.stripeFor(created.secretKey), merchantId: created.merchant.id, name: `run${runs}`,
    intents: [], requests: [], step: 0, context: '',
  };
  for (const [index, operation] of operations.entries()) {
    run.step = index;
    run.context = `run ${runs} step ${index} ${JSON.stringify(operation)}`;
    switch (operation.kind) {
      case 'create':
        await create(run, operation);
        break;
      case 'capture':
        if (run.intents.length > 0) await capture(run, operation);
        break;
      case 'cancel':
        if (run.intents.length > 0) await cancel(run, operation);
        break;
      case 'refund':
        if (run.intents.length > 0) await refund(run, operation);
        break;
      case 'retry':
        if (run.requests.length > 0) await retry(run, operation);
        break;
      case 'recover':
        await recover(run, operation);
        break;
      case 'webhooks':
        advanceClock(operation.waitMs);
        await deliverWebhooks();
        break;
    }
    await expectInvariants(run);
  }
  run.context = `run ${runs} after ${operations.length} steps`;
  await settle();
  await expectSettled(run);
  // Settled, every stored answer is still replayed as it was first sent.
  for (const sent of run.requests) {
    if (sent.stored === undefined) continue;
    const answer = await send(run, sent.call, sent.key, null);
    expect(answer.body, `${run.context}: a late retry of ${sent.key}`).toBe(sent.stored.body);
  }
}

/**
 * One sequence run before the random ones, so every run of the file meets each kind of outcome:
 * a capture and a refund whose outcomes are unknown, retried or recovered; an over-refund; an
 * authorization recovered after its webhook; a cancel completed by recovery; a decline.
 */
const none = null;
const walkthrough: Operation[] = [
  { kind: 'create', amount: 3000, manual: true, declined: false, fault: none },
  { kind: 'capture', intent: 0, amount: { mode: 'share', permille: 500 }, fault: { fault: 'timeout_after', times: 3 } },
  { kind: 'retry', request: 0, fault: none },
  { kind: 'retry', request: 0, fault: none },
  { kind: 'refund', intent: 0, amount: { mode: 'over', extra: 1 }, fault: none },
  { kind: 'refund', intent: 0, amount: { mode: 'share', permille: 500 }, fault: { fault: 'timeout_before', times: 3 } },
  { kind: 'recover', waitMs: 2_001, fault: none },
  { kind: 'create', amount: 2000, manual: false, declined: false, fault: { fault: 'error_503', times: 3 } },
  { kind: 'webhooks', waitMs: 31_000 },
  { kind: 'recover', waitMs: 2_001, fault: none },
  { kind: 'create', amount: 1500, manual: false, declined: false, fault: none },
  { kind: 'refund', intent: 0, amount: { mode: 'omitted' }, fault: none },
  { kind: 'create', amount: 800, manual: true, declined: false, fault: { fault: 'timeout_after', times: 1 } },
  { kind: 'cancel', intent: 0, reason: 'requested_by_customer', fault: { fault: 'timeout_after', times: 3 } },
  { kind: 'recover', waitMs: 2_001, fault: none },
  { kind: 'create', amount: 900, manual: false, declined: true, fault: none },
];

describe('payments under random sequences of requests, retries, PSP faults and recovery', () => {
  it('after any sequence of payments, captures, cancels, refunds, retries and PSP faults, the ledger balances and '
    + 'the PSP moved each amount once', async () => {
    outcomesSeen.clear();
    await fc.assert(
      fc.asyncProperty(fc.array(operationArbitrary, { minLength: 1, maxLength: 25, size: 'max' }), runSequence),
      { numRuns: Number(process.env.PENNY_PAYMENT_PROPERTY_RUNS ?? 25), examples: [[walkthrough]] },
    );
    // The runs exercised what they claim to.
    const seen = Object.fromEntries(outcomesSeen);
    for (const outcome of ['create 200 succeeded', 'create 200 requires_capture', 'create 200 processing',
      'create 402 card_declined', 'capture 503 psp_outcome_unknown', 'retry of a 503 200 succeeded', 'retry replayed',
      'refund 400 amount_too_large', 'refund 503 psp_outcome_unknown', 'refund 200 succeeded',
      'cancel 503 psp_outcome_unknown', 'recovery ran jobs']) {
      expect(seen[outcome] ?? 0, `runs that saw ${outcome}`).toBeGreaterThan(0);
    }
  }, 120_000);
});
