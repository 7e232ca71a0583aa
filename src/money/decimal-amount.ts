import { currencyExponent } from './currency.js';

/**
 * An amount of minor units written as the currency's decimal, exactly: 123456n USD → "1234.56",
 * -5n USD → "-0.05", 1000n JPY → "1000", 1250n KWD → "1.250". The digits are cut as text from
 * the bigint with the ISO 4217 exponent (currency.ts); no float is ever made. The one writer of
 * decimals: ledger reports, the journal export, Stripe's reports (`separator` ',' on request) and
 * the sandbox's files.
 */
export function minorToDecimal(amountMinor: bigint, currency: string, separator: '.' | ',' = '.'): string {
  const exponent = currencyExponent(currency);
  const negative = amountMinor < 0n;
  const digits = (negative ? -amountMinor : amountMinor).toString();
  if (exponent === 0) return `${negative ? '-' : ''}${digits}`;
  const padded = digits.padStart(exponent + 1, '0');
  const whole = padded.slice(0, padded.length - exponent);
  const fraction = padded.slice(padded.length - exponent);
  return `${negative ? '-' : ''}${whole}${separator}${fraction}`;
}
