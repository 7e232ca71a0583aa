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
  readonly expires_at: string | null;
  readonly hold: string | null;
  readonly reverses: string | null;
  readonly description: string | null;
  readonly metadata: Record<string, string>;
  readonly postings: readonly CanonicalPosting[];
}

/** Amounts are decimal strings: exact whatever a raw row holds, even beyond 2^53. */
interface CanonicalPosting {
  readonly account: string;
  readonly currency: string;
  readonly direction: string;
  readonly phase: string;
  readonly amount: string;
  readonly effective_at: string;
  readonly must_not_overdraw: boolean;
}

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

/**
 * Reads entries in the canonical form, straight from the tables (the verifier must not trust any
 * derived copy): every column that carries meaning, so an edit to any of them breaks the chain.
 */
export async function selectCanonicalEntries(
  db: Queryable,
  ids: readonly string[],
): Promise<Map<string, CanonicalEntry>> {
  const result = await db.query<{ entry: CanonicalEntry }>(
    `SELECT json_build_object(
       'id', e.id, 'external_reference', e.external_reference, 'kind', e.kind,
       'effective_at', ${utcText('e.effective_at')}, 'expires_at', ${utcText('e.expires_at')},
       'hold', e.hold_entry_id, 'reverses', e.reverses_entry_id,
       'description', e.description, 'metadata', e.metadata,
       'postings', coalesce((SELECT json_agg(json_build_object('account', p.account_id,
           'currency', p.currency, 'direction', p.direction, 'phase', p.phase,
           'amount', p.amount_minor::text, 'effective_at', ${utcText('p.effective_at')},
           'must_not_overdraw', p.must_not_overdraw))
         FROM ledger_postings p WHERE p.entry_id = e.id), '[]'::json)) AS entry
     FROM ledger_entries e WHERE e.id = ANY($1::text[])`,
    [ids],
  );
  return new Map(result.rows.map((row) => [row.entry.id, row.entry]));
}

/** UTC ISO 8601 with microseconds, computed by PostgreSQL (a JS Date keeps milliseconds). */
function utcText(column: string): string {
  return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
}
