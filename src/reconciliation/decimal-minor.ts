import { amountMaxSafeMinor } from '../config.js';
import { currencyExponent, isCurrency } from '../money/currency.js';
import { ValueProblem } from './recon-problem.js';

/**
 * Decimal amounts from statements and reports, read exactly into integer minor units with the
 * currency's ISO 4217 exponent (src/money/currency.ts): "8.85" EUR → 885n, "9," (MT940) → 900n,
 * "5442.09000" RON → 544209n, "1000" JPY → 1000n, "1.250" KWD → 1250n. Digits beyond the exponent
 * are accepted only when they are zeros; anything else (a float's "8.849999", "1.2.3", "1e3") is
 * refused. No float is ever made: the digits are joined as text and read as a bigint.
 */
export interface DecimalRules {
  /** '.' (camt.053, CSV) or ',' (MT940). */
  readonly separator: '.' | ',';
  /** A leading '-' (or '+') is allowed: signed CSV columns; camt and MT940 amounts are unsigned. */
  readonly signed: boolean;
}

/** The largest amount Penny keeps: JSON integers are exact up to 2^53−1 (decisions.md, "Money"). */
export const amountMinorMax = amountMaxSafeMinor;

const pointDecimal = /^([+-]?)(\d+)(?:\.(\d*))?$/;
const commaDecimal = /^([+-]?)(\d+)(?:,(\d*))?$/;

export function decimalToMinor(text: string, currency: string, rules: DecimalRules): bigint {
  const exponent = currencyExponent(currency);
  const match = (rules.separator === '.' ? pointDecimal : commaDecimal).exec(text);
  if (match === null) throw new ValueProblem(`"${clip(text)}" is not a decimal amount`);
  const [, sign = '', whole = '', fraction = ''] = match;
  if (sign !== '' && !rules.signed) throw new ValueProblem(`"${clip(text)}" has a sign; amounts here are unsigned`);
  const kept = fraction.slice(0, exponent);
  const beyond = fraction.slice(exponent);
  if (/[^0]/.test(beyond)) {
    throw new ValueProblem(`"${clip(text)}" has ${fraction.length} decimals; ${currency} has ${exponent}`);
  }
  const magnitude = BigInt(whole + kept.padEnd(exponent, '0'));
  if (magnitude > amountMinorMax) throw new ValueProblem(`"${clip(text)}" is above ${amountMinorMax} minor units`);
  return sign === '-' ? -magnitude : magnitude;
}

/** An ISO 4217 code as written (upper-cased: Stripe writes "usd"); refuses anything else. */
export function readCurrencyCode(text: string): string {
  const code = text.trim().toUpperCase();
  if (!/^[A-Z]{3}$/.test(code) || !isCurrency(code)) {
    throw new ValueProblem(`"${clip(text)}" is not an ISO 4217 currency code`);
  }
  return code;
}

function clip(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}
