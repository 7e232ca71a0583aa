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
 * A connector Penny does not have gets the very same 400 as a bad signature (status, code and
 * message), so a caller without the secrets learns nothing of which connectors are configured;
 * the reason goes to the log at warn (never the signature).
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
      const unverified = (reason: string) => {
        request.log.warn({ connector: id.slice(0, 100), reason }, 'a PSP webhook was refused: it could not be verified');
        return new PennyError({ code: 'webhook_signature_invalid', param: 'signature',
          message: 'The webhook was refused: it could not be verified. Nothing of it is stored.' });
      };
      if (!dependencies.connectors.has(id)) throw unverified('no connector has this id');
      const rawBody = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      let event;
      try {
        event = dependencies.connectors.get(id).parseWebhook({ rawBody, headers: request.headers });
      } catch (error) {
        if (!(error instanceof ConnectorWebhookError)) throw error;
        throw unverified(`its signature is ${error.problem}`);
      }
      const received = await receiveConnectorEvent(dependencies.pool, id, event);
      failpoint('after_inbox_insert');
      dependencies.onReceived?.();
      return { received: true, duplicate: received.duplicate };
    });
  });
}
