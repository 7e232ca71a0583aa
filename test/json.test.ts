import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringifyJson } from '../src/json.js';

describe('stringifyJson', () => {
  it('writes a bigint above 2^53 exactly as a JSON integer', () => {
    expect(stringifyJson({ amount: 12345678901234567890n })).toBe('{"amount":12345678901234567890}');
  });

  it('writes a negative bigint exactly', () => {
    expect(stringifyJson({ difference: -12345678901234567890n })).toBe('{"difference":-12345678901234567890}');
  });

  it('writes small bigints and zero as plain integers', () => {
    expect(stringifyJson({ a: 0n, b: 5n, c: -1n })).toBe('{"a":0,"b":5,"c":-1}');
  });

  it('writes bigints nested in objects and arrays', () => {
    const value = {
      object: 'ledger.account',
      balances: { posted: 9007199254740993n, pending: -9007199254740993n },
      data: [{ amount: 18446744073709551616n }, [1n, 2n]],
    };
    expect(stringifyJson(value)).toBe(
      '{"object":"ledger.account","balances":{"posted":9007199254740993,"pending":-9007199254740993},'
      + '"data":[{"amount":18446744073709551616},[1,2]]}',
    );
  });

  it('writes a bare bigint at the top level', () => {
    expect(stringifyJson(12345678901234567890n)).toBe('12345678901234567890');
  });

  it('leaves ordinary strings untouched, including digit strings and the word bigint', () => {
    const value = { id: 'lent_abc', digits: '12345678901234567890', word: 'bigint:5', empty: '' };
    expect(stringifyJson(value)).toBe(JSON.stringify(value));
  });

  it('writes values without bigints exactly as JSON.stringify does', () => {
    fc.assert(fc.property(fc.jsonValue(), (value) => {
      expect(stringifyJson(value)).toBe(JSON.stringify(value));
    }), { numRuns: 300 });
  });

  it('writes every bigint so that its digits in the text are exactly its decimal form', () => {
    fc.assert(fc.property(fc.bigInt({ min: -(2n ** 128n), max: 2n ** 128n }), (value) => {
      expect(stringifyJson({ value })).toBe(`{"value":${value.toString()}}`);
    }), { numRuns: 300 });
  });

  it('keeps a string that equals its internal bigint marker a string', () => {
    const text = stringifyJson({ param: '\u0000bigint:5' });
    expect(JSON.parse(text)).toEqual({ param: '\u0000bigint:5' });
  });

  it('writes valid JSON for any string, even one that contains its internal bigint marker', () => {
    const tricky = fc.tuple(fc.string({ maxLength: 5 }), fc.bigInt({ min: -99n, max: 99n }))
      .map(([prefix, digits]) => `${prefix}"\u0000bigint:${digits}`);
    fc.assert(fc.property(fc.oneof(fc.string(), tricky), (value) => {
      expect(JSON.parse(stringifyJson({ value, after: 1 }))).toEqual({ value, after: 1 });
    }), { numRuns: 200 });
  });
});
