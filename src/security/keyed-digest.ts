import { createHmac, hkdfSync } from 'node:crypto';

/**
 * HMAC-SHA-256 under a key derived from PENNY_SECRET_KEY with HKDF, one key per purpose (as
 * secret-box.ts derives its keys). For fingerprints of numbers that must be comparable but never
 * recoverable: a plain hash of a bank account number is reversed by trying every number, an HMAC
 * under a key the database does not hold is not.
 */
export class KeyedDigest {
  private readonly key: Buffer;

  constructor(secretKey: string, purpose: string) {
    this.key = Buffer.from(hkdfSync('sha256', secretKey, 'penny', `penny ${purpose}`, 32));
  }

  /** The digest of `text`, as lower-case hex, cut to `length` characters (at most 64). */
  hex(text: string, length = 64): string {
    return createHmac('sha256', this.key).update(text, 'utf8').digest('hex').slice(0, length);
  }
}
