import { limits } from './config.js';
import type { ErrorCode } from './error-codes.js';
import { PennyError } from './errors.js';
import { isCurrency } from './money/currency.js';

/**
 * Readers for request bodies: each refuses with a coded error naming the parameter, so a bad
 * request is refused before anything is written.
 */
export type JsonObject = Record<string, unknown>;

export function paramName(prefix: string, key: string | number): string {
  return prefix === '' ? String(key) : `${prefix}[${key}]`;
}

export function readObject(value: unknown, param: string, allowedKeys: readonly string[]): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new PennyError({
      code: 'parameter_invalid_object',
      param: param === '' ? undefined : param,
      message: param === '' ? 'The request body must be a JSON object.' : `${param} must be an object.`,
    });
  }
  const object = value as JsonObject;
  for (const key of Object.keys(object)) {
    if (!allowedKeys.includes(key)) {
      const name = paramName(param, key);
      throw new PennyError({
        code: 'parameter_unknown',
        param: name,
        message: `Received unknown parameter: ${name}`,
      });
    }
  }
  return object;
}

export function missing(param: string): PennyError {
  return new PennyError({
    code: 'parameter_missing',
    param,
    message: `Missing required param: ${param}.`,
  });
}

export function invalid(param: string, message: string, code: ErrorCode = 'parameter_invalid'): PennyError {
  return new PennyError({ code, param, message });
}

export function readString(
  value: unknown,
  param: string,
  options: { lengthMax: number; required: true },
): string;
export function readString(
  value: unknown,
  param: string,
  options: { lengthMax: number; required?: false },
): string | undefined;
export function readString(
  value: unknown,
  param: string,
  options: { lengthMax: number; required?: boolean },
): string | undefined {
  if (value === undefined || value === null) {
    if (options.required) throw missing(param);
    return undefined;
  }
  if (typeof value !== 'string') throw invalid(param, `${param} must be a string.`, 'parameter_invalid_string');
  if (value.length === 0 && options.required) throw missing(param);
  if (value.length > options.lengthMax) {
    throw invalid(param, `${param} must be at most ${options.lengthMax} characters.`, 'parameter_invalid_string');
  }
  return value;
}

export function readBoolean(value: unknown, param: string): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw invalid(param, `${param} must be true or false.`, 'parameter_invalid_boolean');
  return value;
}

export function readEnum<T extends string>(
  value: unknown,
  param: string,
  allowed: readonly T[],
): T | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw invalid(param, `${param} must be one of: ${allowed.join(', ')}.`);
  }
  return value as T;
}

export function readCurrency(value: unknown, param: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalid(param, `${param} must be a currency code.`, 'currency_invalid');
  // Check ASCII before upper-casing: 'uſd'.toUpperCase() is 'USD'.
  const code = /^[A-Za-z]{3}$/.test(value) ? value.toUpperCase() : '';
  if (!isCurrency(code)) {
    // Only a three-letter code is quoted back: any other text could hold a card number.
    const quoted = code === '' ? 'the value' : `"${value}"`;
    throw invalid(param, `${param}: ${quoted} is not a supported ISO 4217 currency.`, 'currency_invalid');
  }
  return code;
}

/** An instant as ISO 8601 with a time zone; microseconds are kept (PostgreSQL's precision). */
export function readTimestamp(value: unknown, param: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !isRealTimestamp(value)) {
    throw invalid(param, `${param} must be an ISO 8601 timestamp with a time zone, e.g. 2026-01-31T12:00:00Z.`,
      'parameter_invalid_timestamp');
  }
  return value;
}

const timestampPattern =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(Z|([+-])(\d{2}):(\d{2}))$/;

/** A calendar date that exists (no 30 February), a real time, a year from 1, an offset within ±14:00. */
function isRealTimestamp(value: string): boolean {
  const match = timestampPattern.exec(value);
  if (match === null) return false;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as number[];
  const offsetHours = match[10] === undefined ? 0 : Number(match[10]);
  const offsetMinutes = match[11] === undefined ? 0 : Number(match[11]);
  if (year === undefined || year < 1 || offsetHours > 14 || offsetMinutes > 59) return false;
  const date = new Date(Date.UTC(year, (month ?? 0) - 1, day, hour, minute, second));
  date.setUTCFullYear(year);
  return date.getUTCMonth() === (month ?? 0) - 1 && date.getUTCDate() === day &&
    date.getUTCHours() === hour && date.getUTCMinutes() === minute && date.getUTCSeconds() === second;
}

/** Metadata within Stripe's limits: 50 keys, keys up to 40 characters, string values up to 500. */
export function readMetadata(value: unknown, param: string): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid(param, `${param} must be an object.`, 'metadata_invalid');
  const entries = Object.entries(value as JsonObject);
  if (entries.length > limits.metadataKeysMax) {
    throw invalid(param, `${param} can have at most ${limits.metadataKeysMax} keys.`, 'metadata_invalid');
  }
  // Own data properties only: assigning to a "__proto__" key would silently drop it.
  const metadata: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [key, item] of entries) {
    const name = paramName(param, key);
    if (key.length === 0 || key.length > limits.metadataKeyLengthMax) {
      throw invalid(name, `metadata keys must be 1 to ${limits.metadataKeyLengthMax} characters.`, 'metadata_invalid');
    }
    if (typeof item !== 'string' || item.length > limits.metadataValueLengthMax) {
      throw invalid(name, `metadata values must be strings of at most ${limits.metadataValueLengthMax} characters.`,
        'metadata_invalid');
    }
    metadata[key] = item;
  }
  return metadata;
}

export function readLimit(value: unknown, param = 'limit'): number {
  if (value === undefined) return limits.listPageSizeDefault;
  const number = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < 1 || number > limits.listPageSizeMax) {
    throw invalid(param, `${param} must be an integer from 1 to ${limits.listPageSizeMax}.`, 'parameter_invalid_integer');
  }
  return number;
}
