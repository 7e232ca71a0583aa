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

const approved = new Set(['pm_card_visa', 'pm_card_mastercard', 'tok_visa', 'pm_card_amex', 'pm_card_visa_debit']);
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
