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
}

/** The PSP's published price: basis points of the amount plus a fixed fee, in minor units. */
export interface PriceList {
  readonly basisPoints: number;
  readonly fixedMinor: bigint;
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
}

export type AuthorizeOutput =
  | { readonly outcome: 'authorized' | 'captured'; readonly pspReference: string }
  | { readonly outcome: 'requires_action'; readonly pspReference: string; readonly redirectUrl: string }
  | { readonly outcome: 'declined'; readonly pspReference: string; readonly code: string;
      readonly declineCode: string; readonly message: string };

export interface CaptureInput {
  readonly reference: string;
  readonly idempotencyKey: string;
  readonly pspReference: string;
  readonly amountMinor: bigint;
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
}

export interface Connector {
  readonly id: string;
  readonly capabilities: ConnectorCapabilities;
  readonly priceList: PriceList;
  authorize(input: AuthorizeInput): Promise<AuthorizeOutput>;
  capture(input: CaptureInput): Promise<{ pspReference: string }>;
  void(input: VoidInput): Promise<{ pspReference: string }>;
  refund(input: RefundInput): Promise<{ pspReference: string }>;
}

/** Connectors by id, filled by the composition root. */
export class ConnectorRegistry {
  private readonly connectors = new Map<string, Connector>();

  register(connector: Connector): void {
    if (this.connectors.has(connector.id)) throw new Error(`connector ${connector.id} registered twice`);
    this.connectors.set(connector.id, connector);
  }

  get(id: string): Connector {
    const connector = this.connectors.get(id);
    if (connector === undefined) throw new Error(`no connector ${id} is registered`);
    return connector;
  }
}
