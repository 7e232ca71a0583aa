import { describe, expect, it } from 'vitest';
import {
  readCurrency, readLimit, readMetadata, readObject, readTimestamp,
} from '../src/validation.js';
import { refusal } from './support/refusal.js';

function metadataWithKeys(count: number): Record<string, string> {
  return Object.fromEntries(Array.from({ length: count }, (_, index) => [`key_${index}`, 'value']));
}

describe('readObject', () => {
  it('returns an object whose keys are all allowed', () => {
    const body = { currency: 'USD', type: 'asset' };
    expect(readObject(body, '', ['currency', 'type', 'code'])).toBe(body);
  });

  it('refuses an unknown top-level key as parameter_unknown naming it', () => {
    const error = refusal(() => readObject({ currency: 'USD', foo: 1 }, '', ['currency']));
    expect(error).toMatchObject({ code: 'parameter_unknown', param: 'foo' });
    expect(error.message).toContain('foo');
  });

  it('refuses an unknown nested key as parameter_unknown naming the nested param', () => {
    const error = refusal(() => readObject({ account: 'lacc_x', foo: 1 }, 'postings[0]', ['account']));
    expect(error).toMatchObject({ code: 'parameter_unknown', param: 'postings[0][foo]' });
  });

  it('refuses an unknown key even when its value is undefined-like (null)', () => {
    expect(refusal(() => readObject({ foo: null }, '', ['bar']))).toMatchObject({
      code: 'parameter_unknown', param: 'foo',
    });
  });

  it.each([
    ['null', null],
    ['an array', [1, 2]],
    ['a string', 'text'],
    ['a number', 5],
  ])('refuses a body that is %s as parameter_invalid_object without a param', (_label, value) => {
    const error = refusal(() => readObject(value, '', ['a']));
    expect(error.code).toBe('parameter_invalid_object');
    expect(error.param).toBeUndefined();
  });

  it('refuses a nested value that is not an object, naming the nested param', () => {
    expect(refusal(() => readObject('x', 'postings[1]', ['a']))).toMatchObject({
      code: 'parameter_invalid_object', param: 'postings[1]',
    });
  });
});

describe('readMetadata', () => {
  it('returns undefined when metadata is absent or null', () => {
    expect(readMetadata(undefined, 'metadata')).toBeUndefined();
    expect(readMetadata(null, 'metadata')).toBeUndefined();
  });

  it('accepts 50 keys', () => {
    expect(Object.keys(readMetadata(metadataWithKeys(50), 'metadata') ?? {})).toHaveLength(50);
  });

  it('refuses 51 keys as metadata_invalid naming the metadata param', () => {
    expect(refusal(() => readMetadata(metadataWithKeys(51), 'metadata'))).toMatchObject({
      code: 'metadata_invalid', param: 'metadata',
    });
  });

  it('accepts a 40-character key', () => {
    const key = 'k'.repeat(40);
    expect(readMetadata({ [key]: 'v' }, 'metadata')).toEqual({ [key]: 'v' });
  });

  it('refuses a 41-character key, naming that key', () => {
    const key = 'k'.repeat(41);
    expect(refusal(() => readMetadata({ [key]: 'v' }, 'metadata'))).toMatchObject({
      code: 'metadata_invalid', param: `metadata[${key}]`,
    });
  });

  it('refuses an empty key', () => {
    expect(refusal(() => readMetadata({ '': 'v' }, 'metadata')).code).toBe('metadata_invalid');
  });

  it('accepts a 500-character string value', () => {
    const value = 'v'.repeat(500);
    expect(readMetadata({ note: value }, 'metadata')).toEqual({ note: value });
  });

  it('refuses a 501-character string value, naming its key', () => {
    expect(refusal(() => readMetadata({ note: 'v'.repeat(501) }, 'metadata'))).toMatchObject({
      code: 'metadata_invalid', param: 'metadata[note]',
    });
  });

  it.each([
    ['a number', 5],
    ['a boolean', true],
    ['null', null],
    ['an object', { nested: 'x' }],
    ['an array', ['x']],
  ])('refuses a value that is %s, naming its key', (_label, value) => {
    expect(refusal(() => readMetadata({ order: value }, 'metadata'))).toMatchObject({
      code: 'metadata_invalid', param: 'metadata[order]',
    });
  });

  it('names the nested param of an entry inside a batch', () => {
    expect(refusal(() => readMetadata({ order: 1 }, 'entries[2][metadata]'))).toMatchObject({
      param: 'entries[2][metadata][order]',
    });
  });

  it.each([
    ['an array', ['a']],
    ['a string', 'a=b'],
    ['a number', 7],
  ])('refuses metadata that is %s', (_label, value) => {
    expect(refusal(() => readMetadata(value, 'metadata'))).toMatchObject({
      code: 'metadata_invalid', param: 'metadata',
    });
  });

  it('never silently drops a key: a "__proto__" key from JSON is either kept or refused', () => {
    const parsed: unknown = JSON.parse('{"__proto__": "x", "order": "42"}');
    let metadata: Record<string, string> | undefined;
    try {
      metadata = readMetadata(parsed, 'metadata');
    } catch (error) {
      expect(error).toMatchObject({ code: 'metadata_invalid' });
      return;
    }
    expect(Object.keys(metadata ?? {}).sort()).toEqual(['__proto__', 'order']);
  });
});

describe('readTimestamp', () => {
  it.each([
    '2026-01-31T12:00:00Z',
    '2026-01-31T12:00:00.5Z',
    '2026-01-31T12:00:00.123456Z',
    '2026-01-31T12:00:00+05:30',
    '2026-01-31T12:00:00-08:00',
    '2024-02-29T00:00:00Z',
  ])('accepts %s and returns it unchanged', (value) => {
    expect(readTimestamp(value, 'effective_at')).toBe(value);
  });

  it('returns undefined when absent or null', () => {
    expect(readTimestamp(undefined, 'effective_at')).toBeUndefined();
    expect(readTimestamp(null, 'effective_at')).toBeUndefined();
  });

  it.each([
    ['without a zone', '2026-01-31T12:00:00'],
    ['without a zone, with fractions', '2026-01-31T12:00:00.123'],
    ['a date only', '2026-01-31'],
    ['a space instead of T', '2026-01-31 12:00:00Z'],
    ['more than six fractional digits', '2026-01-31T12:00:00.1234567Z'],
    ['month 13', '2026-13-01T00:00:00Z'],
    ['hour 25', '2026-01-31T25:00:00Z'],
    ['a zone without colon', '2026-01-31T12:00:00+0530'],
    ['garbage', 'yesterday'],
    ['an empty string', ''],
    ['epoch milliseconds', 1_769_860_800_000],
    ['an object', { at: '2026-01-31T12:00:00Z' }],
  ])('refuses a timestamp %s as parameter_invalid_timestamp, naming the param', (_label, value) => {
    expect(refusal(() => readTimestamp(value, 'effective_at'))).toMatchObject({
      code: 'parameter_invalid_timestamp', param: 'effective_at',
    });
  });

  it.each([
    '2026-02-30T00:00:00Z',
    '2026-02-31T00:00:00Z',
    '2026-04-31T00:00:00Z',
    '2025-02-29T00:00:00Z',
  ])('refuses the calendar date that does not exist in %s', (value) => {
    expect(refusal(() => readTimestamp(value, 'effective_at'))).toMatchObject({
      code: 'parameter_invalid_timestamp', param: 'effective_at',
    });
  });
});

describe('readLimit', () => {
  it('defaults to 10 when absent', () => {
    expect(readLimit(undefined)).toBe(10);
  });

  it.each([
    ['"1"', '1', 1],
    ['"100"', '100', 100],
    ['"25"', '25', 25],
    ['the number 50', 50, 50],
  ])('accepts %s', (_label, value, expected) => {
    expect(readLimit(value)).toBe(expected);
  });

  it.each([
    ['"0"', '0'],
    ['"101"', '101'],
    ['"-1"', '-1'],
    ['"1.5"', '1.5'],
    ['"abc"', 'abc'],
    ['an empty string', ''],
    ['" 5"', ' 5'],
    ['"1e1"', '1e1'],
    ['the number 0', 0],
    ['the number 101', 101],
    ['the number 2.5', 2.5],
    ['null', null],
  ])('refuses %s as parameter_invalid_integer naming limit', (_label, value) => {
    expect(refusal(() => readLimit(value))).toMatchObject({ code: 'parameter_invalid_integer', param: 'limit' });
  });
});

describe('readCurrency', () => {
  it('does not quote a refused value that is not three letters (it could be a card number)', () => {
    expect(refusal(() => readCurrency('4242424242424242', 'currency')).message).not.toContain('4242');
  });

  it('quotes a refused three-letter code', () => {
    expect(refusal(() => readCurrency('abc', 'currency')).message).toContain('"abc"');
  });

  it('normalises a lower-case code to upper case', () => {
    expect(readCurrency('usd', 'currency')).toBe('USD');
  });

  it('normalises a mixed-case code', () => {
    expect(readCurrency('jPy', 'currency')).toBe('JPY');
  });

  it('returns undefined when absent or null', () => {
    expect(readCurrency(undefined, 'currency')).toBeUndefined();
    expect(readCurrency(null, 'currency')).toBeUndefined();
  });

  it.each([
    ['a four-letter code', 'usdx'],
    ['a two-letter code', 'us'],
    ['an unassigned code', 'abc'],
    ['the "no currency" code', 'XXX'],
    ['gold', 'XAU'],
    ['a code with spaces', ' USD'],
    ['a number', 840],
  ])('refuses %s as currency_invalid, naming the param', (_label, value) => {
    expect(refusal(() => readCurrency(value, 'postings[0][currency]'))).toMatchObject({
      code: 'currency_invalid', param: 'postings[0][currency]',
    });
  });

  it('refuses non-ASCII letters that upper-case into a code ("uſd", with a long s)', () => {
    expect(refusal(() => readCurrency('u\u017fd', 'currency'))).toMatchObject({
      code: 'currency_invalid', param: 'currency',
    });
  });
});
