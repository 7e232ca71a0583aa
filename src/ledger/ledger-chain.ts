import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { CanonicalEntry, CanonicalPosting } from './ledger-chain-store.js';

export { selectCanonicalEntries, type CanonicalEntry } from './ledger-chain-store.js';

/**
 * The tamper-evident chain: each sealed entry's hash is SHA-256 over the previous hash (hex) and
 * the entry's RFC 8785 canonical JSON. The encoding is fixed here, once, for sealer and verifier;
 * the fields hashed are those ledger-chain-store.ts reads (selectCanonicalEntries).
 */
export const genesisHash = '0'.repeat(64);

export function entryHash(previousHash: string, entry: CanonicalEntry): string {
  const postings = [...entry.postings].sort(comparePostings);
  const canonical = (canonicalize as unknown as (value: unknown) => string)({ ...entry, postings });
  return createHash('sha256').update(previousHash).update(canonical).digest('hex');
}

function comparePostings(left: CanonicalPosting, right: CanonicalPosting): number {
  return compareText(left.account, right.account) || compareText(left.direction, right.direction) ||
    compareAmounts(left.amount, right.amount) || compareText(left.phase, right.phase) ||
    compareText(left.currency, right.currency) ||
    Number(left.must_not_overdraw) - Number(right.must_not_overdraw);
}

function compareAmounts(left: string, right: string): number {
  const difference = BigInt(left) - BigInt(right);
  if (difference === 0n) return 0;
  return difference < 0n ? -1 : 1;
}

function compareText(left: string, right: string): number {
  if (left === right) return 0;
  return left < right ? -1 : 1;
}
