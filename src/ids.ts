import { randomBytes } from 'node:crypto';

const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const idRandomLength = 24;

/** `prefix_` followed by 24 base-62 characters (about 143 random bits), e.g. `lent_4fQ…`. */
export function newId(prefix: string): string {
  const bytes = randomBytes(idRandomLength);
  let suffix = '';
  for (const byte of bytes) suffix += alphabet[byte % 62];
  return `${prefix}_${suffix}`;
}
