import { currencyExponent } from '../money/currency.js';
import { minorToDecimal } from '../money/decimal-amount.js';
import { minorToStripeAmount, stripeAmountToMinor } from '../money/stripe-currency.js';
import { invalid } from '../validation.js';
import { html, type Html } from './html.js';

/**
 * How the dashboard writes amounts and times. Amounts are shown in the currency's major units
 * with its code, cut as text from the bigint of minor units (src/money/decimal-amount.ts), so no
 * float is ever made; times are written in UTC, and the browser adds the local time on hover.
 */
export function formatMinor(amountMinor: bigint, currency: string): string {
  try {
    return `${minorToDecimal(amountMinor, currency.toUpperCase())} ${currency.toUpperCase()}`;
  } catch {
    return `${amountMinor} (minor units) ${currency.toUpperCase()}`;
  }
}

/** A Stripe API amount (a PaymentIntent's, a refund's), in Stripe's units of its currency. */
export function formatStripeAmount(amount: bigint, currency: string): string {
  try {
    return formatMinor(stripeAmountToMinor(currency.toLowerCase(), amount), currency);
  } catch {
    return `${amount} ${currency.toUpperCase()}`;
  }
}

const decimal = /^(\d{1,16})(?:\.(\d{0,6}))?$/;

/**
 * An amount typed in major units ("12.50") as minor units of the currency: digits beyond the
 * currency's exponent are refused unless zeros; no float is made.
 */
export function parseMajorToMinor(text: string, currency: string, param: string): bigint {
  const match = decimal.exec(text.trim());
  if (match === null) throw invalid(param, `"${text.slice(0, 40)}" is not an amount such as 12.50.`);
  const exponent = currencyExponent(currency.toUpperCase());
  const [, whole = '', fraction = ''] = match;
  if (/[^0]/.test(fraction.slice(exponent))) {
    throw invalid(param, `${currency.toUpperCase()} has ${exponent} decimals; "${text.slice(0, 40)}" has more.`);
  }
  return BigInt(whole + fraction.slice(0, exponent).padEnd(exponent, '0'));
}

/** An amount typed in major units as Stripe's integer amount of the currency (for an API operation). */
export function parseMajorToStripeAmount(text: string, currency: string, param: string): bigint {
  return minorToStripeAmount(currency.toLowerCase(), parseMajorToMinor(text, currency, param), { param });
}

/** A Stripe amount as the major-units text a form field is prefilled with ("12.50"). */
export function stripeAmountAsMajor(amount: bigint, currency: string): string {
  try {
    return minorToDecimal(stripeAmountToMinor(currency.toLowerCase(), amount), currency.toUpperCase());
  } catch {
    return amount.toString();
  }
}

/** `2026-12-07 07:30:00 UTC`, in a <time> whose title the page's script sets to the local time. */
export function formatTime(iso: string | null | undefined): Html {
  if (iso === null || iso === undefined) return html`<span>—</span>`;
  const text = `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
  return html`<time datetime="${iso}" title="${text}">${text}</time>`;
}
