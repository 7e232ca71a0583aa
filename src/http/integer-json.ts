import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { NonIntegerNumber } from '../money/amount.js';

/**
 * JSON bodies whose amounts must be integers (the ledger API). JSON.parse reads `100.0` and `1e3`
 * as the integers 100 and 1000, and Node 20's reviver does not see the source text, so the raw
 * text is scanned first for number tokens written with a fraction or an exponent, outside strings.
 * Under an `amount` key such a token becomes a NonIntegerNumber, which parseAmountMinor refuses;
 * elsewhere it is the number JSON.parse gives (no other ledger field is a number). A body without
 * one (the usual case) is parsed as it is; the scan costs a fraction of JSON.parse (one pass that
 * jumps over strings with indexOf).
 */
export function registerIntegerJsonParser(scope: FastifyInstance): void {
  const parseJson = scope.getDefaultJsonParser('error', 'error');
  scope.removeContentTypeParser('application/json');
  scope.addContentTypeParser<string>('application/json', { parseAs: 'string' }, (request, text, done) => {
    const tokens = nonIntegerNumberTokens(text);
    if (tokens.length === 0) {
      parseJson(request, text, done);
      return;
    }
    parseJson(request, markTokens(text, tokens), (error, body) =>
      done(error, error === null ? unmark(body) : undefined));
  });
}

const quote = 0x22;
const backslash = 0x5c;
const minus = 0x2d;
const plus = 0x2b;
const dot = 0x2e;
const lowerE = 0x65;
const upperE = 0x45;

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

/** A JSON number with a fraction or an exponent; a malformed one is left for JSON.parse to refuse. */
const nonIntegerNumber = /^-?(?:0|[1-9]\d*)(?:\.\d+(?:[eE][+-]?\d+)?|[eE][+-]?\d+)$/;

/** The [start, end) of each number token written with a fraction or an exponent, outside strings. */
export function nonIntegerNumberTokens(text: string): (readonly [number, number])[] {
  const tokens: (readonly [number, number])[] = [];
  let index = 0;
  while (index < text.length) {
    const code = text.charCodeAt(index);
    if (code === quote) {
      index = stringEnd(text, index + 1);
    } else if (code === minus || isDigit(code)) {
      const end = numberEnd(text, index);
      if (nonIntegerNumber.test(text.slice(index, end))) tokens.push([index, end]);
      index = end;
    } else {
      index += 1;
    }
  }
  return tokens;
}

/** Just past the quote that closes the string whose contents start at `from`. */
function stringEnd(text: string, from: number): number {
  for (let start = from; ;) {
    const closing = text.indexOf('"', start);
    if (closing === -1) return text.length;
    let backslashes = 0;
    while (text.charCodeAt(closing - 1 - backslashes) === backslash) backslashes += 1;
    if (backslashes % 2 === 0) return closing + 1;
    start = closing + 1;
  }
}

function numberEnd(text: string, start: number): number {
  let end = start + 1;
  for (; end < text.length; end += 1) {
    const code = text.charCodeAt(end);
    if (!isDigit(code) && code !== dot && code !== lowerE && code !== upperE && code !== plus && code !== minus) break;
  }
  return end;
}

// A random marker per process: a client cannot write a string that reads as a marked number.
const markerToken = randomBytes(12).toString('hex');
const marker = `\u0000${markerToken}:`;

/** Each token becomes a string holding the marker and the token's text. */
function markTokens(text: string, tokens: readonly (readonly [number, number])[]): string {
  let result = '';
  let last = 0;
  for (const [start, end] of tokens) {
    result += `${text.slice(last, start)}"\\u0000${markerToken}:${text.slice(start, end)}"`;
    last = end;
  }
  return result + text.slice(last);
}

function unmark(value: unknown, key?: string): unknown {
  if (typeof value === 'string') {
    if (!value.startsWith(marker)) return value;
    const source = value.slice(marker.length);
    return key === 'amount' ? new NonIntegerNumber(source) : Number(source);
  }
  if (Array.isArray(value)) return value.map((item) => unmark(item));
  if (value !== null && typeof value === 'object') {
    const object = value as Record<string, unknown>;
    for (const name of Object.keys(object)) object[name] = unmark(object[name], name);
  }
  return value;
}
