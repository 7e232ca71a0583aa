import { describe, expect, it } from 'vitest';
import {
  formatMinor, formatStripeAmount, formatTime, parseMajorToMinor, parseMajorToStripeAmount,
} from '../../src/dashboard/dashboard-format.js';
import { html, trusted } from '../../src/dashboard/html.js';

/** The dashboard's presenter: amounts from minor units without floats, times in UTC, escaped HTML. */
describe("the dashboard's amounts", () => {
  it('are written in major units with the currency code, by the currency exponent', () => {
    expect(formatMinor(123456n, 'usd')).toBe('1234.56 USD');
    expect(formatMinor(-5n, 'EUR')).toBe('-0.05 EUR');
    expect(formatMinor(1000n, 'jpy')).toBe('1000 JPY');
    expect(formatMinor(1250n, 'kwd')).toBe('1.250 KWD');
    // Beyond 2^53 a float would round; the bigint's digits are kept.
    expect(formatMinor(9_007_199_254_740_993n, 'usd')).toBe('90071992547409.93 USD');
  });

  it("convert Stripe's units where they differ from ISO minor units (ISK: Stripe counts hundredths)", () => {
    expect(formatStripeAmount(12300n, 'isk')).toBe('123 ISK');
    expect(formatStripeAmount(1999n, 'usd')).toBe('19.99 USD');
  });

  it('are read from major units exactly, refusing digits the currency does not have', () => {
    expect(parseMajorToMinor('12.5', 'usd', 'amount')).toBe(1250n);
    expect(parseMajorToMinor('0.10', 'usd', 'amount')).toBe(10n);
    expect(parseMajorToMinor('7', 'jpy', 'amount')).toBe(7n);
    expect(parseMajorToMinor('12.500', 'usd', 'amount')).toBe(1250n);
    expect(() => parseMajorToMinor('12.505', 'usd', 'amount')).toThrow(/has 2 decimals/);
    expect(() => parseMajorToMinor('1e3', 'usd', 'amount')).toThrow(/not an amount/);
    expect(() => parseMajorToMinor('-1', 'usd', 'amount')).toThrow(/not an amount/);
    expect(parseMajorToStripeAmount('123', 'isk', 'amount')).toBe(12300n);
  });
});

describe("the dashboard's HTML", () => {
  it('escapes every interpolated value unless it is already HTML', () => {
    const name = '<script>alert("x")</script>&\'`';
    expect(html`<td>${name}</td>`.text)
      .toBe('<td>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;&#96;</td>');
    expect(html`<p>${[html`<b>${'a<b'}</b>`, ' & ', 3n]}</p>`.text).toBe('<p><b>a&lt;b</b> &amp; 3</p>');
    expect(html`${null}${undefined}${false}${trusted('<hr>')}`.text).toBe('<hr>');
  });

  it('writes times in UTC in a <time> the page script gives a local title', () => {
    expect(formatTime('2026-12-07T07:30:05.123456Z').text)
      .toBe('<time datetime="2026-12-07T07:30:05.123456Z" title="2026-12-07 07:30:05 UTC">2026-12-07 07:30:05 UTC</time>');
  });
});
