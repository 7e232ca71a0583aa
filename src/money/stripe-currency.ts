import { PennyError } from '../errors.js';
import { currencyExponent } from './currency.js';

/**
 * Stripe's amount conventions, in one place. The ledger keeps ISO 4217 minor units
 * (src/money/currency.ts); the Stripe-compatible API speaks Stripe's integer `amount`, which is
 * usually the same number but not always. Everything that crosses that edge converts here.
 *
 * Sources, read 2026-11-25 (stored copies of the pages, read through the project's search tool):
 * - https://docs.stripe.com/currencies (#presentment-currencies, #zero-decimal, #three-decimal,
 *   #special-cases, #minimum-and-maximum-charge-amounts), current Markdown export
 *   https://docs.stripe.com/currencies.md, and an earlier HTML render of the same page for the
 *   presentment list and the three-decimal section, which the Markdown export leaves out.
 * - https://web.archive.org/web/20220618095455/https://stripe.com/en-mt/docs/currencies
 *   (three-decimal wording: "these API calls require the least-significant (last) digit to be 0").
 * - https://support.stripe.com/questions/deprecation-of-fractional-isk-charges-and-refunds
 *   ("ISK will remain a two-decimal currency in the Stripe API, and an ISK amount of `100` will
 *   continue to represent 1 króna"; amounts must be multiples of 100).
 *
 * What those pages say, and how it maps onto ISO exponents (`currencyExponent`):
 * - Two-decimal by default; zero-decimal currencies (BIF, CLP, DJF, GNF, JPY, KMF, KRW, MGA, PYG,
 *   RWF, UGX, VND, VUV, XAF, XOF, XPF) take the amount as is. For JPY, KRW and VND ISO agrees
 *   (exponent 0), so Stripe's amount is the minor amount.
 * - ISK: ISO exponent 0, but Stripe keeps it two-decimal with the decimals always 00:
 *   5 ISK is `500`. Stripe amount = minor × 100, and must be divisible by 100.
 * - UGX: the same as ISK per "Special cases" (ISO exponent 0; 5 UGX is `500`, divisible by 100).
 *   Stripe's zero-decimal list also names UGX; the special-cases entry is the specific rule and
 *   is the one followed here.
 * - HUF, TWD: ISO exponent 2 and Stripe charges two-decimal amounts, so the amount is the minor
 *   amount; but Stripe treats them as zero-decimal for payouts: a payout amount must be
 *   divisible by 100. Hence the `purpose` option.
 * - BHD, JOD, KWD, OMR, TND: three decimals as in ISO, but the last digit must be 0.
 * - Maximum: eight digits, 99999999, for the currencies here (the issue fixes this maximum; the
 *   page allows more for IDR, INR, and for JPY and HUF on cards, none of which Penny adopts).
 * - Minimum charge: Stripe's table is per *settlement* currency. Penny settles in the charge
 *   currency, so a currency in that table gets its figure. For the supported currencies that
 *   are not in the table (KRW, VND, ISK, TWD, UGX and the three-decimal dinars/rial) Stripe only
 *   says "$0.50 US or equivalent"; Penny has no exchange rates, so those minimums are Penny's own
 *   round figures of at least USD 0.50 at late-2020s rates, marked `penny` below. Re-check them
 *   if rates move a lot.
 */

export type StripeAmountPurpose = 'charge' | 'payout';

export interface StripeAmountOptions {
  /** Payouts have stricter steps for HUF and TWD. Default: 'charge'. */
  readonly purpose?: StripeAmountPurpose;
  /** The request parameter an error names. Default: 'amount'. */
  readonly param?: string;
}

/** The largest Stripe `amount`: eight digits. */
export const stripeAmountMax = 99_999_999;

interface CurrencyEntry {
  /** Decimals in Stripe's `amount`, where they differ from ISO 4217's. */
  readonly stripeExponent?: number;
  /** Stripe's `amount` for a charge must be a multiple of this. Default 1. */
  readonly chargeStep?: number;
  /** Stripe's `amount` for a payout must be a multiple of this. Default: chargeStep. */
  readonly payoutStep?: number;
  /** Minimum charge in Stripe units, and how it is written in the error message. */
  readonly minimum: number;
  readonly minimumDisplay: string;
  /** 'stripe': transcribed from Stripe's table. 'penny': Penny's estimate (see above). */
  readonly minimumSource: 'stripe' | 'penny';
}

const threeDecimal = { chargeStep: 10 } as const;
const wholeUnitsInHundredths = { stripeExponent: 2, chargeStep: 100 } as const;
const wholeUnitPayouts = { payoutStep: 100 } as const;

/** Supported currencies. Stripe's minimum-charge table first, in its order, then the rest. */
const entries: Readonly<Record<string, CurrencyEntry>> = {
  usd: { minimum: 50, minimumDisplay: '$0.50', minimumSource: 'stripe' },
  aed: { minimum: 200, minimumDisplay: '2.00 د.إ', minimumSource: 'stripe' },
  aud: { minimum: 50, minimumDisplay: '$0.50', minimumSource: 'stripe' },
  bgn: { minimum: 100, minimumDisplay: 'лв1.00', minimumSource: 'stripe' },
  brl: { minimum: 50, minimumDisplay: 'R$0.50', minimumSource: 'stripe' },
  cad: { minimum: 50, minimumDisplay: '$0.50', minimumSource: 'stripe' },
  chf: { minimum: 50, minimumDisplay: '0.50 Fr', minimumSource: 'stripe' },
  czk: { minimum: 1500, minimumDisplay: '15.00Kč', minimumSource: 'stripe' },
  dkk: { minimum: 250, minimumDisplay: '2.50-kr.', minimumSource: 'stripe' },
  eur: { minimum: 50, minimumDisplay: '€0.50', minimumSource: 'stripe' },
  gbp: { minimum: 30, minimumDisplay: '£0.30', minimumSource: 'stripe' },
  hkd: { minimum: 400, minimumDisplay: '$4.00', minimumSource: 'stripe' },
  huf: { ...wholeUnitPayouts, minimum: 17500, minimumDisplay: '175.00 Ft', minimumSource: 'stripe' },
  inr: { minimum: 50, minimumDisplay: '₹0.50', minimumSource: 'stripe' },
  jpy: { minimum: 50, minimumDisplay: '¥50', minimumSource: 'stripe' },
  mxn: { minimum: 1000, minimumDisplay: '$10', minimumSource: 'stripe' },
  myr: { minimum: 200, minimumDisplay: 'RM 2', minimumSource: 'stripe' },
  nok: { minimum: 300, minimumDisplay: '3.00-kr.', minimumSource: 'stripe' },
  nzd: { minimum: 50, minimumDisplay: '$0.50', minimumSource: 'stripe' },
  pln: { minimum: 200, minimumDisplay: '2.00 zł', minimumSource: 'stripe' },
  ron: { minimum: 200, minimumDisplay: 'lei2.00', minimumSource: 'stripe' },
  sek: { minimum: 300, minimumDisplay: '3.00-kr.', minimumSource: 'stripe' },
  sgd: { minimum: 50, minimumDisplay: '$0.50', minimumSource: 'stripe' },
  thb: { minimum: 1000, minimumDisplay: '฿10', minimumSource: 'stripe' },
  // Presentment currencies without a settlement minimum in Stripe's table: Penny's figures.
  krw: { minimum: 700, minimumDisplay: '₩700', minimumSource: 'penny' },
  vnd: { minimum: 15000, minimumDisplay: '₫15,000', minimumSource: 'penny' },
  twd: { ...wholeUnitPayouts, minimum: 2000, minimumDisplay: 'NT$20.00', minimumSource: 'penny' },
  isk: { ...wholeUnitsInHundredths, minimum: 10000, minimumDisplay: '100 kr', minimumSource: 'penny' },
  ugx: { ...wholeUnitsInHundredths, minimum: 200000, minimumDisplay: 'USh2,000', minimumSource: 'penny' },
  bhd: { ...threeDecimal, minimum: 200, minimumDisplay: '0.200 BD', minimumSource: 'penny' },
  jod: { ...threeDecimal, minimum: 400, minimumDisplay: '0.400 JD', minimumSource: 'penny' },
  kwd: { ...threeDecimal, minimum: 200, minimumDisplay: '0.200 KD', minimumSource: 'penny' },
  omr: { ...threeDecimal, minimum: 200, minimumDisplay: '0.200 OMR', minimumSource: 'penny' },
  tnd: { ...threeDecimal, minimum: 2000, minimumDisplay: '2.000 DT', minimumSource: 'penny' },
};

interface CurrencyRule {
  readonly code: string;
  readonly stripeExponent: number;
  /** Stripe amount = minor × factor; factor = 10^(Stripe exponent − ISO exponent). */
  readonly factor: bigint;
  readonly chargeStep: bigint;
  readonly payoutStep: bigint;
  readonly minimum: number;
  readonly minimumDisplay: string;
}

function compileRule(code: string, entry: CurrencyEntry): CurrencyRule {
  const isoExponent = currencyExponent(code.toUpperCase());
  const stripeExponent = entry.stripeExponent ?? isoExponent;
  // Stripe's unit is never coarser than ISO's for the currencies here (MGA would be: not supported).
  if (stripeExponent < isoExponent) throw new Error(`${code}: Stripe exponent below ISO exponent`);
  const factor = 10n ** BigInt(stripeExponent - isoExponent);
  const chargeStep = BigInt(entry.chargeStep ?? 1);
  const payoutStep = BigInt(entry.payoutStep ?? entry.chargeStep ?? 1);
  for (const step of [chargeStep, payoutStep]) {
    // Every accepted Stripe amount must be a whole number of minor units, so conversion is exact.
    if (step % factor !== 0n) throw new Error(`${code}: step ${step} is not a multiple of ${factor}`);
  }
  if (BigInt(entry.minimum) % chargeStep !== 0n || entry.minimum <= 0 || entry.minimum > stripeAmountMax) {
    throw new Error(`${code}: minimum ${entry.minimum} is not a valid charge amount`);
  }
  return {
    code,
    stripeExponent,
    factor,
    chargeStep,
    payoutStep,
    minimum: entry.minimum,
    minimumDisplay: entry.minimumDisplay,
  };
}

const rules: ReadonlyMap<string, CurrencyRule> = new Map(
  Object.entries(entries).map(([code, entry]) => [code, compileRule(code, entry)] as const),
);

/** The currencies Penny accepts on the Stripe-compatible API: lower-case ISO codes, as Stripe writes them. */
export const stripeCurrencies: ReadonlySet<string> = new Set(rules.keys());

export function isStripeCurrency(code: string): boolean {
  return rules.has(code);
}

function ruleFor(currency: string): CurrencyRule {
  const rule = rules.get(currency);
  if (rule === undefined) {
    throw new PennyError({
      code: 'currency_invalid',
      param: 'currency',
      message: `Invalid currency: ${currency}. Penny supports these currencies: ${[...stripeCurrencies].join(', ')}.`,
    });
  }
  return rule;
}

/**
 * Reads a request's currency. Stripe documents lower-case codes and always answers in lower
 * case; Penny also accepts upper- or mixed-case ASCII and returns the lower-case code.
 */
export function parseStripeCurrency(value: unknown, param = 'currency'): string {
  if (value === undefined || value === null) {
    throw new PennyError({ code: 'parameter_missing', param, message: `Missing required param: ${param}.` });
  }
  // Check ASCII before lower-casing, so no Unicode case folding can produce a code.
  const code = typeof value === 'string' && /^[A-Za-z]{3}$/.test(value) ? value.toLowerCase() : '';
  if (!rules.has(code)) {
    // Only a three-letter code is quoted back: another value may be an object (`currency[a]=x`,
    // which String() cannot print) or text holding a card number.
    throw new PennyError({
      code: 'currency_invalid',
      param,
      message: `Invalid currency: ${code === '' ? 'the value given' : String(value)}. ` +
        `Penny supports these currencies: ${[...stripeCurrencies].join(', ')}.`,
    });
  }
  return code;
}

/**
 * The currencies whose Stripe unit is finer than ISO 4217's minor unit (ISK and UGX: Stripe counts
 * hundredths of a unit ISO does not divide), with each one's factor (Stripe amount = minor × factor),
 * for SQL that converts stored Stripe amounts to minor units; every other currency's factor is 1.
 */
export function stripeUnitFactors(): { readonly currencies: string[]; readonly factors: string[] } {
  const finer = [...rules.values()].filter((rule) => rule.factor !== 1n);
  return { currencies: finer.map((rule) => rule.code), factors: finer.map((rule) => rule.factor.toString()) };
}

/** Stripe's minimum charge for a currency, in Stripe units (USD 50 is $0.50). */
export function stripeMinimumChargeAmount(currency: string): number {
  return ruleFor(currency).minimum;
}

function stepFor(rule: CurrencyRule, purpose: StripeAmountPurpose): bigint {
  return purpose === 'payout' ? rule.payoutStep : rule.chargeStep;
}

/**
 * The smallest step, in ISO minor units, that Stripe accepts for the currency: 10 for KWD
 * (last digit 0), 100 for HUF payouts (whole forints), 1 for ISK (a whole króna is one ISO
 * minor unit). An automatic payout rounds down to the payout step. Fees and a refund's shares of
 * a destination charge are not rounded to it: they are ledger amounts, shown in balance
 * transactions, which Stripe does not step.
 */
export function stripeAmountStepMinor(currency: string, purpose: StripeAmountPurpose = 'charge'): bigint {
  const rule = ruleFor(currency);
  return stepFor(rule, purpose) / rule.factor;
}

function notConvertible(rule: CurrencyRule, purpose: StripeAmountPurpose, param: string, amount: bigint): PennyError {
  const step = stepFor(rule, purpose);
  const what = purpose === 'payout' ? 'payout amounts' : 'amounts';
  return new PennyError({
    code: 'amount_invalid_for_currency',
    param,
    message: `Invalid amount: ${rule.code} ${what} must be evenly divisible by ${step} ` +
      `(in the currency's smallest unit on this API); ${amount} is not.`,
  });
}

/**
 * Stripe's integer `amount` as ISO 4217 minor units. Refuses an amount that is not a safe
 * integer (parameter_invalid_integer) or not a multiple of Stripe's step for the currency and
 * purpose (amount_invalid_for_currency). Signs pass through: balance amounts can be negative.
 */
export function stripeAmountToMinor(currency: string, amount: bigint, options: StripeAmountOptions = {}): bigint {
  const rule = ruleFor(currency);
  const purpose = options.purpose ?? 'charge';
  const param = options.param ?? 'amount';
  // Beyond exact JSON integers no API amount can come, and none is carried out.
  if (amount > safeIntegerMax || amount < -safeIntegerMax) {
    throw new PennyError({ code: 'parameter_invalid_integer', param, message: `Invalid integer: ${amount}` });
  }
  if (amount % stepFor(rule, purpose) !== 0n) throw notConvertible(rule, purpose, param, amount);
  return amount / rule.factor;
}

/**
 * ISO 4217 minor units as Stripe's integer `amount`. Refuses a minor amount Stripe cannot carry
 * for the currency and purpose (amount_invalid_for_currency), and one whose Stripe amount is
 * beyond exact JSON integers (amount_too_large).
 */
export function minorToStripeAmount(currency: string, minor: bigint, options: StripeAmountOptions = {}): bigint {
  const rule = ruleFor(currency);
  const purpose = options.purpose ?? 'charge';
  const param = options.param ?? 'amount';
  const stripeAmount = minor * rule.factor;
  if (stripeAmount % stepFor(rule, purpose) !== 0n) throw notConvertible(rule, purpose, param, stripeAmount);
  if (stripeAmount > safeIntegerMax || stripeAmount < -safeIntegerMax) {
    throw new PennyError({
      code: 'amount_too_large',
      param,
      message: `${rule.code} ${minor} (minor units) is beyond the largest amount the API can carry exactly.`,
    });
  }
  return stripeAmount;
}

/**
 * A balance amount (a fee, a net, a balance) in Stripe's units of the currency: the same factor as
 * charges, without a charge's step (a fee of ISK 1.23 is 123 on Stripe's API). A currency Stripe
 * does not take is shown in its minor units.
 */
export function minorToStripeBalanceUnits(currency: string, minor: bigint): bigint {
  const code = currency.toLowerCase();
  return isStripeCurrency(code) ? minor * ruleFor(code).factor : minor;
}

/** The largest integer JSON carries exactly (2^53 - 1). */
const safeIntegerMax = BigInt(Number.MAX_SAFE_INTEGER);

/** Stripe units as a decimal in the currency's major unit, e.g. usd 99999999 → "999999.99". */
function formatMajor(rule: CurrencyRule, amount: number): string {
  const digits = String(amount).padStart(rule.stripeExponent + 1, '0');
  if (rule.stripeExponent === 0) return digits;
  const point = digits.length - rule.stripeExponent;
  return `${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** A refused value as an error message shows it: primitives as they are, never an object's contents. */
function shown(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object' && value !== null) return 'an object';
  if (typeof value === 'function') return 'a function';
  return String(value);
}

/**
 * Validates a charge `amount` from a request: a positive integer (a JSON number, or a string of
 * digits as form bodies send), at least the currency's minimum charge, at most 99999999, and a
 * multiple of Stripe's charge step for the currency. Returns it as a number of Stripe units.
 */
export function validateStripeAmount(currency: string, amount: unknown, param: string): bigint {
  const rule = ruleFor(currency);
  if (amount === undefined) {
    throw new PennyError({ code: 'parameter_missing', param, message: `Missing required param: ${param}.` });
  }
  let value: bigint;
  if (typeof amount === 'bigint') {
    value = amount;
  } else if (typeof amount === 'number' && Number.isInteger(amount)) {
    value = BigInt(amount);
  } else if (typeof amount === 'string' && /^[0-9]+$/.test(amount)) {
    const digits = amount.replace(/^0+(?=[0-9])/, '');
    // More digits than any allowed amount: too large, without parsing an arbitrarily long string.
    value = digits.length > 16 ? BigInt(stripeAmountMax) + 1n : BigInt(digits);
  } else {
    throw new PennyError({ code: 'parameter_invalid_integer', param, message: `Invalid integer: ${shown(amount)}` });
  }
  if (value < BigInt(rule.minimum)) {
    throw new PennyError({
      code: 'amount_too_small',
      param,
      message: `Amount must be at least ${rule.minimumDisplay} ${rule.code}`,
    });
  }
  if (value > BigInt(stripeAmountMax)) {
    throw new PennyError({
      code: 'amount_too_large',
      param,
      message: `Amount must be no more than ${stripeAmountMax} (${formatMajor(rule, stripeAmountMax)} ${rule.code})`,
    });
  }
  if (value % rule.chargeStep !== 0n) throw notConvertible(rule, 'charge', param, value);
  return value;
}
