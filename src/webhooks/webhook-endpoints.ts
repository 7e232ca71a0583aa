import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { limits } from '../config.js';
import { inTransaction, type Queryable } from '../db/pool.js';
import { PennyError } from '../errors.js';
import { eventApiVersion } from '../events/event-store.js';
import { newId } from '../ids.js';
import type { SecretBox } from '../security/secret-box.js';
import { invalid } from '../validation.js';
import { validateEndpointUrl } from './endpoint-address.js';
import {
  countLiveEndpoints, insertEndpoint, lockMerchant, markEndpointDeleted, selectEndpointPage, selectLiveEndpoint,
  updateEndpoint, type WebhookEndpointRow,
} from './webhook-store.js';

/**
 * Merchants' webhook endpoints (Stripe's WebhookEndpoint). The signing secret `whsec_…` is shown
 * once, on creation; it is stored sealed (AES-256-GCM), because Penny must use it to sign.
 */
export const webhookEventTypes = [
  'payment_intent.created', 'payment_intent.processing', 'payment_intent.requires_action',
  'payment_intent.amount_capturable_updated', 'payment_intent.succeeded', 'payment_intent.payment_failed',
  'payment_intent.canceled', 'charge.succeeded', 'charge.captured', 'charge.failed', 'charge.refunded',
  'refund.created', 'refund.updated', 'refund.failed', 'webhook_endpoint.disabled', 'balance.available',
  'account.updated', 'account.external_account.created', 'account.external_account.updated',
  'account.external_account.deleted', 'charge.dispute.created', 'charge.dispute.funds_withdrawn',
  'charge.dispute.updated', 'charge.dispute.closed', 'charge.dispute.funds_reinstated', 'transfer.created',
  'transfer.reversed', 'application_fee.created', 'application_fee.refunded', 'payout.created', 'payout.updated',
  'payout.paid', 'payout.failed', 'payout.canceled', 'reporting.report_run.succeeded', 'reporting.report_run.failed',
  'reconciliation.break_opened',
] as const;

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
      await lockMerchant(client, merchantId);
      if (await countLiveEndpoints(client, merchantId) >= BigInt(limits.webhookEndpointsPerMerchantMax)) {
        throw invalid('url', `An account can have at most ${limits.webhookEndpointsPerMerchantMax} webhook endpoints.`);
      }
      const endpoint = await insertEndpoint(client, {
        merchantId, id: newId('we'), url, enabledEvents: command.enabledEvents ?? ['*'],
        description: command.description ?? null, metadata: command.metadata ?? {},
        secretCiphertext: this.box.seal(secret), apiVersion: eventApiVersion,
      });
      return { endpoint, secret };
    });
  }

  async retrieve(db: Queryable, merchantId: string, id: string): Promise<WebhookEndpointRow> {
    const endpoint = await selectLiveEndpoint(db, merchantId, id);
    if (endpoint === undefined) {
      throw new PennyError({ code: 'resource_missing', param: 'id', message: `No such webhook endpoint: '${id}'` });
    }
    return endpoint;
  }

  async list(query: { merchantId: string; limit: number; startingAfter: string | undefined;
    endingBefore: string | undefined }) {
    const cursor = query.startingAfter ?? query.endingBefore;
    if (cursor !== undefined) await this.retrieve(this.pool, query.merchantId, cursor);
    return selectEndpointPage(this.pool, query);
  }

  async update(client: pg.PoolClient, merchantId: string, id: string, command: EndpointCommand) {
    const url = command.url === undefined ? undefined
      : await validateEndpointUrl(command.url, { allowPrivate: this.options.allowPrivateUrls });
    return inTransaction(client, async () => {
      await this.retrieve(client, merchantId, id);
      return updateEndpoint(client, merchantId, id, { ...command, url });
    });
  }

  /** Deleting hides the endpoint and stops its pending deliveries; its history stays. */
  async delete(client: pg.PoolClient, merchantId: string, id: string) {
    return inTransaction(client, async () => {
      await this.retrieve(client, merchantId, id);
      await markEndpointDeleted(client, merchantId, id);
      return { id, object: 'webhook_endpoint', deleted: true };
    });
  }

  secretOf(endpoint: Pick<WebhookEndpointRow, 'secretCiphertext'>): string {
    return this.box.open(endpoint.secretCiphertext);
  }
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
