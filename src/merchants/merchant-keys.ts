import { createHmac, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';

/**
 * Secret API keys: `sk_test_` and 32 base-62 characters (about 190 bits). Only an HMAC-SHA-256
 * digest under the server's pepper is stored, so a copy of the database does not yield keys, and
 * a key is shown only as its prefix and last four characters.
 */
const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const keyRandomLength = 32;
export const testKeyPrefix = 'sk_test_';

export function newSecretKey(): string {
  let suffix = '';
  for (const byte of randomBytes(keyRandomLength)) suffix += alphabet[byte % 62];
  return `${testKeyPrefix}${suffix}`;
}

/** Each pepper as a key object, made once: an HMAC then skips encoding it (one pepper a server). */
const pepperKeys = new Map<string, KeyObject>();

function pepperKey(pepper: string): KeyObject {
  let key = pepperKeys.get(pepper);
  if (key === undefined) {
    key = createSecretKey(Buffer.from(pepper, 'utf8'));
    pepperKeys.set(pepper, key);
  }
  return key;
}

export function keyDigest(pepper: string, key: string): Buffer {
  return Buffer.from(keyDigestHex(pepper, key), 'hex');
}

/** The key's digest in hex, as the cache of authenticated keys holds it (computed once a request). */
export function keyDigestHex(pepper: string, key: string): string {
  return createHmac('sha256', pepperKey(pepper)).update(key).digest('hex');
}

export function keyPrefix(key: string): 'sk_test_' | 'sk_live_' {
  return key.startsWith('sk_live_') ? 'sk_live_' : 'sk_test_';
}

export function displayKey(prefix: string, last4: string): string {
  return `${prefix}****${last4}`;
}
