import Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import { serveTestLedger } from '../support/stripe.js';

/**
 * Typed clients trust the official SDK's declarations: a property declared without `?` is always
 * in Stripe's JSON. These lists are those properties, copied from `stripe` 23.1's
 * `esm/resources/{PaymentIntents,Charges,Refunds}.d.ts` (`export interface PaymentIntent`, …).
 */
const requiredKeys = {
  payment_intent: ['id', 'object', 'allowed_payment_method_types', 'amount', 'amount_capturable', 'amount_received',
    'application', 'application_fee_amount', 'automatic_payment_methods', 'canceled_at', 'cancellation_reason',
    'capture_method', 'client_secret', 'confirmation_method', 'created', 'currency', 'customer', 'customer_account',
    'description', 'excluded_payment_method_types', 'last_payment_error', 'latest_charge', 'livemode',
    'managed_payments', 'metadata', 'next_action', 'on_behalf_of', 'payment_method',
    'payment_method_configuration_details', 'payment_method_options', 'payment_method_types', 'payment_record',
    'processing', 'receipt_email', 'review', 'setup_future_usage', 'shipping', 'source', 'statement_descriptor',
    'statement_descriptor_suffix', 'status', 'transfer_group'],
  charge: ['id', 'object', 'amount', 'amount_captured', 'amount_refunded', 'application', 'application_fee',
    'application_fee_amount', 'balance_transaction', 'billing_details', 'calculated_statement_descriptor', 'captured',
    'created', 'currency', 'customer', 'description', 'disputed', 'failure_balance_transaction', 'failure_code',
    'failure_message', 'fraud_details', 'livemode', 'metadata', 'on_behalf_of', 'outcome', 'paid', 'payment_intent',
    'payment_method', 'payment_method_details', 'receipt_email', 'receipt_number', 'receipt_url', 'refunded',
    'review', 'shipping', 'source', 'source_transfer', 'statement_descriptor', 'statement_descriptor_suffix',
    'status', 'transfer_data', 'transfer_group'],
  refund: ['id', 'object', 'amount', 'balance_transaction', 'charge', 'created', 'currency', 'customer',
    'customer_account', 'metadata', 'payment_intent', 'payment_method', 'reason', 'receipt_number',
    'source_transfer_reversal', 'status', 'transfer_reversal'],
} as const;

let stripe: Stripe;
let intent: Stripe.PaymentIntent;
let charge: Stripe.Charge;
let refund: Stripe.Refund;

beforeAll(async () => {
  const penny = await serveTestLedger();
  stripe = penny.stripeFor((await penny.merchants.createMerchant('Typed Shop')).secretKey);
  intent = await stripe.paymentIntents.create({ amount: 1500, currency: 'usd', customer: 'cus_typed',
    payment_method: 'pm_card_visa', confirm: true });
  charge = await stripe.charges.retrieve(String(intent.latest_charge));
  refund = await stripe.refunds.create({ payment_intent: intent.id, amount: 500 });
});

function missing(object: object, keys: readonly string[]): string[] {
  return keys.filter((key) => !Object.hasOwn(object, key));
}

describe('objects carry every property the official SDK declares always present', () => {
  it('a PaymentIntent has all of them', () => {
    expect(missing(intent, requiredKeys.payment_intent)).toEqual([]);
  });

  it('a Charge has all of them', () => {
    expect(missing(charge, requiredKeys.charge)).toEqual([]);
  });

  it('a Refund has all of them', () => {
    expect(missing(refund, requiredKeys.refund)).toEqual([]);
  });
});

describe('the values Stripe gives a card payment', () => {
  it('a PaymentIntent names no allowed or excluded types, customer account, managed payments or record', () => {
    expect(intent).toMatchObject({ allowed_payment_method_types: null, excluded_payment_method_types: null,
      customer_account: null, managed_payments: null, payment_record: null });
  });

  it('a Charge made with a PaymentMethod has no legacy source', () => {
    expect(charge.source).toBeNull();
  });

  it('a Refund names the customer and payment method of the payment it refunds', () => {
    expect(refund).toMatchObject({ customer: 'cus_typed', customer_account: null, payment_method: 'pm_card_visa' });
  });

  it('a Refund read back or listed says the same', async () => {
    expect(await stripe.refunds.retrieve(refund.id)).toEqual(refund);
    expect((await stripe.refunds.list({ payment_intent: intent.id })).data).toEqual([refund]);
  });
});
