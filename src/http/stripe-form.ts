import type { FastifyInstance, FastifyRequest } from 'fastify';
import qs from 'qs';
import { PennyError } from '../errors.js';
import { containsCardNumber } from '../security/card-filter.js';
import { invalid } from '../validation.js';

/**
 * Stripe's request bodies: `application/x-www-form-urlencoded`, written the way stripe-node writes
 * them (Stripe's API reference, "Transport, encoding"): nested objects as `metadata[k]=v`, arrays indexed as
 * `expand[0]=a&expand[1]=b` (the docs' curl examples use `expand[]=a`; both give the same array),
 * and `null` as an empty value (`metadata[k]=` unsets one key, `metadata=` all of them). Every value
 * is a string; readStripeInteger and readStripeBoolean below read numbers and flags from them.
 *
 * What the parser does with bodies stripe-node never sends (each is tested):
 * - More than `arrayLimit` elements in one array, or an index of `arrayLimit` or more
 *   (`expand[100]=x`): refused with `invalid_form_body`. qs would otherwise turn the array into an
 *   object keyed by index strings (`{ "0": "a", "100": "x" }`), a different shape from the one a
 *   smaller request gets; refusing keeps the shape of a parameter independent of its size.
 * - Gaps in indices (`expand[0]=a&expand[2]=c`): the array is compacted, in index order, to
 *   `["a", "c"]`; no value is lost.
 * - The same name twice (`a=1&a=2`), or a name used both as a value and as an object: the values
 *   are combined into an array (`["1", "2"]`); no value is lost, and a reader that wants a string
 *   refuses the array.
 * - An array given a named key (`a[]=1&a[x]=2`): an object `{ "0": "1", x: "2" }`, which a reader
 *   that wants an array refuses.
 * - Nesting deeper than `depth` brackets, more than `parameterLimit` parameters, a name that is not
 *   `name[segment][segment]…` (`a[b]c`, `a[`, `[a]`), malformed percent-encoding, and any name with
 *   a `__proto__` segment or `constructor` followed by `prototype`: refused with
 *   `invalid_form_body` (as Fastify refuses those keys in JSON bodies), never silently dropped.
 * - An empty name (`=1`, or the empty parameters of `a=1&&b=2&`) is ignored, as qs does.
 *
 * Objects in the result have no prototype (Object.create(null)), so no key can reach
 * Object.prototype; arrays are ordinary arrays.
 */
export const stripeFormLimits = {
  /** Bracket levels below the top-level name: `a[b][c][d][e][f]` is the deepest accepted. */
  depth: 5,
  /** Elements per array; indices 0 to arrayLimit - 1. */
  arrayLimit: 100,
  /** `name=value` pairs per body. */
  parameterLimit: 1000,
} as const;

const wellFormedName = /^[^[\]]+(?:\[[^[\]]*\])*$/;

const parseOptions = {
  allowPrototypes: false,
  plainObjects: true,
  depth: stripeFormLimits.depth,
  strictDepth: true,
  arrayLimit: stripeFormLimits.arrayLimit,
  parameterLimit: stripeFormLimits.parameterLimit,
  throwOnLimitExceeded: true,
  parseArrays: true,
  allowSparse: false,
  allowEmptyArrays: false,
  allowDots: false,
  comma: false,
  delimiter: '&',
  duplicates: 'combine',
  strictMerge: true,
  strictNullHandling: false,
  ignoreQueryPrefix: false,
  charset: 'utf-8',
  charsetSentinel: false,
  interpretNumericEntities: false,
  decoder: decodeComponent,
} satisfies qs.IParseOptions;

/** Parses a form body; throws PennyError `invalid_form_body` for what it refuses (see above). */
export function parseStripeForm(body: string): Record<string, unknown> {
  try {
    return qs.parse(body, parseOptions) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof PennyError) throw error;
    // qs throws RangeError for the depth, array and parameter limits.
    if (error instanceof RangeError) throw formError(`The form body was refused: ${error.message}`, error);
    throw error;
  }
}

/** Percent-decoding that refuses what does not decode, and names that could reach a prototype. */
function decodeComponent(text: string, _defaultDecoder: unknown, _charset: string, kind: 'key' | 'value'): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(text.replace(/\+/g, ' '));
  } catch (error) {
    // Not quoted: text that does not decode cannot be checked for a card number.
    throw formError('The form body was refused: a name or value in it is not valid percent-encoded UTF-8.', error);
  }
  if (kind === 'key' && decoded !== '') checkName(decoded);
  return decoded;
}

function checkName(name: string): void {
  if (!wellFormedName.test(name)) {
    throw formError(`The form body was refused: ${shown(name)} is not a parameter name of the form name[key][key].`);
  }
  const segments = name.split(/[[\]]+/).filter((segment) => segment !== '');
  const poisoned = segments.some((segment, index) =>
    segment === '__proto__' || (segment === 'constructor' && segments[index + 1] === 'prototype'));
  if (poisoned) {
    throw formError(`The form body was refused: ${shown(name)} names __proto__ or constructor[prototype].`);
  }
}

function formError(message: string, cause?: unknown): PennyError {
  return new PennyError({ code: 'invalid_form_body', message, cause });
}

/** A client's text quoted in an error message, unless it holds a card number (never echoed). */
function shown(text: string): string {
  if (containsCardNumber(text)) return 'a text that holds a card number';
  return JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}…` : text);
}

/** The text of each request's form body, as received: the same text always parses to the same body. */
const formTexts = new WeakMap<object, string>();

/** The text a request's form body was parsed from; undefined when its body was not a form. */
export function formBodyText(request: object): string | undefined {
  return formTexts.get(request);
}

/**
 * Parses `application/x-www-form-urlencoded` bodies (any charset parameter; read as UTF-8) with
 * parseStripeForm. A refused body reaches the error handler as PennyError `invalid_form_body`; a
 * body over bodyLimit as Fastify's FST_ERR_CTP_BODY_TOO_LARGE. An empty body is `{}`.
 */
export function registerStripeFormParser(
  app: FastifyInstance,
  options: {
    bodyLimit: number;
    /** True when the request is already answered from its text alone: its body is left unparsed (`{}`). */
    answeredByText?: (request: FastifyRequest, text: string) => boolean;
  },
): void {
  app.addContentTypeParser<string>(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: options.bodyLimit },
    (request, body, done) => {
      if (options.answeredByText?.(request, body) === true) {
        formTexts.set(request, body);
        done(null, {});
        return;
      }
      let parsed: Record<string, unknown>;
      try {
        parsed = parseStripeForm(body);
      } catch (error) {
        done(error as Error, undefined);
        return;
      }
      formTexts.set(request, body);
      done(null, parsed);
    },
  );
}

/**
 * An integer from a form string (`/^-?\d+$/`) or a JSON integer. Absent (undefined or null) gives
 * undefined; anything else, including the empty string, is refused with
 * `parameter_invalid_integer`, as is a value beyond ±(2^53 - 1), which a number cannot hold exactly.
 * A caller for which an empty value means "unset" checks for '' before calling.
 */
export function readStripeInteger(value: unknown, param: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  const number = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isSafeInteger(number)) {
    throw invalid(param, `${param} must be an integer; received ${described(value)}.`, 'parameter_invalid_integer');
  }
  // '-0' is 0.
  return number === 0 ? 0 : number;
}

/**
 * An amount in Stripe's units of a currency, as bigint: read from its digits (or a JSON safe
 * integer), never through a float. Refused as `parameter_invalid_integer` like any integer.
 */
export function readStripeAmount(value: unknown, param: string): bigint | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string' && /^-?\d{1,16}$/.test(value)) return BigInt(value);
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  throw invalid(param, `${param} must be an integer; received ${described(value)}.`, 'parameter_invalid_integer');
}

/**
 * A flag from the form strings 'true' and 'false' or a JSON boolean. Absent (undefined or null)
 * gives undefined; anything else ('1', 'yes', 'TRUE', '') is refused with `parameter_invalid_boolean`.
 */
export function readStripeBoolean(value: unknown, param: string): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'boolean') return value;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw invalid(param, `${param} must be true or false; received ${described(value)}.`, 'parameter_invalid_boolean');
}

function described(value: unknown): string {
  if (typeof value === 'string') return shown(value);
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return `a ${typeof value}`;
}
