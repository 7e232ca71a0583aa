import { quoteIdentifier, type Queryable } from '../db/pool.js';

/**
 * What the checker reads with SQL: Penny's tables (straight from PostgreSQL, not through the
 * proxy) and the sandbox PSP's own record (its database). Every read is of one simulation's
 * throw-away database, whose size the run bounds (`--payments`).
 */
export interface IntentRow {
  readonly id: string;
  readonly status: string;
  readonly amount: bigint;
  readonly amountReceived: bigint;
  readonly cancellationReason: string | null;
  readonly operation: string | null;
  readonly inReview: boolean;
}

export async function selectIntents(db: Queryable): Promise<IntentRow[]> {
  const result = await db.query<IntentRow>(
    `SELECT i.id, i.status, i.amount, i.amount_received AS "amountReceived",
            i.cancellation_reason AS "cancellationReason", i.metadata->>'sim_operation' AS operation,
            EXISTS (SELECT 1 FROM payment_cases c WHERE c.payment_intent_id = i.id AND c.status = 'open') AS "inReview"
       FROM payment_intents i`);
  return result.rows;
}

export interface TaggedRow {
  readonly kind: 'refund' | 'transfer' | 'payout';
  readonly id: string;
  readonly operation: string | null;
  readonly status: string | null;
}

/** Refunds, transfers and payouts, with the client's operation tag (automatic payouts have none). */
export async function selectTaggedObjects(db: Queryable): Promise<TaggedRow[]> {
  const result = await db.query<TaggedRow>(
    `SELECT 'refund' AS kind, id, metadata->>'sim_operation' AS operation, status FROM refunds
     UNION ALL
     SELECT 'transfer', id, metadata->>'sim_operation', NULL FROM transfers
     UNION ALL
     SELECT 'payout', id, metadata->>'sim_operation', status FROM payouts WHERE NOT automatic`);
  return result.rows;
}

/** Charges whose amounts break refunded ≤ captured ≤ authorized. */
export async function selectChargeAmountBreaches(db: Queryable) {
  const result = await db.query<{ id: string; amount: bigint; captured: bigint; refunded: bigint }>(
    `SELECT id, amount, amount_captured AS captured, amount_refunded AS refunded FROM charges
      WHERE amount_refunded > amount_captured OR amount_captured > amount OR amount_refunded < 0
      ORDER BY id`);
  return result.rows;
}

/** Each PaymentIntent's statuses in the order its events told them. */
export async function selectIntentStatusHistories(db: Queryable) {
  const result = await db.query<{ id: string; statuses: string[] }>(
    `SELECT data->'object'->>'id' AS id,
            array_agg(data->'object'->>'status' ORDER BY created_at, id) AS statuses
       FROM events WHERE type LIKE 'payment_intent.%' GROUP BY data->'object'->>'id'`);
  return result.rows;
}

/**
 * Penny's charges and the ledger entries that booked their capture: an automatic capture's own
 * entry, or the posting of a manual capture's authorization hold (external references are unique,
 * so a second booking would need a second hold posting).
 */
export async function selectCaptureLedger(db: Queryable) {
  const result = await db.query<{ id: string; captured: boolean; attemptId: string; captureEntries: bigint }>(
    `SELECT c.id, c.captured, c.attempt_id AS "attemptId",
            (SELECT count(*) FROM ledger_entries e
              WHERE e.external_reference = 'penny:charge:' || c.id || ':capture'
                 OR (e.kind = 'hold_post' AND e.hold_entry_id IN (
                       SELECT h.id FROM ledger_entries h
                        WHERE h.external_reference = 'penny:charge:' || c.id || ':authorization'))) AS "captureEntries"
       FROM charges c`);
  return result.rows;
}

/** The sandbox PSP's operations that happened more than once for one reference of Penny's. */
export async function selectPspDuplicates(db: Queryable) {
  const result = await db.query<{ kind: string; reference: string; count: bigint }>(
    `SELECT kind, coalesce(parent_psp_reference, merchant_reference) AS reference, count(*) AS count
       FROM sandbox_psp_operations
      WHERE kind IN ('authorize', 'capture', 'refund') OR (kind = 'payout' AND idempotency_key NOT LIKE 'settlement:%')
      GROUP BY kind, CASE WHEN kind = 'capture' THEN parent_psp_reference ELSE merchant_reference END,
               coalesce(parent_psp_reference, merchant_reference)
     HAVING count(*) > 1 ORDER BY kind, reference`);
  return result.rows;
}

/** The payment attempts whose authorization the PSP granted (money held or taken on the card). */
export async function selectPspGrantedAttempts(db: Queryable): Promise<Set<string>> {
  const result = await db.query<{ reference: string }>(
    `SELECT merchant_reference AS reference FROM sandbox_psp_operations
      WHERE kind = 'authorize' AND coalesce(resolved_outcome, outcome) IN ('authorized', 'captured')`);
  return new Set(result.rows.map((row) => row.reference));
}

/** Penny's attempts that it told the customer failed. */
export async function selectRefusedAttempts(db: Queryable) {
  const result = await db.query<{ id: string; paymentIntentId: string; status: string }>(
    `SELECT id, payment_intent_id AS "paymentIntentId", status FROM payment_attempts
      WHERE status IN ('declined', 'failed', 'authentication_failed')`);
  return result.rows;
}

/** Open reconciliation breaks, however many. */
export async function selectOpenBreakCount(db: Queryable): Promise<number> {
  const result = await db.query<{ count: bigint }>(
    "SELECT count(*) AS count FROM reconciliation_breaks WHERE status = 'open'");
  return Number(result.rows[0]?.count ?? 0n);
}

/** The payment attempts the PSP captured money for (an authorization captured at once, or a capture). */
export async function selectPspCapturedAttempts(db: Queryable): Promise<Set<string>> {
  const result = await db.query<{ reference: string }>(
    `SELECT a.merchant_reference AS reference FROM sandbox_psp_operations a
      WHERE a.kind = 'authorize'
        AND (coalesce(a.resolved_outcome, a.outcome) = 'captured'
             OR EXISTS (SELECT 1 FROM sandbox_psp_operations c
                         WHERE c.kind = 'capture' AND c.parent_psp_reference = a.psp_reference
                           AND c.outcome = 'captured'))`);
  return new Set(result.rows.map((row) => row.reference));
}

/** Text and JSON columns of every table, for the search for card numbers and secrets. */
export async function selectTextColumns(db: Queryable) {
  const result = await db.query<{ table: string; column: string }>(
    `SELECT table_name AS table, column_name AS column FROM information_schema.columns
      WHERE table_schema = 'public' AND data_type IN ('text', 'jsonb', 'json', 'character varying', 'character')
      ORDER BY table_name, column_name`);
  return result.rows;
}

/** Whether any value of one column holds one of the needles. */
export async function selectValuesHolding(db: Queryable, table: string, column: string,
  needles: readonly string[]): Promise<boolean> {
  const result = await db.query<{ found: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM ${quoteIdentifier(table)}
                     WHERE ${quoteIdentifier(column)}::text LIKE ANY ($1::text[])) AS found`,
    [needles.map((needle) => `%${needle}%`)]);
  return result.rows[0]?.found === true;
}

/** Work still under way that the settling phase waits for. */
export async function selectUnsettledWork(db: Queryable) {
  const result = await db.query<{ processing: bigint; inbox: bigint; payouts: bigint; keys: bigint;
    recoveries: bigint; refunds: bigint }>(
    `SELECT (SELECT count(*) FROM payment_intents WHERE status = 'processing') AS processing,
            (SELECT count(*) FROM recovery_jobs WHERE status = 'pending') AS recoveries,
            (SELECT count(*) FROM refunds WHERE status = 'pending') AS refunds,
            (SELECT count(*) FROM connector_webhook_inbox WHERE status = 'received') AS inbox,
            (SELECT count(*) FROM payouts WHERE status IN ('pending', 'in_transit') AND psp_call <> 'refused') AS payouts,
            (SELECT count(*) FROM idempotency_keys WHERE response_status IS NULL) AS keys`);
  return result.rows[0] ?? { processing: 0n, inbox: 0n, payouts: 0n, keys: 0n, recoveries: 0n, refunds: 0n };
}

export async function selectUndeliveredPspWebhooks(db: Queryable): Promise<bigint> {
  const result = await db.query<{ count: bigint }>(
    'SELECT count(*) AS count FROM sandbox_psp_webhooks WHERE delivered_at IS NULL');
  return result.rows[0]?.count ?? 0n;
}

/** What Penny holds of an object a reconciliation break names, for the violation's message. */
export async function selectObjectState(db: Queryable, id: string): Promise<string> {
  const result = await db.query<{ state: string }>(
    `SELECT 'refund ' || status || ' ' || amount AS state FROM refunds WHERE id = $1
     UNION ALL SELECT 'payout ' || status || ' ' || amount_minor || ' psp_call ' || psp_call FROM payouts WHERE id = $1
     UNION ALL SELECT 'attempt ' || status FROM payment_attempts WHERE id = $1
     UNION ALL SELECT 'charge ' || status || ' captured ' || amount_captured FROM charges WHERE id = $1`, [id]);
  return result.rows.map((row) => row.state).join('; ') || 'unknown to Penny';
}

/**
 * Empties an outside database the failover drill runs against (the HA cluster's `penny`, which it
 * owns): every table, type and function the connected role owns there is dropped, so the run
 * migrates from nothing and its checker sees only its own objects. Never used on Penny's own
 * database outside the drill.
 */
export async function dropEverythingOwned(db: Queryable): Promise<void> {
  await db.query('DROP OWNED BY CURRENT_USER');
}
