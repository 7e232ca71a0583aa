import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { limits } from '../config.js';

/**
 * An answer given before the request's body was read (413 for a body over the limit, 401, 404)
 * must still reach the client. Closing a socket that holds unread bytes sends a reset, and a
 * client still writing its body then loses the answer (Node's fetch reports "fetch failed"). So
 * before such an answer is sent, the rest of the body is read and discarded, up to
 * `limits.bodyDrainBytesMax` bytes and `limits.bodyDrainTimeoutMs`; past either bound the
 * connection is closed after the answer, as before.
 */
export function registerBodyDrain(app: FastifyInstance): void {
  // A callback hook: most answers come after the body was read, and pay no promise for this.
  app.addHook('onSend', (request, reply, payload, done) => {
    if (bodyRead(request.raw)) {
      done(null, payload);
      return;
    }
    void drainBody(request.raw, limits).then((drained) => {
      if (!drained) void reply.header('connection', 'close');
      done(null, payload);
    });
  });
}

type RequestBody = Pick<IncomingMessage, 'complete' | 'headers' | 'readableEnded' | 'destroyed'> & NodeJS.ReadableStream;

/** Read to its end, or a request that has no body (its end may not have been parsed yet). */
function bodyRead(body: RequestBody): boolean {
  const { 'content-length': length, 'transfer-encoding': encoding } = body.headers;
  return body.complete || body.readableEnded || (encoding === undefined && (length === undefined || length === '0'));
}

export interface DrainBounds {
  readonly bodyDrainBytesMax: number;
  readonly bodyDrainTimeoutMs: number;
}

/** Reads and discards what is left of a body; true when it ended within the bounds. */
export function drainBody(body: RequestBody, bounds: DrainBounds): Promise<boolean> {
  if (bodyRead(body)) return Promise.resolve(true);
  if (body.destroyed || Number(body.headers['content-length']) > bounds.bodyDrainBytesMax) {
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    let bytes = 0;
    const finish = (drained: boolean) => {
      clearTimeout(timer);
      body.removeListener('data', onData);
      body.removeListener('end', onEnd);
      body.removeListener('error', onFailure);
      body.removeListener('close', onFailure);
      resolve(drained);
    };
    const onData = (chunk: Buffer | string) => {
      bytes += chunk.length;
      if (bytes > bounds.bodyDrainBytesMax) finish(false);
    };
    const onEnd = () => finish(true);
    const onFailure = () => finish(false);
    const timer = setTimeout(onFailure, bounds.bodyDrainTimeoutMs);
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onFailure);
    body.once('close', onFailure);
    body.resume();
  });
}
