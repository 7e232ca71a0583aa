import { currencyExponent } from '../../money/currency.js';

/**
 * Adyen's own minor units (docs.adyen.com/development-resources/currency-codes): ISO 4217's
 * exponent, except for the four currencies where Adyen's table differs from the standard.
 * Penny keeps ISO minor units; every amount is converted at the connector's edge, both ways.
 */
const adyenExponentOverrides: Readonly<Record<string, number>> = { CLP: 2, CVE: 0, IDR: 0, ISK: 2 };

export function adyenExponent(currency: string): number {
  return adyenExponentOverrides[currency] ?? currencyExponent(currency);
}

/**
 * An amount in ISO minor units as Adyen's `value`; undefined when Adyen's unit is coarser and the
 * amount is not a whole number of it (IDR 12.34 cannot be sent: Adyen's IDR has no decimals).
 */
export function toAdyenValue(currency: string, amountMinor: bigint): bigint | undefined {
  const shift = adyenExponent(currency) - currencyExponent(currency);
  if (shift >= 0) return amountMinor * 10n ** BigInt(shift);
  const unit = 10n ** BigInt(-shift);
  return amountMinor % unit === 0n ? amountMinor / unit : undefined;
}

/** Adyen's `value` back in ISO minor units; undefined when it has a fraction of Penny's unit. */
export function fromAdyenValue(currency: string, value: bigint): bigint | undefined {
  const shift = currencyExponent(currency) - adyenExponent(currency);
  if (shift >= 0) return value * 10n ** BigInt(shift);
  const unit = 10n ** BigInt(-shift);
  return value % unit === 0n ? value / unit : undefined;
}
