import type pg from 'pg';
import type { Logger } from 'pino';
import { nowMs } from '../clock.js';
import { named, withTransaction, type Queryable } from '../db/pool.js';
import { stringifyJson } from '../http/json.js';
import { newId } from '../ids.js';
import { signPayload } from '../webhooks/signature.js';
import type { FaultInjector } from './psp-faults.js';
import { presentOperation, resolveDuePending, type OperationRow } from './psp-store.js';

/**
 * The sandbox's webhooks: each finished operation queues an event in the sandbox's own outbox,
 * in the operation's transaction. The fault profile may lose it, duplicate it, or delay copies
 * (which reorders them). A sender POSTs due copies to Penny, signed with Sandbox-Signature.
 */
export const sandboxSignatureHeader = 'Sandbox-Signature';
const deliveryAttemptsMax = 8;
const deliveryTimeoutMs = 5000;

export async function enqueueWebhook(db: Queryable, operation: OperationRow, injector: FaultInjector): Promise<void> {
  const delays = injector.webhookCopies();
  const id = newId('sbxevt');
  const payload = {
    id, object: 'event', type: `${operation.kind}.${operation.outcome}`,
    created: Math.floor(nowMs() / 1000), data: presentOperation(operation),
  };
  for (const [index, delayMs] of delays.entries()) {
    await db.query(named(`INSERT INTO sandbox_psp_webhooks (id, copy, type, payload, deliver_at)
       VALUES ($1, $2, $3, $4::jsonb, $5)`),
    [id, index + 1, payload.type, stringifyJson(payload), new Date(nowMs() + delayMs).toISOString()]);
  }
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
    const due = await this.pool.query(named(`UPDATE sandbox_psp_webhooks SET attempt_count = attempt_count + 1,
         deliver_at = $2
       WHERE (id, copy) IN (SELECT id, copy FROM sandbox_psp_webhooks
         WHERE delivered_at IS NULL AND deliver_at <= $1 AND attempt_count < $3
         ORDER BY deliver_at LIMIT 32 FOR UPDATE SKIP LOCKED)
       RETURNING id, copy, payload, attempt_count`),
    [new Date(nowMs()).toISOString(), new Date(nowMs() + 30_000).toISOString(), deliveryAttemptsMax]);
    await Promise.all(due.rows.map((row) => this.send(url, row)));
    return due.rows.length;
  }

  private async send(url: string, row: { id: string; copy: number; payload: unknown; attempt_count: number }) {
    const body = JSON.stringify(row.payload);
    let delivered = false;
    try {
      const response = await fetch(url, {
        method: 'POST', body, signal: AbortSignal.timeout(deliveryTimeoutMs),
        headers: { 'content-type': 'application/json',
          [sandboxSignatureHeader]: signPayload(body, this.options.secret, Math.floor(Date.now() / 1000)) },
      });
      await response.arrayBuffer();
      delivered = response.ok;
    } catch (error) {
      this.options.logger.debug({ err: error, event: row.id }, 'sandbox webhook not delivered');
    }
    const retryMs = 1000 * 2 ** Math.min(row.attempt_count, 10);
    await this.pool.query(named(`UPDATE sandbox_psp_webhooks
       SET delivered_at = CASE WHEN $3 THEN $4::timestamptz END, deliver_at = $5
       WHERE id = $1 AND copy = $2`),
    [row.id, row.copy, delivered, new Date(nowMs()).toISOString(), new Date(nowMs() + retryMs).toISOString()]);
  }
}
