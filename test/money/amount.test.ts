import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { amountMaxSafeMinor } from '../../src/config.js';
import { parseAmountMinor } from '../../src/money/amount.js';
import { refusal } from '../support/refusal.js';

const rules = { param: 'postings[0][amount]', amountMaxMinor: amountMaxSafeMinor };

describe('parseAmountMinor', () => {
  it('accepts a positive integer and returns it as a bigint', () => {
    expect(parseAmountMinor(1500, rules)).toBe(1500n);
  });

  it('accepts 1, the smallest amount', () => {
    expect(parseAmountMinor(1, rules)).toBe(1n);
  });

  it('accepts 2^53 − 1, the largest amount JSON can carry exactly', () => {
    expect(parseAmountMinor(Number.MAX_SAFE_INTEGER, rules)).toBe(9007199254740991n);
  });

  it.each([
    ['a float', 1.5],
    ['a negative float', -1.5],
    ['a string of digits', '100'],
    ['a decimal string', '1.00'],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ['null', null],
    ['undefined', undefined],
    ['a boolean', true],
    ['a bigint', 100n],
    ['an object', { value: 100 }],
    ['an array', [100]],
  ])('refuses %s as parameter_invalid_integer, naming the param', (_label, value) => {
    expect(refusal(() => parseAmountMinor(value, rules))).toMatchObject({
      code: 'parameter_invalid_integer',
      param: 'postings[0][amount]',
    });
  });

  it.each([
    ['zero', 0],
    ['negative zero', -0],
    ['a negative integer', -1],
    ['a large negative integer', -Number.MAX_SAFE_INTEGER],
  ])('refuses %s as amount_too_small, naming the param', (_label, value) => {
    expect(refusal(() => parseAmountMinor(value, rules))).toMatchObject({
      code: 'amount_too_small',
      param: 'postings[0][amount]',
    });
  });

  it.each([
    ['2^53', 2 ** 53],
    ['2^53 + 2', 2 ** 53 + 2],
    ['1e300', 1e300],
    ['Number.MAX_VALUE', Number.MAX_VALUE],
  ])('refuses %s (beyond exact JSON integers) as amount_too_large, naming the param', (_label, value) => {
    expect(refusal(() => parseAmountMinor(value, rules))).toMatchObject({
      code: 'amount_too_large',
      param: 'postings[0][amount]',
    });
  });

  it('accepts an amount equal to a configured maximum', () => {
    expect(parseAmountMinor(1_000_000, { param: 'amount', amountMaxMinor: 1_000_000n })).toBe(1_000_000n);
  });

  it('refuses an amount one above a configured maximum as amount_too_large', () => {
    const error = refusal(() => parseAmountMinor(1_000_001, { param: 'amount', amountMaxMinor: 1_000_000n }));
    expect(error).toMatchObject({ code: 'amount_too_large', param: 'amount' });
    expect(error.message).toContain('1000000');
  });

  it('for every safe integer n, succeeds iff 1 <= n <= max, returning BigInt(n)', () => {
    const maxima = fc.oneof(
      fc.constant(amountMaxSafeMinor),
      fc.bigInt({ min: 1n, max: amountMaxSafeMinor }),
      fc.bigInt({ min: 1n, max: 1000n }),
    );
    // Candidates are drawn both anywhere and near the configured maximum, where the boundary is.
    const cases = maxima.chain((max) => fc.tuple(
      fc.constant(max),
      fc.oneof(
        fc.maxSafeInteger(),
        fc.integer({ min: -3, max: 3 }).map((offset) => Number(max) + offset)
          .filter((n) => Number.isSafeInteger(n)),
      ),
    ));
    fc.assert(fc.property(cases, ([max, n]) => {
      const within = n >= 1 && BigInt(n) <= max;
      const param = 'entries[3][postings][1][amount]';
      if (within) {
        expect(parseAmountMinor(n, { param, amountMaxMinor: max })).toBe(BigInt(n));
      } else {
        expect(refusal(() => parseAmountMinor(n, { param, amountMaxMinor: max }))).toMatchObject({
          code: n < 1 ? 'amount_too_small' : 'amount_too_large',
          param,
        });
      }
    }), { numRuns: 2000 });
  });

  it('refuses every finite non-integer number as parameter_invalid_integer', () => {
    const nonIntegers = fc.double({ noNaN: true, noDefaultInfinity: true })
      .filter((value) => !Number.isInteger(value));
    fc.assert(fc.property(nonIntegers, (value) => {
      expect(refusal(() => parseAmountMinor(value, rules)).code).toBe('parameter_invalid_integer');
    }), { numRuns: 500 });
  });
});
