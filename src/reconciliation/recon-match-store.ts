import { named, type Queryable } from '../db/pool.js';
import { stripeUnitFactors } from '../money/stripe-currency.js';

/**
 * The SQL of reconciliation runs (migration 0036), one function per statement; recon-run.ts
 * decides. Matching is set-based: each pass is a few statements over temporary tables of the
 * run's open records, so a run over a million lines holds none of them in Node's memory. The
 * temporary tables live until the run's transaction ends (ON COMMIT DROP).
 *
 * Items are collected from the payment tables (charges, refunds, disputes, payouts) and the
 * ledger's PSP-fee entries: the one place reconciliation reads what other folders own, read-only,
 * because what Penny booked is what it reconciles.
 */

export interface BreakInsert {
  readonly runId: string;
  readonly type: string;
  readonly leg: 'ledger_psp' | 'psp_bank';
  readonly fingerprint: string;
  readonly externalRef: string | null;
  readonly internalRef: string | null;
  readonly currency: string | null;
  readonly expectedMinor: bigint;
  readonly actualMinor: bigint;
  readonly recordId: bigint | null;
  readonly itemId: bigint | null;
  readonly detail: string;
}

// A new break's id: 'rbrk_' and 32 hex characters (random, made in SQL for set-based inserts).
const newBreakId = "'rbrk_' || replace(gen_random_uuid()::text, '-', '')";

const breakColumns = `id, fingerprint, run_id, type, leg, external_ref, internal_ref, currency, expected_minor,
  actual_minor, difference_minor, merchant_id, owner_id, record_id, item_id, detail`;

/**
 * The memory a run's statements may take, for its transaction only: each pass hashes the items
 * or the open lines (about 110 bytes a row), and with PostgreSQL's default (4 MB, twice that for
 * a hash) a run of 200,000 lines split every hash join into 4 batches written to temporary files
 * and read back; 64 MB (128 MB a hash) keeps a run of a million lines in one batch. Runs are one
 * at a time (the imports' lock), so this is one backend's memory, not one per connection. (The
 * temporary buffers cannot be sized so: PostgreSQL refuses a new temp_buffers in a session that
 * has used a temporary table, as a pooled connection has.)
 */
export async function setRunMemory(db: Queryable): Promise<void> {
  await db.query("SET LOCAL work_mem = '64MB'");
}

export async function insertRun(db: Queryable, run: { id: string; asOf: string; scheduledFor?: string }):
Promise<void> {
  await db.query(named('INSERT INTO reconciliation_runs (id, as_of, scheduled_for) VALUES ($1, $2, $3)'),
    [run.id, run.asOf, run.scheduledFor ?? null]);
}

/** Whether the scheduled run of `day` was made (by any process). */
export async function selectScheduledRunExists(db: Queryable, day: string): Promise<boolean> {
  const result = await db.query(named('SELECT 1 FROM reconciliation_runs WHERE scheduled_for = $1'), [day]);
  return result.rows.length > 0;
}

export function isScheduledRunTaken(error: unknown): boolean {
  const failure = error as { code?: unknown; constraint?: unknown } | null;
  return failure?.code === '23505' && failure.constraint === 'reconciliation_runs_scheduled_for_key';
}

export async function finishRun(db: Queryable, run: { id: string; inputFileIds: readonly string[];
  counts: Record<string, unknown> }): Promise<void> {
  await db.query(named(`UPDATE reconciliation_runs SET finished_at = clock_timestamp(), input_file_ids = $2,
     counts = $3::jsonb WHERE id = $1`), [run.id, run.inputFileIds, JSON.stringify(run.counts)]);
}

/**
 * The factor of a stored Stripe amount's currency ($2 the currencies, $3 their factors; 1 for any
 * other), by which it divides into minor units exactly (an accepted amount is a multiple of it).
 */
function stripeFactorOf(currencyColumn: string): string {
  return `coalesce((SELECT f.factor FROM unnest($2::text[], $3::bigint[]) AS f(currency, factor)
    WHERE f.currency = lower(${currencyColumn})), 1)`;
}

/**
 * How many days after it failed a payout the bank returned after it was paid is still collected,
 * once a report's `PaidOut` line shows the PSP paid it.
 */
const returnedPayoutDaysMax = 31;

/**
 * Collects what Penny booked that a PSP report should show and is not collected yet:
 * captures (the charge's captured amount on the day of its `charge` balance transaction, with the
 * PSP fee its `psp_fee` entry booked), succeeded refunds, disputes opened (amount and dispute fee)
 * and won, and paid payouts: those still paid, and those the bank returned after they were paid
 * (failed after their `payout.paid` event, and a `PaidOut` line of an imported report names them,
 * for `returnedPayoutDaysMax` days after the failure), which the PSP paid all the same. A payout
 * that failed before it was paid is none: a PSP paying it is a break (Penny returned the money).
 * The event is read through `events_payment_intent` (a payout's object id).
 *
 * Whatever their day, up to now, not only up to `asOf`: Penny may learn of what the PSP did after
 * the PSP's day ended (a payout paid at 23:59 whose webhook comes after midnight, a capture whose
 * unknown outcome is resolved the next day), and the line of that day must still find its item.
 * An item dated after `asOf` that no line names is neither pending nor a break in this run (those
 * read items up to `asOf`). Answers how many were new.
 */
export async function collectItems(db: Queryable, query: { asOf: string; windowDays: number }): Promise<number> {
  const { asOf, windowDays } = query;
  // Charges and refunds keep Stripe's amounts; a report's lines are in minor units.
  const factors = stripeUnitFactors();
  const captures = await db.query(named(`INSERT INTO reconciliation_items (kind, reference, alternate_reference,
       merchant_id, owner_id, connector, psp_reference, currency, gross_minor, fee_minor, day, due_by)
     SELECT 'capture', c.id, c.attempt_id, c.merchant_id, c.merchant_id, c.connector, c.psp_reference, upper(c.currency),
       c.amount_captured / ${stripeFactorOf('c.currency')}, coalesce((SELECT p.amount_minor FROM ledger_entries e
         JOIN ledger_postings p ON p.entry_id = e.id AND p.direction = 'debit' AND p.phase = 'posted'
         WHERE e.external_reference = 'penny:charge:' || c.id || ':psp_fee' LIMIT 1), 0),
       (bt.created_at AT TIME ZONE 'UTC')::date,
       penny_business_days_after((bt.created_at AT TIME ZONE 'UTC')::date, $1)
     FROM charges c
     JOIN balance_transactions bt ON bt.merchant_id = c.merchant_id AND bt.source_id = c.id AND bt.type = 'charge'
     WHERE c.captured
       AND NOT EXISTS (SELECT 1 FROM reconciliation_items i WHERE i.kind = 'capture' AND i.reference = c.id)
     ON CONFLICT (kind, reference) DO NOTHING`), [windowDays, factors.currencies, factors.factors]);
  const refunds = await db.query(named(`INSERT INTO reconciliation_items (kind, reference, merchant_id, owner_id,
       connector, psp_reference, currency, gross_minor, fee_minor, day, due_by)
     SELECT 'refund', r.id, r.merchant_id, r.merchant_id, r.connector, r.psp_reference, upper(r.currency),
       -(r.amount / ${stripeFactorOf('r.currency')}), 0,
       (r.created_at AT TIME ZONE 'UTC')::date, penny_business_days_after((r.created_at AT TIME ZONE 'UTC')::date, $1)
     FROM refunds r
     WHERE r.status = 'succeeded'
       AND NOT EXISTS (SELECT 1 FROM reconciliation_items i WHERE i.kind = 'refund' AND i.reference = r.id)
     ON CONFLICT (kind, reference) DO NOTHING`), [windowDays, factors.currencies, factors.factors]);
  const disputes = await db.query(named(`INSERT INTO reconciliation_items (kind, reference, alternate_reference,
       merchant_id, owner_id, connector, psp_reference, currency, gross_minor, fee_minor, day, due_by)
     SELECT 'chargeback', d.id, d.charge_id, d.merchant_id, d.merchant_id, d.connector, d.psp_reference, d.currency,
       -d.amount_minor, d.fee_minor, (d.created_at AT TIME ZONE 'UTC')::date,
       penny_business_days_after((d.created_at AT TIME ZONE 'UTC')::date, $1)
     FROM disputes d
     WHERE NOT EXISTS (SELECT 1 FROM reconciliation_items i WHERE i.kind = 'chargeback' AND i.reference = d.id)
     ON CONFLICT (kind, reference) DO NOTHING`), [windowDays]);
  const won = await db.query(named(`INSERT INTO reconciliation_items (kind, reference, merchant_id, owner_id,
       connector, psp_reference, currency, gross_minor, fee_minor, day, due_by)
     SELECT 'chargeback_reversed', d.id, d.merchant_id, d.merchant_id, d.connector, d.psp_reference, d.currency,
       d.amount_minor, 0, (d.updated_at AT TIME ZONE 'UTC')::date,
       penny_business_days_after((d.updated_at AT TIME ZONE 'UTC')::date, $1)
     FROM disputes d
     WHERE d.status = 'won'
       AND NOT EXISTS (SELECT 1 FROM reconciliation_items i WHERE i.kind = 'chargeback_reversed' AND i.reference = d.id)
     ON CONFLICT (kind, reference) DO NOTHING`), [windowDays]);
  const payouts = await db.query(named(`INSERT INTO reconciliation_items (kind, reference, merchant_id, owner_id,
       connector, psp_reference, currency, gross_minor, fee_minor, day, due_by)
     SELECT 'payout', p.id, p.merchant_id, p.account_id, p.connector, p.psp_reference, p.currency, -p.amount_minor, 0,
       (p.updated_at AT TIME ZONE 'UTC')::date, penny_business_days_after((p.updated_at AT TIME ZONE 'UTC')::date, $2)
     FROM payouts p
     WHERE (p.status = 'paid' OR (p.status = 'failed' AND p.updated_at >= $1::date - $3::int
         AND EXISTS (SELECT 1 FROM events e WHERE e.merchant_id = p.merchant_id AND e.type = 'payout.paid'
           AND coalesce(e.data -> 'object' ->> 'payment_intent', e.data -> 'object' ->> 'id') = p.id)
         AND EXISTS (SELECT 1 FROM reconciliation_records r WHERE r.kind = 'psp_line' AND r.type = 'PaidOut'
           AND r.merchant_reference = p.id)))
       AND NOT EXISTS (SELECT 1 FROM reconciliation_items i WHERE i.kind = 'payout' AND i.reference = p.id)
     ON CONFLICT (kind, reference) DO NOTHING`), [asOf, windowDays, returnedPayoutDaysMax]);
  return [captures, refunds, disputes, won, payouts].reduce((sum, result) => sum + (result.rowCount ?? 0), 0);
}

/**
 * The run's open PSP lines (first versions, booked up to `asOf`, not dealt with by an earlier
 * run), each with the kind of item it should match ('batch' for a batch-level line, 'payout' …
 * as `kinds` maps its type; null for a type Penny does not know). Only the open files' records are
 * read (`selectOpenFileIds`, through the records' file index), so a run reads the reports still
 * open, not the history.
 */
export async function createOpenLines(db: Queryable, query: { asOf: string; types: readonly string[];
  kinds: readonly string[]; openFileIds: readonly string[] }): Promise<number> {
  const result = await db.query(named(`CREATE TEMP TABLE recon_lines ON COMMIT DROP AS
     SELECT r.id, r.file_id, r.type, k.kind AS item_kind, r.external_id, r.merchant_reference, r.psp_reference,
       r.currency, r.amount_minor, coalesce(r.gross_minor, r.amount_minor + coalesce(r.fee_minor, 0)) AS gross_minor,
       coalesce(r.gross_currency, r.currency) AS gross_currency, coalesce(r.fee_minor, 0) AS fee_minor,
       coalesce(r.booking_date, $1::date) AS booking_date, r.source, r.batch_key, r.remittance_text,
       nullif(r.refs->>'Modification Reference', r.psp_reference) AS modification_reference,
       r.refs->>'Modification Merchant Reference' AS modification_merchant_reference
     FROM reconciliation_records r
     LEFT JOIN unnest($2::text[], $3::text[]) AS k(type, kind) ON k.type = r.type
     WHERE r.file_id = ANY($4::text[])
       AND r.kind = 'psp_line' AND r.conflicts_with_record_id IS NULL AND coalesce(r.booking_date, $1::date) <= $1::date
       AND NOT EXISTS (SELECT 1 FROM reconciliation_record_matches m WHERE m.record_id = r.id)`),
  [query.asOf, query.types, query.kinds, query.openFileIds]);
  await db.query('CREATE INDEX ON recon_lines (id)');
  // The statistics the joins are planned on: the keys, not the amounts or texts.
  await db.query(`ANALYZE recon_lines (id, item_kind, merchant_reference, psp_reference, modification_reference,
    modification_merchant_reference)`);
  return result.rowCount ?? 0;
}

/**
 * The files a run reads: those not closed (`closeDealtWithFiles`), in whole. Not cut at a bound: a
 * file left out would never be read. What keeps the list short is that a file closes once its
 * lines are matched; those that stay open hold a line left unmatched (reconciliation.md, runs).
 */
export async function selectOpenFileIds(db: Queryable): Promise<string[]> {
  const result = await db.query<{ id: string }>(named(`SELECT f.id FROM reconciliation_files f
     WHERE NOT EXISTS (SELECT 1 FROM reconciliation_closed_files c WHERE c.file_id = f.id) ORDER BY f.id`));
  return result.rows.map((row) => row.id);
}

/**
 * Closes, for later runs, each of the open files of which no record a run could match is left
 * unmatched (any booking day; first versions; a bank entry only when booked: what createOpenLines
 * and selectOpenBankEntries read, whatever the day). Final: a file's records never change, and
 * matches are kept. Answers how many files it closed.
 */
export async function closeDealtWithFiles(db: Queryable, query: { runId: string; openFileIds: readonly string[] }):
Promise<number> {
  const result = await db.query(named(`WITH still_open AS (
       SELECT DISTINCT r.file_id FROM reconciliation_records r
       WHERE r.file_id = ANY($2::text[]) AND r.conflicts_with_record_id IS NULL
         AND (r.kind = 'psp_line' OR (r.kind = 'bank_entry' AND coalesce(r.status, 'BOOK') = 'BOOK'))
         AND NOT EXISTS (SELECT 1 FROM reconciliation_record_matches m WHERE m.record_id = r.id)
     )
     INSERT INTO reconciliation_closed_files (file_id, run_id)
     SELECT id, $1 FROM unnest($2::text[]) AS given (id)
     WHERE id NOT IN (SELECT file_id FROM still_open)`), [query.runId, query.openFileIds]);
  return result.rowCount ?? 0;
}

/**
 * Items ever collected per open line from which the reference pairs join the items through their
 * indexes (a nested loop from each open line, six index probes a line) rather than by hashing
 * every item six times: a daily run's few lines against a long history. Measured with
 * `bench:recon-history` (20,000 lines against 520,000 items: 1,895 → 1,125 ms); a first
 * large report, as many lines as items, keeps the hash joins (the index probes would cost more).
 */
const pairsByIndexItemsPerLineMin = 10;

/** Whether the reference pairs go through the items' indexes; the pairs are the same either way. */
export function pairsByIndex(openLines: number, itemsEstimate: number): boolean {
  return openLines > 0 && itemsEstimate >= openLines * pairsByIndexItemsPerLineMin;
}

/** PostgreSQL's estimate of the items' count (as of the last ANALYZE or VACUUM; 0 when none ran). */
async function selectItemsEstimate(db: Queryable): Promise<number> {
  const result = await db.query<{ estimate: string }>(named(`SELECT greatest(reltuples, 0)::bigint::text AS estimate
     FROM pg_class WHERE oid = 'reconciliation_items'::regclass`));
  return Number(result.rows[0]?.estimate ?? 0);
}

/**
 * Whether a pair differs or came late (`insertPairBreaks`), computed as the pair is found, so
 * the few pairs that do are read again, not every pair joined to its line and item a second time.
 */
const pairDiffers = `(l.gross_currency <> i.currency OR l.gross_minor <> i.gross_minor OR l.fee_minor <> i.fee_minor
       OR l.booking_date > i.due_by)`;

/**
 * Pass 1, exact references: every (line, item) of one kind where the line's Merchant Reference
 * is the item's reference (or a capture's attempt), or its PSP reference is the item's; or, for an
 * Adyen modification (a refund, a chargeback, its reversal), whose line names the payment in Psp
 * and Merchant Reference, where its Modification Reference is the item's PSP reference or its
 * Modification Merchant Reference the item's reference (reconciliation.md §2, §5). A pair found by
 * two keys is listed twice (UNION ALL: every reader takes distinct pairs or asks whether one
 * exists, so the sort a UNION would make is saved). Then each line's primary item (the first by
 * id), ranked within its item: the first line of an item not matched before is its match; another
 * is a duplicate.
 */
export async function createReferencePairs(db: Queryable, query: { openLines: number }): Promise<void> {
  const itemsEstimate = await selectItemsEstimate(db);
  const byIndex = pairsByIndex(query.openLines, itemsEstimate);
  // For this one statement; then back to what the connection had (set_config, local to the transaction).
  const before = byIndex ? await db.query<{ hash: string; merge: string }>(named(`SELECT
       current_setting('enable_hashjoin') AS hash, current_setting('enable_mergejoin') AS merge`)) : undefined;
  if (byIndex) {
    await db.query(named(`SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)`));
  }
  await db.query(named(`CREATE TEMP TABLE recon_pairs ON COMMIT DROP AS
     SELECT l.id AS record_id, i.id AS item_id, ${pairDiffers} AS differs FROM recon_lines l
       JOIN reconciliation_items i ON i.kind = l.item_kind AND i.reference = l.merchant_reference
     UNION ALL SELECT l.id, i.id, ${pairDiffers} FROM recon_lines l
       JOIN reconciliation_items i ON i.kind = l.item_kind AND i.alternate_reference = l.merchant_reference
     UNION ALL SELECT l.id, i.id, ${pairDiffers} FROM recon_lines l
       JOIN reconciliation_items i ON i.kind = l.item_kind AND i.psp_reference = l.psp_reference
     UNION ALL SELECT l.id, i.id, ${pairDiffers} FROM recon_lines l
       JOIN reconciliation_items i ON i.kind = l.item_kind AND i.reference = l.psp_reference
     UNION ALL SELECT l.id, i.id, ${pairDiffers} FROM recon_lines l
       JOIN reconciliation_items i ON i.kind = l.item_kind AND i.psp_reference = l.modification_reference
     UNION ALL SELECT l.id, i.id, ${pairDiffers} FROM recon_lines l
       JOIN reconciliation_items i ON i.kind = l.item_kind AND i.reference = l.modification_merchant_reference`));
  const previous = before?.rows[0];
  if (previous !== undefined) {
    await db.query(named(`SELECT set_config('enable_hashjoin', $1, true), set_config('enable_mergejoin', $2, true)`),
      [previous.hash, previous.merge]);
  }
  await db.query(named(`CREATE TEMP TABLE recon_primary ON COMMIT DROP AS
     SELECT p.record_id, p.item_id, p.differs,
       row_number() OVER (PARTITION BY p.item_id ORDER BY p.record_id) AS rank_in_item,
       EXISTS (SELECT 1 FROM reconciliation_item_matches m WHERE m.item_id = p.item_id) AS item_taken
     FROM (SELECT DISTINCT ON (record_id) record_id, item_id, differs FROM recon_pairs ORDER BY record_id, item_id) p`));
  await db.query('CREATE INDEX ON recon_primary (record_id)');
  await db.query('ANALYZE recon_primary');
}

/** Writes the pass's matches: a line and its item, or a duplicate line beside an item's match. */
export async function insertReferenceMatches(db: Queryable, runId: string): Promise<{ matched: number;
  duplicates: number }> {
  const records = await db.query(named(`INSERT INTO reconciliation_record_matches (record_id, run_id, pass, item_id)
     SELECT record_id, $1, CASE WHEN rank_in_item = 1 AND NOT item_taken THEN 'reference' ELSE 'duplicate' END, item_id
     FROM recon_primary`), [runId]);
  const items = await db.query(named(`INSERT INTO reconciliation_item_matches (item_id, run_id, record_id)
     SELECT item_id, $1, record_id FROM recon_primary WHERE rank_in_item = 1 AND NOT item_taken`), [runId]);
  const matched = items.rowCount ?? 0;
  return { matched, duplicates: (records.rowCount ?? 0) - matched };
}

/**
 * The differences of matched pairs, the first that fails in the order currency → gross → fee
 * (reconciliation.md §5), and a settlement later than its window (a warning); then duplicates:
 * a line beside its item's match (`duplicate_external`), and an item a line names besides its
 * primary one (`duplicate_in_ledger`, which takes the item as matched).
 */
export async function insertPairBreaks(db: Queryable, runId: string): Promise<void> {
  // The matched pairs that differ or came late, read in one pass over the run's pairs; few.
  await db.query(named(`CREATE TEMP TABLE recon_differing ON COMMIT DROP AS
     SELECT l.id AS record_id, i.id AS item_id, coalesce(l.psp_reference, l.external_id) AS external_ref,
       i.reference, i.kind, i.currency, i.gross_minor, i.fee_minor, i.merchant_id, i.owner_id, i.day, i.due_by,
       l.gross_currency AS line_currency, l.gross_minor AS line_gross_minor, l.fee_minor AS line_fee_minor,
       l.booking_date
     FROM recon_primary p
     JOIN recon_lines l ON l.id = p.record_id
     JOIN reconciliation_items i ON i.id = p.item_id
     WHERE p.differs AND p.rank_in_item = 1 AND NOT p.item_taken`));
  await db.query(named(`INSERT INTO reconciliation_breaks (${breakColumns})
     SELECT ${newBreakId}, c.type || '|record:' || d.record_id || '|item:' || d.item_id, $1, c.type, 'ledger_psp',
       d.external_ref, d.reference, d.currency, c.expected, c.actual, c.actual - c.expected, d.merchant_id, d.owner_id,
       d.record_id, d.item_id,
       CASE c.type
         WHEN 'currency_mismatch' THEN 'the PSP reports ' || d.kind || ' ' || d.reference || ' in ' || d.line_currency
           || ', Penny booked it in ' || d.currency
         WHEN 'amount_mismatch' THEN 'the PSP reports a gross of ' || c.actual || ' for ' || d.kind || ' ' || d.reference
           || ', Penny booked ' || c.expected
         WHEN 'fee_mismatch' THEN 'the PSP kept a fee of ' || c.actual || ' on ' || d.kind || ' ' || d.reference
           || ', Penny expected ' || c.expected
         ELSE d.kind || ' ' || d.reference || ' of ' || d.day || ' was settled on ' || d.booking_date
           || ', after its window (' || d.due_by || ')' END
     FROM recon_differing d
     CROSS JOIN LATERAL (VALUES
       ('currency_mismatch', d.gross_minor, d.line_gross_minor, d.line_currency <> d.currency),
       ('amount_mismatch', d.gross_minor, d.line_gross_minor,
         d.line_currency = d.currency AND d.line_gross_minor <> d.gross_minor),
       ('fee_mismatch', d.fee_minor, d.line_fee_minor, d.line_currency = d.currency AND d.line_fee_minor <> d.fee_minor),
       -- A warning, not a money break: its difference is 0.
       ('late_settlement', d.gross_minor, d.gross_minor, d.booking_date > d.due_by)
     ) AS c(type, expected, actual, differs)
     WHERE c.differs
     ON CONFLICT (fingerprint) DO NOTHING`), [runId]);
  await db.query(named(`INSERT INTO reconciliation_breaks (${breakColumns})
     SELECT ${newBreakId}, 'duplicate_external|record:' || l.id, $1, 'duplicate_external', 'ledger_psp',
       coalesce(l.psp_reference, l.external_id), i.reference, l.gross_currency, 0, l.gross_minor, l.gross_minor,
       i.merchant_id, i.owner_id, l.id, i.id,
       'the PSP reports ' || i.kind || ' ' || i.reference || ' again (line ' || r.line || ' of ' || l.file_id || ')'
     FROM recon_primary p
     JOIN recon_lines l ON l.id = p.record_id
     JOIN reconciliation_records r ON r.id = l.id
     JOIN reconciliation_items i ON i.id = p.item_id
     WHERE NOT (p.rank_in_item = 1 AND NOT p.item_taken)
     ON CONFLICT (fingerprint) DO NOTHING`), [runId]);
  await db.query(named(`WITH extra AS (
       SELECT q.record_id, q.item_id FROM recon_pairs q
       JOIN recon_primary p ON p.record_id = q.record_id AND p.item_id <> q.item_id
       WHERE NOT EXISTS (SELECT 1 FROM reconciliation_item_matches m WHERE m.item_id = q.item_id)
     ), taken AS (
       INSERT INTO reconciliation_item_matches (item_id, run_id, record_id)
       SELECT DISTINCT ON (item_id) item_id, $1, record_id FROM extra ORDER BY item_id, record_id
       RETURNING item_id, record_id
     )
     INSERT INTO reconciliation_breaks (${breakColumns})
     SELECT ${newBreakId}, 'duplicate_in_ledger|item:' || i.id, $1, 'duplicate_in_ledger', 'ledger_psp',
       coalesce(l.psp_reference, l.external_id), i.reference, i.currency, i.gross_minor, 0, -i.gross_minor,
       i.merchant_id, i.owner_id, l.id, i.id,
       'Penny booked ' || i.kind || ' ' || i.reference || ' besides another its PSP line names once'
     FROM taken t JOIN reconciliation_items i ON i.id = t.item_id JOIN recon_lines l ON l.id = t.record_id
     ON CONFLICT (fingerprint) DO NOTHING`), [runId]);
}

/** Batch-level lines (a batch's fees, a balance carried between batches) are the PSP's own: dealt with. */
export async function insertBatchLineMatches(db: Queryable, runId: string): Promise<number> {
  const result = await db.query(named(`INSERT INTO reconciliation_record_matches (record_id, run_id, pass)
     SELECT id, $1, 'batch_line' FROM recon_lines WHERE item_kind = 'batch'`), [runId]);
  return result.rowCount ?? 0;
}

/**
 * Lines of item kinds that name nothing Penny booked, and lines of types Penny does not know:
 * `missing_in_ledger` (the line stays open: Penny may learn of it later).
 */
export async function insertMissingInLedger(db: Queryable, runId: string): Promise<void> {
  await db.query(named(`INSERT INTO reconciliation_breaks (${breakColumns})
     SELECT ${newBreakId}, 'missing_in_ledger|record:' || l.id, $1, 'missing_in_ledger', 'ledger_psp',
       coalesce(l.psp_reference, l.external_id), l.merchant_reference, l.gross_currency, 0, l.gross_minor, l.gross_minor,
       NULL, NULL, l.id, NULL,
       CASE WHEN l.item_kind IS NULL THEN 'the PSP reports a line of type ' || l.type || ', which Penny does not book'
         ELSE 'the PSP reports a ' || l.type || ' line naming ' || coalesce(l.merchant_reference, l.psp_reference, 'nothing')
           || ', which Penny never booked' END
     FROM recon_lines l
     WHERE (l.item_kind IS NULL OR l.item_kind NOT IN ('batch', 'payout_record'))
       AND NOT EXISTS (SELECT 1 FROM recon_primary p WHERE p.record_id = l.id)
     ON CONFLICT (fingerprint) DO NOTHING`), [runId]);
}

/**
 * Pass 2, payout grouping by the PSP's batch key: a batch's payout line (Adyen's MerchantPayout,
 * Stripe's payout) must equal the sum of the batch's other lines in its currency.
 */
export async function insertPayoutTotalBreaks(db: Queryable, query: { runId: string;
  payoutTypes: readonly string[] }): Promise<void> {
  await db.query(named(`INSERT INTO reconciliation_breaks (${breakColumns})
     SELECT ${newBreakId}, 'payout_total_mismatch|record:' || l.id, $1, 'payout_total_mismatch', 'psp_bank',
       coalesce(l.remittance_text, l.batch_key), l.batch_key, l.currency, s.lines_minor, -l.amount_minor,
       -l.amount_minor - s.lines_minor, NULL, NULL, l.id, NULL,
       'the PSP pays ' || (-l.amount_minor) || ' for batch ' || l.batch_key || ', whose lines sum to ' || s.lines_minor
     FROM recon_lines l
     CROSS JOIN LATERAL (SELECT coalesce(sum(r.amount_minor), 0)::bigint AS lines_minor FROM reconciliation_records r
       WHERE r.source = l.source AND r.batch_key = l.batch_key AND r.currency = l.currency AND r.id <> l.id
         AND r.kind = 'psp_line' AND r.conflicts_with_record_id IS NULL
         AND r.type NOT IN (SELECT unnest($2::text[]))) s
     WHERE l.item_kind = 'payout_record' AND -l.amount_minor <> s.lines_minor
     ON CONFLICT (fingerprint) DO NOTHING`), [query.runId, query.payoutTypes]);
}

export interface OpenPayoutRow {
  readonly recordId: bigint;
  readonly reference: string;
  readonly currency: string;
  readonly amountMinor: bigint;
  readonly day: string;
  /** The last day it may still arrive at the bank: the 3rd business day after it. */
  readonly deadline: string;
}

export interface OpenBankEntryRow {
  readonly recordId: bigint;
  readonly fileId: string;
  readonly externalId: string;
  readonly currency: string;
  readonly amountMinor: bigint;
  readonly text: string;
  readonly day: string;
  readonly deadline: string;
}

/** The PSP's payouts still waiting for their bank entry (oldest first, at most `limit`). */
export async function selectOpenPayouts(db: Queryable, query: { windowDays: number; limit: number }):
Promise<OpenPayoutRow[]> {
  const result = await db.query(named(`SELECT id, coalesce(remittance_text, batch_key, external_id) AS reference, currency,
       -amount_minor AS amount_minor, booking_date::text AS day,
       penny_business_days_after(booking_date, $1)::text AS deadline
     FROM recon_lines WHERE item_kind = 'payout_record' ORDER BY booking_date, id LIMIT $2`),
  [query.windowDays, query.limit]);
  return result.rows.map((row) => ({ recordId: row.id as bigint, reference: row.reference as string,
    currency: row.currency as string, amountMinor: row.amount_minor as bigint, day: row.day as string,
    deadline: row.deadline as string }));
}

/** Booked bank entries up to `asOf` that no run has dealt with (oldest first, at most `limit`). */
export async function selectOpenBankEntries(db: Queryable, query: { asOf: string; windowDays: number; limit: number;
  openFileIds: readonly string[] }): Promise<OpenBankEntryRow[]> {
  const result = await db.query(named(`SELECT r.id, r.file_id, r.external_id, r.currency, r.amount_minor,
       concat_ws(' ', r.remittance_text, r.refs->>'AddtlNtryInf', r.refs->>'TxDtls.AddtlTxInf') AS text,
       coalesce(r.booking_date, r.value_date, $1::date)::text AS day,
       penny_business_days_after(coalesce(r.booking_date, r.value_date, $1::date), $2)::text AS deadline
     FROM reconciliation_records r
     WHERE r.file_id = ANY($4::text[])
       AND r.kind = 'bank_entry' AND r.conflicts_with_record_id IS NULL AND coalesce(r.status, 'BOOK') = 'BOOK'
       AND coalesce(r.booking_date, r.value_date, $1::date) <= $1::date
       AND NOT EXISTS (SELECT 1 FROM reconciliation_record_matches m WHERE m.record_id = r.id)
     ORDER BY coalesce(r.booking_date, r.value_date, $1::date), r.id LIMIT $3`),
  [query.asOf, query.windowDays, query.limit, query.openFileIds]);
  return result.rows.map((row) => ({ recordId: row.id as bigint, fileId: row.file_id as string,
    externalId: row.external_id as string, currency: row.currency as string, amountMinor: row.amount_minor as bigint,
    text: row.text as string, day: row.day as string, deadline: row.deadline as string }));
}

/** Pairs a bank entry with the payouts it pays (both ways, so neither is open again). */
export async function insertBankMatches(db: Queryable, match: { runId: string; pass: 'remittance' | 'fallback';
  bankRecordId: bigint; payoutRecordIds: readonly bigint[] }): Promise<void> {
  await db.query(named(`INSERT INTO reconciliation_record_matches (record_id, run_id, pass, counterpart_record_id)
     SELECT unnest($3::bigint[]), $1::text, $2::text, $4::bigint
     UNION ALL SELECT $4::bigint, $1::text, $2::text, ($3::bigint[])[1]`),
  [match.runId, match.pass, match.payoutRecordIds.map(String), match.bankRecordId.toString()]);
}

export async function insertBreaks(db: Queryable, breaks: readonly BreakInsert[]): Promise<void> {
  if (breaks.length === 0) return;
  await db.query(named(`INSERT INTO reconciliation_breaks (${breakColumns})
     SELECT ${newBreakId}, b.fingerprint, b.run_id, b.type, b.leg, b.external_ref, b.internal_ref, b.currency,
       b.expected_minor, b.actual_minor, b.actual_minor - b.expected_minor, NULL, NULL, b.record_id, b.item_id, b.detail
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[],
       $9::bigint[], $10::bigint[], $11::bigint[], $12::text[])
       AS b(fingerprint, run_id, type, leg, external_ref, internal_ref, currency, expected_minor, actual_minor,
         record_id, item_id, detail)
     ON CONFLICT (fingerprint) DO NOTHING`),
  [breaks.map((b) => b.fingerprint), breaks.map((b) => b.runId), breaks.map((b) => b.type), breaks.map((b) => b.leg),
    breaks.map((b) => b.externalRef), breaks.map((b) => b.internalRef), breaks.map((b) => b.currency),
    breaks.map((b) => b.expectedMinor.toString()), breaks.map((b) => b.actualMinor.toString()),
    breaks.map((b) => b.recordId?.toString() ?? null), breaks.map((b) => b.itemId?.toString() ?? null),
    breaks.map((b) => b.detail)]);
}

/**
 * Items past their window that no PSP line matched: `missing_in_psp_report` (the item stays open,
 * so a late line still matches it). Answers how many are still inside their window: pending.
 */
export async function insertMissingInPspReport(db: Queryable, query: { runId: string; asOf: string }):
Promise<number> {
  const result = await db.query<{ pending: bigint }>(named(`WITH open AS (
       SELECT i.* FROM reconciliation_items i
       WHERE i.day <= $2::date AND NOT EXISTS (SELECT 1 FROM reconciliation_item_matches m WHERE m.item_id = i.id)
     ), opened AS (
       INSERT INTO reconciliation_breaks (${breakColumns})
       SELECT ${newBreakId}, 'missing_in_psp_report|item:' || o.id, $1, 'missing_in_psp_report', 'ledger_psp',
         o.psp_reference, o.reference, o.currency, o.gross_minor, 0, -o.gross_minor, o.merchant_id, o.owner_id, NULL,
         o.id, o.kind || ' ' || o.reference || ' of ' || o.day || ' is in no PSP report after its window ('
           || o.due_by || ')'
       FROM open o WHERE $2::date > o.due_by
       ON CONFLICT (fingerprint) DO NOTHING
     )
     SELECT count(*) FILTER (WHERE $2::date <= due_by) AS pending FROM open`), [query.runId, query.asOf]);
  return Number(result.rows[0]?.pending ?? 0n);
}

/** Statements whose own arithmetic fails (opening + entries ≠ closing), up to `asOf`. */
export async function insertStatementBreaks(db: Queryable, query: { runId: string; asOf: string }): Promise<void> {
  await db.query(named(`INSERT INTO reconciliation_breaks (${breakColumns})
     SELECT ${newBreakId}, 'statement_balance_mismatch|' || s.file_id || '#' || s.position, $1,
       'statement_balance_mismatch', 'psp_bank', s.statement_ref, s.account, s.currency, s.expected_closing_minor,
       s.closing_balance_minor, s.closing_balance_minor - s.expected_closing_minor, NULL, NULL, NULL, NULL,
       'statement ' || s.statement_ref || ' of ' || s.account || ' (' || s.file_id || '): opening ' || s.opening_balance_minor
         || ' + entries ' || s.booked_sum_minor || ' = ' || s.expected_closing_minor || ', but it states a closing balance of '
         || s.closing_balance_minor
     FROM reconciliation_statements s
     WHERE s.balance_check = 'mismatch' AND coalesce(s.closing_date, s.opening_date, $2::date) <= $2::date
     ON CONFLICT (fingerprint) DO NOTHING`), [query.runId, query.asOf]);
}

/** A record known with other content than its first version: `conflicting_external_record`. */
export async function insertConflictBreaks(db: Queryable, query: { runId: string; asOf: string }): Promise<void> {
  await db.query(named(`INSERT INTO reconciliation_breaks (${breakColumns})
     SELECT ${newBreakId}, 'conflicting_external_record|record:' || r.id, $1, 'conflicting_external_record',
       CASE r.kind WHEN 'psp_line' THEN 'ledger_psp' ELSE 'psp_bank' END, r.external_id, NULL, r.currency,
       o.amount_minor, r.amount_minor, r.amount_minor - o.amount_minor, NULL, NULL, r.id, NULL,
       r.external_id || ' of ' || r.source || ' was imported before with other content (line ' || o.line || ' of '
         || o.file_id || '); line ' || r.line || ' of ' || r.file_id || ' differs'
     FROM reconciliation_records r JOIN reconciliation_records o ON o.id = r.conflicts_with_record_id
     WHERE coalesce(r.booking_date, r.value_date, $2::date) <= $2::date
     ON CONFLICT (fingerprint) DO NOTHING`), [query.runId, query.asOf]);
}

/**
 * Open breaks about something a later run matched are resolved by that match: a line or payout
 * that arrived late, a bank entry explained at last.
 */
export async function resolveMatchedBreaks(db: Queryable, runId: string): Promise<number> {
  const result = await db.query(named(`UPDATE reconciliation_breaks b
     SET status = 'resolved', resolution = 'matched', resolved_at = clock_timestamp(), resolved_by_run_id = $1
     WHERE b.status = 'open'
       AND b.type IN ('missing_in_psp_report', 'missing_in_ledger', 'missing_in_bank', 'unexpected_bank_entry',
         'ambiguous_match')
       AND ((b.item_id IS NOT NULL AND b.type = 'missing_in_psp_report'
             AND EXISTS (SELECT 1 FROM reconciliation_item_matches m WHERE m.item_id = b.item_id AND m.run_id = $1))
         OR (b.record_id IS NOT NULL AND b.type <> 'missing_in_psp_report'
             AND EXISTS (SELECT 1 FROM reconciliation_record_matches m WHERE m.record_id = b.record_id AND m.run_id = $1)))`),
  [runId]);
  return result.rowCount ?? 0;
}

/** The files whose records the run found open: its inputs (at most `limit`). */
export async function selectInputFiles(db: Queryable, limit: number): Promise<string[]> {
  const result = await db.query<{ file_id: string }>(named(`SELECT DISTINCT file_id FROM recon_lines
     ORDER BY file_id LIMIT $1`), [limit]);
  return result.rows.map((row) => row.file_id);
}

export interface BreakCountRow {
  readonly type: string;
  readonly count: number;
}

export async function selectBreakCountsOfRun(db: Queryable, runId: string): Promise<BreakCountRow[]> {
  const result = await db.query<{ type: string; count: string }>(named(`SELECT type, count(*) FROM reconciliation_breaks
     WHERE run_id = $1 GROUP BY type ORDER BY type`), [runId]);
  return result.rows.map((row) => ({ type: row.type, count: Number(row.count) }));
}

/**
 * Whether the ledger holds the settlement's entry of the PSP payout `reference`
 * (`penny:psp_payout:<connector>:<reference>`, src/balances/balance-service.ts), on any connector:
 * whether the operator's bank was debited with it.
 */
export async function selectPspPayoutBooked(db: Queryable, reference: string): Promise<boolean> {
  const result = await db.query<{ booked: boolean }>(named(`SELECT EXISTS (SELECT 1 FROM ledger_entries
       WHERE external_reference LIKE 'penny:psp\\_payout:%' AND right(external_reference, length($1)) = $1) AS booked`),
  [`:${reference}`]);
  return result.rows[0]?.booked === true;
}

/** A bank entry's remittance text (as the bank leg reads it) and its day, when the record is one. */
export async function selectBankEntryText(db: Queryable, recordId: bigint):
Promise<{ text: string; day: string | null } | undefined> {
  const result = await db.query<{ text: string; day: string | null }>(named(`SELECT
       concat_ws(' ', r.remittance_text, r.refs->>'AddtlNtryInf', r.refs->>'TxDtls.AddtlTxInf') AS text,
       coalesce(r.booking_date, r.value_date)::text AS day
     FROM reconciliation_records r WHERE r.id = $1 AND r.kind = 'bank_entry'`), [recordId.toString()]);
  return result.rows[0];
}

/**
 * The PSP payouts the settlement booked (the `<connector>:<reference>` of their ledger entries)
 * with an effective time in `[from, to)`, at most `limit`.
 */
export async function selectBookedPspPayouts(db: Queryable, query: { from: string; to: string; limit: number }):
Promise<string[]> {
  const result = await db.query<{ payout: string }>(named(`SELECT substr(external_reference, 18) AS payout
     FROM ledger_entries
     WHERE effective_at >= $1::timestamptz AND effective_at < $2::timestamptz
       AND external_reference LIKE 'penny:psp\\_payout:%'
     ORDER BY effective_at LIMIT $3`), [query.from, query.to, query.limit]);
  return result.rows.map((row) => row.payout);
}

/**
 * Of the payout references, those a PSP payout record of reconciliation's holds that is answered
 * on the bank leg: paired with a bank entry, or its own break repaired.
 */
export async function selectAnsweredPayoutReferences(db: Queryable, references: readonly string[]):
Promise<Set<string>> {
  if (references.length === 0) return new Set();
  const result = await db.query<{ reference: string }>(named(`SELECT DISTINCT
       coalesce(r.remittance_text, r.batch_key, r.external_id) AS reference
     FROM reconciliation_records r JOIN reconciliation_record_matches m ON m.record_id = r.id
     WHERE r.kind = 'psp_line' AND m.pass IN ('remittance', 'fallback', 'repaired')
       AND coalesce(r.remittance_text, r.batch_key, r.external_id) = ANY($1::text[])`), [references]);
  return new Set(result.rows.map((row) => row.reference));
}
