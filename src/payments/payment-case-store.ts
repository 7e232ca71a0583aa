import { named, type Queryable } from '../db/pool.js';

/** The SQL of payment cases, one function per statement. Rows are returned as the database has them. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row, presented by payment-cases.ts
export type CaseRow = any;

/** Opens a case once per kind and subject; a second opening of the same is nothing. */
export async function insertCase(db: Queryable, input: { id: string; merchantId: string; kind: string;
  paymentIntentId: string; subjectId: string; detail: Record<string, unknown> }): Promise<void> {
  await db.query(named(`INSERT INTO payment_cases (merchant_id, id, kind, payment_intent_id, subject_id, detail)
     VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT (kind, subject_id) DO NOTHING`),
  [input.merchantId, input.id, input.kind, input.paymentIntentId, input.subjectId, JSON.stringify(input.detail)]);
}

/** Cases newest first, after a cursor, up to `limit` rows. */
export async function selectCasePage(db: Queryable, query: { status: 'open' | 'closed' | undefined;
  startingAfter: string | undefined; limit: number }): Promise<CaseRow[]> {
  const result = await db.query(named(`SELECT * FROM payment_cases c
     WHERE ($1::text IS NULL OR c.status = $1)
       AND ($2::text IS NULL OR (c.created_at, c.id) < (SELECT created_at, id FROM payment_cases WHERE id = $2))
     ORDER BY c.created_at DESC, c.id DESC LIMIT $3`),
  [query.status ?? null, query.startingAfter ?? null, query.limit]);
  return result.rows;
}

/** Closes the case if it is open; undefined when it is not (closed already, or no such case). */
export async function closeOpenCase(db: Queryable, id: string, resolution: string): Promise<CaseRow | undefined> {
  const closed = await db.query(named(`UPDATE payment_cases SET status = 'closed', closed_at = clock_timestamp(),
       resolution = $2 WHERE id = $1 AND status = 'open' RETURNING *`), [id, resolution]);
  return closed.rows[0];
}

export async function selectCase(db: Queryable, id: string): Promise<CaseRow | undefined> {
  const found = await db.query(named('SELECT * FROM payment_cases WHERE id = $1'), [id]);
  return found.rows[0];
}
