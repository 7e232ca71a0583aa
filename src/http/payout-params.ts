import type { CreatePayoutCommand } from '../payouts/payout-commands.js';
import { parseStripeCurrency, stripeAmountToMinor } from '../money/stripe-currency.js';
import { invalid, missing, readEnum, readObject, readString } from '../validation.js';
import { readStripeAmount } from './stripe-form.js';
import { readStatementDescriptor, readStripeMetadata } from './stripe-payment-params.js';

/**
 * The Stripe edge of payouts: `POST /v1/payouts` as Stripe's API takes it, read into the domain's
 * command. The amount stays bigint from the form to the ledger (Stripe's units to minor units, with
 * the payout step of HUF and TWD). Refusals here happen before the idempotency layer, never stored.
 */
export function parseCreatePayout(body: unknown): CreatePayoutCommand {
  const object = readObject(body ?? {}, '', ['amount', 'currency', 'destination', 'description',
    'statement_descriptor', 'method', 'metadata', 'source_type', 'expand']);
  if (object.amount === undefined) throw missing('amount');
  if (object.currency === undefined) throw missing('currency');
  const currency = parseStripeCurrency(object.currency, 'currency');
  const amount = readStripeAmount(object.amount, 'amount') ?? 0n;
  if (amount <= 0n) throw invalid('amount', 'Amount must be at least 1.', 'amount_too_small');
  readEnum(object.method, 'method', ['standard']);
  readEnum(object.source_type, 'source_type', ['card']);
  return {
    amountMinor: stripeAmountToMinor(currency, amount, { purpose: 'payout' }),
    currency: currency.toUpperCase(),
    destination: readString(object.destination, 'destination', { lengthMax: 255 }) || undefined,
    description: readString(object.description, 'description', { lengthMax: 1000 }) || null,
    statementDescriptor: readStatementDescriptor(object.statement_descriptor) || null,
    metadata: readStripeMetadata(object.metadata),
  };
}

export const payoutStatusFilter = ['pending', 'in_transit', 'paid', 'failed', 'canceled'] as const;

export function readPayoutStatus(value: unknown): string | undefined {
  return readEnum(value, 'status', payoutStatusFilter);
}
