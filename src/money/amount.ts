import { PennyError } from '../errors.js';

/**
 * Amounts are integers of minor units. JSON numbers above 2^53−1 cannot be told apart after
 * JSON.parse, so they are refused rather than silently rounded.
 */
export interface AmountRules {
  readonly param: string;
  readonly amountMaxMinor: bigint;
}

/**
 * A JSON number written with a fraction or an exponent (`100.0`, `1e3`), as the raw text had it.
 * JSON.parse would read either as an integer; the ledger API's parser keeps it apart instead
 * (src/http/integer-json.ts), so that an amount written so is refused, not taken.
 */
export class NonIntegerNumber {
  constructor(readonly source: string) {}
}

export function parseAmountMinor(value: unknown, rules: AmountRules): bigint {
  if (value instanceof NonIntegerNumber) {
    throw new PennyError({
      code: 'parameter_invalid_integer',
      param: rules.param,
      message: `${rules.param} must be an integer number of minor units, written without a fraction or an `
        + `exponent (got ${value.source.slice(0, 40)}).`,
    });
  }
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new PennyError({
      code: 'parameter_invalid_integer',
      param: rules.param,
      message: `${rules.param} must be an integer number of minor units (no decimals, no strings).`,
    });
  }
  if (value <= 0) {
    throw new PennyError({
      code: 'amount_too_small',
      param: rules.param,
      message: `${rules.param} must be greater than zero.`,
    });
  }
  if (!Number.isSafeInteger(value) || BigInt(value) > rules.amountMaxMinor) {
    throw new PennyError({
      code: 'amount_too_large',
      param: rules.param,
      message: `${rules.param} must be at most ${rules.amountMaxMinor}.`,
    });
  }
  return BigInt(value);
}
