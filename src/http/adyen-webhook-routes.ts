import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import { limits } from '../config.js';
import { ConnectorWebhookError, type ConnectorEvent, type ConnectorRegistry } from '../connectors/connector.js';
import { withTransaction, type Queryable } from '../db/pool.js';
import { PennyError } from '../errors.js';
import { announceReport, settlementReportUrl } from '../reconciliation/report-downloads.js';
import { receiveConnectorEvent, receiveIgnoredConnectorWebhook } from '../webhooks/connector-inbox.js';

/**
 * POST /v1/connectors/adyen/webhooks: Adyen's standard notification. Every item's `hmacSignature`
 * is verified with the HMAC key of the Adyen merchant account it names (the account a merchant is
 * routed with, `adyen:<merchantAccountCode>`), before anything is stored. All verify: the events
 * Penny acts on are stored in the inbox in one transaction (deduplicated by pspReference +
 * eventCode + success, the event id) and the answer is Adyen's `[accepted]`. One fails: 401,
 * nothing stored, no `[accepted]` (Adyen retries). Every notification Penny cannot verify gets the
 * same 401, code and message, whatever the reason (a bad or missing signature, an account no
 * merchant is routed to, a body of neither form), so a caller without the HMAC keys learns nothing
 * of which accounts are routed; the reason goes to the log at warn (never the signature). The
 * inbox worker applies them by the same rules as the sandbox's events. A REPORT_AVAILABLE item
 * announcing a Settlement details report is recorded, in the same transaction, for the
 * report-downloads worker (src/reconciliation/report-downloads.ts).
 *
 * Adyen's newer webhook form (`{"type", "version", "data"}`, e.g. `ach.notificationOfChange`) has no
 * item signature and names no merchant account: Adyen signs its raw body in the `HmacSignature`
 * header. It is taken when that header verifies with the HMAC key of one of the Adyen accounts
 * routed in Penny (at most `limits.adyenHeaderSignatureAccountsMax`, tried by name), stored once as
 * received and ignored (no payment flow reads it: Penny keeps no shopper's bank account to update)
 * and answered `[accepted]`; a missing or failing header is 401 and nothing is stored.
 */
export interface AdyenWebhookDependencies {
  readonly pool: pg.Pool;
  readonly connectors: ConnectorRegistry;
  /** Registers the connector of a PSP account Penny knows (its credentials may have changed); false if none. */
  readonly ensureConnector: (db: Queryable, connectorId: string) => Promise<boolean>;
  /** Up to `limit` Adyen accounts' connectors, registered (for a webhook that names no account). */
  readonly adyenAccounts: (db: Queryable, limit: number) => Promise<string[]>;
  readonly onReceived?: () => void;
}

export function registerAdyenWebhookRoutes(app: FastifyInstance, dependencies: AdyenWebhookDependencies): void {
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: limits.connectorWebhookBodyBytesMax },
      (_request, body, done) => done(null, body));
    scope.post('/v1/connectors/adyen/webhooks', async (request, reply) => {
      const rawBody = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      let notification: Awaited<ReturnType<typeof verifiedNotification>>;
      try {
        notification = await verifiedNotification(dependencies, rawBody, request.headers.hmacsignature);
      } catch (error) {
        if (!(error instanceof Unverified)) throw error;
        request.log.warn({ reason: error.reason }, 'an Adyen notification was refused: it could not be verified');
        throw new PennyError({ code: 'webhook_hmac_invalid', param: 'hmacSignature',
          message: 'The Adyen notification was refused: it could not be verified. Nothing of it is stored.' });
      }
      if (notification.typed !== undefined) {
        const { connectorId, type, id, body } = notification.typed;
        await receiveIgnoredConnectorWebhook(dependencies.pool, connectorId, { id, type,
          payload: body, note: `${type.slice(0, 80)}: Penny keeps no shopper bank account to update` });
        return reply.type('text/plain').send('[accepted]');
      }
      const { verified, reports } = notification;
      await withTransaction(dependencies.pool, async (client) => {
        for (const { connector, event } of verified) await receiveConnectorEvent(client, connector, event);
        for (const report of reports) await announceReport(client, report);
      });
      dependencies.onReceived?.();
      return reply.type('text/plain').send('[accepted]');
    });
  });
}

/** Why a notification could not be verified: for the log only, never for the answer. */
class Unverified extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'Unverified';
  }
}

/**
 * The notification, verified: a newer-form webhook with the account whose key verified its header,
 * or a standard notification's events and announced reports; `Unverified` if it cannot be.
 */
async function verifiedNotification(dependencies: AdyenWebhookDependencies, rawBody: Buffer, header: unknown):
Promise<{
  typed?: { connectorId: string; type: string; id: string; body: unknown };
  verified: { connector: string; event: ConnectorEvent }[];
  reports: { connector: string; url: string }[];
}> {
  const body = parsedBody(rawBody);
  const typed = typedWebhook(body);
  if (typed !== undefined) {
    const connectorId = await headerSignedBy(dependencies, rawBody, header);
    return { typed: { connectorId, ...typed, body }, verified: [], reports: [] };
  }
  const verified: { connector: string; event: ConnectorEvent }[] = [];
  const reports: { connector: string; url: string }[] = [];
  for (const [account, items] of itemsByAccount(body)) {
    const connectorId = `adyen:${account}`;
    if (!await dependencies.ensureConnector(dependencies.pool, connectorId)) {
      throw new Unverified(`no merchant is routed to the Adyen merchant account ${account.slice(0, 80)}`);
    }
    const connector = dependencies.connectors.get(connectorId);
    if (connector.parseWebhookEvents === undefined) {
      throw new Unverified(`the connector ${connectorId.slice(0, 90)} takes no Adyen notification`);
    }
    try {
      const events = connector.parseWebhookEvents({ rawBody: Buffer.from(JSON.stringify(
        { notificationItems: items.map((item) => ({ NotificationRequestItem: item })) })) });
      verified.push(...events.map((event) => ({ connector: connectorId, event })));
      reports.push(...announcedReports(items).map((url) => ({ connector: connectorId, url })));
    } catch (error) {
      if (!(error instanceof ConnectorWebhookError)) throw error;
      throw new Unverified(`an item's HMAC signature for the Adyen merchant account ${account.slice(0, 80)} is ${
        error.problem}`);
    }
  }
  return { verified, reports };
}

/** The Settlement details reports verified REPORT_AVAILABLE items announce (`reason`: the URL). */
function announcedReports(items: readonly Record<string, unknown>[]): string[] {
  return items.flatMap((item) => {
    const url = item.eventCode === 'REPORT_AVAILABLE' && item.success === 'true'
      ? settlementReportUrl(item.reason) : undefined;
    return url === undefined ? [] : [url];
  });
}

function parsedBody(rawBody: Buffer): unknown {
  try {
    return JSON.parse(rawBody.toString('utf8')) as unknown;
  } catch {
    throw new Unverified('the body is not JSON');
  }
}

/**
 * Adyen's newer webhook form (`type`, `version`, `data`, no `notificationItems`), with the id it is
 * stored under (its type and data's pspReference, else its createdAt); undefined for any other body.
 */
function typedWebhook(body: unknown): { type: string; id: string } | undefined {
  if (typeof body !== 'object' || body === null || 'notificationItems' in body) return undefined;
  const { type, data, createdAt } = body as { type?: unknown; data?: unknown; createdAt?: unknown };
  if (typeof type !== 'string' || type === '' || typeof data !== 'object' || data === null) return undefined;
  const pspReference = (data as { pspReference?: unknown }).pspReference;
  const key = typeof pspReference === 'string' && pspReference !== '' ? pspReference : String(createdAt ?? '');
  return { type, id: `${type}:${key}`.slice(0, 300) };
}

/** The Adyen account whose HMAC key verifies the body's `HmacSignature` header; `Unverified` if none does. */
async function headerSignedBy(dependencies: AdyenWebhookDependencies, rawBody: Buffer, header: unknown):
Promise<string> {
  const signature = Array.isArray(header) ? undefined : header;
  if (typeof signature !== 'string' || signature === '') throw new Unverified('the HmacSignature header is missing');
  for (const connectorId of await dependencies.adyenAccounts(dependencies.pool,
    limits.adyenHeaderSignatureAccountsMax)) {
    if (dependencies.connectors.get(connectorId).verifyBodySignature?.({ rawBody, signature }) === true) {
      return connectorId;
    }
  }
  throw new Unverified('the HmacSignature header verifies with no Adyen account\'s HMAC key');
}

/** The notification's items grouped by the merchant account they name; `Unverified` for any other body. */
function itemsByAccount(body: unknown): Map<string, Record<string, unknown>[]> {
  const items = (body as { notificationItems?: unknown } | null)?.notificationItems;
  if (!Array.isArray(items) || items.length === 0) throw new Unverified('the body is not a standard notification');
  const groups = new Map<string, Record<string, unknown>[]>();
  for (const wrapper of items) {
    const item = (wrapper as { NotificationRequestItem?: unknown } | null)?.NotificationRequestItem;
    const account = (item as { merchantAccountCode?: unknown } | null)?.merchantAccountCode;
    if (typeof item !== 'object' || item === null || typeof account !== 'string' || account === '') {
      throw new Unverified('an item names no merchant account');
    }
    groups.set(account, [...groups.get(account) ?? [], item as Record<string, unknown>]);
  }
  return groups;
}
