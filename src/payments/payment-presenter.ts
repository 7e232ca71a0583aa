import type { ChargeRow, ConnectFields, PaymentIntentRow, RefundRow } from './payment-store.js';

/** Stripe Connect's fields of a destination charge, as its PaymentIntent and Charge show them. */
function presentConnect(connect: ConnectFields) {
  return {
    application_fee_amount: connect.applicationFeeAmount,
    on_behalf_of: connect.onBehalfOf,
    transfer_data: connect.transferDestination === null ? null : {
      destination: connect.transferDestination,
      ...(connect.transferAmount === null ? {} : { amount: connect.transferAmount }),
    },
    transfer_group: connect.transferGroup,
  };
}

/**
 * Stripe's PaymentIntent object. Every field the official SDK declares as always present is
 * here, with null where Penny has nothing to say (reference/stripe-api.md, "Field-level shapes").
 */
export function presentPaymentIntent(intent: PaymentIntentRow) {
  return {
    id: intent.id,
    object: 'payment_intent',
    // Null, as Stripe sends when the merchant names no allowed or excluded types.
    allowed_payment_method_types: null,
    amount: intent.amount,
    amount_capturable: intent.amountCapturable,
    amount_details: { tip: {} },
    amount_received: intent.amountReceived,
    application: null,
    automatic_payment_methods: null,
    canceled_at: intent.canceledAt === null ? null : unixSeconds(intent.canceledAt),
    cancellation_reason: intent.cancellationReason,
    capture_method: intent.captureMethod,
    client_secret: `${intent.id}_secret`,
    confirmation_method: 'automatic',
    created: unixSeconds(intent.createdAt),
    currency: intent.currency,
    customer: intent.customer,
    customer_account: null,
    description: intent.description,
    excluded_payment_method_types: null,
    last_payment_error: intent.lastPaymentError,
    latest_charge: intent.latestCharge,
    livemode: false,
    managed_payments: null,
    metadata: { ...intent.metadata },
    next_action: intent.nextAction,
    payment_method: intent.paymentMethod,
    payment_method_configuration_details: null,
    payment_method_options: {},
    payment_method_types: ['card'],
    payment_record: null,
    processing: null,
    receipt_email: intent.receiptEmail,
    review: null,
    setup_future_usage: null,
    shipping: null,
    source: null,
    statement_descriptor: intent.statementDescriptor,
    statement_descriptor_suffix: null,
    status: intent.status,
    ...presentConnect(intent.connect),
  };
}

export function unixSeconds(iso: string): number {
  return Math.floor(Date.parse(iso) / 1000);
}

/** Stripe's Charge object. */
export function presentCharge(charge: ChargeRow) {
  return {
    id: charge.id,
    object: 'charge',
    amount: charge.amount,
    amount_captured: charge.amountCaptured,
    amount_refunded: charge.amountRefunded,
    application: null,
    application_fee: charge.applicationFeeId,
    balance_transaction: null,
    billing_details: { address: null, email: null, name: null, phone: null },
    calculated_statement_descriptor: null,
    captured: charge.captured,
    created: unixSeconds(charge.createdAt),
    currency: charge.currency,
    customer: null,
    description: null,
    disputed: charge.disputed,
    failure_balance_transaction: null,
    failure_code: charge.failureCode,
    failure_message: charge.failureMessage,
    fraud_details: {},
    livemode: false,
    metadata: {},
    outcome: charge.outcome,
    paid: charge.status === 'succeeded',
    payment_intent: charge.paymentIntentId,
    payment_method: charge.paymentMethod,
    payment_method_details: { type: 'card', card: null },
    receipt_email: null,
    receipt_number: null,
    receipt_url: null,
    refunded: charge.captured && charge.amountRefunded === charge.amountCaptured,
    review: null,
    shipping: null,
    // A legacy field: charges made with a PaymentMethod have no Source.
    source: null,
    source_transfer: null,
    statement_descriptor: null,
    statement_descriptor_suffix: null,
    status: charge.status,
    transfer: charge.transferId,
    ...presentConnect(charge.connect),
  };
}

/** Stripe's Refund object. */
export function presentRefund(refund: RefundRow) {
  return {
    id: refund.id,
    object: 'refund',
    amount: refund.amount,
    balance_transaction: null,
    charge: refund.chargeId,
    created: unixSeconds(refund.createdAt),
    currency: refund.currency,
    customer: refund.customer,
    customer_account: null,
    destination_details: null,
    metadata: { ...refund.metadata },
    payment_intent: refund.paymentIntentId,
    payment_method: refund.paymentMethod,
    reason: refund.reason,
    receipt_number: null,
    source_transfer_reversal: null,
    status: refund.status,
    transfer_reversal: refund.transferReversalId,
  };
}
