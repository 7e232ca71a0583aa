import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { limits } from '../config.js';
import { selectPage } from '../db/pages.js';
import { inTransaction, named, type Queryable } from '../db/pool.js';
import { PennyError } from '../errors.js';
import { eventApiVersion } from '../events/event-store.js';
import { newId } from '../ids.js';
import type { SecretBox } from '../security/secret-box.js';
import { invalid } from '../validation.js';
import { validateEndpointUrl } from './endpoint-address.js';

/**
 * Merchants' webhook endpoints (Stripe's WebhookEndpoint). The signing secret `whsec_…` is shown
 * once, on creation; it is stored sealed (AES-256-GCM), because Penny must use it to sign.
 */
export const webhookEventTypes = [
  'payment_intent.created', 'payment_intent.processing', 'payment_intent.requires_action',
  'payment_intent.amount_capturable_updated', 'payment_intent.succeeded', 'payment_intent.payment_failed',
  'payment_intent.canceled', 'charge.succeeded', 'charge.captured', 'charge.failed', 'charge.refunded',
  'refund.created', 'refund.updated', 'refund.failed', 'webhook_endpoint.disabled',
] as const;

export interface WebhookEndpointRow {
  readonly merchantId: string;
  readonly id: string;
  readonly url: string;
  readonly enabledEvents: string[];
  readonly description: string | null;
  readonly metadata: Record<string, string>;
  readonly status: 'enabled' | 'disabled';
  readonly secretCiphertext: string;
  readonly apiVersion: string;
  readonly createdAt: string;
}

export interface EndpointCommand {
  readonly url: string | undefined;
  readonly enabledEvents: string[] | undefined;
  readonly description: string | undefined;
  readonly metadata: Record<string, string> | undefined;
  readonly disabled: boolean | undefined;
}


export class WebhookEndpoints {
  constructor(
    private readonly pool: pg.Pool,
    private readonly box: SecretBox,
    private readonly options: { allowPrivateUrls: boolean },
  ) {}

  async create(client: pg.PoolClient, merchantId: string, command: EndpointCommand) {
    const url = await validateEndpointUrl(command.url ?? '', { allowPrivate: this.options.allowPrivateUrls });
    const secret = `whsec_${randomBytes(24).toString('base64url')}`;
    return inTransaction(client, async () => {
      // Serialize creations per merchant, so the count below is the count at insert.
      await client.query(named('SELECT 1 FROM merchants WHERE id = $1 FOR UPDATE'), [merchantId]);
      const count = await client.query<{ count: bigint }>(named(`SELECT count(*) AS count FROM webhook_endpoints
         WHERE merchant_id = $1 AND deleted_at IS NULL`), [merchantId]);
      if ((count.rows[0]?.count ?? 0n) >= BigInt(limits.webhookEndpointsPerMerchantMax)) {
        throw invalid('url', `An account can have at most ${limits.webhookEndpointsPerMerchantMax} webhook endpoints.`);
      }
      const result = await client.query(named(`INSERT INTO webhook_endpoints (merchant_id, id, url, enabled_events,
           description, metadata, secret_ciphertext, api_version)
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8) RETURNING *`),
      [merchantId, newId('we'), url, command.enabledEvents ?? ['*'], command.description ?? null,
        JSON.stringify(command.metadata ?? {}), this.box.seal(secret), eventApiVersion]);
      return { endpoint: toEndpoint(result.rows[0]), secret };
    });
  }

  async retrieve(db: Queryable, merchantId: string, id: string): Promise<WebhookEndpointRow> {
    const result = await db.query(named(`SELECT * FROM webhook_endpoints
       WHERE merchant_id = $1 AND id = $2 AND deleted_at IS NULL`), [merchantId, id]);
    if (result.rows[0] === undefined) {
      throw new PennyError({ code: 'resource_missing', param: 'id', message: `No such webhook endpoint: '${id}'` });
    }
    return toEndpoint(result.rows[0]);
  }

  async list(query: { merchantId: string; limit: number; startingAfter: string | undefined;
    endingBefore: string | undefined }) {
    const cursor = query.startingAfter ?? query.endingBefore;
    if (cursor !== undefined) await this.retrieve(this.pool, query.merchantId, cursor);
    return selectPage(this.pool, 'webhook_endpoints', { ...query, equals: {} }, toEndpoint);
  }

  async update(client: pg.PoolClient, merchantId: string, id: string, command: EndpointCommand) {
    const url = command.url === undefined ? undefined
      : await validateEndpointUrl(command.url, { allowPrivate: this.options.allowPrivateUrls });
    return inTransaction(client, async () => {
      await this.retrieve(client, merchantId, id);
      const result = await client.query(named(`UPDATE webhook_endpoints SET url = coalesce($3, url),
           enabled_events = coalesce($4, enabled_events), description = coalesce($5, description),
           metadata = coalesce($6::jsonb, metadata),
           status = CASE WHEN $7::boolean IS NULL THEN status WHEN $7 THEN 'disabled' ELSE 'enabled' END,
           failing_since = CASE WHEN $7::boolean IS NULL THEN failing_since ELSE NULL END
         WHERE merchant_id = $1 AND id = $2 RETURNING *`),
      [merchantId, id, url ?? null, command.enabledEvents ?? null, command.description ?? null,
        command.metadata === undefined ? null : JSON.stringify(command.metadata), command.disabled ?? null]);
      return toEndpoint(result.rows[0]);
    });
  }

  /** Deleting hides the endpoint and stops its pending deliveries; its history stays. */
  async delete(client: pg.PoolClient, merchantId: string, id: string) {
    return inTransaction(client, async () => {
      await this.retrieve(client, merchantId, id);
      await client.query(named(`UPDATE webhook_endpoints SET deleted_at = clock_timestamp(), status = 'disabled'
         WHERE merchant_id = $1 AND id = $2`), [merchantId, id]);
      return { id, object: 'webhook_endpoint', deleted: true };
    });
  }

  secretOf(endpoint: Pick<WebhookEndpointRow, 'secretCiphertext'>): string {
    return this.box.open(endpoint.secretCiphertext);
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
function toEndpoint(row: any): WebhookEndpointRow {
  if (row === undefined) throw new Error('expected a webhook_endpoints row');
  return {
    merchantId: row.merchant_id, id: row.id, url: row.url, enabledEvents: row.enabled_events,
    description: row.description, metadata: row.metadata, status: row.status, secretCiphertext: row.secret_ciphertext,
    apiVersion: row.api_version, createdAt: row.created_at,
  };
}

/** Stripe's WebhookEndpoint object; `secret` only in the answer to its creation. */
export function presentWebhookEndpoint(endpoint: WebhookEndpointRow, secret?: string) {
  return {
    id: endpoint.id,
    object: 'webhook_endpoint',
    api_version: endpoint.apiVersion,
    application: null,
    created: Math.floor(Date.parse(endpoint.createdAt) / 1000),
    description: endpoint.description,
    enabled_events: endpoint.enabledEvents,
    livemode: false,
    metadata: { ...endpoint.metadata },
    ...(secret === undefined ? {} : { secret }),
    status: endpoint.status,
    url: endpoint.url,
  };
}
