import type { FailpointName } from '../failpoints.js';
import { noFaults, seededRandom, type FaultProfile } from '../sandbox-psp/psp-faults.js';
import type { SimulationWorld } from './simulation-world.js';

/**
 * The faults of a run, drawn from the seed before it starts: when Penny is killed (at a random
 * moment, or at a named failpoint), when PostgreSQL restarts, when the database connections are
 * cut or stalled (also during COMMIT), and the sandbox PSP's own profile (5xx, timeouts after
 * processing, lost replies, webhooks duplicated, reordered, late, lost). Clients giving up is the
 * workload's part (simulation-workload.ts).
 */
export const faultKinds = ['kill', 'db_restart', 'db_network', 'psp', 'webhooks', 'clients'] as const;
export type FaultKind = (typeof faultKinds)[number];

const failpoints: readonly FailpointName[] = ['after_key_claim', 'before_psp_call', 'after_psp_reply', 'after_commit',
  'after_inbox_insert', 'during_webhook_delivery'];

export type FaultEvent =
  | { readonly atMs: number; readonly kind: 'kill'; readonly failpoint: FailpointName | undefined }
  | { readonly atMs: number; readonly kind: 'db_restart' }
  | { readonly atMs: number; readonly kind: 'db_network'; readonly action: 'cut' | 'stall' | 'commit_cut';
    readonly stallMs: number };

/** At most this many scheduled faults a run, whatever its length: each costs a restart of seconds. */
const faultEventsMax = 200;
/** Roughly one fault of each scheduled kind every this many milliseconds. */
const faultEveryMs = { kill: 12_000, db_restart: 30_000, db_network: 8_000 } as const;

export function planFaults(seed: number, kinds: ReadonlySet<FaultKind>, durationMs: number): FaultEvent[] {
  const random = seededRandom(seed ^ 0xfa17);
  const events: FaultEvent[] = [];
  const times = (everyMs: number) => Array.from({ length: Math.max(1, Math.round(durationMs / everyMs)) },
    () => Math.floor((0.1 + 0.8 * random()) * durationMs));
  if (kinds.has('kill')) {
    for (const atMs of times(faultEveryMs.kill)) {
      const failpoint = random() < 0.5 ? failpoints[Math.floor(random() * failpoints.length)] : undefined;
      events.push({ atMs, kind: 'kill', failpoint });
    }
  }
  if (kinds.has('db_restart')) for (const atMs of times(faultEveryMs.db_restart)) events.push({ atMs, kind: 'db_restart' });
  if (kinds.has('db_network')) {
    for (const atMs of times(faultEveryMs.db_network)) {
      const actions = ['cut', 'stall', 'commit_cut'] as const;
      events.push({ atMs, kind: 'db_network', action: actions[Math.floor(random() * 3)] ?? 'cut',
        stallMs: 200 + Math.floor(random() * 2000) });
    }
  }
  return events.sort((left, right) => left.atMs - right.atMs).slice(0, faultEventsMax);
}

/** The sandbox's profile for a run: its seed from the run's, its rates from the kinds asked for. */
export function sandboxProfile(seed: number, kinds: ReadonlySet<FaultKind>): FaultProfile {
  const psp = kinds.has('psp');
  const webhooks = kinds.has('webhooks');
  return {
    ...noFaults,
    seed: seed >>> 0,
    rates: psp ? { error_500: 0.02, error_503: 0.02, error_429: 0.01, timeout_before: 0.02, timeout_after: 0.03 } : {},
    timeoutHangMs: 1_000,
    latencyMs: psp ? { min: 0, max: 30 } : { min: 0, max: 0 },
    pendingAuthorizationRate: psp ? 0.05 : 0,
    pendingResolveMs: 2_000,
    webhooks: webhooks
      ? { duplicateRate: 0.2, lostRate: 0.05, delayMs: { min: 0, max: 3_000 } }
      : noFaults.webhooks,
    payoutStepMs: 1_000,
    createDisputeAfterMs: 500,
    disputeDecideAfterMs: 3_000,
    disputeDecideOutcome: 'won',
  };
}

/** Once the faults stop: the same profile without faults, so what is pending still resolves. */
export function calmProfile(profile: FaultProfile): FaultProfile {
  return { ...profile, rates: {}, latencyMs: { min: 0, max: 0 }, pendingAuthorizationRate: 0,
    webhooks: noFaults.webhooks };
}

export class FaultSchedule {
  readonly injected: Record<string, number> = {};
  private stopped = false;

  constructor(private readonly world: SimulationWorld, private readonly events: readonly FaultEvent[],
    private readonly onFault: (kind: string) => void) {}

  /**
   * Plays the events at their times (from `startedMs`), then keeps watch until stopped: a Penny
   * that died at an armed failpoint is restarted at once, after the last event too.
   */
  async run(startedMs: number): Promise<void> {
    for (const event of this.events) {
      const waitMs = startedMs + event.atMs - Date.now();
      if (waitMs > 0) await this.sleepUnlessStopped(waitMs);
      if (this.stopped) return;
      await this.inject(event);
    }
    while (!this.stopped) await this.sleepUnlessStopped(1000);
  }

  stop(): void {
    this.stopped = true;
  }

  /** Restarts Penny when a failpoint killed it; called between faults and at the end. */
  async reviveIfDead(): Promise<void> {
    if (await this.world.pennyDied()) {
      this.count('kill_at_failpoint');
      await this.world.startPenny();
    }
  }

  private async inject(event: FaultEvent): Promise<void> {
    await this.reviveIfDead();
    switch (event.kind) {
      case 'kill':
        await this.world.killPenny();
        this.count(event.failpoint === undefined ? 'kill' : 'kill_armed');
        // Armed, the new process dies (SIGKILL) the first time it reaches the failpoint.
        await this.world.startPenny({ failpoint: event.failpoint });
        return;
      case 'db_restart':
        await this.world.restartPostgres();
        this.count('db_restart');
        return;
      case 'db_network':
        if (event.action === 'cut') this.world.proxy.cutAll();
        if (event.action === 'stall') this.world.proxy.stall(event.stallMs);
        // A COMMIT cut is counted by the proxy when it happens (an armed cut may find no COMMIT).
        if (event.action === 'commit_cut') this.world.proxy.armCommitCuts(1);
        else this.count(`db_${event.action}`);
    }
  }

  private count(kind: string): void {
    this.injected[kind] = (this.injected[kind] ?? 0) + 1;
    this.onFault(kind);
  }

  private async sleepUnlessStopped(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (!this.stopped && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(200, until - Date.now())));
      if (!this.stopped) await this.reviveIfDead();
    }
  }
}
