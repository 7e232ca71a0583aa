import { minorToStripeBalanceUnits } from '../money/stripe-currency.js';
import type { ApplicationFeeRefundRow, ApplicationFeeRow } from './application-fee-store.js';

/** Stripe's ApplicationFee and FeeRefund objects; amounts in Stripe's units of the currency. */
export function presentApplicationFee(fee: ApplicationFeeRow, refunds: readonly ApplicationFeeRefundRow[]) {
  const amount = (minor: bigint) => minorToStripeBalanceUnits(fee.currency, minor);
  return {
    id: fee.id,
    object: 'application_fee',
    account: fee.account,
    amount: amount(fee.amountMinor),
    amount_refunded: amount(fee.amountRefundedMinor),
    application: applicationOf(fee.merchantId),
    balance_transaction: null,
    charge: fee.chargeId,
    created: unixSeconds(fee.createdAt),
    currency: fee.currency.toLowerCase(),
    fee_source: { charge: fee.chargeId, type: 'charge' },
    livemode: false,
    originating_transaction: null,
    refunded: fee.amountRefundedMinor === fee.amountMinor,
    refunds: { object: 'list', data: refunds.map((refund) => presentFeeRefund(fee, refund)), has_more: false,
      total_count: refunds.length, url: `/v1/application_fees/${fee.id}/refunds` },
  };
}

export function presentFeeRefund(fee: ApplicationFeeRow, refund: ApplicationFeeRefundRow) {
  return {
    id: refund.id,
    object: 'fee_refund',
    amount: minorToStripeBalanceUnits(fee.currency, refund.amountMinor),
    balance_transaction: null,
    created: unixSeconds(refund.createdAt),
    currency: fee.currency.toLowerCase(),
    fee: fee.id,
    metadata: refund.metadata,
  };
}

/** The platform's Connect application, as Stripe names it (`ca_`): one per platform, from its account id. */
export function applicationOf(merchantId: string): string {
  return `ca_${merchantId.slice('acct_'.length)}`;
}

function unixSeconds(iso: string): number {
  return Math.floor(Date.parse(iso) / 1000);
}
