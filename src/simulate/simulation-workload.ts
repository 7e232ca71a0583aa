import Stripe from 'stripe';
import { seededRandom } from '../sandbox-psp/psp-faults.js';
import { withLuhnCheckDigit } from '../security/card-filter.js';

/**
 * The simulation's clients: what they do is drawn from the seed before the run starts (one seed,
 * one schedule of operations), and each operation is sent through the official `stripe` package
 * with an idempotency key of the client's own, so that it can be retried later under the same key
 * and its answer compared with the first one.
 */
export type OperationKind = 'create_payment' | 'capture' | 'cancel' | 'refund' | 'transfer' | 'payout';
export type Outcome = 'ok' | 'failed' | 'indefinite';

export interface Operation {
  readonly id: number;
  readonly kind: OperationKind;
  readonly key: string;
  /** The story (a payment and what follows it) the operation belongs to. */
  readonly story: number;
  readonly amount: number;
  readonly stripeAccount: string | undefined;
}

export interface OperationRecord extends Operation {
  outcome: Outcome;
  status: number | undefined;
  code: string | undefined;
  /** The object the answer named (the PaymentIntent even of a declined create). */
  objectId: string | undefined;
  /** A successful answer, as JSON, for the replay check. */
  body: string | undefined;
  attempts: number;
  /** Its outcome was unknown to the client at some point (no answer, a 5xx, a conflict). */
  everIndefinite: boolean;
  /** The client gave up on it (a short timeout) and will retry it later. */
  abandoned: boolean;
}

export type PaymentMethod = 'pm_card_visa' | 'pm_card_bypassPending' | 'pm_card_chargeDeclined'
  | 'pm_card_createDispute';

/** One payment and what its client does with it afterwards, drawn from the seed. */
export interface Story {
  readonly index: number;
  readonly client: number;
  readonly amount: number;
  readonly method: PaymentMethod;
  readonly manualCapture: boolean;
  /** A destination charge to this seller (index), with an application fee. */
  readonly seller: number | undefined;
  readonly applicationFee: number | undefined;
  /** For a manual capture: cancel instead, or capture this much (≤ amount). */
  readonly cancel: boolean;
  readonly captureAmount: number;
  readonly refunds: readonly number[];
  /** A separate transfer from the platform to a seller, then that seller's payout. */
  readonly transfer: { readonly seller: number; readonly amount: number; readonly payout: number } | undefined;
  /** The client pastes a card number into the description: Penny must refuse it and keep it nowhere. */
  readonly cardInDescription: boolean;
}

/**
 * The card number a careless client pastes, as it types it (groups of four): Stripe's test Visa,
 * made from its first fifteen digits and their Luhn check digit, so no card number stands in the code.
 */
export const pastedCardNumber = withLuhnCheckDigit('42'.repeat(7) + '4').replace(/(\d{4})(?=\d)/g, '$1 ');


export interface WorkloadPlan {
  readonly seed: number;
  readonly clients: number;
  readonly sellers: number;
  readonly stories: readonly Story[];
  /** Chance that a client gives up on a request (a short timeout) and retries it later. */
  readonly giveUpRate: number;
}

export function planWorkload(options: { seed: number; payments: number; clients: number; sellers: number;
  giveUp: boolean }): WorkloadPlan {
  const random = seededRandom(options.seed ^ 0x5eed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const between = (low: number, high: number) => low + Math.floor(random() * (high - low + 1));
  const stories: Story[] = [];
  for (let index = 0; index < options.payments; index += 1) {
    const amount = between(100, 50_000);
    const method = pick<PaymentMethod>(['pm_card_visa', 'pm_card_visa', 'pm_card_visa', 'pm_card_bypassPending',
      'pm_card_bypassPending', 'pm_card_chargeDeclined', 'pm_card_createDispute']);
    const manualCapture = random() < 0.35;
    const destination = options.sellers > 0 && random() < 0.3 ? between(0, options.sellers - 1) : undefined;
    const captureAmount = random() < 0.5 ? amount : between(50, amount);
    const refundCount = method === 'pm_card_createDispute' ? 0 : pick([0, 0, 1, 1, 2]);
    const refunds = Array.from({ length: refundCount }, () => between(1, Math.max(1, Math.floor(captureAmount / 2))));
    const transfer = options.sellers > 0 && random() < 0.2
      ? { seller: between(0, options.sellers - 1), amount: between(100, 5_000), payout: between(50, 5_000) }
      : undefined;
    stories.push({
      index, client: index % options.clients, amount, method, manualCapture, seller: destination,
      applicationFee: destination === undefined ? undefined : Math.floor(amount / 10),
      cancel: manualCapture && random() < 0.25, captureAmount, refunds, transfer,
      cardInDescription: random() < 0.02,
    });
  }
  return { seed: options.seed, clients: options.clients, sellers: options.sellers, stories,
    giveUpRate: options.giveUp ? 0.05 : 0 };
}

/** The client's view of Penny: a platform merchant's key and its sellers (connected accounts). */
export interface Platform {
  readonly secretKey: string;
  readonly sellers: readonly string[];
}

const requestTimeoutMs = 20_000;
/** A client that gives up waits this long for an answer, and no retry of the package's own. */
const giveUpTimeoutMs = 150;

/** Told of each operation once its client has an outcome, with how long it took (retries included). */
export type OperationObserver = (record: OperationRecord, latencyMs: number) => void;

export class SimulationClients {
  readonly records: OperationRecord[] = [];
  private readonly stripe: Stripe;
  private readonly impatient: Stripe;
  private readonly random: () => number;
  private nextId = 0;
  /** Operations sent and not yet answered, and the gate new ones wait at while a day turns. */
  private inFlight = 0;
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;

  constructor(private readonly plan: WorkloadPlan, private readonly platform: Platform, pennyUrl: string) {
    const url = new URL(pennyUrl);
    const base = { host: url.hostname, port: Number(url.port), protocol: 'http' as const };
    this.stripe = new Stripe(platform.secretKey, { ...base, maxNetworkRetries: 3, timeout: requestTimeoutMs });
    this.impatient = new Stripe(platform.secretKey, { ...base, maxNetworkRetries: 0, timeout: giveUpTimeoutMs });
    this.random = seededRandom(plan.seed ^ 0xc11e);
  }

  /** Every client works through its stories, spread over `durationMs`, until `stopped` says so. */
  async run(durationMs: number, stopped: () => boolean, onOperation: OperationObserver): Promise<void> {
    const startedMs = Date.now();
    await Promise.all(Array.from({ length: this.plan.clients }, async (_, client) => {
      const mine = this.plan.stories.filter((story) => story.client === client);
      for (const [position, story] of mine.entries()) {
        if (stopped()) return;
        const dueMs = startedMs + (durationMs * position) / mine.length;
        if (dueMs > Date.now()) await sleep(dueMs - Date.now());
        await this.runStory(story, onOperation);
      }
    }));
  }

  /** Sends an operation again under its own key, with patience: for the indefinite and the abandoned. */
  async retry(record: OperationRecord): Promise<void> {
    await this.send(record, this.stripe);
  }

  /** A PaymentIntent as the API shows it now (the checker's read through the API). */
  async retrieveIntent(id: string): Promise<{ status: string; amountReceived: number }> {
    const intent = await this.stripe.paymentIntents.retrieve(id);
    return { status: intent.status, amountReceived: intent.amount_received };
  }

  /** The same request again under its key, once finished: the answer must be the stored one. */
  async replay(record: OperationRecord): Promise<string | undefined> {
    const copy: OperationRecord = { ...record };
    await this.send(copy, this.stripe);
    return copy.body;
  }

  private async runStory(story: Story, onOperation: OperationObserver): Promise<void> {
    const step = async (kind: OperationKind, amount: number, stripeAccount?: string) => {
      const startedMs = performance.now();
      const record = await this.operate(kind, story, amount, stripeAccount);
      onOperation(record, performance.now() - startedMs);
      return record;
    };
    const created = await step('create_payment', story.amount);
    const intentId = created.objectId;
    if (created.outcome === 'ok' && intentId !== undefined) {
      const status = (JSON.parse(created.body ?? '{}') as { status?: string }).status;
      let captured = status === 'succeeded';
      if (status === 'requires_capture' && story.cancel) await step('cancel', 0);
      if (status === 'requires_capture' && !story.cancel) {
        captured = (await step('capture', story.captureAmount)).outcome === 'ok';
      }
      for (const amount of captured ? story.refunds : []) await step('refund', amount);
    }
    if (story.transfer !== undefined) {
      const seller = this.platform.sellers[story.transfer.seller];
      const transfer = await step('transfer', story.transfer.amount);
      if (transfer.outcome === 'ok') await step('payout', story.transfer.payout, seller);
    }
  }

  private async operate(kind: OperationKind, story: Story, amount: number, stripeAccount?: string) {
    const id = this.nextId;
    this.nextId += 1;
    const record: OperationRecord = {
      id, kind, key: `sim-${this.plan.seed}-${id}`, story: story.index, amount, stripeAccount,
      outcome: 'indefinite', status: undefined, code: undefined, objectId: undefined, body: undefined, attempts: 0,
      everIndefinite: false, abandoned: false,
    };
    this.records.push(record);
    const giveUp = this.random() < this.plan.giveUpRate;
    record.abandoned = giveUp;
    while (this.gate !== undefined) await this.gate;
    this.inFlight += 1;
    try {
      await this.send(record, giveUp ? this.impatient : this.stripe);
    } finally {
      this.inFlight -= 1;
    }
    return record;
  }

  /**
   * Holds new operations and waits (at most `waitMs`) for those under way to be answered: the
   * controlled clock then moves a day without a request in flight, as a day passes in real life
   * (a day's jump under a request that is still being answered would pass the PSP's key retention
   * inside it, a case only a request stalled for a day meets).
   */
  async pause(waitMs: number): Promise<void> {
    this.gate ??= new Promise((resolve) => { this.openGate = resolve; });
    const deadline = Date.now() + waitMs;
    while (this.inFlight > 0 && Date.now() < deadline) await sleep(20);
  }

  resume(): void {
    const open = this.openGate;
    this.gate = undefined;
    this.openGate = undefined;
    open?.();
  }

  private async send(record: OperationRecord, stripe: Stripe): Promise<void> {
    record.attempts += 1;
    const options: Stripe.RequestOptions = { idempotencyKey: record.key,
      ...(record.stripeAccount === undefined ? {} : { stripeAccount: record.stripeAccount }) };
    try {
      const result = await this.request(record, stripe, options);
      record.outcome = 'ok';
      record.status = 200;
      record.code = undefined;
      record.objectId = result.id;
      record.body = canonicalBody(result);
    } catch (error) {
      classifyFailure(record, error);
      if (record.outcome === 'indefinite') record.everIndefinite = true;
    }
  }

  /** The request of each kind; the story's earlier answers give the ids it names. */
  private request(record: OperationRecord, stripe: Stripe, options: Stripe.RequestOptions): Promise<{ id: string }> {
    const story = this.plan.stories[record.story];
    if (story === undefined) throw new Error(`no story ${record.story}`);
    const metadata = { sim_operation: record.key };
    const intentId = this.intentOf(story.index);
    switch (record.kind) {
      case 'create_payment': return stripe.paymentIntents.create({
        amount: story.amount, currency: 'usd', payment_method: story.method, confirm: true,
        capture_method: story.manualCapture ? 'manual' : 'automatic', metadata,
        ...(story.cardInDescription ? { description: `Paid with ${pastedCardNumber}` } : {}),
        ...(story.seller === undefined ? {} : {
          transfer_data: { destination: this.platform.sellers[story.seller] ?? '' },
          application_fee_amount: story.applicationFee,
        }),
      }, options);
      case 'capture': return stripe.paymentIntents.capture(intentId, { amount_to_capture: record.amount }, options);
      case 'cancel': return stripe.paymentIntents.cancel(intentId, { cancellation_reason: 'requested_by_customer' },
        options);
      case 'refund': return stripe.refunds.create({ payment_intent: intentId, amount: record.amount, metadata }, options);
      case 'transfer': return stripe.transfers.create({ amount: record.amount, currency: 'usd', metadata,
        destination: this.platform.sellers[story.transfer?.seller ?? 0] ?? '' }, options);
      case 'payout': return stripe.payouts.create({ amount: record.amount, currency: 'usd', metadata }, options);
    }
  }

  /** The PaymentIntent a story's create named (declined ones included). */
  intentOf(story: number): string {
    const created = this.records.find((record) => record.story === story && record.kind === 'create_payment');
    return created?.objectId ?? '';
  }
}

/** The answer without the package's own additions, as a stable string. */
function canonicalBody(result: object): string {
  const copy: Record<string, unknown> = { ...result };
  delete copy.lastResponse;
  return JSON.stringify(copy);
}

/**
 * A 4xx other than a conflict or a rate limit is Penny's definite refusal; anything else (no
 * answer, a 5xx, 409 idempotency_key_in_use, 429) leaves the outcome unknown to the client.
 */
function classifyFailure(record: OperationRecord, error: unknown): void {
  const failure = error as { statusCode?: number; code?: string; raw?: { payment_intent?: { id?: string } } };
  const status = failure.statusCode;
  record.status = status;
  record.code = failure.code;
  const definite = status !== undefined && status >= 400 && status < 500 && status !== 409 && status !== 429;
  record.outcome = definite ? 'failed' : 'indefinite';
  if (definite) record.body = undefined;
  const intent = failure.raw?.payment_intent?.id;
  if (intent !== undefined) record.objectId = intent;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
