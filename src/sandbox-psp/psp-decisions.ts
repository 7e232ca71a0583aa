/**
 * How the sandbox acquirer answers an authorization, from Stripe's test payment methods: approved
 * cards, declines with Stripe's codes, and cards that ask for 3-D Secure first.
 */
export interface Decline {
  readonly code: string;
  readonly declineCode: string;
  readonly message: string;
}

const genericDecline: Decline = { code: 'card_declined', declineCode: 'generic_decline', message: 'Your card was declined.' };
const insufficientFunds: Decline = {
  code: 'card_declined', declineCode: 'insufficient_funds', message: 'Your card has insufficient funds.',
};

export const declines: Readonly<Record<string, Decline>> = {
  pm_card_chargeDeclined: genericDecline,
  pm_card_visa_chargeDeclined: genericDecline,
  pm_card_chargeDeclinedInsufficientFunds: insufficientFunds,
  pm_card_visa_chargeDeclinedInsufficientFunds: insufficientFunds,
  pm_card_chargeDeclinedExpiredCard: { code: 'expired_card', declineCode: 'expired_card', message: 'Your card has expired.' },
  pm_card_chargeDeclinedIncorrectCvc: {
    code: 'incorrect_cvc', declineCode: 'incorrect_cvc', message: 'Your card\'s security code is incorrect.',
  },
  pm_card_chargeDeclinedProcessingError: {
    code: 'processing_error', declineCode: 'processing_error',
    message: 'An error occurred while processing your card. Try again in a little bit.',
  },
};

/** pm_card_bypassPending: the charge's funds are available at once, with no wait for settlement. */
export const bypassPendingMethod = 'pm_card_bypassPending';
/** pm_card_createDispute: the charge is disputed shortly after its capture (create_dispute_after_ms). */
export const createDisputeMethod = 'pm_card_createDispute';

const approved = new Set(['pm_card_visa', 'pm_card_mastercard', 'tok_visa', 'pm_card_amex', 'pm_card_visa_debit',
  bypassPendingMethod, createDisputeMethod]);
const authenticationRequired = new Set(['pm_card_authenticationRequired', 'pm_card_threeDSecure2Required']);

export type AuthorizationDecision =
  | { readonly outcome: 'authorized' | 'captured' }
  | { readonly outcome: 'requires_action' }
  | { readonly outcome: 'declined'; readonly decline: Decline };

export function decideAuthorization(input: { paymentMethod: string; capture: boolean; authenticated: boolean }):
AuthorizationDecision {
  const decline = declines[input.paymentMethod];
  if (decline !== undefined) return { outcome: 'declined', decline };
  if (authenticationRequired.has(input.paymentMethod) && !input.authenticated) return { outcome: 'requires_action' };
  if (approved.has(input.paymentMethod) || authenticationRequired.has(input.paymentMethod)) {
    return { outcome: input.capture ? 'captured' : 'authorized' };
  }
  return {
    outcome: 'declined',
    decline: { ...genericDecline, message: `The sandbox does not know the payment method ${input.paymentMethod}.` },
  };
}

export function declineFor(declineCode: string | null): Decline {
  return Object.values(declines).find((item) => item.declineCode === declineCode)
    ?? { ...genericDecline, declineCode: declineCode ?? 'generic_decline' };
}

/** The card brand a settlement report names (its Payment Method column). */
export function cardBrand(paymentMethod: string): string {
  if (paymentMethod.includes('mastercard')) return 'mc';
  if (paymentMethod.includes('amex')) return 'amex';
  return 'visa';
}

/** Stripe's dispute reasons; a dispute the sandbox opens without one is `fraudulent`, as Stripe's test card's is. */
export const disputeReasons = ['bank_cannot_process', 'check_returned', 'credit_not_processed', 'customer_initiated',
  'debit_not_authorized', 'duplicate', 'fraudulent', 'general', 'incorrect_account_details', 'insufficient_funds',
  'product_not_received', 'product_unacceptable', 'subscription_canceled', 'unrecognized'] as const;
export type DisputeReason = (typeof disputeReasons)[number];
export const defaultDisputeReason: DisputeReason = 'fraudulent';

/**
 * The sandbox bank's test accounts, as Stripe's test bank numbers: a payout to one of these fails
 * with Stripe's payout failure code; to any other account it is paid. An account number is
 * matched whole (after a `routing/` prefix, if any); an IBAN by its last six characters, as in
 * Stripe's test IBANs (DE89370400440532013000 is paid, DE62370400440532013001 fails no_account).
 */
export const testAccountNumberFailures: Readonly<Record<string, string>> = {
  '000111111116': 'no_account',
  '000111111113': 'account_closed',
  '000222222227': 'insufficient_funds',
  '000333333335': 'debit_not_authorized',
  '000444444440': 'invalid_currency',
};
export const testIbanSuffixFailures: Readonly<Record<string, string>> = {
  '013001': 'no_account',
  '013002': 'account_closed',
  '013003': 'insufficient_funds',
  '013004': 'debit_not_authorized',
  '013005': 'invalid_currency',
};

export type PayoutResult = { readonly outcome: 'paid' } | { readonly outcome: 'failed'; readonly failureCode: string };

/** A bank account as the sandbox bank keys it: no spaces, upper case. */
export function normalizeAccount(account: string): string {
  return account.replace(/\s+/g, '').toUpperCase();
}

export function isIban(account: string): boolean {
  return /^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(normalizeAccount(account));
}

/** How a payout to `destination` ends. */
export function payoutResult(destination: string): PayoutResult {
  const account = normalizeAccount(destination);
  const failureCode = isIban(account) ? testIbanSuffixFailures[account.slice(-6)]
    : testAccountNumberFailures[account.split('/').at(-1) ?? account];
  return failureCode === undefined ? { outcome: 'paid' } : { outcome: 'failed', failureCode };
}
