import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { amountMinorMax, decimalToMinor } from '../../src/reconciliation/decimal-minor.js';

const byExponent = [['JPY', 0], ['EUR', 2], ['KWD', 3]] as const;

/** Writes minor units as a decimal with `exponent` decimals, then `padding` more zeros. */
function decimalText(minor: bigint, exponent: number, padding: number, separator: '.' | ','): string {
  const sign = minor < 0n ? '-' : '';
  const digits = (minor < 0n ? -minor : minor).toString().padStart(exponent + 1, '0');
  const whole = digits.slice(0, digits.length - exponent);
  const fraction = digits.slice(digits.length - exponent) + '0'.repeat(padding);
  return fraction === '' ? `${sign}${whole}` : `${sign}${whole}${separator}${fraction}`;
}

describe('decimal amounts to minor units', () => {
  for (const [currency, exponent] of byExponent) {
    it(`reads every decimal with ${exponent} decimals, and trailing zeros beyond, exactly (${currency})`, () => {
      fc.assert(fc.property(
        fc.bigInt({ min: -amountMinorMax, max: amountMinorMax }),
        fc.integer({ min: 0, max: 4 }),
        fc.constantFrom('.' as const, ',' as const),
        (minor, padding, separator) => {
          const text = decimalText(minor, exponent, padding, separator);
          expect(decimalToMinor(text, currency, { separator, signed: true })).toBe(minor);
        }));
    });

    it(`refuses a digit beyond the ${exponent} decimals of ${currency} that is not zero`, () => {
      fc.assert(fc.property(
        fc.bigInt({ min: 0n, max: amountMinorMax }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 1, max: 9 }),
        (minor, zeros, last) => {
          const base = decimalText(minor, exponent, zeros, '.');
          const text = `${base}${exponent === 0 && zeros === 0 ? '.' : ''}${last}`;
          expect(() => decimalToMinor(text, currency, { separator: '.', signed: false })).toThrow(/decimals/);
        }));
    });
  }

  it('reads the notations real files use', () => {
    expect(decimalToMinor('9,', 'EUR', { separator: ',', signed: false })).toBe(900n);
    expect(decimalToMinor('79,7', 'CHF', { separator: ',', signed: false })).toBe(7970n);
    expect(decimalToMinor('000000000473,17', 'EUR', { separator: ',', signed: false })).toBe(47317n);
    expect(decimalToMinor('5442.09000', 'RON', { separator: '.', signed: false })).toBe(544209n);
    expect(decimalToMinor('8.850', 'EUR', { separator: '.', signed: false })).toBe(885n);
  });

  it('refuses what is not a decimal amount', () => {
    for (const text of ['', '1e3', '1.2.3', '.5', '8.85 ', '0x10', 'NaN', '1,5']) {
      expect(() => decimalToMinor(text, 'EUR', { separator: '.', signed: true }), text).toThrow(/not a decimal amount/);
    }
  });

  it('refuses a sign where amounts are unsigned, and an amount past 2^53-1 minor units', () => {
    expect(() => decimalToMinor('-1.00', 'EUR', { separator: '.', signed: false })).toThrow(/sign/);
    expect(() => decimalToMinor('90071992547409.92', 'EUR', { separator: '.', signed: false })).toThrow(/above/);
  });
});
