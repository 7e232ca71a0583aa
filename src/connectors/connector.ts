import type { Readable } from 'node:stream';
/**
 * The one interface every PSP connector implements (Strategy). Each method takes one input
 * object and returns one output, or throws. Every call carries Penny's own idempotency key, derived
 * from the attempt or operation, so repeating a call (a retry, a restart) never repeats the money
 * movement. The core never imports a connector; src/app.ts registers them by id.
 */
export interface ConnectorCapabilities {
  readonly manualCapture: boolean;
  readonly partialCapture: boolean;
  readonly refunds: boolean;
  readonly payouts: boolean;
  readonly webhooks: boolean;
  readonly settlementReports: boolean;
  /** How long the PSP keeps an idempotency key: Penny re-sends an operation only within it. */
  readonly idempotencyKeyRetentionMs: number;
  /**
   * The PSP serves its own authentication page (Adyen's redirect): a requires_action payment sends
   * the customer to the URL it gives. Absent: Penny's test-mode page (the sandbox's has none).
   */
  readonly pspAuthenticationPage?: boolean;
}

/**
 * The outcome of a call is unknown: it timed out, the connection failed, the PSP answered 5xx, or
 * the circuit is open. The money may or may not have moved; only a look-up by Penny's reference
 * can tell. Never retried with a different key, never guessed.
 */
export class ConnectorUnknownOutcomeError extends Error {
  constructor(readonly connector: string, readonly reason: string, options?: { cause?: unknown }) {
    super(`the outcome of a ${connector} call is unknown: ${reason}`, options);
    this.name = 'ConnectorUnknownOutcomeError';
  }
}

/** The PSP refused the call (a 4xx): nothing happened, definitely. */
export class ConnectorRefusedError extends Error {
  constructor(readonly connector: string, readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = 'ConnectorRefusedError';
  }
}

/** A webhook whose signature does not verify; nothing is stored. */
export class ConnectorWebhookError extends Error {
  constructor(readonly problem: 'missing' | 'malformed' | 'stale' | 'mismatch' | 'unparseable') {
    super(`the webhook signature is ${problem}`);
    this.name = 'ConnectorWebhookError';
  }
}

/** The PSP's published price: basis points of the amount plus a fixed fee, in minor units. */
export interface PriceList {
  readonly basisPoints: number;
  readonly fixedMinor: bigint;
  /**
   * What the PSP charges per dispute, in minor units of the disputed charge's currency (the
   * sandbox: 1500, Stripe's $15). Absent: the PSP charges no dispute fee, or does not say.
   */
  readonly disputeFeeMinor?: bigint;
}

export interface AuthorizeInput {
  /** Penny's reference for the attempt; a look-up by it resolves an unknown outcome. */
  readonly reference: string;
  readonly idempotencyKey: string;
  readonly amountMinor: bigint;
  /** ISO 4217, upper case. */
  readonly currency: string;
  readonly paymentMethod: string;
  /** Capture in the same call (automatic capture), or only authorize (manual capture). */
  readonly capture: boolean;
  /** The customer completed the authentication the PSP asked for (3-D Secure). */
  readonly authenticated: boolean;
  /**
   * The PSP's own payment method fields, passed through untouched and never stored (Adyen's
   * client-side-encrypted card fields, or a stored payment method id). Absent on a re-send by
   * recovery: a connector that needs them answers an unknown outcome, for a look-up to settle.
   */
  readonly paymentMethodData?: Readonly<Record<string, string>>;
}

export type AuthorizeOutput =
  | { readonly outcome: 'authorized' | 'captured'; readonly pspReference: string;
      /** The PSP makes the charge's funds available at once, with no wait for settlement (pm_card_bypassPending). */
      readonly availableImmediately?: boolean }
  /** The PSP has not decided yet (an authorization that goes pending); a webhook or a look-up tells later. */
  | { readonly outcome: 'pending'; readonly pspReference: string }
  | { readonly outcome: 'requires_action'; readonly pspReference: string; readonly redirectUrl: string }
  | { readonly outcome: 'declined'; readonly pspReference: string; readonly code: string;
      readonly declineCode: string; readonly message: string };

export interface CaptureInput {
  readonly reference: string;
  readonly idempotencyKey: string;
  readonly pspReference: string;
  readonly amountMinor: bigint;
  /** ISO 4217, upper case: the authorization's currency. */
  readonly currency: string;
}

export interface VoidInput {
  readonly reference: string;
  readonly idempotencyKey: string;
  readonly pspReference: string;
}

export interface RefundInput {
  readonly reference: string;
  readonly idempotencyKey: string;
  readonly pspReference: string;
  readonly amountMinor: bigint;
  /** ISO 4217, upper case: the charge's currency. */
  readonly currency: string;
}

/**
 * What a capture, void or refund call answers. `done` (or absent): the PSP performed it. `received`:
 * the PSP has taken the request and tells its outcome later, by webhook or look-up (Adyen's
 * modifications); Penny books nothing on it and waits.
 */
export interface FollowUpOutput {
  readonly pspReference: string;
  readonly outcome?: 'done' | 'received';
}

export interface PayoutInput {
  readonly reference: string;
  readonly idempotencyKey: string;
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly destination: string;
}

/**
 * One operation the PSP performed for a reference of Penny's, as its own record says, in its
 * current state. The optional fields are set by connectors that know them (the sandbox does).
 */
export interface PspOperation {
  readonly kind: 'authorize' | 'capture' | 'void' | 'refund' | 'payout' | 'chargeback' | 'notice';
  readonly pspReference: string;
  /**
   * Penny's reference: the attempt, charge, refund or payout id. A chargeback (a dispute) carries
   * the reference of the operation that captured its charge.
   */
  readonly reference: string;
  /**
   * authorize: authorized, captured, requires_action, declined, pending; capture: captured;
   * void: voided; refund: refunded; payout: pending, in_transit, paid, failed; chargeback (a
   * dispute, the amount withdrawn at opening): needs_response, then won (the amount returned)
   * or lost.
   */
  readonly outcome: string;
  readonly amountMinor: bigint | null;
  readonly currency: string | null;
  readonly declineCode: string | null;
  /** Where the customer authenticates, for an authorization that requires action (3-D Secure). */
  readonly redirectUrl: string | null;
  /** The operation this one follows: a capture's, refund's or dispute's authorization (the charge's PSP reference). */
  readonly parentPspReference?: string | null;
  /** A charge whose funds are available at once, with no wait for settlement (pm_card_bypassPending). */
  readonly availableImmediately?: boolean;
  /** A dispute's reason, one of Stripe's (`fraudulent`, `product_not_received`, …). */
  readonly reason?: string | null;
  /** A dispute's fee, in minor units of its currency; charged at opening and kept when won. */
  readonly disputeFeeMinor?: bigint | null;
  /** A failed payout's reason, one of Stripe's payout failure codes (`no_account`, `account_closed`, …). */
  readonly failureCode?: string | null;
  /**
   * An authorization the PSP's record calls `authorized` without saying whether it was also
   * captured (Adyen's AUTHORISATION): it was captured if Penny's request asked for automatic capture.
   */
  readonly captureAsRequested?: boolean;
  /**
   * A notice: a step the PSP reports that Penny neither takes nor applies (Adyen's
   * REFUNDED_REVERSED, CANCEL_OR_REFUND, TECHNICAL_CANCEL, OFFER_CLOSED, AUTHORISATION_ADJUSTMENT),
   * named by the PSP's own code; its outcome is `money_moved`, `performed` (nothing moved) or
   * `failed`. Stored, and when it moved money, a case for a payments engineer.
   */
  readonly notice?: string;
}

/** A verified PSP webhook, in Penny's terms. */
export interface ConnectorEvent {
  readonly id: string;
  readonly type: string;
  readonly operation: PspOperation;
}

export interface Connector {
  readonly id: string;
  readonly capabilities: ConnectorCapabilities;
  readonly priceList: PriceList;
  authorize(input: AuthorizeInput): Promise<AuthorizeOutput>;
  capture(input: CaptureInput): Promise<FollowUpOutput>;
  void(input: VoidInput): Promise<FollowUpOutput>;
  refund(input: RefundInput): Promise<FollowUpOutput>;
  payout(input: PayoutInput): Promise<{ pspReference: string }>;
  /** The operations the PSP performed for Penny's reference: how an unknown outcome is resolved. */
  lookup(input: { reference: string }): Promise<PspOperation[]>;
  /** Verifies the signature on the raw bytes, then parses; throws ConnectorWebhookError. */
  parseWebhook(input: { rawBody: Buffer; headers: Readonly<Record<string, string | string[] | undefined>> }):
  ConnectorEvent;
  /**
   * A PSP whose webhook carries several events (Adyen's notification items): every one verified
   * before any is returned; throws ConnectorWebhookError if one fails. Absent: one event per webhook.
   */
  parseWebhookEvents?(input: { rawBody: Buffer }): ConnectorEvent[];
  /**
   * A PSP that hosts the customer's authentication (`pspAuthenticationPage`) and is told, when the
   * customer returns, what its page handed back (Adyen's `/payments/details` with `redirectResult`):
   * the authorization's outcome, as `authorize` answers it. A refusal (forged or stale details) is
   * ConnectorRefusedError; an answer Penny cannot read is ConnectorUnknownOutcomeError.
   */
  authenticationResult?(input: { reference: string; idempotencyKey: string;
    details: Readonly<Record<string, string>>; capture: boolean }): Promise<AuthorizeOutput>;
  /**
   * A settlement report the PSP announced (Adyen's REPORT_AVAILABLE, its URL), downloaded with this
   * account's credentials from the PSP's own hosts only: ConnectorRefusedError for any other URL
   * (nothing is requested) or a refusal; ConnectorUnknownOutcomeError when the download failed.
   */
  downloadReport?(input: { url: string }): Promise<Readable>;
  /**
   * A PSP that also signs a whole webhook body in a header (Adyen's newer webhooks, whose body
   * names no account): true when the signature verifies with this connector's key.
   */
  verifyBodySignature?(input: { rawBody: Buffer; signature: string }): boolean;
  /** A settlement day's report, as the PSP publishes it (for the sandbox: Adyen's CSV). */
  fetchSettlementReport(input: { day: string; currency?: string }): Promise<string>;
}

/** Connectors by id, filled by the composition root. */
export class ConnectorRegistry {
  private readonly connectors = new Map<string, Connector>();

  register(connector: Connector): void {
    if (this.connectors.has(connector.id)) throw new Error(`connector ${connector.id} registered twice`);
    this.connectors.set(connector.id, connector);
  }

  /**
   * Registers a connector, or replaces the one of its id: a PSP account whose credentials changed
   * (its payments keep the id; their next call uses the new credentials).
   */
  replace(connector: Connector): void {
    this.connectors.set(connector.id, connector);
  }

  /** Every registered connector's id, in the order they were registered. */
  ids(): string[] {
    return [...this.connectors.keys()];
  }

  has(id: string): boolean {
    return this.connectors.has(id);
  }

  get(id: string): Connector {
    const connector = this.connectors.get(id);
    if (connector === undefined) throw new Error(`no connector ${id} is registered`);
    return connector;
  }
}

/**
 * A settlement report line naming something Penny may have missed (a lost webhook): its type
 * and both references. Penny asks the PSP about it, unless it already holds what the line says.
 */
export interface PspSyncRequest {
  readonly connectorId: string;
  /** Penny's reference (the payout's id; the charge's attempt reference). */
  readonly reference: string;
  /** The PSP's reference of the operation the line books (a chargeback's own). */
  readonly pspReference: string;
  readonly lineType: 'Chargeback' | 'ChargebackReversed' | 'PaidOut';
}

