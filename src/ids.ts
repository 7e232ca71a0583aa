import { randomFillSync } from 'node:crypto';

const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const idRandomLength = 24;

/**
 * Random bytes drawn from the CSPRNG a pool at a time (one call per 170 ids, not one per id: a
 * request makes several), each byte handed out once.
 */
const randomPool = Buffer.alloc(idRandomLength * 170);
let randomPoolOffset = randomPool.length;

function nextRandomBytes(): Buffer {
  if (randomPoolOffset + idRandomLength > randomPool.length) {
    randomFillSync(randomPool);
    randomPoolOffset = 0;
  }
  const bytes = randomPool.subarray(randomPoolOffset, randomPoolOffset + idRandomLength);
  randomPoolOffset += idRandomLength;
  return bytes;
}

/** `prefix_` followed by 24 base-62 characters (about 143 random bits), e.g. `lent_4fQ…`. */
export function newId(prefix: string): string {
  const bytes = nextRandomBytes();
  let suffix = '';
  for (const byte of bytes) suffix += alphabet[byte % 62];
  return `${prefix}_${suffix}`;
}
