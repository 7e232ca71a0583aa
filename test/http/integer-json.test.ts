import { describe, expect, it } from 'vitest';
import { nonIntegerNumberTokens } from '../../src/http/integer-json.js';

/** The raw-text scan behind the ledger API's integer amounts (the API's tests are in test/ledger). */
function tokensOf(text: string): string[] {
  return nonIntegerNumberTokens(text).map(([start, end]) => text.slice(start, end));
}

describe('finding numbers written with a fraction or an exponent', () => {
  it('finds each one, and no integer', () => {
    expect(tokensOf('{"a": 100.0, "b": [1e3, -2, 3E-2, 0, -0.5], "c": 12}')).toEqual(['100.0', '1e3', '3E-2', '-0.5']);
  });

  it('skips strings, with escaped quotes and backslashes in them', () => {
    expect(tokensOf(String.raw`{"a": "1.5 \" 2e3", "b": "\\", "c": 4.0, "d": "\\\"5.0"}`)).toEqual(['4.0']);
  });

  it('leaves a malformed number for JSON.parse to refuse', () => {
    expect(tokensOf('[1.2.3, 1e, 01.5, -]')).toEqual([]);
  });

  it('finds none in a body without a digit outside strings before a dot or an e', () => {
    expect(tokensOf('{"effective_at": "2024-01-02T03:04:05.678Z", "account": "lacc_1e5"}')).toEqual([]);
  });
});
