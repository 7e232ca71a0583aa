import { beforeAll, describe, expect, it } from 'vitest';
import { createTestLedger, operatorKey, type TestLedger } from '../support/app.js';

/**
 * The HTTP shell around the ledger: health, request ids, authentication, body parsing and the
 * error shape. Every refusal must write nothing and leak nothing.
 */
let penny: TestLedger;

beforeAll(async () => {
  penny = await createTestLedger();
});

async function countAccounts(): Promise<bigint> {
  const result = await penny.pool.query<{ count: bigint }>('SELECT count(*) AS count FROM ledger_accounts');
  return result.rows[0]?.count ?? -1n;
}

async function countEntries(): Promise<bigint> {
  const result = await penny.pool.query<{ count: bigint }>('SELECT count(*) AS count FROM ledger_entries');
  return result.rows[0]?.count ?? -1n;
}

/** Every error body is `{error: {type, code, message, param?}}` and nothing else. */
function expectErrorShape(body: unknown, code: string): void {
  expect(body).toEqual({
    error: expect.objectContaining({ type: expect.any(String), code, message: expect.any(String) }),
  });
  const error = (body as { error: Record<string, unknown> }).error;
  expect(Object.keys(error).every((key) => ['type', 'code', 'param', 'message'].includes(key))).toBe(true);
}

function basic(user: string, password = ''): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

describe('health', () => {
  it('answers GET /healthz with 200', async () => {
    const response = await penny.request({ method: 'GET', url: '/healthz' });
    expect(response.status).toBe(200);
  });

  it('answers GET /readyz with 200 and status ready when migrations are applied', async () => {
    const response = await penny.request({ method: 'GET', url: '/readyz' });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ status: 'ready' });
  });
});

describe('request ids', () => {
  it('gives every response a Request-Id header starting with req_', async () => {
    const responses = await Promise.all([
      penny.request({ method: 'GET', url: '/healthz' }),
      penny.request({ method: 'GET', url: '/readyz' }),
      penny.request({ method: 'GET', url: '/v1/ledger/accounts' }),
      penny.request({ method: 'GET', url: '/v1/ledger/accounts', headers: { authorization: '' } }),
      penny.request({ method: 'GET', url: '/no/such/route' }),
      penny.request({ method: 'POST', url: '/v1/ledger/accounts', body: '{not json' }),
      // Refused by a hook before any route runs.
      penny.request({ method: 'GET', url: '/v1/ledger/accounts?a%zz=1' }),
    ]);
    expect(responses.at(-1)?.status).toBe(400);
    for (const response of responses) {
      expect(response.headers['request-id']).toMatch(/^req_[A-Za-z0-9]+$/);
    }
  });

  it('gives each request its own Request-Id', async () => {
    const first = await penny.request({ method: 'GET', url: '/healthz' });
    const second = await penny.request({ method: 'GET', url: '/healthz' });
    expect(first.headers['request-id']).not.toBe(second.headers['request-id']);
  });
});

describe('routing', () => {
  it('answers an unknown route with 404 route_not_found in the error shape', async () => {
    const response = await penny.request({ method: 'GET', url: '/v1/ledger/nothing-here?x=1' });
    expect(response.status).toBe(404);
    expectErrorShape(response.body, 'route_not_found');
    expect(response.body.error.type).toBe('invalid_request_error');
  });

  it('answers a path that is not valid percent-encoded UTF-8 with 404 route_not_found in the error shape', async () => {
    const response = await penny.request({ method: 'GET', url: '/v1/ledger/accounts/%ff' });
    expect(response.status).toBe(404);
    expectErrorShape(response.body, 'route_not_found');
    expect(response.headers['request-id']).toMatch(/^req_/);
  });

  it('answers a path id longer than 765 characters with 404 route_not_found in the error shape', async () => {
    const response = await penny.request({ method: 'GET', url: `/v1/ledger/accounts/${'a'.repeat(766)}/balance` });
    expect(response.status).toBe(404);
    expectErrorShape(response.body, 'route_not_found');
  });
});

describe('authentication', () => {
  it('refuses a request without Authorization with 401 api_key_missing', async () => {
    const response = await penny.request({
      method: 'GET', url: '/v1/ledger/accounts', headers: { authorization: '' },
    });
    expect(response.status).toBe(401);
    expectErrorShape(response.body, 'api_key_missing');
    expect(response.body.error.type).toBe('invalid_request_error');
  });

  it('writes nothing for an unauthenticated POST', async () => {
    const before = await countAccounts();
    const response = await penny.request({
      method: 'POST', url: '/v1/ledger/accounts', body: { currency: 'USD', type: 'asset' },
      headers: { authorization: '' },
    });
    expect(response.status).toBe(401);
    expect(await countAccounts()).toBe(before);
  });

  it('refuses a wrong key with 401 api_key_invalid and a message that masks the key', async () => {
    const wrongKey = 'op_test_ZYXWVUTSRQPONMLKJIHGFEDCBA9876';
    const response = await penny.request({
      method: 'GET', url: '/v1/ledger/accounts', headers: { authorization: `Bearer ${wrongKey}` },
    });
    expect(response.status).toBe(401);
    expectErrorShape(response.body, 'api_key_invalid');
    expect(response.body.error.message).not.toContain(wrongKey);
    expect(response.body.error.message).not.toContain(wrongKey.slice(8, 20));
  });

  it('refuses the operator key with one character changed', async () => {
    const almost = `${operatorKey.slice(0, -1)}q`;
    const response = await penny.request({
      method: 'GET', url: '/v1/ledger/accounts', headers: { authorization: `Bearer ${almost}` },
    });
    expect(response.status).toBe(401);
    expect(response.body.error.code).toBe('api_key_invalid');
  });

  it('accepts HTTP Basic auth with the key as the user name', async () => {
    const response = await penny.request({
      method: 'GET', url: '/v1/ledger/accounts', headers: { authorization: basic(operatorKey) },
    });
    expect(response.status).toBe(200);
    expect(response.body.object).toBe('list');
  });

  it('refuses HTTP Basic auth with a wrong user name', async () => {
    const response = await penny.request({
      method: 'GET', url: '/v1/ledger/accounts', headers: { authorization: basic('op_test_wrong_key_000000000000') },
    });
    expect(response.status).toBe(401);
    expect(response.body.error.code).toBe('api_key_invalid');
  });
});

describe('request bodies', () => {
  it('refuses malformed JSON with 400 invalid_json and writes nothing', async () => {
    const before = await countAccounts();
    const response = await penny.request({
      method: 'POST', url: '/v1/ledger/accounts', body: '{"currency": "USD", "type": "asset"',
    });
    expect(response.status).toBe(400);
    expectErrorShape(response.body, 'invalid_json');
    expect(await countAccounts()).toBe(before);
  });

  it('refuses a NUL character in a path id with 400 parameter_invalid_string', async () => {
    const response = await penny.request({ method: 'GET', url: '/v1/ledger/accounts/la_%00' });
    expect(response.status).toBe(400);
    expectErrorShape(response.body, 'parameter_invalid_string');
    expect(response.body.error.param).toBe('id');
  });

  it('refuses a NUL character in a body value with 400 parameter_invalid_string and writes nothing', async () => {
    const before = await countAccounts();
    const response = await penny.request({
      method: 'POST', url: '/v1/ledger/accounts', body: { currency: 'USD', type: 'asset', metadata: { note: 'a\u0000b' } },
    });
    expect(response.status).toBe(400);
    expectErrorShape(response.body, 'parameter_invalid_string');
    expect(response.body.error.param).toBe('metadata[note]');
    expect(await countAccounts()).toBe(before);
  });

  it('refuses a body over 1 MiB on /v1/ledger/entries with 413 request_too_large', async () => {
    const before = await countEntries();
    const response = await penny.request({
      method: 'POST', url: '/v1/ledger/entries',
      body: { external_reference: 'too-large', description: 'x'.repeat(1024 * 1024 + 16), postings: [] },
    });
    expect(response.status).toBe(413);
    expectErrorShape(response.body, 'request_too_large');
    expect(response.body.error.message).toContain('(1048576 bytes)');
    expect(await countEntries()).toBe(before);
  });

  it('does not refuse a ~2 MiB body on /v1/ledger/entries/batch for its size', async () => {
    const entries = Array.from({ length: 20 }, (_, index) => ({
      external_reference: `big-batch-${index}`,
      description: 'y'.repeat(100 * 1024),
      postings: [],
    }));
    const body = JSON.stringify({ entries });
    expect(body.length).toBeGreaterThan(2 * 1024 * 1024 - 64 * 1024);
    const response = await penny.request({ method: 'POST', url: '/v1/ledger/entries/batch', body });
    expect(response.status).not.toBe(413);
    expect(response.body.error?.code).not.toBe('request_too_large');
  });

  it('refuses an XML content type with 415 unsupported_media_type', async () => {
    const before = await countAccounts();
    const response = await penny.request({
      method: 'POST', url: '/v1/ledger/accounts', body: '<account currency="USD" type="asset"/>',
      headers: { 'content-type': 'application/xml' },
    });
    expect(response.status).toBe(415);
    expectErrorShape(response.body, 'unsupported_media_type');
    expect(await countAccounts()).toBe(before);
  });

  it('refuses a text/plain body with 415 unsupported_media_type', async () => {
    const response = await penny.request({
      method: 'POST', url: '/v1/ledger/accounts', body: '{"currency":"USD","type":"asset"}',
      headers: { 'content-type': 'text/plain' },
    });
    expect(response.status).toBe(415);
    expectErrorShape(response.body, 'unsupported_media_type');
  });
});

describe('error responses', () => {
  it('never include a stack trace', async () => {
    const account = await penny.request({ method: 'POST', url: '/v1/ledger/accounts', body: { currency: 'USD', type: 'asset' } });
    const responses = await Promise.all([
      penny.request({ method: 'GET', url: '/no/such/route' }),
      penny.request({ method: 'GET', url: '/v1/ledger/accounts', headers: { authorization: 'Bearer nope' } }),
      penny.request({ method: 'POST', url: '/v1/ledger/accounts', body: '{oops' }),
      penny.request({ method: 'POST', url: '/v1/ledger/accounts', body: { currency: 'XXQ', type: 'asset' } }),
      penny.request({ method: 'GET', url: '/v1/ledger/entries/lent_doesnotexist00' }),
      penny.request({ method: 'POST', url: '/v1/ledger/entries', body: {
        external_reference: 'stack-1',
        postings: [
          { account: account.body.id, direction: 'debit', amount: 5 },
          { account: 'lacc_doesnotexist00', direction: 'credit', amount: 5 },
        ],
      } }),
      penny.request({ method: 'GET', url: `/v1/ledger/accounts/${account.body.id}/postings?starting_after=9999999999999999999` }),
      penny.request({ method: 'GET', url: `/v1/ledger/accounts/${account.body.id}/balance?as_of=2026-02-30T00:00:00Z` }),
    ]);
    for (const response of responses) {
      expect(response.status).toBeGreaterThanOrEqual(400);
      const text = JSON.stringify(response.body);
      expect(text).not.toMatch(/"stack"/);
      expect(text).not.toMatch(/\n\s+at /);
      expect(text).not.toMatch(/\bat .+\.(ts|js):\d+/);
      expect(text).not.toContain('node_modules');
      expect(text).not.toContain('/work/');
    }
  });
});
