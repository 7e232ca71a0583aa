import type pg from 'pg';
import type { Logger } from 'pino';
import { nowMs } from '../clock.js';
import { withTransaction, type Queryable } from '../db/pool.js';
import { stringifyJson } from '../json.js';
import { newId } from '../ids.js';
import { signPayload } from '../security/hmac-signature.js';
import type { FaultInjector } from './psp-faults.js';
import {
  claimDueWebhookCopies, insertWebhookCopies, presentOperation, recordWebhookResults, resolveDuePending,
  type OperationRow, type WebhookCopy,
} from './psp-store.js';

/**
 * The sandbox's webhooks: each finished operation queues an event in the sandbox's own outbox,
 * in the operation's transaction. The fault profile may lose it, duplicate it, or delay copies
 * (which reorders them). A sender POSTs due copies to Penny, signed with Sandbox-Signature.
 */
export const sandboxSignatureHeader = 'Sandbox-Signature';
const deliveryAttemptsMax = 8;
const deliveryTimeoutMs = 5000;

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

export class SandboxWebhookSender {
  constructor(
    private readonly pool: pg.Pool,
    private readonly injector: FaultInjector,
    private readonly options: { webhookUrl: string | undefined; secret: string; logger: Logger },
  ) {}

  /** Pending authorizations whose time came resolve, and their webhooks are queued. */
  async resolvePending(): Promise<number> {
    return withTransaction(this.pool, async (client) => {
      const resolved = await resolveDuePending(client, 100);
      for (const operation of resolved) await enqueueWebhook(client, operation, this.injector);
      return resolved.length;
    });
  }

  /** Sends the due copies, a bounded batch; a copy that keeps failing is dropped after 8 tries. */
  async sendDue(): Promise<number> {
    const url = this.options.webhookUrl;
    if (url === undefined) return 0;
    const due = await claimDueWebhookCopies(this.pool, { now: new Date(nowMs()).toISOString(),
      leaseUntil: new Date(nowMs() + 30_000).toISOString(), attemptsMax: deliveryAttemptsMax });
    const delivered = await Promise.all(due.map((row) => this.send(url, row)));
    if (due.length === 0) return 0;
    // Every copy's result in one statement: delivered, or due again after its backoff.
    const now = nowMs();
    await recordWebhookResults(this.pool, due.map((row, index) => ({
      id: row.id, copy: row.copy, delivered: delivered[index] === true,
      retryAt: new Date(now + 1000 * 2 ** Math.min(row.attemptCount, 10)).toISOString(),
    })), new Date(now).toISOString());
    return due.length;
  }

  /** POSTs one copy; true when Penny answered 2xx. */
  private async send(url: string, row: { id: string; copy: number; payload: unknown }): Promise<boolean> {
    const body = JSON.stringify(row.payload);
    try {
      const response = await fetch(url, {
        method: 'POST', body, signal: AbortSignal.timeout(deliveryTimeoutMs),
        headers: { 'content-type': 'application/json',
          [sandboxSignatureHeader]: signPayload(body, this.options.secret, Math.floor(Date.now() / 1000)) },
      });
      await response.arrayBuffer();
      return response.ok;
    } catch (error) {
      this.options.logger.debug({ err: error, event: row.id }, 'sandbox webhook not delivered');
      return false;
    }
  }
}
