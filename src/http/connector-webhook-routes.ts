import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import { limits } from '../config.js';
import { ConnectorWebhookError, type ConnectorRegistry } from '../connectors/connector.js';
import { PennyError } from '../errors.js';
import { failpoint } from '../failpoints.js';
import { receiveConnectorEvent } from '../webhooks/connector-inbox.js';

/**
 * POST /v1/connectors/:connector/webhooks: the signature is verified on the raw bytes before
 * anything is parsed; a bad, missing or stale one gets 400 and nothing is stored. A verified
 * event is stored in the inbox (once per event id) and answered at once; a worker applies it.
 */

export function registerConnectorWebhookRoutes(
  app: FastifyInstance,
  dependencies: { pool: pg.Pool; connectors: ConnectorRegistry; onReceived?: () => void },
): void {
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: limits.connectorWebhookBodyBytesMax },
      (_request, body, done) => done(null, body));
    scope.post<{ Params: { connector: string } }>('/v1/connectors/:connector/webhooks', async (request) => {
      const { connector: id } = request.params;
      if (!dependencies.connectors.has(id)) {
        throw new PennyError({ code: 'resource_missing', param: 'connector', message: `No connector ${id}.` });
      }
      const rawBody = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      let event;
      try {
        event = dependencies.connectors.get(id).parseWebhook({ rawBody, headers: request.headers });
      } catch (error) {
        if (!(error instanceof ConnectorWebhookError)) throw error;
        throw new PennyError({ code: 'webhook_signature_invalid', param: 'signature', cause: error,
          message: `The webhook was refused: its signature is ${error.problem}.` });
      }
      const received = await receiveConnectorEvent(dependencies.pool, id, event);
      failpoint('after_inbox_insert');
      dependencies.onReceived?.();
      return { received: true, duplicate: received.duplicate };
    });
  });
}
