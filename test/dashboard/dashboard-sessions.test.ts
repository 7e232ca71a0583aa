import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestLedger, operatorKey, testPepper, type TestLedger } from '../support/app.js';

/**
 * Dashboard sessions across a restart of Penny (in-process, no browser): the same database served
 * by a Penny with the same operator key, and by one whose PENNY_OPERATOR_KEY was changed.
 */
const changedOperatorKey = 'op_changed_9876543210zyxwvutsrqponm';

let before: TestLedger;
let sameKey: TestLedger;
let changedKey: TestLedger;

beforeAll(async () => {
  before = await createTestLedger();
  sameKey = await createTestLedger({ database: before });
  changedKey = await createTestLedger({ database: before, operatorKey: changedOperatorKey });
});

/** Signs in at `penny` with `key`; the session token its cookie holds. */
async function signIn(penny: TestLedger, key: string): Promise<string> {
  const response = await penny.app.inject({ method: 'POST', url: '/dashboard/sign-in',
    headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `key=${encodeURIComponent(key)}` });
  expect(response.statusCode).toBe(303);
  const cookie = String(response.headers['set-cookie']);
  const token = /penny_dashboard_session=([^;]*)/.exec(cookie)?.[1];
  expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  return token as string;
}

async function home(penny: TestLedger, token: string, headers: Record<string, string> = {}) {
  return penny.app.inject({ method: 'GET', url: '/dashboard', headers: { cookie: `penny_dashboard_session=${token}`,
    ...headers } });
}

async function storedOperatorKeyDigest(token: string): Promise<Buffer | null | undefined> {
  const result = await before.pool.query<{ operator_key_digest: Buffer | null }>(
    'SELECT operator_key_digest FROM dashboard_sessions WHERE token_digest = $1',
    [createHash('sha256').update(token).digest()]);
  return result.rows[0]?.operator_key_digest;
}

describe('an operator dashboard session', () => {
  it('is signed out once the operator key that opened it is no longer the operator key', async () => {
    const token = await signIn(before, operatorKey);
    expect((await home(before, token)).statusCode).toBe(200);
    // PENNY_OPERATOR_KEY changed (it leaked) and Penny restarted: the old key's session opens nothing.
    const page = await home(changedKey, token);
    expect(page.statusCode).toBe(303);
    expect(page.headers.location).toBe('/dashboard/sign-in');
    const swapped = await home(changedKey, token, { 'hx-request': 'true' });
    expect(swapped.statusCode).toBe(401);
    expect(swapped.headers['hx-redirect']).toBe('/dashboard/sign-in');
    // Nor can the old key open a new one; the new key can.
    const refused = await changedKey.app.inject({ method: 'POST', url: '/dashboard/sign-in',
      headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `key=${operatorKey}` });
    expect(refused.statusCode).toBe(401);
    expect((await home(changedKey, await signIn(changedKey, changedOperatorKey))).statusCode).toBe(200);
  });

  it('stays open across a restart with the same operator key', async () => {
    const token = await signIn(before, operatorKey);
    expect((await home(sameKey, token)).statusCode).toBe(200);
  });

  it('keeps an HMAC of the operator key that opened it, never the key nor its bare SHA-256', async () => {
    const token = await signIn(before, operatorKey);
    const stored = await storedOperatorKeyDigest(token);
    expect(stored).toBeInstanceOf(Buffer);
    expect(stored?.length).toBe(32);
    expect(stored?.equals(createHash('sha256').update(operatorKey).digest())).toBe(false);
    expect(stored?.toString('latin1')).not.toContain(operatorKey);
    expect(stored?.toString('latin1')).not.toContain(testPepper);
  });

  it('opened before the key digest was kept (migration 0047) is signed out', async () => {
    const token = await signIn(before, operatorKey);
    await before.pool.query('UPDATE dashboard_sessions SET operator_key_digest = NULL WHERE token_digest = $1',
      [createHash('sha256').update(token).digest()]);
    const page = await home(before, token);
    expect(page.statusCode).toBe(303);
    expect(page.headers.location).toBe('/dashboard/sign-in');
  });
});

describe("a merchant's dashboard session", () => {
  it('keeps no operator key digest and outlives a change of the operator key', async () => {
    const created = await before.merchants.createMerchant('Session Shop');
    const token = await signIn(before, created.secretKey);
    expect(await storedOperatorKeyDigest(token)).toBeNull();
    expect((await home(changedKey, token)).statusCode).toBe(200);
  });
});
