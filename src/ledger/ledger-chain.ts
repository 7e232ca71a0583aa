import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { Queryable } from '../db/pool.js';

/**
 * The tamper-evident chain: each sealed entry's hash is SHA-256 over the previous hash (hex) and
 * the entry's RFC 8785 canonical JSON. The encoding is fixed here, once, for sealer and verifier.
 */
export const genesisHash = '0'.repeat(64);

export interface CanonicalEntry {
  readonly id: string;
  readonly external_reference: string;
  readonly kind: string;
  readonly effective_at: string;
  readonly hold: string | null;
  readonly reverses: string | null;
  readonly postings: readonly CanonicalPosting[];
}

interface CanonicalPosting {
  readonly account: string;
  readonly currency: string;
  readonly direction: string;
  readonly phase: string;
  readonly amount: number;
}

export function entryHash(previousHash: string, entry: CanonicalEntry): string {
  const postings = [...entry.postings].sort(comparePostings);
  const canonical = (canonicalize as unknown as (value: unknown) => string)({ ...entry, postings });
  return createHash('sha256').update(previousHash).update(canonical).digest('hex');
}

function comparePostings(left: CanonicalPosting, right: CanonicalPosting): number {
  return compareText(left.account, right.account) || compareText(left.direction, right.direction) ||
    left.amount - right.amount || compareText(left.phase, right.phase) ||
    compareText(left.currency, right.currency);
}

function compareText(left: string, right: string): number {
  if (left === right) return 0;
  return left < right ? -1 : 1;
}

/**
 * Reads entries in the canonical form, straight from the tables (the verifier must not trust any
 * derived copy). effective_at is UTC ISO 8601 with microseconds.
 */
export async function selectCanonicalEntries(
  db: Queryable,
  ids: readonly string[],
): Promise<Map<string, CanonicalEntry>> {
  const result = await db.query<{ entry: CanonicalEntry }>(
    `SELECT json_build_object(
       'id', e.id, 'external_reference', e.external_reference, 'kind', e.kind,
       'effective_at', to_char(e.effective_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
       'hold', e.hold_entry_id, 'reverses', e.reverses_entry_id,
       'postings', coalesce((SELECT json_agg(json_build_object('account', p.account_id,
           'currency', p.currency, 'direction', p.direction, 'phase', p.phase,
           'amount', p.amount_minor))
         FROM ledger_postings p WHERE p.entry_id = e.id), '[]'::json)) AS entry
     FROM ledger_entries e WHERE e.id = ANY($1::text[])`,
    [ids],
  );
  return new Map(result.rows.map((row) => [row.entry.id, row.entry]));
}
