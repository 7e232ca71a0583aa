import { minorToStripeBalanceUnits } from '../money/stripe-currency.js';
import type { TransferReversalRow, TransferRow } from './transfer-store.js';

/** Stripe's Transfer and TransferReversal objects; amounts in Stripe's units of the currency. */
export function presentTransfer(transfer: TransferRow, reversals: readonly TransferReversalRow[]) {
  const amount = (minor: bigint) => minorToStripeBalanceUnits(transfer.currency, minor);
  return {
    id: transfer.id,
    object: 'transfer',
    amount: amount(transfer.amountMinor),
    amount_reversed: amount(transfer.amountReversedMinor),
    balance_transaction: null,
    created: unixSeconds(transfer.createdAt),
    currency: transfer.currency.toLowerCase(),
    description: transfer.description,
    destination: transfer.destination,
    destination_payment: transfer.destinationPayment,
    livemode: false,
    metadata: transfer.metadata,
    reversals: { object: 'list', data: reversals.map((reversal) => presentTransferReversal(transfer, reversal)),
      has_more: false, url: `/v1/transfers/${transfer.id}/reversals` },
    reversed: transfer.amountReversedMinor === transfer.amountMinor,
    source_transaction: transfer.sourceTransaction,
    source_type: 'card',
    transfer_group: transfer.transferGroup,
  };
}

export function presentTransferReversal(transfer: TransferRow, reversal: TransferReversalRow) {
  return {
    id: reversal.id,
    object: 'transfer_reversal',
    amount: minorToStripeBalanceUnits(transfer.currency, reversal.amountMinor),
    balance_transaction: null,
    created: unixSeconds(reversal.createdAt),
    currency: transfer.currency.toLowerCase(),
    destination_payment_refund: null,
    metadata: reversal.metadata,
    source_refund: reversal.sourceRefund,
    transfer: transfer.id,
  };
}

function unixSeconds(iso: string): number {
  return Math.floor(Date.parse(iso) / 1000);
}
