import { nowMs } from '../clock.js';
import type { Queryable } from '../db/pool.js';
import { stringifyJson } from '../json.js';
import { newId } from '../ids.js';
import type { FaultInjector } from './psp-faults.js';
import { insertWebhookCopies, presentOperation, type OperationRow, type WebhookCopy } from './psp-store.js';

/**
 * The sandbox's outbox of webhooks: each finished operation, and each later change of its state,
 * queues an event (`<kind>.<outcome>`) in the transaction that records it. The fault profile may
 * lose it, duplicate it, or delay copies (which reorders them); psp-webhooks.ts sends them.
 */
/**
 * The copies of an operation's webhook the fault profile lets through: none (lost), one, or two
 * (duplicated), each with its delay, decided by the operation's key (see FaultInjector.webhookFate),
 * with the faults to count once the copies are queued.
 */
export function webhookCopies(operation: OperationRow, injector: FaultInjector):
{ copies: WebhookCopy[]; faults: string[] } {
  const id = newId('sbxevt');
  const type = `${operation.kind}.${operation.outcome}`;
  const payload = stringifyJson({
    id, object: 'event', type, created: Math.floor(nowMs() / 1000), data: presentOperation(operation),
  });
  // A pending authorization's resolution is a second event of the same operation: its own fate.
  const fate = injector.webhookFate(`${operation.idempotencyKey}:${operation.outcome}`);
  return {
    copies: fate.delaysMs.map((delayMs, index) => ({
      id, copy: index + 1, type, payload, deliverAt: new Date(nowMs() + delayMs).toISOString(),
    })),
    faults: fate.faults,
  };
}

export async function enqueueWebhook(db: Queryable, operation: OperationRow, injector: FaultInjector): Promise<void> {
  const { copies, faults } = webhookCopies(operation, injector);
  if (copies.length > 0) {
    await insertWebhookCopies(db, copies);
  }
  injector.countInjected(faults);
}

