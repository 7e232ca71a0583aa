import { execFile } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { limits } from '../../src/config.js';
import { drainBody } from '../../src/http/body-drain.js';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/**
 * A body over the limit is answered with Stripe's error object over a real socket: Penny reads
 * and discards the rest of the body first, so closing the connection does not reset a client
 * still sending (Node's fetch then reports only "fetch failed", EPIPE).
 */
let penny: ServedLedger;
let secretKey: string;

beforeAll(async () => {
  penny = await serveTestLedger();
  secretKey = (await penny.merchants.createMerchant('Big Body Shop')).secretKey;
});

/**
 * Node's fetch in another process: in Penny's own process the client never writes while the
 * server closes, so the reset never shows. Each request's outcome is its status and JSON body,
 * or the network error's code.
 */
const clientScript = `
const { url, headers, bytes, chunked, times } = JSON.parse(process.argv[1]);
const form = 'amount=1000&currency=usd&description=';
const text = form + 'x'.repeat(bytes - form.length);
function body() {
  if (!chunked) return text;
  const encoded = new TextEncoder().encode(text);
  let offset = 0;
  return new ReadableStream({ pull(controller) {
    if (offset >= encoded.length) return controller.close();
    controller.enqueue(encoded.subarray(offset, offset += 65536));
  } });
}
const outcomes = [];
for (let i = 0; i < times; i++) {
  try {
    const response = await fetch(url, { method: 'POST', headers, body: body(), duplex: 'half' });
    outcomes.push({ status: response.status, body: await response.json() });
  } catch (error) {
    outcomes.push({ failed: String(error.cause?.code ?? error.message) });
  }
}
process.stdout.write(JSON.stringify(outcomes));
`;

interface Outcome { status?: number; body?: { error?: Record<string, unknown> }; failed?: string }

function postFromAnotherProcess(path: string, options: { bytes: number; chunked?: boolean; times?: number;
  authorization?: string }): Promise<Outcome[]> {
  const request = {
    url: `http://127.0.0.1:${penny.port}${path}`,
    headers: { authorization: options.authorization ?? `Bearer ${secretKey}`,
      'content-type': 'application/x-www-form-urlencoded' },
    bytes: options.bytes, chunked: options.chunked ?? false, times: options.times ?? 1,
  };
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', clientScript, JSON.stringify(request)],
      (error, stdout) => (error === null ? resolve(JSON.parse(stdout) as Outcome[]) : reject(error)));
  });
}

const tooLarge = {
  status: 413,
  body: { error: expect.objectContaining({ type: 'invalid_request_error', code: 'request_too_large',
    message: `The request body is larger than this endpoint accepts (${limits.requestBodyBytesMax} bytes).` }) },
};
/**
 * A 1.1 MB body was reset where it was found; this machine's loopback buffers hold that much, so
 * the reset shows (most times) from about 4 MB. Each test sends several.
 */
const eightMiB = 8 * 1024 * 1024;

describe('a body over the limit reaches the client as a 413 error object', () => {
  it('on POST /v1/payment_intents', async () => {
    expect(await postFromAnotherProcess('/v1/payment_intents', { bytes: eightMiB, times: 4 }))
      .toEqual(Array(4).fill(tooLarge));
  });

  it('on POST /v1/refunds', async () => {
    expect(await postFromAnotherProcess('/v1/refunds', { bytes: eightMiB, times: 4 }))
      .toEqual(Array(4).fill(tooLarge));
  });

  it('when it is sent without a Content-Length, so the limit is found while reading', async () => {
    expect(await postFromAnotherProcess('/v1/payment_intents', { bytes: eightMiB, chunked: true, times: 4 }))
      .toEqual(Array(4).fill(tooLarge));
  });
});

describe('discarding the rest of a body is bounded', () => {
  const bounds = { bodyDrainBytesMax: 1000, bodyDrainTimeoutMs: 50 };

  function unreadBody(contentLength?: number) {
    const stream = new PassThrough();
    return Object.assign(stream, { complete: false, headers: contentLength === undefined
      ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(contentLength) } });
  }

  it('reads a body to its end', async () => {
    const body = unreadBody(600);
    const drained = drainBody(body, bounds);
    body.end(Buffer.alloc(600));
    expect(await drained).toBe(true);
  });

  it('stops after bodyDrainBytesMax bytes', async () => {
    const body = unreadBody();
    const drained = drainBody(body, bounds);
    body.write(Buffer.alloc(1001));
    expect(await drained).toBe(false);
  });

  it('does not start when the Content-Length says the rest is over bodyDrainBytesMax', async () => {
    const body = unreadBody(1001);
    expect(await drainBody(body, bounds)).toBe(false);
    expect(body.listenerCount('data')).toBe(0);
  });

  it('gives up after bodyDrainTimeoutMs', async () => {
    const body = unreadBody();
    const started = Date.now();
    expect(await drainBody(body, bounds)).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
  });
});
