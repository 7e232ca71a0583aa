import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { currencyExponent } from '../../src/money/currency.js';
import {
  isStripeCurrency,
  minorToStripeAmount,
  parseStripeCurrency,
  stripeAmountMax,
  stripeAmountStepMinor,
  stripeAmountToMinor,
  stripeCurrencies,
  stripeMinimumChargeAmount,
  validateStripeAmount,
  type StripeAmountPurpose,
} from '../../src/money/stripe-currency.js';
import { refusal } from '../support/refusal.js';

const required = ['usd', 'eur', 'gbp', 'jpy', 'krw', 'vnd', 'isk', 'huf', 'twd', 'bhd', 'jod', 'kwd', 'omr',
  'tnd', 'chf', 'cad', 'aud', 'sek', 'nok', 'dkk', 'pln', 'czk', 'mxn', 'brl', 'inr', 'sgd', 'hkd', 'nzd'];
const purposes: readonly StripeAmountPurpose[] = ['charge', 'payout'];

describe('stripeCurrencies', () => {
  it('contains every currency Penny promises on the Stripe-compatible API', () => {
    for (const code of required) expect(stripeCurrencies.has(code)).toBe(true);
  });

  it('holds lower-case codes that are ISO 4217 currencies', () => {
    for (const code of stripeCurrencies) {
      expect(code).toMatch(/^[a-z]{3}$/);
      expect(() => currencyExponent(code.toUpperCase())).not.toThrow();
    }
  });

  it('does not hold upper-case codes (Stripe writes currencies in lower case)', () => {
    expect(isStripeCurrency('USD')).toBe(false);
    expect(isStripeCurrency('usd')).toBe(true);
  });

  it('leaves out MGA, whose Stripe unit (zero-decimal) is coarser than its ISO unit', () => {
    expect(isStripeCurrency('mga')).toBe(false);
  });
});

describe('the ISO exponents the conversions rest on', () => {
  it.each([
    ['ISK', 0],
    ['UGX', 0],
    ['HUF', 2],
    ['TWD', 2],
    ['JPY', 0],
    ['KWD', 3],
  ])('currencyExponent gives %s the exponent %i', (code, exponent) => {
    expect(currencyExponent(code)).toBe(exponent);
  });
});

describe('stripeAmountToMinor', () => {
  it('takes a two-decimal amount as is (usd 1099 is 1099 cents)', () => {
    expect(stripeAmountToMinor('usd', 1099n)).toBe(1099n);
  });

  it.each(['jpy', 'krw', 'vnd'])('takes a zero-decimal %s amount as is', (currency) => {
    expect(stripeAmountToMinor(currency, 500n)).toBe(500n);
  });

  it('reads ISK in hundredths: 500 is 5 króna, 5 ISO minor units', () => {
    expect(stripeAmountToMinor('isk', 500n)).toBe(5n);
  });

  it('reads UGX in hundredths: 500 is 5 shillings, 5 ISO minor units', () => {
    expect(stripeAmountToMinor('ugx', 500n)).toBe(5n);
  });

  it('refuses ISK that is not a whole króna as amount_invalid_for_currency, naming the param', () => {
    expect(refusal(() => stripeAmountToMinor('isk', 550n, { param: 'amount_to_capture' }))).toMatchObject({
      code: 'amount_invalid_for_currency',
      param: 'amount_to_capture',
    });
  });

  it('names amount as the param when the caller gives none', () => {
    expect(refusal(() => stripeAmountToMinor('isk', 1n))).toMatchObject({ param: 'amount' });
  });

  it.each(['huf', 'twd'])('takes a two-decimal %s charge amount as is', (currency) => {
    expect(stripeAmountToMinor(currency, 1045n)).toBe(1045n);
  });

  it.each(['huf', 'twd'])('takes a whole-unit %s payout amount as is', (currency) => {
    expect(stripeAmountToMinor(currency, 1000n, { purpose: 'payout' })).toBe(1000n);
  });

  it.each(['huf', 'twd'])('refuses a %s payout amount not divisible by 100', (currency) => {
    expect(refusal(() => stripeAmountToMinor(currency, 1045n, { purpose: 'payout' }))).toMatchObject({
      code: 'amount_invalid_for_currency',
      param: 'amount',
    });
  });

  it.each(['bhd', 'jod', 'kwd', 'omr', 'tnd'])('takes a three-decimal %s amount ending in 0 as is', (currency) => {
    expect(stripeAmountToMinor(currency, 5120n)).toBe(5120n);
  });

  it.each(['bhd', 'jod', 'kwd', 'omr', 'tnd'])('refuses a three-decimal %s amount not ending in 0', (currency) => {
    expect(refusal(() => stripeAmountToMinor(currency, 5124n))).toMatchObject({
      code: 'amount_invalid_for_currency',
    });
  });

  it('keeps the sign of a negative amount (balance amounts can be negative)', () => {
    expect(stripeAmountToMinor('isk', -500n)).toBe(-5n);
  });

  it.each([
    ['2^53', 2n ** 53n],
    ['-(2^53)', -(2n ** 53n)],
  ])('refuses %s, beyond exact JSON integers, as parameter_invalid_integer', (_label, amount) => {
    expect(refusal(() => stripeAmountToMinor('usd', amount))).toMatchObject({ code: 'parameter_invalid_integer' });
  });

  it('refuses an unsupported currency as currency_invalid on the currency param', () => {
    expect(refusal(() => stripeAmountToMinor('xyz', 100n))).toMatchObject({
      code: 'currency_invalid',
      param: 'currency',
    });
  });
});

describe('minorToStripeAmount', () => {
  it('writes cents as is for usd', () => {
    expect(minorToStripeAmount('usd', 1099n)).toBe(1099n);
  });

  it('writes whole króna in hundredths: 5 ISK is 500', () => {
    expect(minorToStripeAmount('isk', 5n)).toBe(500n);
  });

  it('writes a three-decimal amount ending in 0 as is', () => {
    expect(minorToStripeAmount('kwd', 5130n)).toBe(5130n);
  });

  it('refuses a three-decimal amount Stripe cannot carry (5.124 KWD)', () => {
    expect(refusal(() => minorToStripeAmount('kwd', 5124n, { param: 'application_fee_amount' }))).toMatchObject({
      code: 'amount_invalid_for_currency',
      param: 'application_fee_amount',
    });
  });

  it('writes HUF fillér as is for a charge', () => {
    expect(minorToStripeAmount('huf', 1045n)).toBe(1045n);
  });

  it('refuses HUF fillér for a payout', () => {
    expect(refusal(() => minorToStripeAmount('huf', 1045n, { purpose: 'payout' }))).toMatchObject({
      code: 'amount_invalid_for_currency',
    });
  });

  it('refuses an amount beyond exact JSON integers as amount_too_large', () => {
    expect(refusal(() => minorToStripeAmount('isk', 2n ** 53n))).toMatchObject({ code: 'amount_too_large' });
  });

  it('refuses an unsupported currency as currency_invalid', () => {
    expect(refusal(() => minorToStripeAmount('xyz', 100n))).toMatchObject({ code: 'currency_invalid' });
  });
});

describe('stripeAmountStepMinor', () => {
  it.each([
    ['usd', 'charge', 1n],
    ['isk', 'charge', 1n],
    ['kwd', 'charge', 10n],
    ['huf', 'charge', 1n],
    ['huf', 'payout', 100n],
    ['twd', 'payout', 100n],
    ['kwd', 'payout', 10n],
  ] as const)('gives %s %s amounts a step of %i minor units', (currency, purpose, step) => {
    expect(stripeAmountStepMinor(currency, purpose)).toBe(step);
  });
});

describe('conversion round trips', () => {
  /** Per currency and purpose: the step in minor units and in Stripe units. */
  const steps = [...stripeCurrencies].flatMap((currency) => purposes.map((purpose) => {
    const stepMinor = stripeAmountStepMinor(currency, purpose);
    return { currency, purpose, stepMinor,
      stepStripe: Number(minorToStripeAmount(currency, stepMinor, { purpose })) };
  }));

  /** A valid minor amount: a multiple of the step whose Stripe amount is within ±99999999. */
  const validMinor = fc.constantFrom(...steps).chain((s) => {
    const most = Math.floor(stripeAmountMax / s.stepStripe);
    return fc.integer({ min: -most, max: most }).map((k) => ({ ...s, minor: BigInt(k) * s.stepMinor }));
  });

  it('minor → Stripe → minor is the identity for every valid amount of every currency', () => {
    fc.assert(fc.property(validMinor, ({ currency, purpose, minor }) => {
      const stripeAmount = minorToStripeAmount(currency, minor, { purpose });
      expect(stripeAmount <= BigInt(stripeAmountMax) && stripeAmount >= -BigInt(stripeAmountMax)).toBe(true);
      expect(stripeAmountToMinor(currency, stripeAmount, { purpose })).toBe(minor);
    }));
  });

  it('Stripe → minor → Stripe is the identity for every valid amount of every currency', () => {
    fc.assert(fc.property(validMinor, ({ currency, purpose, minor }) => {
      const stripeAmount = minorToStripeAmount(currency, minor, { purpose });
      const back = minorToStripeAmount(currency, stripeAmountToMinor(currency, stripeAmount, { purpose }), { purpose });
      expect(back).toBe(stripeAmount);
    }));
  });

  it('refuses every Stripe amount that is not a multiple of the currency\'s step', () => {
    const coarse = steps.filter((s) => s.stepStripe > 1);
    const offStep = fc.constantFrom(...coarse).chain((s) => fc.tuple(
      fc.constant(s),
      fc.integer({ min: 0, max: Math.floor(stripeAmountMax / s.stepStripe) - 1 }),
      fc.integer({ min: 1, max: s.stepStripe - 1 }),
    ));
    fc.assert(fc.property(offStep, ([{ currency, purpose, stepStripe }, k, offset]) => {
      const amount = BigInt(k * stepStripe + offset);
      expect(refusal(() => stripeAmountToMinor(currency, amount, { purpose })).code)
        .toBe('amount_invalid_for_currency');
    }));
  });
});

describe('stripeMinimumChargeAmount', () => {
  it.each([
    ['usd', 50],
    ['eur', 50],
    ['gbp', 30],
    ['jpy', 50],
    ['hkd', 400],
    ['mxn', 1000],
    ['huf', 17500],
    ['czk', 1500],
  ])('gives %s the minimum from Stripe\'s table, %i in Stripe units', (currency, minimum) => {
    expect(stripeMinimumChargeAmount(currency)).toBe(minimum);
  });

  it('gives every supported currency a minimum that is itself a valid charge amount', () => {
    for (const currency of stripeCurrencies) {
      const minimum = stripeMinimumChargeAmount(currency);
      expect(validateStripeAmount(currency, minimum, 'amount')).toBe(BigInt(minimum));
    }
  });
});

describe('validateStripeAmount', () => {
  it('takes a bigint as it is (an intent\'s stored amount, checked again for a new currency)', () => {
    expect(validateStripeAmount('usd', 2000n, 'amount')).toBe(2000n);
  });

  it('accepts the minimum, $0.50', () => {
    expect(validateStripeAmount('usd', 50, 'amount')).toBe(50n);
  });

  it('accepts a string of digits, as form bodies send', () => {
    expect(validateStripeAmount('usd', '2000', 'amount')).toBe(2000n);
  });

  it('accepts leading zeros in a string of digits', () => {
    expect(validateStripeAmount('usd', '0050', 'amount')).toBe(50n);
  });

  it('accepts the maximum, 99999999', () => {
    expect(validateStripeAmount('usd', 99_999_999, 'amount')).toBe(99_999_999n);
  });

  it('refuses one cent below the minimum as amount_too_small with Stripe\'s message', () => {
    expect(refusal(() => validateStripeAmount('usd', 49, 'amount'))).toMatchObject({
      code: 'amount_too_small',
      param: 'amount',
      message: 'Amount must be at least $0.50 usd',
    });
  });

  it('refuses 29 pence: GBP\'s minimum is £0.30', () => {
    expect(refusal(() => validateStripeAmount('gbp', 29, 'amount'))).toMatchObject({
      code: 'amount_too_small',
      message: 'Amount must be at least £0.30 gbp',
    });
  });

  it('refuses ¥49: JPY\'s minimum is ¥50', () => {
    expect(refusal(() => validateStripeAmount('jpy', 49, 'amount')).code).toBe('amount_too_small');
  });

  it.each([
    ['zero', 0],
    ['a negative integer', -100],
  ])('refuses %s as amount_too_small', (_label, amount) => {
    expect(refusal(() => validateStripeAmount('usd', amount, 'amount')).code).toBe('amount_too_small');
  });

  it('refuses 100000000 as amount_too_large, naming the param', () => {
    expect(refusal(() => validateStripeAmount('usd', 100_000_000, 'amount'))).toMatchObject({
      code: 'amount_too_large',
      param: 'amount',
    });
  });

  it('refuses a very long string of digits as amount_too_large', () => {
    expect(refusal(() => validateStripeAmount('usd', '9'.repeat(400), 'amount')).code).toBe('amount_too_large');
  });

  it.each([
    ['a float', 50.5],
    ['a decimal string', '50.00'],
    ['a signed string', '+50'],
    ['an empty string', ''],
    ['a string with spaces', ' 50'],
    ['an exponent string', '5e3'],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['null', null],
    ['a boolean', true],
    ['an object', { value: 100 }],
    ['an array', [100]],
  ])('refuses %s as parameter_invalid_integer, naming the param', (_label, amount) => {
    expect(refusal(() => validateStripeAmount('usd', amount, 'amount'))).toMatchObject({
      code: 'parameter_invalid_integer',
      param: 'amount',
    });
  });

  it('refuses a missing amount as parameter_missing', () => {
    expect(refusal(() => validateStripeAmount('usd', undefined, 'amount')).code).toBe('parameter_missing');
  });

  it('refuses ISK 150.50 (15050) as amount_invalid_for_currency', () => {
    expect(refusal(() => validateStripeAmount('isk', 15050, 'amount')).code).toBe('amount_invalid_for_currency');
  });

  it('accepts ISK 150 (15000)', () => {
    expect(validateStripeAmount('isk', 15000, 'amount')).toBe(15000n);
  });

  it('refuses KWD 5.125 (5125) as amount_invalid_for_currency', () => {
    expect(refusal(() => validateStripeAmount('kwd', 5125, 'amount')).code).toBe('amount_invalid_for_currency');
  });

  it('accepts HUF 175.45 (17545): charges may carry fillér', () => {
    expect(validateStripeAmount('huf', 17545, 'amount')).toBe(17545n);
  });

  it('refuses an unsupported currency as currency_invalid on the currency param', () => {
    expect(refusal(() => validateStripeAmount('xyz', 100, 'amount'))).toMatchObject({
      code: 'currency_invalid',
      param: 'currency',
    });
  });

  it('refuses an upper-case currency (callers read it with parseStripeCurrency first)', () => {
    expect(refusal(() => validateStripeAmount('USD', 100, 'amount')).code).toBe('currency_invalid');
  });
});

describe('parseStripeCurrency', () => {
  it('returns a lower-case code as is', () => {
    expect(parseStripeCurrency('usd')).toBe('usd');
  });

  it('lower-cases an upper-case code', () => {
    expect(parseStripeCurrency('EUR')).toBe('eur');
  });

  it.each([
    ['an unsupported code', 'xyz'],
    ['an ISO currency Penny does not support on this API', 'mga'],
    ['a non-ASCII look-alike', 'uſd'],
    ['a four-letter code', 'usdx'],
    ['a number', 840],
    ['an object without a prototype (a form\'s currency[a]=x)', Object.assign(Object.create(null), { a: 'x' })],
    ['an array', ['usd']],
  ])('refuses %s as currency_invalid, naming the param', (_label, value) => {
    expect(refusal(() => parseStripeCurrency(value, 'currency'))).toMatchObject({
      code: 'currency_invalid',
      param: 'currency',
    });
  });

  it('refuses a missing currency as parameter_missing', () => {
    expect(refusal(() => parseStripeCurrency(undefined)).code).toBe('parameter_missing');
  });
});
