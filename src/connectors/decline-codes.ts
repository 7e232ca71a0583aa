import type { AuthorizeOutput, PspOperation } from './connector.js';
import type { ErrorCode } from '../error-codes.js';

/**
 * Stripe's error code and message for each decline code a PSP reports, and an authorization as
 * the PSP recorded it, so an outcome reads the same whether Penny learnt it from the reply, a
 * webhook or a look-up.
 */
const declines: Readonly<Record<string, { code: ErrorCode; message: string }>> = {
  generic_decline: { code: 'card_declined', message: 'Your card was declined.' },
  insufficient_funds: { code: 'card_declined', message: 'Your card has insufficient funds.' },
  expired_card: { code: 'expired_card', message: 'Your card has expired.' },
  incorrect_cvc: { code: 'incorrect_cvc', message: 'Your card\'s security code is incorrect.' },
  processing_error: { code: 'processing_error',
    message: 'An error occurred while processing your card. Try again in a little bit.' },
};

export function declineAnswer(declineCode: string | null): { code: ErrorCode; declineCode: string; message: string } {
  const code = declineCode ?? 'generic_decline';
  return { declineCode: code, ...(declines[code] ?? { code: 'card_declined', message: 'Your card was declined.' }) };
}

/**
 * An authorization as the PSP recorded it, in the terms applyAuthorization takes. A record that
 * says `authorized` with `captureAsRequested` (Adyen's AUTHORISATION) was captured when Penny's
 * request asked for automatic capture (`captureRequested`).
 */
export function authorizationFromRecord(operation: PspOperation, context: { captureRequested?: boolean } = {}):
AuthorizeOutput {
  const pspReference = operation.pspReference;
  switch (operation.outcome) {
    case 'authorized':
    case 'captured':
      return { outcome: operation.outcome === 'authorized' && operation.captureAsRequested === true
        && context.captureRequested === true ? 'captured' : operation.outcome, pspReference,
        availableImmediately: operation.availableImmediately === true };
    case 'pending':
      return { outcome: operation.outcome, pspReference };
    case 'requires_action':
      if (operation.redirectUrl === null) throw new Error(`authorization ${pspReference} requires action but has no URL`);
      return { outcome: 'requires_action', pspReference, redirectUrl: operation.redirectUrl };
    case 'declined':
      return { outcome: 'declined', pspReference, ...declineAnswer(operation.declineCode) };
    default:
      throw new Error(`an authorization recorded with outcome ${operation.outcome}`);
  }
}
