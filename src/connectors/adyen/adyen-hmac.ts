import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Adyen's HMAC signature of a standard notification item: base64 of HMAC-SHA256, keyed with the
 * hex-decoded HMAC key, over the eight fields `pspReference:originalReference:merchantAccountCode:
 * merchantReference:value:currency:eventCode:success` (an absent field is the empty string; `:` and
 * `\` inside a value are not escaped in this form).
 */
export interface SignedNotificationFields {
  readonly pspReference?: unknown;
  readonly originalReference?: unknown;
  readonly merchantAccountCode?: unknown;
  readonly merchantReference?: unknown;
  readonly amount?: { readonly value?: unknown; readonly currency?: unknown } | null;
  readonly eventCode?: unknown;
  readonly success?: unknown;
}

export function notificationSigningString(item: SignedNotificationFields): string {
  const field = (value: unknown) => (value === undefined || value === null ? '' : String(value));
  return [item.pspReference, item.originalReference, item.merchantAccountCode, item.merchantReference,
    item.amount?.value, item.amount?.currency, item.eventCode, item.success].map(field).join(':');
}

/** A hex HMAC key as bytes; undefined for anything that is not an even run of hex digits. */
export function hmacKeyBytes(keyHex: string): Buffer | undefined {
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(keyHex)) return undefined;
  return Buffer.from(keyHex, 'hex');
}

export function signString(signingString: string, keyHex: string): string {
  const key = hmacKeyBytes(keyHex);
  if (key === undefined) throw new Error('an Adyen HMAC key is hex digits');
  return createHmac('sha256', key).update(signingString, 'utf8').digest('base64');
}

export function signNotificationItem(item: SignedNotificationFields, keyHex: string): string {
  return signString(notificationSigningString(item), keyHex);
}

/** The item's signature verifies with the key (compared in constant time). */
export function verifyNotificationItem(item: SignedNotificationFields, signature: unknown, keyHex: string): boolean {
  if (typeof signature !== 'string' || hmacKeyBytes(keyHex) === undefined) return false;
  const expected = Buffer.from(signNotificationItem(item, keyHex), 'utf8');
  const given = Buffer.from(signature, 'utf8');
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/**
 * Adyen's newer webhooks (`{"type", "version", "data"}`: `ach.notificationOfChange`, the balance
 * platform's) carry no `hmacSignature` item: Adyen signs the raw body, base64 HMAC-SHA256 keyed
 * with the hex-decoded HMAC key, in the `HmacSignature` HTTP header.
 */
export function signBody(rawBody: Buffer, keyHex: string): string {
  const key = hmacKeyBytes(keyHex);
  if (key === undefined) throw new Error('an Adyen HMAC key is hex digits');
  return createHmac('sha256', key).update(rawBody).digest('base64');
}

/** The header's signature verifies the raw body with the key (compared in constant time). */
export function verifyBodySignature(rawBody: Buffer, signature: unknown, keyHex: string): boolean {
  if (typeof signature !== 'string' || hmacKeyBytes(keyHex) === undefined) return false;
  const expected = Buffer.from(signBody(rawBody, keyHex), 'utf8');
  const given = Buffer.from(signature.trim(), 'utf8');
  return expected.length === given.length && timingSafeEqual(expected, given);
}
