import type {
  AuthorizeInput, AuthorizeOutput, CaptureInput, ConnectorEvent, FollowUpOutput, PspOperation, RefundInput, VoidInput,
} from '../connector.js';
import { declineAnswer } from '../decline-codes.js';
import { isCurrency } from '../../money/currency.js';
import { fromAdyenValue, toAdyenValue } from './adyen-currency.js';
import { withLuhnCheckDigit } from '../../security/card-filter.js';

/**
 * Pure translation between Penny's connector calls and Adyen's Checkout API v71 (Hyperswitch's
 * connector shape): each operation is a function from Penny's input to Adyen's request body and one
 * from Adyen's answer to Penny's output. Nothing here sends, stores or logs anything.
 */
export interface AdyenAccount {
  readonly merchantAccount: string;
  /** Test mode: Stripe's test payment methods map to Adyen's published test cards. */
  readonly testMode: boolean;
  /** Where the shopper returns after a redirect (Adyen requires `returnUrl` on /payments). */
  readonly returnUrl: string;
}

/** A translation that cannot be sent: nothing reached Adyen (the connector answers a refusal). */
export class AdyenTranslationError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'AdyenTranslationError';
  }
}

/** A reply whose outcome Penny cannot know from it (resultCode Error, an unknown code, a bad body). */
export class AdyenUnknownAnswerError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'AdyenUnknownAnswerError';
  }
}

export function adyenAmount(currency: string, amountMinor: bigint): { currency: string; value: number } {
  if (!isCurrency(currency)) {
    throw new AdyenTranslationError('currency_unsupported', `${currency} is not an ISO 4217 currency.`);
  }
  const value = toAdyenValue(currency, amountMinor);
  if (value === undefined || value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new AdyenTranslationError('amount_not_representable',
      `${amountMinor} minor units of ${currency} cannot be written in Adyen's minor units of ${currency}.`);
  }
  return { currency, value: Number(value) };
}

/**
 * The card fields of a Stripe test payment method in Adyen's documented test-only form of its
 * client-side-encrypted fields (`test_` + the plain value), with Adyen's published test cards and
 * its test `holderName` values that trigger a refusal reason. The card numbers are built from their
 * digits and Luhn check digit, so none stands in the source.
 */
const testCards = {
  visa: withLuhnCheckDigit(`41111111${'4555114'}`),
  mastercard: withLuhnCheckDigit(`55553412${'4444111'}`),
  visa3ds2: withLuhnCheckDigit(`49176100${'0000000'}`),
} as const;

const stripeTestMethods: Readonly<Record<string, { card: keyof typeof testCards; holderName: string }>> = {
  pm_card_visa: { card: 'visa', holderName: 'APPROVED' },
  pm_card_mastercard: { card: 'mastercard', holderName: 'APPROVED' },
  pm_card_bypassPending: { card: 'visa', holderName: 'APPROVED' },
  pm_card_chargeDeclined: { card: 'visa', holderName: 'DECLINED' },
  pm_card_visa_chargeDeclined: { card: 'visa', holderName: 'DECLINED' },
  pm_card_chargeDeclinedInsufficientFunds: { card: 'visa', holderName: 'NOT_ENOUGH_BALANCE' },
  pm_card_chargeDeclinedExpiredCard: { card: 'visa', holderName: 'CARD_EXPIRED' },
  pm_card_chargeDeclinedIncorrectCvc: { card: 'visa', holderName: 'CVC_DECLINED' },
  pm_card_chargeDeclinedFraudulent: { card: 'visa', holderName: 'FRAUD' },
  pm_card_chargeDeclinedProcessingError: { card: 'visa', holderName: 'ERROR' },
  pm_card_threeDSecure2Required: { card: 'visa3ds2', holderName: 'APPROVED' },
  pm_card_authenticationRequired: { card: 'visa3ds2', holderName: 'APPROVED' },
};

export function isStripeTestMethod(paymentMethod: string): boolean {
  return Object.hasOwn(stripeTestMethods, paymentMethod);
}


/**
 * Adyen's `paymentMethod`: the merchant's Adyen fields passed through untouched (encrypted card
 * fields from Adyen's Web Components or Drop-in, or a `storedPaymentMethodId`), or in test mode a
 * Stripe test payment method's test card.
 */
export function adyenPaymentMethod(input: AuthorizeInput, account: AdyenAccount): Record<string, string> {
  if (input.paymentMethodData !== undefined) return { type: 'scheme', ...input.paymentMethodData };
  const test = stripeTestMethods[input.paymentMethod];
  if (test !== undefined && account.testMode) {
    return { type: 'scheme', encryptedCardNumber: `test_${testCards[test.card]}`, encryptedExpiryMonth: 'test_03',
      encryptedExpiryYear: 'test_2030', encryptedSecurityCode: 'test_737', holderName: test.holderName };
  }
  throw new AdyenTranslationError('payment_method_unsupported', test === undefined
    ? `Adyen needs the payment method's Adyen fields (payment_method_data[adyen][…]); ${input.paymentMethod} has none.`
    : `${input.paymentMethod} is a test payment method; this Adyen account is live.`);
}

/**
 * Where Adyen sends the shopper back after its redirect (3-D Secure): Penny's return route, naming
 * the attempt (Penny's reference), to which Adyen appends `redirectResult`.
 */
export function paymentReturnUrl(account: AdyenAccount, reference: string): string {
  const url = new URL(account.returnUrl);
  url.searchParams.set('attempt', reference);
  return url.toString();
}

/** What the shopper's return carries that `/payments/details` takes (PaymentCompletionDetails' names). */
export const paymentDetailsFields = ['redirectResult', 'threeDSResult', 'payload', 'MD', 'PaRes'] as const;

/**
 * POST /payments/details: the details the shopper's return carried, only the fields Adyen's
 * PaymentCompletionDetails names, each at most 20,000 characters; none is a refusal (nothing sent).
 */
export function paymentDetailsRequest(details: Readonly<Record<string, string>>): Record<string, unknown> {
  const kept: Record<string, string> = {};
  for (const field of paymentDetailsFields) {
    const value = details[field];
    if (typeof value === 'string' && value !== '' && value.length <= 20_000) kept[field] = value;
  }
  if (Object.keys(kept).length === 0) {
    throw new AdyenTranslationError('details_missing', 'The return carries none of Adyen\'s details (redirectResult, …).');
  }
  return { details: kept };
}

/** POST /payments: manual capture unless the PaymentIntent captures at once (`captureDelayHours: 0`). */
export function paymentRequest(input: AuthorizeInput, account: AdyenAccount): Record<string, unknown> {
  return {
    merchantAccount: account.merchantAccount,
    reference: input.reference,
    amount: adyenAmount(input.currency, input.amountMinor),
    paymentMethod: adyenPaymentMethod(input, account),
    returnUrl: paymentReturnUrl(account, input.reference),
    shopperInteraction: 'Ecommerce',
    ...(input.capture ? { captureDelayHours: 0 } : { additionalData: { manualCapture: 'true' } }),
  };
}

export function captureRequest(input: CaptureInput & { currency: string }, account: AdyenAccount) {
  return { merchantAccount: account.merchantAccount, reference: input.reference,
    amount: adyenAmount(input.currency, input.amountMinor) };
}

export function cancelRequest(input: VoidInput, account: AdyenAccount) {
  return { merchantAccount: account.merchantAccount, reference: input.reference };
}

export function refundRequest(input: RefundInput & { currency: string }, account: AdyenAccount) {
  return { merchantAccount: account.merchantAccount, reference: input.reference,
    amount: adyenAmount(input.currency, input.amountMinor) };
}

/**
 * Adyen's `refusalReason` (docs.adyen.com/development-resources/refusal-reasons) as Stripe's
 * decline code; a reason not listed reads as `generic_decline`.
 */
const refusalDeclineCodes: Readonly<Record<string, string>> = {
  'refused': 'generic_decline',
  'referral': 'call_issuer',
  'acquirer error': 'processing_error',
  'blocked card': 'restricted_card',
  'expired card': 'expired_card',
  'invalid amount': 'invalid_amount',
  'invalid card number': 'incorrect_number',
  'issuer unavailable': 'issuer_not_available',
  'not supported': 'card_not_supported',
  '3d not authenticated': 'authentication_required',
  'not enough balance': 'insufficient_funds',
  'acquirer fraud': 'fraudulent',
  'cancelled': 'generic_decline',
  'shopper cancelled': 'generic_decline',
  'invalid pin': 'incorrect_pin',
  'pin tries exceeded': 'pin_try_exceeded',
  'pin validation not possible': 'offline_pin_required',
  'fraud': 'fraudulent',
  'not submitted': 'processing_error',
  'fraud-cancelled': 'fraudulent',
  'transaction not permitted': 'transaction_not_allowed',
  'cvc declined': 'incorrect_cvc',
  'restricted card': 'restricted_card',
  'revocation of auth': 'revocation_of_authorization',
  'declined non generic': 'do_not_honor',
  'withdrawal amount exceeded': 'withdrawal_count_limit_exceeded',
  'withdrawal count exceeded': 'withdrawal_count_limit_exceeded',
  'issuer suspected fraud': 'fraudulent',
  'avs declined': 'incorrect_zip',
  'card requires online pin': 'online_or_offline_pin_required',
  'authentication required': 'authentication_required',
};

export function declineCodeOfRefusal(refusalReason: unknown): string {
  if (typeof refusalReason !== 'string') return 'generic_decline';
  return refusalDeclineCodes[refusalReason.trim().toLowerCase()] ?? 'generic_decline';
}

/** The refusal reasons Penny maps, for docs/connectors.md and its test. */
export function refusalReasonsMapped(): Readonly<Record<string, string>> {
  return refusalDeclineCodes;
}

interface PaymentResponse {
  resultCode?: unknown;
  pspReference?: unknown;
  refusalReason?: unknown;
  action?: { url?: unknown; type?: unknown } | null;
}

/**
 * /payments' answer in Penny's terms. `Authorised` is captured when Penny asked for automatic
 * capture, else authorized; `Refused` and `Cancelled` are declines with Stripe's code;
 * `Pending`/`Received`/`PresentToShopper` wait for a webhook or a look-up; the shopper actions are
 * requires_action with Adyen's URL; `Error`, and anything Penny does not know, is an unknown outcome.
 */
export function authorizeOutput(answer: unknown, request: { capture: boolean }): AuthorizeOutput {
  const body = (typeof answer === 'object' && answer !== null ? answer : {}) as PaymentResponse;
  const resultCode = typeof body.resultCode === 'string' ? body.resultCode : '';
  const pspReference = typeof body.pspReference === 'string' ? body.pspReference : '';
  switch (resultCode) {
    case 'Authorised':
      requirePspReference(pspReference, resultCode);
      return { outcome: request.capture ? 'captured' : 'authorized', pspReference };
    case 'Refused':
    case 'Cancelled':
      return { outcome: 'declined', pspReference,
        ...declineAnswer(resultCode === 'Cancelled' ? 'generic_decline' : declineCodeOfRefusal(body.refusalReason)) };
    case 'Pending':
    case 'Received':
    case 'PresentToShopper':
      requirePspReference(pspReference, resultCode);
      return { outcome: 'pending', pspReference };
    case 'RedirectShopper':
    case 'ChallengeShopper':
    case 'IdentifyShopper': {
      const url = typeof body.action?.url === 'string' ? body.action.url : '';
      return { outcome: 'requires_action', pspReference, redirectUrl: url };
    }
    default:
      throw new AdyenUnknownAnswerError(resultCode === 'Error'
        ? `Adyen answered Error${typeof body.refusalReason === 'string' ? ` (${body.refusalReason})` : ''}`
        : `Adyen answered an unknown resultCode ${JSON.stringify(resultCode).slice(0, 40)}`);
  }
}

function requirePspReference(pspReference: string, resultCode: string): void {
  if (pspReference === '') throw new AdyenUnknownAnswerError(`Adyen answered ${resultCode} without a pspReference`);
}

/**
 * A capture's, cancel's or refund's answer: `201` with `status: "received"`. Adyen has taken the
 * request, nothing more; the outcome comes by webhook (CAPTURE, CANCELLATION, REFUND, or
 * CAPTURE_FAILED, REFUND_FAILED). Penny never books it as done on this answer.
 */
export function modificationOutput(answer: unknown): FollowUpOutput {
  const body = (typeof answer === 'object' && answer !== null ? answer : {}) as { status?: unknown; pspReference?: unknown };
  if (body.status !== 'received' || typeof body.pspReference !== 'string' || body.pspReference === '') {
    throw new AdyenUnknownAnswerError('Adyen\'s answer to a modification was not "received" with a pspReference');
  }
  return { pspReference: body.pspReference, outcome: 'received' };
}

/** A standard notification's item (`notificationItems[].NotificationRequestItem`). */
export interface NotificationItem {
  readonly pspReference?: string;
  readonly originalReference?: string;
  readonly merchantAccountCode?: string;
  readonly merchantReference?: string;
  readonly amount?: { readonly value?: number; readonly currency?: string };
  readonly eventCode?: string;
  readonly success?: string;
  readonly reason?: string;
  readonly additionalData?: Readonly<Record<string, unknown>>;
}

/** The items of a standard notification body; undefined for any other shape. */
export function notificationItems(body: unknown): NotificationItem[] | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const items = (body as { notificationItems?: unknown }).notificationItems;
  if (!Array.isArray(items) || items.length === 0) return undefined;
  const parsed: NotificationItem[] = [];
  for (const wrapper of items) {
    const item = (wrapper as { NotificationRequestItem?: unknown } | null)?.NotificationRequestItem;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) return undefined;
    parsed.push(item as NotificationItem);
  }
  return parsed;
}

/** Adyen's dedupe key of an item: its pspReference, eventCode and success. */
export function notificationEventId(item: NotificationItem): string {
  return `${item.pspReference ?? ''}:${item.eventCode ?? ''}:${item.success ?? ''}`;
}

/** Adyen's chargeback reason codes name schemes' codes; Penny keeps Stripe's reasons. */
function disputeReason(item: NotificationItem): string {
  const text = `${item.reason ?? ''}`.toLowerCase();
  if (text.includes('fraud')) return 'fraudulent';
  if (text.includes('not received')) return 'product_not_received';
  if (text.includes('duplicate')) return 'duplicate';
  return 'general';
}

/**
 * A verified item as a Penny event; undefined for an event code Penny does not act on (it is still
 * acknowledged). The event's id is Adyen's dedupe key.
 */
export function notificationEvent(item: NotificationItem): ConnectorEvent | undefined {
  const success = item.success === 'true';
  const operation = notificationOperation(item, success);
  if (operation === undefined) return undefined;
  return { id: notificationEventId(item), type: `${item.eventCode ?? ''}.${success ? 'true' : 'false'}`, operation };
}

function notificationOperation(item: NotificationItem, success: boolean): PspOperation | undefined {
  const currency = typeof item.amount?.currency === 'string' ? item.amount.currency : null;
  const value = typeof item.amount?.value === 'number' && Number.isSafeInteger(item.amount.value)
    ? BigInt(item.amount.value) : null;
  const amountMinor = currency === null || value === null ? null : (safeFromAdyen(currency, value) ?? null);
  const base = {
    pspReference: item.pspReference ?? '', reference: item.merchantReference ?? '', amountMinor, currency,
    declineCode: null, redirectUrl: null,
    parentPspReference: item.originalReference === undefined || item.originalReference === ''
      ? null : item.originalReference,
  };
  switch (item.eventCode) {
    case 'AUTHORISATION':
      return success ? { ...base, kind: 'authorize', outcome: 'authorized', captureAsRequested: true }
        : { ...base, kind: 'authorize', outcome: 'declined', declineCode: declineCodeOfRefusal(item.reason) };
    case 'CAPTURE':
      // Penny's capture names its charge; an automatic capture's (sent when the account enables
      // it) names the payment's reference, the attempt, and is matched to its charge by Adyen's
      // payment pspReference (originalReference).
      return { ...base, kind: 'capture', outcome: success ? 'captured' : 'failed' };
    case 'CAPTURE_FAILED':
      return { ...base, kind: 'capture', outcome: 'failed' };
    case 'CANCELLATION':
      return { ...base, kind: 'void', outcome: success ? 'voided' : 'failed' };
    case 'REFUND':
      return { ...base, kind: 'refund', outcome: success ? 'refunded' : 'failed' };
    case 'REFUND_FAILED':
      return { ...base, kind: 'refund', outcome: 'failed' };
    case 'CHARGEBACK':
      // The dispute is Adyen's payment: its pspReference names the disputed payment when
      // originalReference is absent.
      return success ? { ...base, kind: 'chargeback', outcome: 'needs_response',
        parentPspReference: base.parentPspReference ?? base.pspReference, reason: disputeReason(item),
        disputeFeeMinor: null } : undefined;
    case 'CHARGEBACK_REVERSED':
      return success ? { ...base, kind: 'chargeback', outcome: 'won',
        parentPspReference: base.parentPspReference ?? base.pspReference, reason: disputeReason(item),
        disputeFeeMinor: null } : undefined;
    case 'SECOND_CHARGEBACK':
    case 'PREARBITRATION_LOST':
      return success ? { ...base, kind: 'chargeback', outcome: 'lost',
        parentPspReference: base.parentPspReference ?? base.pspReference, reason: disputeReason(item),
        disputeFeeMinor: null } : undefined;
    case 'REFUNDED_REVERSED':
    case 'CANCEL_OR_REFUND':
    case 'TECHNICAL_CANCEL':
    case 'OFFER_CLOSED':
    case 'AUTHORISATION_ADJUSTMENT':
      // Steps Penny never asks for and does not apply: stored, and a case when money moved (a
      // refund returned, a payment cancelled or refunded, a hold changed); OFFER_CLOSED (an offer
      // the shopper never completed) moved none.
      return { ...base, kind: 'notice', notice: item.eventCode,
        outcome: !success ? 'failed' : item.eventCode === 'OFFER_CLOSED' ? 'performed' : 'money_moved' };
    default:
      return undefined;
  }
}

function safeFromAdyen(currency: string, value: bigint): bigint | undefined {
  return isCurrency(currency) ? fromAdyenValue(currency, value) : undefined;
}

/**
 * Where Penny downloads a report Adyen announced from, with the account's API key: https on
 * Adyen's own hosts (`*.adyen.com`, `*.adyenpayments.com`), or the origin of the account's
 * configured endpoint (a test stub, a proxy the operator set); no credentials in the URL. Anything
 * else (another host, an address on Penny's network) is undefined: never requested.
 */
export function reportDownloadUrl(announced: string, endpoint: string): string | undefined {
  let url: URL;
  let configured: URL;
  try {
    url = new URL(announced);
    configured = new URL(endpoint);
  } catch {
    return undefined;
  }
  if (url.username !== '' || url.password !== '') return undefined;
  const adyenHost = url.protocol === 'https:' && url.port === ''
    && /(?:^|\.)(?:adyen\.com|adyenpayments\.com)$/.test(url.hostname);
  return adyenHost || url.origin === configured.origin ? url.toString() : undefined;
}
