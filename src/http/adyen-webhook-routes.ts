import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import { limits } from '../config.js';
import { ConnectorWebhookError, type ConnectorEvent, type ConnectorRegistry } from '../connectors/connector.js';
import { withTransaction, type Queryable } from '../db/pool.js';
import { PennyError } from '../errors.js';
import { receiveConnectorEvent } from '../webhooks/connector-inbox.js';

/**
 * POST /v1/connectors/adyen/webhooks: Adyen's standard notification. Every item's `hmacSignature`
 * is verified with the HMAC key of the Adyen merchant account it names (the account a merchant is
 * routed with, `adyen:<merchantAccountCode>`), before anything is stored. All verify: the events
 * Penny acts on are stored in the inbox in one transaction (deduplicated by pspReference +
 * eventCode + success, the event id) and the answer is Adyen's `[accepted]`. One fails: 401,
 * nothing stored, no `[accepted]` (Adyen retries). The inbox worker applies them by the same rules
 * as the sandbox's events.
 */
export interface AdyenWebhookDependencies {
  readonly pool: pg.Pool;
  readonly connectors: ConnectorRegistry;
  /** Registers the connector of a PSP account Penny knows (its credentials may have changed); false if none. */
  readonly ensureConnector: (db: Queryable, connectorId: string) => Promise<boolean>;
  readonly onReceived?: () => void;
}

export function registerAdyenWebhookRoutes(app: FastifyInstance, dependencies: AdyenWebhookDependencies): void {
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: limits.connectorWebhookBodyBytesMax },
      (_request, body, done) => done(null, body));
    scope.post('/v1/connectors/adyen/webhooks', async (request, reply) => {
      const rawBody = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const groups = itemsByAccount(rawBody);
      const verified: { connector: string; event: ConnectorEvent }[] = [];
      for (const [account, items] of groups) {
        const connectorId = `adyen:${account}`;
        if (!await dependencies.ensureConnector(dependencies.pool, connectorId)) {
          throw refused(`no merchant is routed to the Adyen merchant account ${account.slice(0, 80)}`);
        }
        const connector = dependencies.connectors.get(connectorId);
        if (connector.parseWebhookEvents === undefined) throw refused('the connector takes no Adyen notification');
        try {
          const events = connector.parseWebhookEvents({ rawBody: Buffer.from(JSON.stringify(
            { notificationItems: items.map((item) => ({ NotificationRequestItem: item })) })) });
          verified.push(...events.map((event) => ({ connector: connectorId, event })));
        } catch (error) {
          if (!(error instanceof ConnectorWebhookError)) throw error;
          throw refused(`an item's HMAC signature is ${error.problem}`, error);
        }
      }
      await withTransaction(dependencies.pool, async (client) => {
        for (const { connector, event } of verified) await receiveConnectorEvent(client, connector, event);
      });
      dependencies.onReceived?.();
      return reply.type('text/plain').send('[accepted]');
    });
  });
}

/** The notification's items grouped by the merchant account they name; 401 for any other body. */
function itemsByAccount(rawBody: Buffer): Map<string, Record<string, unknown>[]> {
  let body: unknown;
  try {
    body = JSON.parse(rawBody.toString('utf8')) as unknown;
  } catch {
    throw refused('the body is not JSON');
  }
  const items = (body as { notificationItems?: unknown } | null)?.notificationItems;
  if (!Array.isArray(items) || items.length === 0) throw refused('the body is not a standard notification');
  const groups = new Map<string, Record<string, unknown>[]>();
  for (const wrapper of items) {
    const item = (wrapper as { NotificationRequestItem?: unknown } | null)?.NotificationRequestItem;
    const account = (item as { merchantAccountCode?: unknown } | null)?.merchantAccountCode;
    if (typeof item !== 'object' || item === null || typeof account !== 'string' || account === '') {
      throw refused('an item names no merchant account');
    }
    groups.set(account, [...groups.get(account) ?? [], item as Record<string, unknown>]);
  }
  return groups;
}

function refused(reason: string, cause?: unknown): PennyError {
  return new PennyError({ code: 'webhook_hmac_invalid', param: 'hmacSignature', cause,
    message: `The Adyen notification was refused: ${reason}. Nothing of it is stored.` });
}
