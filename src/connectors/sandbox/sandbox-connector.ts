import { limits } from '../../config.js';
import { authorizationFromRecord } from '../decline-codes.js';
import { verifySignature } from '../../security/hmac-signature.js';
import {
  ConnectorRefusedError, ConnectorUnknownOutcomeError, ConnectorWebhookError, type AuthorizeInput,
  type AuthorizeOutput, type CaptureInput, type Connector, type ConnectorEvent, type PayoutInput,
  type PspOperation, type RefundInput, type VoidInput,
} from '../connector.js';
import { connectorTuning, ResilientHttp, type ResilientHttpOptions } from '../resilient-http.js';

/**
 * The connector for the sandbox PSP (`penny sandbox-psp`), reached over HTTP like any acquirer.
 * Penny's reference for an operation is the attempt, charge or refund id; the idempotency key is
 * derived from it, so every retry, in this process or after a restart, repeats the same key.
 */
export const sandboxConnectorId = 'sandbox';
export const sandboxSignatureHeader = 'sandbox-signature';

export interface SandboxConnectorOptions extends Partial<Omit<ResilientHttpOptions, 'connector' | 'baseUrl'>> {
  readonly baseUrl: string;
  /** Secrets that verify the sandbox's webhooks; more than one during a rotation. */
  readonly webhookSecrets: readonly string[];
  readonly webhookToleranceSeconds?: number;
}

interface WireOperation {
  kind: PspOperation['kind'];
  psp_reference: string;
  reference: string;
  outcome: string;
  amount_minor: number | null;
  currency: string | null;
  decline_code: string | null;
  parent_psp_reference?: string | null;
  available_immediately?: boolean;
  reason?: string | null;
  fee_minor?: number | null;
  failure_code?: string | null;
}

export class SandboxConnector implements Connector {
  readonly id = sandboxConnectorId;
  readonly capabilities = {
    manualCapture: true, partialCapture: true, refunds: true, payouts: true, webhooks: true, settlementReports: true,
    idempotencyKeyRetentionMs: 24 * 3_600_000,
  };
  /** The sandbox's published price list: 2% + 20 minor units, and 1500 minor units per dispute. */
  readonly priceList = { basisPoints: 200, fixedMinor: 20n, disputeFeeMinor: 1500n };
  private readonly http: ResilientHttp;

  constructor(private readonly options: SandboxConnectorOptions) {
    this.http = new ResilientHttp({
      connector: sandboxConnectorId, baseUrl: options.baseUrl,
      ...connectorTuning(options),
    });
  }

  async authorize(input: AuthorizeInput): Promise<AuthorizeOutput> {
    const answer = await this.post('/v1/authorizations', input.idempotencyKey, {
      reference: input.reference, amount_minor: input.amountMinor, currency: input.currency,
      payment_method: input.paymentMethod, capture: input.capture, authenticated: input.authenticated,
    });
    return authorizationOutput(answer);
  }

  async capture(input: CaptureInput) {
    return this.pspReferenceOf(await this.post('/v1/captures', input.idempotencyKey, {
      reference: input.reference, psp_reference: input.pspReference, amount_minor: input.amountMinor,
    }));
  }

  async void(input: VoidInput) {
    return this.pspReferenceOf(await this.post('/v1/voids', input.idempotencyKey, {
      reference: input.reference, psp_reference: input.pspReference,
    }));
  }

  async refund(input: RefundInput) {
    return this.pspReferenceOf(await this.post('/v1/refunds', input.idempotencyKey, {
      reference: input.reference, psp_reference: input.pspReference, amount_minor: input.amountMinor,
    }));
  }

  async payout(input: PayoutInput) {
    return this.pspReferenceOf(await this.post('/v1/payouts', input.idempotencyKey, {
      reference: input.reference, amount_minor: input.amountMinor, currency: input.currency,
      destination: input.destination,
    }));
  }

  async lookup(input: { reference: string }): Promise<PspOperation[]> {
    const answer = await this.http.request('GET', `/v1/operations?reference=${encodeURIComponent(input.reference)}`);
    return (answer as { data: WireOperation[] }).data.map(toOperation);
  }

  parseWebhook(input: { rawBody: Buffer; headers: Readonly<Record<string, string | string[] | undefined>> }):
  ConnectorEvent {
    const header = input.headers[sandboxSignatureHeader];
    const problem = verifySignature({
      payload: input.rawBody, header: Array.isArray(header) ? header[0] : header, secrets: this.options.webhookSecrets,
      nowSeconds: Math.floor(Date.now() / 1000),
      toleranceSeconds: this.options.webhookToleranceSeconds ?? limits.connectorWebhookToleranceSeconds,
    });
    if (problem !== undefined) throw new ConnectorWebhookError(problem);
    let event: { id?: unknown; type?: unknown; data?: unknown };
    try {
      event = JSON.parse(input.rawBody.toString('utf8')) as typeof event;
    } catch {
      throw new ConnectorWebhookError('unparseable');
    }
    if (typeof event.id !== 'string' || event.id.length > limits.connectorWebhookFieldLengthMax || typeof event.type !== 'string'
      || !isWireOperation(event.data)) {
      throw new ConnectorWebhookError('unparseable');
    }
    return { id: event.id, type: event.type, operation: toOperation(event.data) };
  }

  async fetchSettlementReport(input: { day: string; currency?: string }): Promise<string> {
    const query = input.currency === undefined ? '' : `?currency=${encodeURIComponent(input.currency)}`;
    let response: Response;
    try {
      response = await fetch(`${this.options.baseUrl}/v1/settlement_reports/${input.day}${query}`,
        { signal: AbortSignal.timeout(this.options.timeoutMs ?? limits.connectorTimeoutMs) });
    } catch (error) {
      throw new ConnectorUnknownOutcomeError(sandboxConnectorId, 'the report could not be fetched', { cause: error });
    }
    const text = await response.text();
    if (response.status >= 500) throw new ConnectorUnknownOutcomeError(sandboxConnectorId, `it answered ${response.status}`);
    if (!response.ok) {
      throw new ConnectorRefusedError(sandboxConnectorId, response.status, 'report_refused',
        `the sandbox refused the report of ${input.day}: ${text.slice(0, 200)}`);
    }
    return text;
  }

  private post(path: string, idempotencyKey: string, body: Record<string, unknown>) {
    return this.http.request('POST', path, { body, idempotencyKey });
  }

  private pspReferenceOf(answer: unknown): { pspReference: string } {
    return { pspReference: (answer as WireOperation).psp_reference };
  }
}

const operationKinds = new Set(['authorize', 'capture', 'void', 'refund', 'payout', 'chargeback']);

/** A signed payload is still checked for shape: a bad one is refused, never half-processed. */
function isWireOperation(value: unknown): value is WireOperation {
  if (typeof value !== 'object' || value === null) return false;
  const data = value as Record<string, unknown>;
  const text = (field: string) => typeof data[field] === 'string' && (data[field] as string).length <= limits.connectorWebhookFieldLengthMax;
  const optionalText = (field: string) => data[field] === null || data[field] === undefined || text(field);
  const optionalMinor = (field: string) => {
    const amount = data[field];
    return amount === null || amount === undefined || (typeof amount === 'number' && Number.isSafeInteger(amount));
  };
  return operationKinds.has(String(data.kind)) && text('psp_reference') && text('reference') && text('outcome')
    && optionalMinor('amount_minor') && optionalText('currency') && optionalText('decline_code')
    && optionalText('parent_psp_reference') && optionalText('reason') && optionalMinor('fee_minor')
    && optionalText('failure_code')
    && (data.available_immediately === undefined || typeof data.available_immediately === 'boolean');
}

/** The sandbox's record in Penny's terms; the fields only some operations have are set only there. */
function toOperation(wire: WireOperation): PspOperation {
  const minor = (value: number | null | undefined) => (value === null || value === undefined ? null : BigInt(value));
  return {
    kind: wire.kind, pspReference: wire.psp_reference, reference: wire.reference, outcome: wire.outcome,
    amountMinor: minor(wire.amount_minor), currency: wire.currency ?? null, declineCode: wire.decline_code ?? null,
    redirectUrl: wire.outcome === 'requires_action' ? `https://sandbox.penny.invalid/3ds/${wire.reference}` : null,
    ...(wire.parent_psp_reference === undefined ? {} : { parentPspReference: wire.parent_psp_reference }),
    ...(wire.kind === 'authorize' || wire.kind === 'capture'
      ? { availableImmediately: wire.available_immediately === true } : {}),
    ...(wire.kind === 'chargeback' ? { reason: wire.reason ?? null, disputeFeeMinor: minor(wire.fee_minor) } : {}),
    ...(wire.kind === 'payout' ? { failureCode: wire.failure_code ?? null } : {}),
  };
}

/** An authorization's answer, from the PSP's operation record. */
export function authorizationOutput(answer: unknown): AuthorizeOutput {
  return authorizationFromRecord(toOperation(answer as WireOperation));
}
