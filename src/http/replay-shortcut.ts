import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { IdempotencyService, IdempotentResponse } from '../idempotency/idempotency-service.js';
import { sendIdempotentResponse } from './route-support.js';

/**
 * Replays answered before their body is parsed. A merchant's POST whose Idempotency-Key finished
 * and whose method, path and form text are those of a request already found to be the same as the
 * key's first one is answered with the stored bytes as soon as its body is read: that text passed
 * the NUL check, the card filter and the route's validation before, and would get the same
 * answer. Anything else (a query string, `Stripe-Account`, a JSON body, a key not in memory, other
 * text) takes the usual path, checked in full. Returns the form parser's `answeredByText`.
 */
export function registerReplayShortcut(app: FastifyInstance, idempotency: IdempotencyService):
(request: FastifyRequest, text: string) => boolean {
  const answers = new WeakMap<FastifyRequest, IdempotentResponse>();
  // Registered before the other preValidation hooks, so that nothing else runs.
  // A callback hook: most requests pass it, and pay no promise for it. Answering, it calls no `done`.
  app.addHook('preValidation', (request, reply, done) => {
    const response = answers.get(request);
    if (response === undefined) {
      done();
      return;
    }
    sendIdempotentResponse(reply, response);
  });
  return (request, text) => {
    const found = storedReplay(idempotency, request, text);
    if (found !== undefined) answers.set(request, found);
    return found !== undefined;
  };
}

function storedReplay(idempotency: IdempotencyService, request: FastifyRequest, text: string):
IdempotentResponse | undefined {
  // Only an authenticated merchant's request (its onRequest hook ran), acting as itself.
  if (request.method !== 'POST' || request.merchant === null) return undefined;
  if (request.headers['stripe-account'] !== undefined) return undefined;
  const key = request.headers['idempotency-key'];
  if (typeof key !== 'string') return undefined;
  // The URL with its query: a remembered path never has one (keys keep the path alone), so a
  // request with a query string is never answered here and its query is checked in full.
  return idempotency.replayOfSameText({
    merchantId: request.merchant.id, key, method: request.method, path: request.url, paramsText: text,
  });
}
