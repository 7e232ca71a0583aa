/**
 * Stripe's error code and message for each decline code a PSP reports, so a decline reads the
 * same whether Penny learnt it from the reply, a webhook or a look-up.
 */
const declines: Readonly<Record<string, { code: string; message: string }>> = {
  generic_decline: { code: 'card_declined', message: 'Your card was declined.' },
  insufficient_funds: { code: 'card_declined', message: 'Your card has insufficient funds.' },
  expired_card: { code: 'expired_card', message: 'Your card has expired.' },
  incorrect_cvc: { code: 'incorrect_cvc', message: 'Your card\'s security code is incorrect.' },
  processing_error: { code: 'processing_error',
    message: 'An error occurred while processing your card. Try again in a little bit.' },
};

export function declineAnswer(declineCode: string | null): { code: string; declineCode: string; message: string } {
  const code = declineCode ?? 'generic_decline';
  return { declineCode: code, ...(declines[code] ?? { code: 'card_declined', message: 'Your card was declined.' }) };
}
