import currencyCodes from 'currency-codes';

/**
 * ISO 4217 currencies and their minor-unit exponents (JPY 0, USD 2, KWD 3), from the
 * `currency-codes` package, which tracks the ISO list. Funds, precious metals and testing codes
 * (no exponent in ISO, or not money one can pay with) are excluded.
 */
const excludedCodes = new Set(['XAU', 'XAG', 'XPD', 'XPT', 'XTS', 'XXX', 'XDR', 'XSU', 'XUA',
  'XBA', 'XBB', 'XBC', 'XBD']);

const exponents: ReadonlyMap<string, number> = new Map(
  currencyCodes
    .codes()
    .map((code) => [code, currencyCodes.code(code)?.digits] as const)
    .filter((pair): pair is readonly [string, number] =>
      typeof pair[1] === 'number' && !excludedCodes.has(pair[0]))
    .map(([code, digits]) => [code, digits] as const),
);

export function isCurrency(code: string): boolean {
  return exponents.has(code);
}

/** The exponent of an ISO 4217 currency; throws for a code that is not one (a programmer error). */
export function currencyExponent(code: string): number {
  const exponent = exponents.get(code);
  if (exponent === undefined) throw new Error(`not an ISO 4217 currency: ${code}`);
  return exponent;
}

export function currencyCodesKnown(): string[] {
  return [...exponents.keys()].sort();
}

