import fs from 'node:fs';
import readline from 'node:readline';
import { verifyLedger } from '../ledger/ledger-verify.js';
import { transitions, type PaymentIntentStatus } from '../payments/payment-state.js';
import * as store from './simulation-store.js';
import type { OperationRecord } from './simulation-workload.js';

/**
 * The checker: once the faults have stopped and the run has settled, it holds what every client
 * was told against what Penny's database, its ledger and the sandbox PSP's own record say.
 * Counts (each must be 0): acknowledged but lost, refused but applied, duplicate effects,
 * unresolved; and violations of the money invariants, each naming the objects involved.
 */
export interface Violation {
  readonly check: string;
  readonly message: string;
  readonly objects: readonly string[];
}

export interface CheckResult {
  acknowledgedLost: number;
  refusedApplied: number;
  duplicateEffects: number;
  unresolved: number;
  inReview: number;
  readonly violations: Violation[];
}

export interface CheckInput {
  readonly records: readonly OperationRecord[];
  readonly penny: import('../db/pool.js').Queryable;
  readonly sandbox: import('../db/pool.js').Queryable;
  /** What must appear nowhere: keys, the pepper, the webhook secret, the card numbers clients sent. */
  readonly secrets: readonly string[];
  readonly logFile: string;
}

/** Violations listed in full are capped; the counts stay whole. */
const violationsListedMax = 50;

export async function checkRun(input: CheckInput): Promise<CheckResult> {
  const result: CheckResult = { acknowledgedLost: 0, refusedApplied: 0, duplicateEffects: 0, unresolved: 0,
    inReview: 0, violations: [] };
  const report = (field: keyof Omit<CheckResult, 'violations'> | undefined, violation: Violation) => {
    if (field !== undefined) result[field] += 1;
    if (result.violations.length < violationsListedMax) result.violations.push(violation);
  };
  await checkOperations(input, report);
  await checkPspDuplicates(input, report);
  await checkLedger(input, report);
  await checkHistories(input, report);
  await checkNoCardDataOrSecrets(input, report);
  return result;
}

type Report = (field: keyof Omit<CheckResult, 'violations'> | undefined, violation: Violation) => void;

/** What each client was told, against the PaymentIntents, refunds, transfers and payouts there are. */
async function checkOperations(input: CheckInput, report: Report): Promise<void> {
  const intents = new Map((await store.selectIntents(input.penny)).map((row) => [row.id, row]));
  const tagged = await store.selectTaggedObjects(input.penny);
  const byOperation = new Map<string, store.TaggedRow[]>();
  for (const row of tagged) {
    if (row.operation === null) continue;
    byOperation.set(row.operation, [...(byOperation.get(row.operation) ?? []), row]);
  }
  const intentsByOperation = new Map<string, string[]>();
  for (const intent of intents.values()) {
    if (intent.operation !== null) {
      intentsByOperation.set(intent.operation, [...(intentsByOperation.get(intent.operation) ?? []), intent.id]);
    }
  }
  // The PaymentIntent of each story (the client's key, with its story number, is unique per run).
  const intentByStory = new Map<string, string>();
  for (const record of input.records) {
    if (record.kind === 'create_payment' && record.objectId !== undefined) {
      intentByStory.set(storyKey(record), record.objectId);
    }
  }
  for (const record of input.records) {
    const objects = record.kind === 'create_payment'
      ? intentsByOperation.get(record.key) ?? []
      : (byOperation.get(record.key) ?? []).map((row) => row.id);
    const named = { check: record.kind, objects: [record.key, ...objects] };
    if (objects.length > 1) report('duplicateEffects', { ...named, message: `${objects.length} objects for one operation` });
    const intent = intents.get(intentByStory.get(storyKey(record)) ?? '');
    if (record.outcome === 'indefinite') {
      const figure = intent?.inReview === true ? 'inReview' : 'unresolved';
      report(figure, { ...named, message: `still indefinite after the settling time (${record.code ?? 'no answer'})` });
      continue;
    }
    const final = (byOperation.get(record.key) ?? []).find((row) => row.id === record.objectId);
    checkOperation(record, objects, intent, report, named, final?.status ?? undefined);
  }
  for (const intent of intents.values()) {
    if (intent.status !== 'processing') continue;
    if (intent.inReview) report('inReview', { check: 'processing', objects: [intent.id], message: 'in manual review' });
    else report('unresolved', { check: 'processing', objects: [intent.id], message: 'still processing after settling' });
  }
}

/** A story of a run: the key's seed part with the story's number (a bench runs several plans). */
function storyKey(record: OperationRecord): string {
  return `${record.key.slice(0, record.key.lastIndexOf('-'))}:${record.story}`;
}

function checkOperation(record: OperationRecord, objects: readonly string[], intent: store.IntentRow | undefined,
  report: Report, named: { check: string; objects: string[] }, finalStatus: string | undefined): void {
  const ok = record.outcome === 'ok';
  const answered = ok ? (JSON.parse(record.body ?? '{}') as { status?: string }) : {};
  switch (record.kind) {
    case 'create_payment': {
      const charged = intent !== undefined && ['succeeded', 'requires_capture', 'canceled'].includes(intent.status)
        && (intent.status !== 'canceled' || intent.cancellationReason !== null);
      if (ok && intent === undefined) report('acknowledgedLost', { ...named, message: 'the PaymentIntent is gone' });
      if (ok && answered.status === 'succeeded'
        && (intent?.status !== 'succeeded' || intent.amountReceived !== BigInt(record.amount))) {
        report('acknowledgedLost', { ...named,
          message: `answered succeeded for ${record.amount}, now ${intent?.status} with ${intent?.amountReceived}` });
      }
      if (!ok && charged && intent.amountReceived > 0n) {
        report('refusedApplied', { ...named, message: `refused (${record.code}), yet ${intent.status}` });
      }
      if (!ok && record.objectId === undefined && objects.length > 0) {
        report('refusedApplied', { ...named,
          message: `refused (${record.status} ${record.code}), yet a PaymentIntent was created` });
      }
      return;
    }
    case 'capture':
      if (ok && (intent?.status !== 'succeeded' || intent.amountReceived !== BigInt(record.amount))) {
        report('acknowledgedLost', { ...named, message: `captured ${record.amount}, now ${intent?.status} with ${intent?.amountReceived}` });
      }
      if (!ok && intent?.status === 'succeeded') report('refusedApplied', { ...named, message: 'refused, yet captured' });
      return;
    case 'cancel':
      if (ok && intent?.status !== 'canceled') report('acknowledgedLost', { ...named, message: `canceled, now ${intent?.status}` });
      if (!ok && intent?.cancellationReason === 'requested_by_customer') {
        report('refusedApplied', { ...named, message: 'refused, yet canceled' });
      }
      return;
    default:
      if (ok && !objects.includes(record.objectId ?? '')) {
        report('acknowledgedLost', { ...named, message: `answered ${record.objectId}, which is gone` });
      }
      // Answered as done, then undone: a refund answered succeeded that ends failed, a payout paid that fails.
      if (ok && finalStatus !== undefined && ['succeeded', 'paid'].includes(answered.status ?? '')
        && finalStatus !== answered.status) {
        report('acknowledgedLost', { ...named, message: `answered ${answered.status}, now ${finalStatus}` });
      }
      if (!ok && objects.length > 0) report('refusedApplied', { ...named, message: `refused (${record.code}), yet created` });
  }
}

/** At most one PSP charge per payment attempt, one capture per authorization, one refund per refund. */
async function checkPspDuplicates(input: CheckInput, report: Report): Promise<void> {
  for (const row of await store.selectPspDuplicates(input.sandbox)) {
    report('duplicateEffects', { check: `psp_${row.kind}`, objects: [row.reference],
      message: `${row.count} ${row.kind} operations at the PSP for one reference` });
  }
}

/** The ledger balances and agrees with the PSP: one capture entry per PSP capture, none without one. */
async function checkLedger(input: CheckInput, report: Report): Promise<void> {
  const verified = await verifyLedger(input.penny);
  for (const failure of verified.failures) {
    report(undefined, { check: `ledger_${failure.check}`, message: failure.message,
      objects: [failure.account ?? '', failure.entry ?? ''].filter((item) => item !== '') });
  }
  for (const row of await store.selectChargeAmountBreaches(input.penny)) {
    report(undefined, { check: 'refunded_captured_authorized', objects: [row.id],
      message: `authorized ${row.amount}, captured ${row.captured}, refunded ${row.refunded}` });
  }
  const granted = await store.selectPspGrantedAttempts(input.sandbox);
  for (const attempt of await store.selectRefusedAttempts(input.penny)) {
    if (!granted.has(attempt.id)) continue;
    report('refusedApplied', { check: 'psp_authorization', objects: [attempt.paymentIntentId, attempt.id],
      message: `Penny says the attempt ${attempt.status}, the PSP authorized it` });
  }
  const pspCaptured = await store.selectPspCapturedAttempts(input.sandbox);
  for (const charge of await store.selectCaptureLedger(input.penny)) {
    const atPsp = pspCaptured.has(charge.attemptId);
    if (charge.captureEntries > 1n) {
      report('duplicateEffects', { check: 'ledger_capture', objects: [charge.id], message: `${charge.captureEntries} capture entries` });
    }
    if (atPsp && charge.captureEntries === 0n) {
      report('acknowledgedLost', { check: 'ledger_capture', objects: [charge.id], message: 'captured at the PSP, not in the ledger' });
    }
    if (!atPsp && charge.captureEntries > 0n) {
      report('refusedApplied', { check: 'ledger_capture', objects: [charge.id], message: 'in the ledger, never captured at the PSP' });
    }
  }
}

/** Every PaymentIntent's statuses, as its events told them, follow the transition table. */
async function checkHistories(input: CheckInput, report: Report): Promise<void> {
  for (const history of await store.selectIntentStatusHistories(input.penny)) {
    for (let index = 1; index < history.statuses.length; index += 1) {
      const from = history.statuses[index - 1] as PaymentIntentStatus;
      const to = history.statuses[index] as PaymentIntentStatus;
      const allowed = from === to || (transitions[from] as readonly string[] | undefined)?.includes(to) === true;
      if (!allowed) {
        report(undefined, { check: 'illegal_transition', objects: [history.id], message: `${from} -> ${to} in its events` });
      }
    }
  }
}

/**
 * None of the card numbers the clients sent (as they sent them, or as bare digits) and no secret in
 * any table or log line. The search is for what is known to have been sent, not for any Luhn-valid
 * digits: bank account numbers and references hold such runs by chance.
 */
async function checkNoCardDataOrSecrets(input: CheckInput, report: Report): Promise<void> {
  const suspect = (text: string) => input.secrets.some((secret) => text.includes(secret));
  for (const { table, column } of await store.selectTextColumns(input.penny)) {
    const found = await store.selectValuesHolding(input.penny, table, column, input.secrets);
    if (found) {
      report(undefined, { check: 'card_or_secret_stored', objects: [`${table}.${column}`], message: 'a card number or secret is stored' });
    }
  }
  if (!fs.existsSync(input.logFile)) return;
  const lines = readline.createInterface({ input: fs.createReadStream(input.logFile), crlfDelay: Infinity });
  let number = 0;
  for await (const line of lines) {
    number += 1;
    if (suspect(line)) {
      report(undefined, { check: 'card_or_secret_logged', objects: [`${input.logFile}:${number}`], message: 'a card number or secret is logged' });
      break;
    }
  }
}
