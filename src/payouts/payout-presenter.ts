import { minorToStripeAmount } from '../money/stripe-currency.js';
import type { PayoutRow } from './payout-store.js';

/** Stripe's Payout object; amounts converted from the ledger's minor units to Stripe's, in bigint. */
export function presentPayout(payout: PayoutRow) {
  const currency = payout.currency.toLowerCase();
  return {
    id: payout.id,
    object: 'payout',
    amount: minorToStripeAmount(currency, payout.amountMinor, { purpose: 'payout' }),
    application_fee: null,
    application_fee_amount: null,
    arrival_date: unixSeconds(payout.arrivalDate),
    automatic: payout.automatic,
    balance_transaction: payout.balanceTransactionId,
    created: unixSeconds(payout.createdAt),
    currency,
    description: payout.description,
    destination: payout.destination,
    failure_balance_transaction: payout.failureBalanceTransactionId,
    failure_code: payout.failureCode,
    failure_message: payout.failureMessage,
    livemode: false,
    metadata: { ...payout.metadata },
    method: payout.method,
    original_payout: null,
    payout_method: null,
    // Stripe reconciles only automatic payouts with their transactions; a manual one is not_applicable.
    reconciliation_status: payout.automatic ? (payout.status === 'paid' ? 'completed' : 'in_progress') : 'not_applicable',
    reversed_by: null,
    source_type: 'card',
    statement_descriptor: payout.statementDescriptor,
    status: payout.status,
    trace_id: null,
    type: 'bank_account',
  };
}

function unixSeconds(iso: string): number {
  return Math.floor(Date.parse(iso) / 1000);
}
