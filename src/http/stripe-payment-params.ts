import { PennyError } from '../errors.js';
import type {
  CancelPaymentIntentCommand, CapturePaymentIntentCommand, ConnectCommand, ConfirmPaymentIntentCommand,
  CreatePaymentIntentCommand,
  CreateRefundCommand, RefundReason, UpdatePaymentIntentCommand,
} from '../payments/payment-commands.js';
import { readStripeAmount, readStripeBoolean } from './stripe-form.js';
import { parseStripeCurrency, stripeAmountToMinor, validateStripeAmount } from '../money/stripe-currency.js';
import { invalid, missing, readEnum, readObject, readString } from '../validation.js';

/**
 * The Stripe edge of payments: PaymentIntent and Refund parameters as Stripe's API takes them
 * (form-encoded strings or JSON), read into the typed commands the domain takes
 * (src/payments/payment-commands.ts). Refusals here happen before the idempotency layer, so they
 * are never stored.
 */

const createKeys = ['amount', 'currency', 'payment_method', 'payment_method_data', 'confirm', 'capture_method', 'description', 'metadata',
  'customer', 'receipt_email', 'statement_descriptor', 'payment_method_types', 'expand', 'return_url', 'transfer_data',
  'application_fee_amount', 'on_behalf_of', 'transfer_group'];

export function parseCreatePaymentIntent(body: unknown): CreatePaymentIntentCommand {
  const object = readObject(body ?? {}, '', createKeys);
  if (object.currency === undefined) throw missing('currency');
  const currency = parseStripeCurrency(object.currency, 'currency');
  if (object.amount === undefined) throw missing('amount');
  const amount = validateStripeAmount(currency, object.amount, 'amount');
  readPaymentMethodTypes(object.payment_method_types);
  const returnUrl = readReturnUrl(object.return_url);
  const paymentMethodData = readPaymentMethodData(object.payment_method_data);
  return {
    returnUrl,
    confirm: readStripeBoolean(object.confirm, 'confirm') ?? false,
    amount,
    currency,
    paymentMethod: readString(object.payment_method, 'payment_method', { lengthMax: 255 })
      || (paymentMethodData === undefined ? undefined : passThroughPaymentMethod),
    paymentMethodData,
    captureMethod: readEnum(object.capture_method, 'capture_method', ['automatic', 'automatic_async', 'manual'])
      ?? 'automatic',
    description: readString(object.description, 'description', { lengthMax: 1000 }) || undefined,
    customer: readString(object.customer, 'customer', { lengthMax: 255 }) || undefined,
    receiptEmail: readString(object.receipt_email, 'receipt_email', { lengthMax: 800 }) || undefined,
    statementDescriptor: readStatementDescriptor(object.statement_descriptor) || undefined,
    metadata: readStripeMetadata(object.metadata),
    connect: readConnect(object, { currency, amount }),
  };
}

/**
 * A destination charge's fields, as Stripe takes them: transfer_data[destination] (and
 * [amount], at most the charge's amount), or an application_fee_amount the platform keeps (at
 * most the amount, and only with a destination: Penny makes no direct charges), never both
 * amounts; on_behalf_of, when given with a destination, must be that destination.
 */
function readConnect(object: Record<string, unknown>, intent: { currency: string; amount: bigint }): ConnectCommand {
  const transferData = object.transfer_data === undefined ? {}
    : readObject(object.transfer_data, 'transfer_data', ['destination', 'amount']);
  const destination = readString(transferData.destination, 'transfer_data[destination]', { lengthMax: 255 }) || undefined;
  const transferAmount = readStripeAmount(transferData.amount, 'transfer_data[amount]');
  const fee = readStripeAmount(object.application_fee_amount, 'application_fee_amount');
  const onBehalfOf = readString(object.on_behalf_of, 'on_behalf_of', { lengthMax: 255 }) || undefined;
  if (object.transfer_data !== undefined && destination === undefined) throw missing('transfer_data[destination]');
  if (transferAmount !== undefined) {
    if (transferAmount <= 0n || transferAmount > intent.amount) {
      throw invalid('transfer_data[amount]', `transfer_data[amount] must be a positive integer no greater than the ` +
        `amount (${intent.amount}).`, 'parameter_invalid_integer');
    }
    // Any positive amount the currency can carry: the charge's minimum is not a transfer's.
    stripeAmountToMinor(intent.currency, transferAmount, { param: 'transfer_data[amount]' });
  }
  if (fee !== undefined) {
    if (destination === undefined) {
      throw invalid('application_fee_amount', 'An application_fee_amount needs a destination charge ' +
        '(transfer_data[destination]): Penny makes no direct charges on connected accounts.');
    }
    if (transferAmount !== undefined) {
      throw invalid('application_fee_amount', 'Give either application_fee_amount or transfer_data[amount], not both.');
    }
    if (fee < 0n || fee > intent.amount) {
      throw invalid('application_fee_amount', `The application fee must be between 0 and the amount (${intent.amount}).`,
        'amount_too_large');
    }
    stripeAmountToMinor(intent.currency, fee, { param: 'application_fee_amount' });
  }
  if (onBehalfOf !== undefined && destination !== undefined && onBehalfOf !== destination) {
    throw invalid('on_behalf_of', 'on_behalf_of must be the same account as transfer_data[destination].');
  }
  return { transferDestination: destination, transferAmount, applicationFeeAmount: fee, onBehalfOf,
    transferGroup: readString(object.transfer_group, 'transfer_group', { lengthMax: 255 }) || undefined };
}

export function parseCancelPaymentIntent(body: unknown): CancelPaymentIntentCommand {
  const object = readObject(body ?? {}, '', ['cancellation_reason', 'expand']);
  const reason = readEnum(object.cancellation_reason, 'cancellation_reason',
    ['duplicate', 'fraudulent', 'requested_by_customer', 'abandoned']);
  return { cancellationReason: reason ?? null };
}

/**
 * The payment method Penny records for a payment whose method is the PSP's own fields
 * (`payment_method_data[adyen][…]`): a label, never the fields themselves.
 */
export const passThroughPaymentMethod = 'pm_adyen_fields';

/**
 * `payment_method_data[adyen][…]`: Adyen's fields (the client-side-encrypted card fields from its
 * Web Components or Drop-in, `storedPaymentMethodId`, `type`, `holderName`, …), strings passed to
 * the connector untouched. Other kinds (`payment_method_data[card]`) are refused: card data never
 * reaches Penny.
 */
function readPaymentMethodData(value: unknown): Readonly<Record<string, string>> | undefined {
  if (value === undefined || value === '') return undefined;
  const object = readObject(value, 'payment_method_data', ['adyen']);
  if (object.adyen === undefined) return undefined;
  const adyen = readObject(object.adyen, 'payment_method_data[adyen]', Object.keys(object.adyen as object));
  const entries = Object.entries(adyen);
  if (entries.length === 0 || entries.length > 20) {
    throw new PennyError({ code: 'parameter_invalid', param: 'payment_method_data[adyen]',
      message: 'payment_method_data[adyen] holds 1 to 20 of Adyen\'s payment method fields.' });
  }
  const fields: Record<string, string> = {};
  for (const [key, field] of entries) {
    const param = `payment_method_data[adyen][${key}]`;
    if (!/^[A-Za-z][A-Za-z0-9]{0,63}$/.test(key) || typeof field !== 'string' || field.length > 20_000) {
      throw new PennyError({ code: 'parameter_invalid', param,
        message: `${param} must be a string of at most 20000 characters, named as Adyen names its fields.` });
    }
    fields[key] = field;
  }
  return fields;
}

function readPaymentMethodTypes(value: unknown): void {
  if (value === undefined) return;
  if (!Array.isArray(value) || value.some((item) => item !== 'card')) {
    throw invalid('payment_method_types', 'Penny supports the payment method type card.');
  }
}

/** An empty value is kept: on update it unsets the descriptor, as Stripe's empty values do. */
export function readStatementDescriptor(value: unknown): string | undefined {
  const descriptor = readString(value, 'statement_descriptor', { lengthMax: 22 });
  if (descriptor !== undefined && /[<>\\'"*]/.test(descriptor)) {
    throw invalid('statement_descriptor', 'A statement descriptor cannot contain <, >, \\, \', " or *.');
  }
  return descriptor;
}

/**
 * Stripe's metadata: at most 50 keys of at most 40 characters, string values of at most 500.
 * An empty value unsets a key; on create there is nothing to unset, so it is simply left out.
 */
export function readStripeMetadata(value: unknown): Record<string, string> {
  if (value === undefined || value === '') return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid('metadata', 'metadata must be a set of key-value pairs.', 'metadata_invalid');
  }
  const entries = Object.entries(value as Record<string, unknown>);
  // Keys posted empty are removals, not keys: an update may remove 50 keys and set 50 others.
  const kept = entries.filter(([, item]) => item !== '');
  if (kept.length > 50) throw invalid('metadata', 'metadata can have at most 50 keys.', 'metadata_invalid');
  const metadata: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [key, item] of entries) {
    if (key.length > 40 || /[[\]]/.test(key)) {
      throw invalid(`metadata[${key}]`, 'metadata keys are at most 40 characters, without [ or ].', 'metadata_invalid');
    }
    if (typeof item !== 'string' && typeof item !== 'number') {
      throw invalid(`metadata[${key}]`, 'metadata values are strings.', 'metadata_invalid');
    }
    const text = String(item);
    if (text.length > 500) throw invalid(`metadata[${key}]`, 'metadata values are at most 500 characters.', 'metadata_invalid');
    if (text !== '') metadata[key] = text;
  }
  return metadata;
}

export function parseConfirmPaymentIntent(body: unknown): ConfirmPaymentIntentCommand {
  const object = readObject(body ?? {}, '', ['payment_method', 'payment_method_data', 'return_url', 'expand',
    'payment_method_types']);
  readPaymentMethodTypes(object.payment_method_types);
  const paymentMethodData = readPaymentMethodData(object.payment_method_data);
  return {
    paymentMethod: readString(object.payment_method, 'payment_method', { lengthMax: 255 })
      || (paymentMethodData === undefined ? undefined : passThroughPaymentMethod),
    paymentMethodData,
    returnUrl: readReturnUrl(object.return_url),
  };
}

/** An absolute http(s) URL of at most 2,048 characters, as Stripe takes `return_url`. */
function readReturnUrl(value: unknown): string | null {
  const text = readString(value, 'return_url', { lengthMax: 2048 });
  if (text === undefined || text === '') return null;
  const parsed = URL.canParse(text) ? new URL(text) : undefined;
  if (parsed === undefined || (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')) {
    throw invalid('return_url', 'return_url must be an absolute http:// or https:// URL.', 'url_invalid');
  }
  return text;
}

export function parseCapturePaymentIntent(body: unknown): CapturePaymentIntentCommand {
  const object = readObject(body ?? {}, '', ['amount_to_capture', 'expand', 'final_capture']);
  const amount = readStripeAmount(object.amount_to_capture, 'amount_to_capture');
  if (amount !== undefined && amount <= 0n) {
    throw invalid('amount_to_capture', 'amount_to_capture must be a positive integer.', 'parameter_invalid_integer');
  }
  return { amountToCapture: amount };
}

export function parseCreateRefund(body: unknown): CreateRefundCommand {
  const object = readObject(body ?? {}, '', ['payment_intent', 'charge', 'amount', 'reason', 'metadata', 'expand',
    'reverse_transfer', 'refund_application_fee']);
  const paymentIntent = readString(object.payment_intent, 'payment_intent', { lengthMax: 255 }) || undefined;
  const charge = readString(object.charge, 'charge', { lengthMax: 255 }) || undefined;
  if (paymentIntent === undefined && charge === undefined) throw missing('payment_intent');
  if (paymentIntent !== undefined && charge !== undefined) {
    throw invalid('charge', 'Give either payment_intent or charge, not both.');
  }
  const amount = readStripeAmount(object.amount, 'amount');
  if (amount !== undefined && amount <= 0n) {
    throw invalid('amount', 'amount must be a positive integer.', 'parameter_invalid_integer');
  }
  return {
    paymentIntent,
    charge,
    amount,
    reason: readEnum<RefundReason>(object.reason, 'reason', ['duplicate', 'fraudulent', 'requested_by_customer']) ?? null,
    metadata: readStripeMetadata(object.metadata),
    reverseTransfer: readStripeBoolean(object.reverse_transfer, 'reverse_transfer') ?? false,
    refundApplicationFee: readStripeBoolean(object.refund_application_fee, 'refund_application_fee') ?? false,
  };
}

export function parseUpdatePaymentIntent(body: unknown): UpdatePaymentIntentCommand {
  const object = readObject(body ?? {}, '', ['amount', 'currency', 'payment_method', 'capture_method', 'description',
    'metadata', 'customer', 'receipt_email', 'statement_descriptor', 'payment_method_types', 'expand']);
  const currency = object.currency === undefined ? undefined : parseStripeCurrency(object.currency, 'currency');
  readPaymentMethodTypes(object.payment_method_types);
  // Checked first: metadata that is not a set of pairs (null, a list, a number) is a 400, not read for its unsets.
  const set = readStripeMetadata(object.metadata);
  const unset = object.metadata !== undefined && object.metadata !== '' && typeof object.metadata === 'object'
    ? Object.entries(object.metadata as Record<string, unknown>).filter(([, value]) => value === '').map(([key]) => key)
    : [];
  return {
    amount: readStripeAmount(object.amount, 'amount'),
    currency,
    paymentMethod: readString(object.payment_method, 'payment_method', { lengthMax: 255 }) || undefined,
    captureMethod: readEnum(object.capture_method, 'capture_method', ['automatic', 'automatic_async', 'manual']),
    description: readString(object.description, 'description', { lengthMax: 1000 }),
    customer: readString(object.customer, 'customer', { lengthMax: 255 }),
    receiptEmail: readString(object.receipt_email, 'receipt_email', { lengthMax: 800 }),
    statementDescriptor: readStatementDescriptor(object.statement_descriptor),
    metadata: { set, unset, clearAll: object.metadata === '' },
  };
}
