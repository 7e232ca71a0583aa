import { minorToStripeBalanceUnits } from '../money/stripe-currency.js';
import type { BalanceTransactionRow, CurrencyBalance } from './balance-store.js';

/**
 * Stripe's Balance and BalanceTransaction objects. The ledger keeps ISO 4217 minor units; Stripe's
 * units of each currency (ISK in hundredths, …) are converted here, in bigint, and written as
 * exact JSON integers.
 */
export function presentBalance(balances: readonly CurrencyBalance[]) {
  const side = (pick: (balance: CurrencyBalance) => bigint) => balances.map((balance) => {
    const currency = balance.currency.toLowerCase();
    const amount = stripeAmount(currency, pick(balance));
    return { amount, currency, source_types: { card: amount } };
  });
  return {
    object: 'balance',
    available: side((balance) => balance.availableMinor),
    pending: side((balance) => balance.pendingMinor),
    livemode: false,
  };
}

export function presentBalanceTransaction(row: BalanceTransactionRow) {
  const currency = row.currency.toLowerCase();
  return {
    id: row.id,
    object: 'balance_transaction',
    amount: stripeAmount(currency, row.amountMinor),
    available_on: unixSeconds(row.availableOn),
    balance_type: 'payments',
    created: unixSeconds(row.createdAt),
    currency,
    description: row.description,
    exchange_rate: null,
    fee: stripeAmount(currency, row.feeMinor),
    fee_details: row.feeDetails.map((detail) => ({
      amount: stripeAmount(currency, detail.amountMinor), application: detail.application, currency,
      description: detail.description, type: detail.type,
    })),
    net: stripeAmount(currency, row.netMinor),
    reporting_category: row.reportingCategory,
    source: row.sourceId,
    status: row.status,
    type: row.type,
  };
}

function stripeAmount(currency: string, minor: bigint): bigint {
  return minorToStripeBalanceUnits(currency, minor);
}

function unixSeconds(iso: string): number {
  return Math.floor(Date.parse(iso) / 1000);
}
