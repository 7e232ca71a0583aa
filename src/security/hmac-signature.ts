import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Signatures of the form `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">` (Stripe's
 * Stripe-Signature, and the sandbox PSP's Sandbox-Signature). Verification works on the raw bytes,
 * accepts any of several secrets (a rotation), and refuses a timestamp outside the tolerance.
 */
export function signPayload(payload: string | Buffer, secret: string, timestampSeconds: number): string {
  return `t=${timestampSeconds},v1=${hmacHex(payload, secret, timestampSeconds)}`;
}

function hmacHex(payload: string | Buffer, secret: string, timestampSeconds: number): string {
  return createHmac('sha256', secret).update(`${timestampSeconds}.`).update(payload).digest('hex');
}

export type SignatureProblem = 'missing' | 'malformed' | 'stale' | 'mismatch';

export function verifySignature(options: {
  payload: Buffer;
  header: string | undefined;
  secrets: readonly string[];
  nowSeconds: number;
  toleranceSeconds: number;
}): SignatureProblem | undefined {
  if (options.header === undefined || options.header === '') return 'missing';
  const parts = options.header.split(',').map((part) => part.split('='));
  const timestamp = parts.find(([name]) => name === 't')?.[1];
  const signatures = parts.filter(([name, value]) => name === 'v1' && value !== undefined).map(([, value]) => value ?? '');
  if (timestamp === undefined || !/^\d{1,12}$/.test(timestamp) || signatures.length === 0) return 'malformed';
  const timestampSeconds = Number(timestamp);
  if (Math.abs(options.nowSeconds - timestampSeconds) > options.toleranceSeconds) return 'stale';
  for (const secret of options.secrets) {
    const expected = Buffer.from(hmacHex(options.payload, secret, timestampSeconds), 'hex');
    for (const signature of signatures) {
      const given = Buffer.from(signature, 'hex');
      if (given.length === expected.length && timingSafeEqual(given, expected)) return undefined;
    }
  }
  return 'mismatch';
}
