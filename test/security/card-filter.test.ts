import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PennyError } from '../../src/errors.js';
import {
  cardDataError,
  cardFilterLimits,
  containsCardNumber,
  findCardData,
  inspectCardData,
} from '../../src/security/card-filter.js';

/** Luhn, written plainly and independently of the filter's prefix sums. */
function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let index = 0; index < digits.length; index += 1) {
    let digit = Number(digits[digits.length - 1 - index]);
    if (index % 2 === 1) digit = digit * 2 > 9 ? digit * 2 - 9 : digit * 2;
    sum += digit;
  }
  return sum % 10 === 0;
}

/** The digit that makes `body` + digit pass Luhn. */
function checkDigit(body: string): string {
  for (let digit = 0; digit <= 9; digit += 1) if (luhnValid(`${body}${digit}`)) return String(digit);
  throw new Error('unreachable');
}

/** decisions.md's network table, as prefix tests on the digit string. */
function fitsNetwork(digits: string): boolean {
  const length = digits.length;
  const four = Number(digits.slice(0, 4));
  const between = (from: number, to: number) => length >= from && length <= to;
  return (/^4/.test(digits) && [13, 16, 19].includes(length)) ||
    ((/^5[1-5]/.test(digits) || (four >= 2221 && four <= 2720)) && length === 16) ||
    (/^3[47]/.test(digits) && length === 15) ||
    (/^(6011|64[4-9]|65)/.test(digits) && between(16, 19)) ||
    (four >= 3528 && four <= 3589 && between(16, 19)) ||
    (/^(30[0-5]|36|38)/.test(digits) && between(14, 19)) ||
    (/^62/.test(digits) && between(16, 19));
}

/** The rule by brute force: every 13–19 digit window of every run of digits joined by single spaces or dashes. */
function naiveContainsCardNumber(text: string): boolean {
  for (const run of text.match(/\d(?:[ -]?\d)*/g) ?? []) {
    const digits = run.replace(/[ -]/g, '');
    for (let start = 0; start < digits.length; start += 1) {
      for (let length = 13; length <= 19 && start + length <= digits.length; length += 1) {
        const window = digits.slice(start, start + length);
        if (fitsNetwork(window) && luhnValid(window)) return true;
      }
    }
  }
  return false;
}

function nested(levels: number, leaf: unknown): unknown {
  let value = leaf;
  for (let level = 0; level < levels; level += 1) value = { a: value };
  return value;
}

describe('findCardData: card numbers in values', () => {
  it('finds the Stripe test Visa 4242424242424242 and names its field', () => {
    expect(findCardData({ description: '4242424242424242' })).toBe('description');
  });

  it('finds a card number written in groups with spaces', () => {
    expect(findCardData({ description: 'card 4242 4242 4242 4242 thanks' })).toBe('description');
  });

  it('finds a card number written in groups with dashes', () => {
    expect(findCardData({ description: '4242-4242-4242-4242' })).toBe('description');
  });

  it('names a nested metadata value Stripe-style', () => {
    expect(findCardData({ amount: 1500, metadata: { order: 'A-17', note: 'paid with 4242424242424242' } }))
      .toBe('metadata[note]');
  });

  it('names a value inside an array of objects Stripe-style', () => {
    expect(findCardData({ items: [{ description: 'tea' }, { description: 'pan 4242424242424242' }] }))
      .toBe('items[1][description]');
  });

  it('finds the Amex test number 378282246310005', () => {
    expect(findCardData({ description: '378282246310005' })).toBe('description');
  });

  it('finds the Mastercard 2-series test number 2223003122003222', () => {
    expect(findCardData({ description: '2223003122003222' })).toBe('description');
  });

  it.each([
    ['Mastercard 51–55', '5555555555554444'],
    ['Discover', '6011111111111117'],
    ['JCB', '3566002020360505'],
    ['Diners, 14 digits', '36227206271667'],
    ['UnionPay', '6200000000000005'],
    ['Visa, 13 digits', '4222222222222'],
  ])('finds a %s test number', (_network, number) => {
    expect(findCardData({ description: number })).toBe('description');
  });

  it('finds a card number whose last group is one digit at the very end of the text', () => {
    expect(findCardData({ description: '424242424242424 2' })).toBe('description');
  });

  it('finds a card number followed by its security code in the same run', () => {
    expect(findCardData({ description: '4242 4242 4242 4242 123' })).toBe('description');
  });

  it('finds a 16-digit card number inside a 25-digit run', () => {
    expect(findCardData({ description: `000000000${'4242424242424242'}` })).toBe('description');
  });

  it('finds a card number glued to letters', () => {
    expect(findCardData({ description: 'ref:4242424242424242abc' })).toBe('description');
  });

  it('finds a card number sent as a JSON number', () => {
    expect(findCardData({ metadata: { note: 4242424242424242 } })).toBe('metadata[note]');
  });

  it('names a key that holds a card number with its digits masked', () => {
    expect(findCardData({ metadata: { '4242424242424242': 'x' } })).toBe('metadata[****************]');
  });

  it('returns the first field in document order', () => {
    expect(findCardData({ a: 'fine', b: '4242424242424242', c: '378282246310005' })).toBe('b');
  });

  it('names a bare string body "body"', () => {
    expect(findCardData('4242424242424242')).toBe('body');
  });
});

describe('findCardData: what is not card data', () => {
  it('allows a Luhn-valid number without a card-network prefix', () => {
    expect(luhnValid('1000000000000008')).toBe(true);
    expect(findCardData({ description: '1000000000000008' })).toBeUndefined();
  });

  it('refuses 1234567812345670 nonetheless: it holds 4567812345670, a Luhn-valid 13-digit Visa window', () => {
    expect(luhnValid('4567812345670')).toBe(true);
    expect(findCardData({ description: '1234567812345670' })).toBe('description');
  });

  it('allows the Luhn-invalid 4242424242424241', () => {
    expect(findCardData({ description: '4242424242424241' })).toBeUndefined();
  });

  it.each([
    ['Visa', '4', [14, 15, 17, 18]],
    ['Mastercard 51–55', '51', [15, 17]],
    ['Mastercard 2-series', '2221', [15, 17]],
    ['Amex', '34', [14, 16]],
    ['Discover 6011', '6011', [15]],
    ['Discover 644–649', '644', [15]],
    ['Discover 65', '65', [15]],
    ['JCB', '3528', [15]],
    ['Diners 300–305', '300', [13]],
    ['Diners 36', '36', [13]],
    ['UnionPay', '62', [14, 15]],
  ] as const)('allows a Luhn-valid %s-prefixed number of a length the network does not use', (_network, prefix, lengths) => {
    for (const length of lengths) {
      const body = prefix.padEnd(length - 1, '0');
      const number = `${body}${checkDigit(body)}`;
      expect(naiveContainsCardNumber(number), number).toBe(false);
      expect(findCardData({ description: number }), number).toBeUndefined();
    }
  });

  it('allows a 12-digit run', () => {
    expect(findCardData({ description: '424242424242' })).toBeUndefined();
  });

  it.each([
    ['a US phone number', '+1 (415) 555-0100'],
    ['a UK phone number', '+44 20 7946 0958'],
    ['an order id', 'ORD-2024-000123'],
    ['a dated order reference', 'order 20240131-000042'],
    ['a millisecond timestamp', '1767225600000'],
    ['an amount with decimals', '4242.42'],
  ])('allows %s', (_label, text) => {
    expect(findCardData({ metadata: { value: text } })).toBeUndefined();
  });

  it('does not join groups separated by two spaces into one run', () => {
    expect(findCardData({ description: '4242  4242  4242  4242' })).toBeUndefined();
  });

  it('allows Penny\'s own fields', () => {
    const body = {
      amount: 1500, currency: 'usd', account: 'assets:cash', external_reference: 'inv_2026_0001',
      postings: [{ account: 'revenue', amount: -1500 }], metadata: { order: '17' },
    };
    expect(findCardData(body)).toBeUndefined();
  });

  it.each([
    'account_number', 'bank_account_number', 'accountNumber', 'routing_number', 'iban', 'bic', 'sort_code',
  ])('does not scan the bank-account field %s', (key) => {
    expect(findCardData({ bank_account: { [key]: '4242424242424242' } })).toBeUndefined();
  });

  it('still scans a free-text field beside bank-account data', () => {
    expect(findCardData({ bank_account: { account_number: '000123456789', account_holder_name: '4242424242424242' } }))
      .toBe('bank_account[account_holder_name]');
  });

  it('does not take a key with "bic" inside a word for a bank-account field', () => {
    expect(findCardData({ public_note: '4242424242424242' })).toBe('public_note');
  });

  it('returns undefined for bodies with nothing to scan', () => {
    for (const body of [undefined, null, true, {}, [], { empty: {} }]) expect(findCardData(body)).toBeUndefined();
  });
});

describe('findCardData: card-number and security-code fields', () => {
  it('flags card[number] even when its value is empty', () => {
    expect(findCardData({ card: { number: '' } })).toBe('card[number]');
  });

  it('flags card[number] when its value is null', () => {
    expect(findCardData({ card: { number: null } })).toBe('card[number]');
  });

  it('flags card[cvc]', () => {
    expect(findCardData({ card: { exp_month: 12, cvc: '123' } })).toBe('card[cvc]');
  });

  it.each(['card_number', 'cardNumber', 'CARD_NUMBER', 'cvc', 'cvv', 'CVV2', 'cvc2', 'security_code'])(
    'flags a top-level %s field', (key) => {
      expect(findCardData({ [key]: 'x' })).toBe(key);
    });

  it('flags a flat form-style card[number] key', () => {
    expect(findCardData({ 'card[number]': '' })).toBe('card[number]');
  });

  it('flags number in a card nested deeper', () => {
    expect(findCardData({ payment_method_data: { type: 'card', card: { number: 'x' } } }))
      .toBe('payment_method_data[card][number]');
  });

  it('reads objects without a prototype, as the form parser makes them', () => {
    const card = Object.assign(Object.create(null) as Record<string, unknown>, { exp_year: 2030, number: 'x' });
    const body = Object.assign(Object.create(null) as Record<string, unknown>, { source: card });
    expect(findCardData(body)).toBe('source[number]');
  });

  it('flags number in an object shaped like a card', () => {
    expect(findCardData({ source: { object: 'card', number: 'x' } })).toBe('source[number]');
  });

  it('does not flag number or pan outside a card', () => {
    expect(findCardData({ invoice: { number: 'INV-0001' }, metadata: { pan: 'ABCDE1234F' } })).toBeUndefined();
  });
});

describe('findCardData: freeTextOnly', () => {
  it('does not scan a field that is not free text', () => {
    expect(findCardData({ external_reference: '4242424242424242' }, { freeTextOnly: true })).toBeUndefined();
  });

  it('scans the same field without the option', () => {
    expect(findCardData({ external_reference: '4242424242424242' })).toBe('external_reference');
  });

  it.each([
    ['metadata', { metadata: { ref: '4242424242424242' } }, 'metadata[ref]'],
    ['description', { description: '4242424242424242' }, 'description'],
    ['statement_descriptor_suffix', { statement_descriptor_suffix: '4242424242424242' }, 'statement_descriptor_suffix'],
    ['a name', { billing_details: { name: '4242424242424242' } }, 'billing_details[name]'],
    ['an address', { shipping: { address: { line1: '4242424242424242' } } }, 'shipping[address][line1]'],
  ])('scans %s', (_label, body, param) => {
    expect(findCardData(body, { freeTextOnly: true })).toBe(param);
  });

  it('still flags a card[number] field', () => {
    expect(findCardData({ card: { number: '' } }, { freeTextOnly: true })).toBe('card[number]');
  });
});

describe('findCardData: bounds', () => {
  it(`checks a body nested ${cardFilterLimits.depthMax} levels deep`, () => {
    expect(findCardData(nested(cardFilterLimits.depthMax, 'fine'))).toBeUndefined();
  });

  it('refuses a body nested deeper, at the object where it stopped', () => {
    const deepest = Array.from({ length: cardFilterLimits.depthMax }, () => 'a');
    const stoppedAt = deepest.slice(1).reduce((param, key) => `${param}[${key}]`, 'a');
    expect(inspectCardData(nested(cardFilterLimits.depthMax + 1, 'fine')))
      .toEqual({ param: stoppedAt, reason: 'too_deep' });
  });

  it('refuses a cyclic object instead of looping', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(inspectCardData(cyclic)?.reason).toBe('too_deep');
  });

  it(`checks a body of ${cardFilterLimits.nodesMax} values`, () => {
    // The body, the array and its items.
    expect(findCardData({ items: Array<string>(cardFilterLimits.nodesMax - 2).fill('x') })).toBeUndefined();
  });

  it('refuses a body of more values, at the value where it stopped', () => {
    const items = Array<string>(cardFilterLimits.nodesMax - 1).fill('x');
    expect(inspectCardData({ items })).toEqual({ param: `items[${cardFilterLimits.nodesMax - 2}]`, reason: 'too_large' });
  });

  it('refuses a body with more text than it scans, at the value where it stopped', () => {
    const body = { a: 'x', b: 'x'.repeat(cardFilterLimits.scannedCharsMax) };
    expect(inspectCardData(body)).toEqual({ param: 'b', reason: 'too_large' });
  });

  it('scans a value whole: a card number after 100,000 characters is found', () => {
    expect(findCardData({ description: `${'x'.repeat(100_000)} 4242424242424242` })).toBe('description');
  });

  it('scans 1 MiB of digits that fit a network prefix at every position in well under two seconds', () => {
    const started = performance.now();
    expect(containsCardNumber('5'.repeat(1024 * 1024))).toBe(false);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe('findCardData: properties', () => {
  const text = fc.string({ maxLength: 40 });

  it('finds any Visa-prefixed Luhn-valid 16-digit number embedded in random text', () => {
    fc.assert(fc.property(fc.stringMatching(/^\d{14}$/), text, text, (middle, before, after) => {
      const body = `4${middle}`;
      const card = `${body}${checkDigit(body)}`;
      expect(findCardData({ metadata: { note: `${before}${card}${after}` } })).toBe('metadata[note]');
    }));
  });

  it('does not flag a 13-digit run that fails Luhn, in text without other digits', () => {
    const noDigits = fc.string({ maxLength: 40 }).map((value) => value.replace(/\d/g, ''));
    const failing = fc.stringMatching(/^\d{13}$/).filter((digits) => !luhnValid(digits));
    fc.assert(fc.property(failing, noDigits, noDigits, (digits, before, after) => {
      expect(findCardData({ description: `${before}${digits}${after}` })).toBeUndefined();
    }));
  });

  it('agrees with a brute-force reading of the rule on random digit-heavy text', () => {
    // Network prefixes and their neighbours just outside each range, so windows hit every prefix rule.
    const prefixes = ['4', '51', '55', '50', '56', '2221', '2720', '2220', '2721', '34', '37', '35', '6011', '644',
      '649', '643', '65', '3528', '3589', '3527', '3590', '300', '305', '306', '36', '38', '62'];
    const pieces = fc.constantFrom(...'0123456789', ' ', '-', 'x', '.', ...prefixes);
    fc.assert(fc.property(fc.array(pieces, { maxLength: 40 }).map((chars) => chars.join('')), (value) => {
      expect(containsCardNumber(value)).toBe(naiveContainsCardNumber(value));
    }), { numRuns: 2000 });
  });
});

describe('cardDataError', () => {
  it('is a 400-class invalid_request_error with code card_number_in_request and the param', () => {
    const error = cardDataError('metadata[note]');
    expect(error).toBeInstanceOf(PennyError);
    expect(error).toMatchObject({ code: 'card_number_in_request', type: 'invalid_request_error', param: 'metadata[note]' });
  });

  it('names the field in its message', () => {
    expect(cardDataError('metadata[note]').message).toBe('The request contains what looks like a card number in ' +
      'metadata[note]. Penny never accepts card data; send a payment method id instead.');
  });

  it('never repeats the card number it found', () => {
    for (const body of [
      { metadata: { note: 'card 4242 4242 4242 4242' } },
      { metadata: { '4242424242424242': 'x' } },
      { card: { number: '4242424242424242' } },
    ]) {
      const finding = inspectCardData(body);
      expect(finding).toBeDefined();
      const error = cardDataError(finding?.param ?? '', finding?.reason);
      expect(error.message).not.toMatch(/4242/);
      expect(JSON.stringify(error)).not.toMatch(/4242/);
    }
  });

  it('says a body too deep was refused because it could not be checked', () => {
    expect(cardDataError('a[a]', 'too_deep').message).toMatch(/nested too deeply to check for card data/);
  });
});
