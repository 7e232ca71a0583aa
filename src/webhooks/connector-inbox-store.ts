import type pg from 'pg';
import type { PspOperation } from '../connectors/connector.js';
import { named, type Queryable } from '../db/pool.js';
import { stringifyJson } from '../json.js';

/** The SQL of the PSP webhook inbox, one function per statement. */
export interface InboxRow {
  readonly connector: string;
  readonly eventId: string;
  readonly payload: unknown;
  readonly processCount: number;
}

export type InboxStatus = 'received' | 'parked' | 'processed' | 'ignored';

/** Stores a verified event once per (connector, event id); false when it was there already. */
export async function insertInboxEvent(db: Queryable, event: { connector: string; id: string; type: string;
  operation: PspOperation; receivedAt: string }): Promise<boolean> {
  const result = await db.query(named(`INSERT INTO connector_webhook_inbox (connector, event_id, event_type, payload,
       next_process_at) VALUES ($1, $2, $3, $4::jsonb, $5) ON CONFLICT (connector, event_id) DO NOTHING`),
  [event.connector, event.id, event.type, stringifyJson(event.operation), event.receivedAt]);
  return result.rowCount !== 0;
}

/**
 * A verified webhook Penny takes note of and acts on not (Adyen's ACH notification of change):
 * stored once, already `ignored`, so no worker claims it. False for a repeat.
 */
export async function insertIgnoredInboxEvent(db: Queryable, event: { connector: string; id: string; type: string;
  payload: unknown; note: string; receivedAt: string }): Promise<boolean> {
  const result = await db.query(named(`INSERT INTO connector_webhook_inbox (connector, event_id, event_type, payload,
       status, note, next_process_at, processed_at) VALUES ($1, $2, $3, $4::jsonb, 'ignored', $5, $6, $6)
     ON CONFLICT (connector, event_id) DO NOTHING`),
  [event.connector, event.id, event.type, stringifyJson(event.payload), event.note, event.receivedAt]);
  return result.rowCount !== 0;
}

/**
 * Marks ignored, in one statement, up to `limit` due authorization events that echo what Penny
 * applied: their attempt, of the event's connector, has the very outcome the event reports (the
 * first rule of payments' decision, PaymentPspEvents.resolvedAlready, applied in bulk because it
 * is the usual event). The one statement of the inbox that reads a payments table; rows another
 * worker holds are skipped, as the one-by-one path skips them.
 */
export async function markAppliedAuthorizationEchoes(db: Queryable, batch: { now: string; limit: number }):
Promise<number> {
  const result = await db.query(named(`WITH echoes AS (
       SELECT i.connector, i.event_id FROM connector_webhook_inbox i
       JOIN payment_attempts a ON a.id = i.payload->>'reference'
       WHERE i.status IN ('received', 'parked') AND i.next_process_at <= $1
         AND i.payload->>'kind' = 'authorize' AND a.status = i.payload->>'outcome' AND a.connector = i.connector
       ORDER BY i.next_process_at LIMIT $2 FOR UPDATE OF i SKIP LOCKED)
     UPDATE connector_webhook_inbox t SET status = 'ignored', note = 'already applied',
       process_count = t.process_count + 1, processed_at = $1
     FROM echoes e WHERE t.connector = e.connector AND t.event_id = e.event_id`),
  [batch.now, batch.limit]);
  return result.rowCount ?? 0;
}

/** Locks the next due event, skipping rows another worker holds. */
export async function claimNextDueEvent(client: pg.PoolClient, now: string): Promise<InboxRow | undefined> {
  const result = await client.query(named(`SELECT connector, event_id, payload, process_count
     FROM connector_webhook_inbox
     WHERE status IN ('received', 'parked') AND next_process_at <= $1
     ORDER BY next_process_at, received_at LIMIT 1 FOR UPDATE SKIP LOCKED`), [now]);
  const row = result.rows[0];
  return row === undefined ? undefined
    : { connector: row.connector, eventId: row.event_id, payload: row.payload, processCount: row.process_count };
}

/** Records what processing decided; a finished event gets its processed_at. */
export async function updateInboxEvent(client: pg.PoolClient, event: Pick<InboxRow, 'connector' | 'eventId'>,
  change: { status: InboxStatus; note: string; nextProcessAt: string; now: string }): Promise<void> {
  await client.query(named(`UPDATE connector_webhook_inbox SET status = $3, note = $4,
       process_count = process_count + 1, next_process_at = $5,
       processed_at = CASE WHEN $3 IN ('processed', 'ignored') THEN $6::timestamptz END
     WHERE connector = $1 AND event_id = $2`),
  [event.connector, event.eventId, change.status, change.note, change.nextProcessAt, change.now]);
}

/** The stored operations a connector's verified events reported for Penny's reference, oldest first. */
export async function selectInboxOperations(db: Queryable, key: { connector: string; reference: string }):
Promise<unknown[]> {
  const result = await db.query<{ payload: unknown }>(named(`SELECT payload FROM connector_webhook_inbox
     WHERE connector = $1 AND payload->>'reference' = $2 ORDER BY received_at, event_id`),
  [key.connector, key.reference]);
  return result.rows.map((row) => row.payload);
}
