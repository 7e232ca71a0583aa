import { createHash } from 'node:crypto';
import { invalid, readObject } from '../validation.js';

/**
 * The sandbox's fault profile: what goes wrong, how often, from a seed, so a run can be repeated.
 * Set by flags or at runtime through POST /control/faults. `script` lists faults to inject on the
 * next matching calls, in order, before any random ones: tests use it to hit one exact case.
 */
export const pspOperations = ['authorize', 'capture', 'void', 'refund', 'payout', 'lookup'] as const;
export type PspOperation = (typeof pspOperations)[number];

/** timeout_before: nothing happens and no reply comes; timeout_after: the money moves, the reply is lost. */
export const callFaults = ['error_500', 'error_503', 'error_429', 'timeout_before', 'timeout_after'] as const;
export type CallFault = (typeof callFaults)[number];

export interface FaultProfile {
  readonly seed: number;
  readonly latencyMs: { readonly min: number; readonly max: number };
  /** Chance per call (0–1) of each fault, for the operations listed (all when empty). */
  readonly rates: Readonly<Partial<Record<CallFault, number>>>;
  readonly operations: readonly PspOperation[];
  /** How long a timed-out call hangs before its connection is dropped. */
  readonly timeoutHangMs: number;
  readonly script: readonly { readonly operation: PspOperation; readonly fault: CallFault }[];
  readonly webhooks: {
    readonly duplicateRate: number;
    readonly lostRate: number;
    readonly delayMs: { readonly min: number; readonly max: number };
  };
  /** Chance that an authorization goes pending, and how long until it resolves. */
  readonly pendingAuthorizationRate: number;
  readonly pendingResolveMs: number;
  /**
   * `reply`: outcomes come in the reply (and by webhook); `webhook`: authorizations answer pending
   * and their outcome follows by webhook only.
   */
  readonly results: 'reply' | 'webhook';
  /** How long a payout stays in each state before the next: pending → in_transit → paid | failed. */
  readonly payoutStepMs: number;
  /** How long after its capture a pm_card_createDispute charge is disputed. */
  readonly createDisputeAfterMs: number;
  /**
   * Disputes decide themselves this long after they open, with `disputeDecideOutcome`; absent,
   * a dispute waits for POST /control/disputes/:id/decide (or its own `decide_after_ms`).
   */
  readonly disputeDecideAfterMs: number | undefined;
  readonly disputeDecideOutcome: 'won' | 'lost';
}

export const noFaults: FaultProfile = {
  seed: 1, latencyMs: { min: 0, max: 0 }, rates: {}, operations: [], timeoutHangMs: 0, script: [],
  webhooks: { duplicateRate: 0, lostRate: 0, delayMs: { min: 0, max: 0 } },
  pendingAuthorizationRate: 0, pendingResolveMs: 5000, results: 'reply',
  payoutStepMs: 1000, createDisputeAfterMs: 2000, disputeDecideAfterMs: undefined, disputeDecideOutcome: 'won',
};

const profileKeys = ['seed', 'latency_ms', 'rates', 'operations', 'timeout_hang_ms', 'script', 'webhooks',
  'pending_authorization_rate', 'pending_resolve_ms', 'results', 'payout_step_ms', 'create_dispute_after_ms',
  'dispute_decide_after_ms', 'dispute_decide_outcome'];

/** Reads a profile from JSON (snake_case, as the control endpoint takes it); missing parts are no faults. */
export function parseFaultProfile(body: unknown): FaultProfile {
  const object = readObject(body ?? {}, '', profileKeys);
  const webhooks = readObject(object.webhooks ?? {}, 'webhooks', ['duplicate_rate', 'lost_rate', 'delay_ms']);
  return {
    seed: readNumber(object.seed, 'seed', 0, 2 ** 32) ?? noFaults.seed,
    latencyMs: readRange(object.latency_ms, 'latency_ms'),
    rates: readRates(object.rates),
    operations: readList(object.operations, 'operations', pspOperations),
    timeoutHangMs: readNumber(object.timeout_hang_ms, 'timeout_hang_ms', 0, 120_000) ?? 0,
    script: readScript(object.script),
    webhooks: {
      duplicateRate: readNumber(webhooks.duplicate_rate, 'webhooks[duplicate_rate]', 0, 1) ?? 0,
      lostRate: readNumber(webhooks.lost_rate, 'webhooks[lost_rate]', 0, 1) ?? 0,
      delayMs: readRange(webhooks.delay_ms, 'webhooks[delay_ms]'),
    },
    pendingAuthorizationRate: readNumber(object.pending_authorization_rate, 'pending_authorization_rate', 0, 1) ?? 0,
    pendingResolveMs: readNumber(object.pending_resolve_ms, 'pending_resolve_ms', 0, 86_400_000)
      ?? noFaults.pendingResolveMs,
    results: readList(object.results === undefined ? undefined : [object.results], 'results', ['reply', 'webhook'])[0]
      ?? 'reply',
    payoutStepMs: readNumber(object.payout_step_ms, 'payout_step_ms', 0, 86_400_000) ?? noFaults.payoutStepMs,
    createDisputeAfterMs: readNumber(object.create_dispute_after_ms, 'create_dispute_after_ms', 0, 86_400_000)
      ?? noFaults.createDisputeAfterMs,
    // null (as presented) is absent: disputes wait for a decision.
    disputeDecideAfterMs: readNumber(object.dispute_decide_after_ms ?? undefined, 'dispute_decide_after_ms', 0,
      90 * 86_400_000),
    disputeDecideOutcome: readList(object.dispute_decide_outcome === undefined ? undefined
      : [object.dispute_decide_outcome], 'dispute_decide_outcome', ['won', 'lost'])[0] ?? 'won',
  };
}

export function presentFaultProfile(profile: FaultProfile) {
  return {
    seed: profile.seed,
    latency_ms: profile.latencyMs,
    rates: profile.rates,
    operations: profile.operations,
    timeout_hang_ms: profile.timeoutHangMs,
    script: profile.script,
    webhooks: { duplicate_rate: profile.webhooks.duplicateRate, lost_rate: profile.webhooks.lostRate,
      delay_ms: profile.webhooks.delayMs },
    pending_authorization_rate: profile.pendingAuthorizationRate,
    pending_resolve_ms: profile.pendingResolveMs,
    results: profile.results,
    payout_step_ms: profile.payoutStepMs,
    create_dispute_after_ms: profile.createDisputeAfterMs,
    dispute_decide_after_ms: profile.disputeDecideAfterMs ?? null,
    dispute_decide_outcome: profile.disputeDecideOutcome,
  };
}

function readNumber(value: unknown, param: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw invalid(param, `${param} must be a number from ${min} to ${max}.`);
  }
  return value;
}

function readRange(value: unknown, param: string): { min: number; max: number } {
  const range = readObject(value ?? {}, param, ['min', 'max']);
  const min = readNumber(range.min, `${param}[min]`, 0, 120_000) ?? 0;
  const max = readNumber(range.max, `${param}[max]`, 0, 120_000) ?? min;
  if (max < min) throw invalid(param, `${param}: max must not be below min.`);
  return { min, max };
}

function readRates(value: unknown): Partial<Record<CallFault, number>> {
  const object = readObject(value ?? {}, 'rates', callFaults);
  const rates: Partial<Record<CallFault, number>> = {};
  for (const fault of callFaults) {
    const rate = readNumber(object[fault], `rates[${fault}]`, 0, 1);
    if (rate !== undefined) rates[fault] = rate;
  }
  return rates;
}

function readList<T extends string>(value: unknown, param: string, allowed: readonly T[]): T[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((item) => !(allowed as readonly unknown[]).includes(item))) {
    throw invalid(param, `${param} lists some of: ${allowed.join(', ')}.`);
  }
  return value as T[];
}

function readScript(value: unknown): FaultProfile['script'] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.length > 1000) throw invalid('script', 'script is a list of up to 1,000 faults.');
  return value.map((item, index) => {
    const step = readObject(item, `script[${index}]`, ['operation', 'fault']);
    const [operation] = readList([step.operation], `script[${index}][operation]`, pspOperations);
    const [fault] = readList([step.fault], `script[${index}][fault]`, callFaults);
    if (operation === undefined || fault === undefined) throw invalid(`script[${index}]`, 'A step names an operation and a fault.');
    return { operation, fault };
  });
}

/** mulberry32: a small seeded generator, so a fault run repeats exactly from its seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = state;
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** The live profile and its generator; counts what it injected. */
export class FaultInjector {
  private profile: FaultProfile = noFaults;
  private random = seededRandom(noFaults.seed);
  private script: { operation: PspOperation; fault: CallFault }[] = [];
  readonly injected = new Map<string, number>();

  set(profile: FaultProfile): void {
    this.profile = profile;
    this.random = seededRandom(profile.seed);
    this.script = [...profile.script];
  }

  current(): FaultProfile {
    return { ...this.profile, script: [...this.script] };
  }

  /** The fault for this call, if any: the next scripted one for the operation, else by the rates. */
  faultFor(operation: PspOperation): CallFault | undefined {
    const scripted = this.script.findIndex((step) => step.operation === operation);
    if (scripted !== -1) return this.count(this.script.splice(scripted, 1)[0]?.fault);
    if (this.profile.operations.length > 0 && !this.profile.operations.includes(operation)) return undefined;
    for (const fault of callFaults) {
      const rate = this.profile.rates[fault] ?? 0;
      if (rate > 0 && this.random() < rate) return this.count(fault);
    }
    return undefined;
  }

  latencyMs(): number {
    return this.between(this.profile.latencyMs);
  }

  timeoutHangMs(): number {
    return this.profile.timeoutHangMs;
  }

  /**
   * The fate of an operation's webhook: how many copies (0: lost, 2: duplicated) after what
   * delays. Drawn from a generator seeded by the profile's seed and the operation's key, so it is
   * the same whatever order concurrent operations come in, and a repeated key draws nothing from
   * the shared generator. Not counted: the caller counts the faults once the webhook is queued.
   */
  webhookFate(operationKey: string): { delaysMs: number[]; faults: string[] } {
    const { webhooks } = this.profile;
    const random = seededRandom(createHash('sha256').update(`${this.profile.seed}:${operationKey}`).digest()
      .readUInt32BE(0));
    if (webhooks.lostRate > 0 && random() < webhooks.lostRate) return { delaysMs: [], faults: ['webhook_lost'] };
    const copies = webhooks.duplicateRate > 0 && random() < webhooks.duplicateRate ? 2 : 1;
    const between = (range: { min: number; max: number }) =>
      range.max === range.min ? range.min : Math.round(range.min + random() * (range.max - range.min));
    return { delaysMs: Array.from({ length: copies }, () => between(webhooks.delayMs)),
      faults: copies === 2 ? ['webhook_duplicated'] : [] };
  }

  /** Counts faults decided earlier (a webhook's fate, once its operation is recorded). */
  countInjected(faults: readonly string[]): void {
    for (const fault of faults) this.count(fault);
  }

  authorizationGoesPending(): boolean {
    if (this.profile.results === 'webhook') return true;
    const rate = this.profile.pendingAuthorizationRate;
    return rate > 0 && this.random() < rate && this.count('authorization_pending') !== undefined;
  }

  pendingResolveMs(): number {
    return this.profile.pendingResolveMs;
  }

  payoutStepMs(): number {
    return this.profile.payoutStepMs;
  }

  createDisputeAfterMs(): number {
    return this.profile.createDisputeAfterMs;
  }

  /** When disputes decide themselves, and how; undefined while they wait for a decision. */
  disputeDecision(): { afterMs: number; outcome: 'won' | 'lost' } | undefined {
    const afterMs = this.profile.disputeDecideAfterMs;
    return afterMs === undefined ? undefined : { afterMs, outcome: this.profile.disputeDecideOutcome };
  }

  private between(range: { min: number; max: number }): number {
    return range.max === range.min ? range.min : Math.round(range.min + this.random() * (range.max - range.min));
  }

  private count<T extends string | undefined>(kind: T): T {
    if (kind !== undefined) this.injected.set(kind, (this.injected.get(kind) ?? 0) + 1);
    return kind;
  }

}
