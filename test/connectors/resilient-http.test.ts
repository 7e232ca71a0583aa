import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectorRefusedError, ConnectorUnknownOutcomeError } from '../../src/connectors/connector.js';
import { ResilientHttp } from '../../src/connectors/resilient-http.js';
import { freePort } from '../../src/simulate/free-port.js';

/**
 * The outbound HTTP client every connector uses, against a real local server that answers as
 * each test's path asks: a 2xx is the answer, a 4xx a refusal, and a timeout, a refused
 * connection, a 5xx or a body cut short an unknown outcome.
 */
let server: http.Server;
let baseUrl: string;

beforeAll(async () => {
  server = http.createServer((request, response) => {
    const answers: Record<string, () => void> = {
      '/ok': () => response.writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ key: request.headers['idempotency-key'] })),
      '/refused': () => response.writeHead(402).end(JSON.stringify({ error: { code: 'card_declined', message: 'no' } })),
      '/broken': () => response.writeHead(503).end('{}'),
      '/moved': () => response.writeHead(302, { location: '/ok', 'content-type': 'application/json' })
        .end(JSON.stringify({ psp_reference: 'not-an-answer' })),
      '/cut': () => {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.write('{"partial":');
        setTimeout(() => response.destroy(), 20);
      },
      '/slow': () => undefined,
    };
    request.resume();
    (answers[request.url ?? ''] ?? answers['/broken'] as () => void)();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function client(url = baseUrl): ResilientHttp {
  return new ResilientHttp({ connector: 'test', baseUrl: url, timeoutMs: 200, retryCountMax: 0,
    retryDelayInitialMs: 1, retryDelayMaxMs: 1, breakerFailuresMax: 100, breakerOpenMs: 1000 });
}

describe('the resilient HTTP client', () => {
  it('returns the parsed JSON of a 2xx, having sent the idempotency key', async () => {
    expect(await client().request('POST', '/ok', { body: {}, idempotencyKey: 'key-1' })).toEqual({ key: 'key-1' });
  });

  it('turns a 4xx into a refusal with the PSP\'s code', async () => {
    await expect(client().request('POST', '/refused', { body: {} })).rejects.toSatisfy((error) =>
      error instanceof ConnectorRefusedError && error.code === 'card_declined');
  });

  it('turns a 5xx into an unknown outcome', async () => {
    await expect(client().request('POST', '/broken', { body: {} })).rejects.toBeInstanceOf(ConnectorUnknownOutcomeError);
  });

  it('turns a redirect into an unknown outcome, never an answer', async () => {
    await expect(client().request('POST', '/moved', { body: {} })).rejects.toMatchObject({
      reason: 'it answered 302' });
  });

  it('turns a timeout into an unknown outcome that says it timed out', async () => {
    await expect(client().request('POST', '/slow', { body: {} })).rejects.toMatchObject({
      reason: 'it timed out' });
  });

  it('turns a refused connection into an unknown outcome naming ECONNREFUSED', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    await expect(client(closed).request('POST', '/ok', { body: {} })).rejects.toMatchObject({
      reason: 'the connection failed (ECONNREFUSED)' });
  });

  it('turns a 2xx whose body was cut short into an unknown outcome', async () => {
    await expect(client().request('POST', '/cut', { body: {} })).rejects.toBeInstanceOf(ConnectorUnknownOutcomeError);
  });
});
