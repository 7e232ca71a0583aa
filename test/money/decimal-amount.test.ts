import { describe, expect, it } from 'vitest';
import { minorToDecimal } from '../../src/money/decimal-amount.js';

describe('minorToDecimal', () => {
  it('writes two-decimal currencies with both decimals', () => {
    expect(minorToDecimal(123456n, 'USD')).toBe('1234.56');
    expect(minorToDecimal(5n, 'EUR')).toBe('0.05');
    expect(minorToDecimal(0n, 'USD')).toBe('0.00');
  });

  it('writes negative amounts with the sign before the whole part', () => {
    expect(minorToDecimal(-5n, 'USD')).toBe('-0.05');
    expect(minorToDecimal(-123456n, 'USD')).toBe('-1234.56');
  });

  it('follows the ISO 4217 exponent: none for JPY, three for KWD', () => {
    expect(minorToDecimal(1000n, 'JPY')).toBe('1000');
    expect(minorToDecimal(1250n, 'KWD')).toBe('1.250');
    expect(minorToDecimal(7n, 'KWD')).toBe('0.007');
  });

  it('stays exact beyond 2^53', () => {
    expect(minorToDecimal(123456789012345678901n, 'USD')).toBe('1234567890123456789.01');
  });

  it('writes the whole 2^53−1 minor units, and a comma separator on request', () => {
    expect(minorToDecimal(9007199254740991n, 'EUR')).toBe('90071992547409.91');
    expect(minorToDecimal(123456n, 'EUR', ',')).toBe('1234,56');
  });
});
