import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { limits } from '../../config.js';
import {
  ConnectorRefusedError, ConnectorUnknownOutcomeError, ConnectorWebhookError, type AuthorizeInput,
  type AuthorizeOutput, type CaptureInput, type Connector, type ConnectorEvent, type FollowUpOutput,
  type PayoutInput, type PspOperation, type RefundInput, type VoidInput,
} from '../connector.js';
import { connectorTuning, ResilientHttp, type ResilientHttpOptions } from '../resilient-http.js';
import { verifyBodySignature, verifyNotificationItem } from './adyen-hmac.js';
import {
  AdyenTranslationError, AdyenUnknownAnswerError, authorizeOutput, cancelRequest, captureRequest, isStripeTestMethod,
  modificationOutput, notificationEvent, notificationItems, paymentDetailsRequest, paymentRequest, refundRequest,
  reportDownloadUrl, type AdyenAccount, type NotificationItem,
} from './adyen-translate.js';

/**
 * The connector for one Adyen merchant account, over Adyen's Checkout API v71: authorize
 * (`/payments`), capture, cancel and refund (`/payments/{pspReference}/captures|cancels|refunds`),
 * each through the resilient client (timeout, bounded retries with the same `Idempotency-Key`,
 * circuit breaker). Its id is `adyen:<merchant account>`, so a payment keeps the account it was made
 * on whatever its merchant's routing becomes. Adyen's Checkout API has no look-up by Penny's
 * reference: the look-up reads the verified notifications Adyen sent for it (`notificationLog`), and
 * recovery re-sends a call with its key within Adyen's retention, which Adyen answers from its
 * record. Payouts are not a Checkout operation; settlement reports come from the Customer Area:
 * Penny pulls none (`settlementReports: false`), and settles from the Settlement details report
 * downloaded on Adyen's REPORT_AVAILABLE (`downloadReport`) or imported with `penny recon import`
 * (src/settlement/settlement-service.ts, `settleImportedReports`).
 */
export const adyenConnectorKind = 'adyen';

export function adyenConnectorId(merchantAccount: string): string {
  return `${adyenConnectorKind}:${merchantAccount}`;
}

export interface AdyenConnectorOptions extends Partial<Omit<ResilientHttpOptions, 'connector' | 'baseUrl' | 'headers'>> {
  readonly merchantAccount: string;
  readonly apiKey: string;
  /** The HMAC key (hex) notifications of this account are signed with. */
  readonly hmacKeyHex: string;
  /** The versioned base URL (`https://checkout-test.adyen.com/v71`, or the live one with its prefix). */
  readonly endpoint: string;
  /** Live mode when set: Stripe's test payment methods are refused. */
  readonly livePrefix?: string | null;
  readonly returnUrl: string;
  /** The merchant's Adyen price (its contract): the PSP fee Penny expects at capture. Absent: none. */
  readonly priceList?: { readonly basisPoints: number; readonly fixedMinor: bigint };
  /** The operations Adyen's verified notifications reported for Penny's reference. */
  readonly notificationLog: (connectorId: string, reference: string) => Promise<PspOperation[]>;
}

export class AdyenConnector implements Connector {
  readonly id: string;
  readonly capabilities = {
    manualCapture: true, partialCapture: true, refunds: true, payouts: false, webhooks: true, settlementReports: false,
    /** Adyen keeps an Idempotency-Key at least 7 days. */
    idempotencyKeyRetentionMs: 7 * 86_400_000,
    pspAuthenticationPage: true,
  };
  /** Adyen prices by contract: the merchant's price as its routing carries it (none given: 0). */
  readonly priceList: { readonly basisPoints: number; readonly fixedMinor: bigint };
  private readonly http: ResilientHttp;
  private readonly account: AdyenAccount;

  constructor(private readonly options: AdyenConnectorOptions) {
    this.id = adyenConnectorId(options.merchantAccount);
    this.priceList = options.priceList ?? { basisPoints: 0, fixedMinor: 0n };
    this.account = { merchantAccount: options.merchantAccount, testMode: !options.livePrefix,
      returnUrl: options.returnUrl };
    this.http = new ResilientHttp({
      connector: this.id, baseUrl: options.endpoint.replace(/\/+$/, ''),
      ...connectorTuning(options),
      headers: () => ({ 'x-api-key': options.apiKey }),
    });
  }

  async authorize(input: AuthorizeInput): Promise<AuthorizeOutput> {
    // A re-send by recovery carries no pass-through fields (Penny never keeps them): Adyen would
    // refuse the key with another body, so the outcome stays unknown for the look-up to settle.
    if (input.paymentMethodData === undefined && !isStripeTestMethod(input.paymentMethod)) {
      throw new ConnectorUnknownOutcomeError(this.id,
        'the payment method\'s Adyen fields are not kept; only Adyen\'s notification can tell');
    }
    const answer = await this.send('/payments', input.idempotencyKey, () => paymentRequest(input, this.account));
    return this.read(() => authorizeOutput(answer, input));
  }

  /**
   * The shopper is back from Adyen's redirect: `/payments/details` with what the return carried.
   * Its answer reads as /payments' does (Authorised captured or authorized as the payment was
   * sent, Refused declined, Error unknown); sent with its own key, so a second return is answered
   * from Adyen's record.
   */
  async authenticationResult(input: { reference: string; idempotencyKey: string;
    details: Readonly<Record<string, string>>; capture: boolean }): Promise<AuthorizeOutput> {
    const answer = await this.send('/payments/details', input.idempotencyKey, () => paymentDetailsRequest(input.details));
    return this.read(() => authorizeOutput(answer, input));
  }

  async capture(input: CaptureInput): Promise<FollowUpOutput> {
    return this.modification(input.pspReference, 'captures', input.idempotencyKey,
      () => captureRequest(input, this.account));
  }

  async void(input: VoidInput): Promise<FollowUpOutput> {
    return this.modification(input.pspReference, 'cancels', input.idempotencyKey,
      () => cancelRequest(input, this.account));
  }

  async refund(input: RefundInput): Promise<FollowUpOutput> {
    return this.modification(input.pspReference, 'refunds', input.idempotencyKey,
      () => refundRequest(input, this.account));
  }

  payout(_input: PayoutInput): Promise<FollowUpOutput> {
    return Promise.reject(new ConnectorRefusedError(this.id, 400, 'payouts_unsupported',
      'Adyen\'s Checkout API makes no payouts; Penny routes no payout to Adyen.'));
  }

  async lookup(input: { reference: string }): Promise<PspOperation[]> {
    return this.options.notificationLog(this.id, input.reference);
  }

  /** One verified event of a notification with a single item Penny acts on (the interface's shape). */
  parseWebhook(input: { rawBody: Buffer; headers: Readonly<Record<string, string | string[] | undefined>> }):
  ConnectorEvent {
    const [event] = this.verifyNotification(input.rawBody).events;
    if (event === undefined) throw new ConnectorWebhookError('unparseable');
    return event;
  }

  parseWebhookEvents(input: { rawBody: Buffer }): ConnectorEvent[] {
    return this.verifyNotification(input.rawBody).events;
  }

  /**
   * Every item's HMAC verified with this account's key, before anything is read of them: one that
   * fails (or names another account) refuses the whole notification. The events Penny acts on.
   */
  verifyNotification(rawBody: Buffer): { items: NotificationItem[]; events: ConnectorEvent[] } {
    let body: unknown;
    try {
      body = JSON.parse(rawBody.toString('utf8')) as unknown;
    } catch {
      throw new ConnectorWebhookError('unparseable');
    }
    const items = notificationItems(body);
    if (items === undefined) throw new ConnectorWebhookError('unparseable');
    for (const item of items) {
      const signature = item.additionalData?.hmacSignature;
      if (signature === undefined) throw new ConnectorWebhookError('missing');
      if (item.merchantAccountCode !== this.options.merchantAccount
        || !verifyNotificationItem(item, signature, this.options.hmacKeyHex)) {
        throw new ConnectorWebhookError('mismatch');
      }
    }
    const events = items.map(notificationEvent).filter((event): event is ConnectorEvent => event !== undefined);
    return { items, events };
  }

  /** A newer webhook's `HmacSignature` header verifies the raw body with this account's HMAC key. */
  verifyBodySignature(input: { rawBody: Buffer; signature: string }): boolean {
    return verifyBodySignature(input.rawBody, input.signature, this.options.hmacKeyHex);
  }

  /**
   * A report Adyen announced (REPORT_AVAILABLE's `reason`), downloaded with the account's API key
   * from Adyen's hosts or the configured endpoint's origin only, following no redirect.
   */
  async downloadReport(input: { url: string }): Promise<Readable> {
    const url = reportDownloadUrl(input.url, this.options.endpoint);
    if (url === undefined) {
      throw new ConnectorRefusedError(this.id, 400, 'report_url_refused',
        'Penny downloads reports only from Adyen\'s hosts or the account\'s endpoint.');
    }
    let response: Response;
    try {
      response = await fetch(url, { headers: { 'x-api-key': this.options.apiKey }, redirect: 'error',
        signal: AbortSignal.timeout(limits.connectorReportDownloadTimeoutMs) });
    } catch (error) {
      throw new ConnectorUnknownOutcomeError(this.id, 'the report download failed', { cause: error });
    }
    if (!response.ok || response.body === null) {
      await response.body?.cancel();
      if (response.status >= 500 || response.status === 429) {
        throw new ConnectorUnknownOutcomeError(this.id, `Adyen answered the report download ${response.status}`);
      }
      throw new ConnectorRefusedError(this.id, response.status, 'report_download_refused',
        `Adyen answered the report download ${response.status}.`);
    }
    return Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
  }

  /**
   * Adyen publishes its Settlement details report in the Customer Area, per batch, not per day: it
   * is downloaded on REPORT_AVAILABLE or imported (`penny recon import`), and settled from there.
   */
  fetchSettlementReport(input: { day: string }): Promise<string> {
    return Promise.reject(new ConnectorRefusedError(this.id, 404, 'report_not_fetched',
      `Adyen's Settlement details report of ${input.day} is downloaded from the Customer Area and imported.`));
  }

  private async modification(pspReference: string, operation: 'captures' | 'cancels' | 'refunds',
    idempotencyKey: string, body: () => Record<string, unknown>): Promise<FollowUpOutput> {
    const answer = await this.send(`/payments/${encodeURIComponent(pspReference)}/${operation}`, idempotencyKey, body);
    return this.read(() => modificationOutput(answer));
  }

  /** Translates (a translation that cannot be sent is a refusal: nothing reached Adyen), then sends. */
  private send(path: string, idempotencyKey: string, body: () => Record<string, unknown>): Promise<unknown> {
    let request: Record<string, unknown>;
    try {
      request = body();
    } catch (error) {
      if (error instanceof AdyenTranslationError) {
        return Promise.reject(new ConnectorRefusedError(this.id, 422, error.code, error.message));
      }
      throw error;
    }
    return this.http.request('POST', path, { body: request, idempotencyKey });
  }

  private read<T>(translate: () => T): T {
    try {
      return translate();
    } catch (error) {
      if (error instanceof AdyenUnknownAnswerError) {
        throw new ConnectorUnknownOutcomeError(this.id, error.reason, { cause: error });
      }
      throw error;
    }
  }
}
