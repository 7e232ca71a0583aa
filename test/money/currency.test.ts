import { describe, expect, it } from 'vitest';
import { currencyCodesKnown, currencyExponent, isCurrency } from '../../src/money/currency.js';

describe('ISO 4217 currencies', () => {
  it.each([
    ['JPY', 0],
    ['KRW', 0],
    ['USD', 2],
    ['EUR', 2],
    ['GBP', 2],
    ['KWD', 3],
    ['BHD', 3],
    ['TND', 3],
  ])('gives %s the exponent %i', (code, exponent) => {
    expect(isCurrency(code)).toBe(true);
    expect(currencyExponent(code)).toBe(exponent);
  });

  it('gives CLF (Unidad de Fomento) the exponent 4 when it is listed', () => {
    if (!isCurrency('CLF')) return;
    expect(currencyExponent('CLF')).toBe(4);
  });

  it.each([
    ['an unassigned code', 'ABC'],
    ['the "no currency" code', 'XXX'],
    ['the testing code', 'XTS'],
    ['gold', 'XAU'],
    ['silver', 'XAG'],
    ['platinum', 'XPT'],
    ['palladium', 'XPD'],
    ['the IMF special drawing right', 'XDR'],
    ['a lower-case code (callers normalise first)', 'usd'],
    ['an empty string', ''],
    ['a four-letter code', 'USDX'],
  ])('does not treat %s (%s) as a currency', (_label, code) => {
    expect(isCurrency(code)).toBe(false);
  });

  it('throws when asked the exponent of a code that is not a currency', () => {
    expect(() => currencyExponent('XAU')).toThrow(/XAU/);
  });

  it('lists known codes sorted, each three upper-case letters with an exponent from 0 to 4', () => {
    const codes = currencyCodesKnown();
    expect(codes.length).toBeGreaterThan(100);
    expect(codes).toEqual([...codes].sort());
    for (const code of codes) {
      expect(code).toMatch(/^[A-Z]{3}$/);
      expect([0, 1, 2, 3, 4]).toContain(currencyExponent(code));
    }
  });

  it('leaves excluded codes out of the known list', () => {
    const codes = currencyCodesKnown();
    expect(codes).toContain('USD');
    for (const code of ['XXX', 'XTS', 'XAU', 'XAG', 'XPT', 'XPD']) expect(codes).not.toContain(code);
  });
});
