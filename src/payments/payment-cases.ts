import type pg from 'pg';
import { named } from '../db/pool.js';
import { newId } from '../ids.js';

/**
 * Cases for a human: an outcome Penny could not resolve, or a PSP event contradicting what Penny
 * booked. Opened once per kind and subject; the caller logs the alert.
 */
/** A case for a human, opened once per subject and kind. */
export async function openCase(client: pg.PoolClient, input: { merchantId: string; kind: string;
  paymentIntentId: string; subjectId: string; detail: Record<string, unknown> }): Promise<void> {
  await client.query(named(`INSERT INTO payment_cases (merchant_id, id, kind, payment_intent_id, subject_id, detail)
     VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT (kind, subject_id) DO NOTHING`),
  [input.merchantId, newId('case'), input.kind, input.paymentIntentId, input.subjectId, JSON.stringify(input.detail)]);
}
