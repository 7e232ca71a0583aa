import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { PennyError } from '../errors.js';

/**
 * The operator key guards /v1/ledger and other operator routes: `Authorization: Bearer KEY`, or
 * HTTP Basic with the key as the user name (as Stripe accepts). Compared in constant time.
 */
export function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const [scheme, value] = header.split(' ', 2);
  if (scheme?.toLowerCase() === 'bearer' && value) return value.trim();
  if (scheme?.toLowerCase() === 'basic' && value) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    return decoded.split(':', 1)[0] || undefined;
  }
  return undefined;
}

export function createOperatorCheck(operatorKey: string): (request: FastifyRequest) => void {
  const expected = digest(operatorKey);
  return (request) => {
    const key = presentedKey(request);
    if (key === undefined) {
      throw new PennyError({
        code: 'api_key_missing',
        message: 'You did not provide an API key. Provide it in the Authorization header, ' +
          "using Bearer auth (e.g. 'Authorization: Bearer YOUR_KEY').",
      });
    }
    if (!timingSafeEqual(digest(key), expected)) {
      throw new PennyError({ code: 'api_key_invalid', message: `Invalid API Key provided: ${maskKey(key)}` });
    }
  };
}

export function maskKey(key: string): string {
  const prefix = /^[a-z]+_(test_|live_)?/.exec(key)?.[0] ?? '';
  return `${prefix}****${key.slice(-4)}`;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
