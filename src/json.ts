import { randomBytes } from 'node:crypto';

/**
 * JSON with bigint: amounts and sums are bigint inside Penny and are written as JSON integers,
 * exactly, whatever their size (JSON.stringify refuses bigint, and a Number would round).
 */
// A random marker per process (96 bits): a client cannot guess it to forge a number.
const markerToken = randomBytes(12).toString('hex');
const marker = `\u0000${markerToken}:`;
const markerPattern = new RegExp(`"\\\\u0000${markerToken}:(-?\\d+)"`, 'g');

export function stringifyJson(value: unknown): string {
  const text = JSON.stringify(value, (_key, item: unknown) =>
    typeof item === 'bigint' ? `${marker}${item.toString()}` : item);
  return text.replace(markerPattern, '$1');
}
