import type pg from 'pg';
import type { Queryable } from '../db/pool.js';
import { PennyError } from '../errors.js';
import { newId } from '../ids.js';
import * as store from './payment-case-store.js';

/**
 * Cases for a human: an outcome Penny could not resolve, a PSP event contradicting what Penny
 * booked, or one that never matched. Opened once per kind and subject (the caller raises the
 * alert); an operator lists them and closes each with what was done about it.
 */
export async function openCase(client: pg.PoolClient, input: { merchantId: string; kind: string;
  paymentIntentId: string; subjectId: string; detail: Record<string, unknown> }): Promise<void> {
  await store.insertCase(client, { ...input, id: newId('case') });
}

export interface CaseListQuery {
  readonly status: 'open' | 'closed' | undefined;
  readonly limit: number;
  readonly startingAfter: string | undefined;
}

/** Cases, newest first, a page at a time (one more row than the limit says whether more follow). */
export async function listCases(db: Queryable, query: CaseListQuery) {
  if (query.startingAfter !== undefined) await mustCase(db, query.startingAfter, 'starting_after');
  const rows = await store.selectCasePage(db, { ...query, limit: query.limit + 1 });
  return { rows: rows.slice(0, query.limit).map(presentCase), hasMore: rows.length > query.limit };
}

export async function retrieveCase(db: Queryable, id: string) {
  return presentCase(await mustCase(db, id, 'id'));
}

/** Closes an open case with what the operator did; a closed case is not closed again. */
/**
 * Closes an open case with the operator's resolution. The same request again (a retry after a
 * lost answer, a double click) answers the case as closed; another resolution is case_already_closed.
 */
export async function closeCase(db: Queryable, id: string, resolution: string) {
  const closed = await store.closeOpenCase(db, id, resolution);
  if (closed !== undefined) return presentCase(closed);
  const found = await mustCase(db, id, 'id');
  if (found.status === 'closed' && found.resolution === resolution) return presentCase(found);
  throw new PennyError({ code: 'case_already_closed', param: 'id', message: `Case ${id} is already closed.` });
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
async function mustCase(db: Queryable, id: string, param: string): Promise<any> {
  const found = await store.selectCase(db, id);
  if (found === undefined) {
    throw new PennyError({ code: 'resource_missing', param, message: `No such case: '${id}'` });
  }
  return found;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
function presentCase(row: any) {
  return {
    id: row.id,
    object: 'payment_case',
    kind: row.kind,
    status: row.status,
    merchant: row.merchant_id,
    payment_intent: row.payment_intent_id,
    subject: row.subject_id,
    detail: row.detail,
    created: Math.floor(Date.parse(row.created_at) / 1000),
    closed: row.closed_at === null ? null : Math.floor(Date.parse(row.closed_at) / 1000),
    resolution: row.resolution,
  };
}
