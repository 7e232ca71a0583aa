import { beforeAll, describe, expect, it } from 'vitest';
import { advanceClock, configureClock, nowMs } from '../../src/clock.js';
import { createTestLedger, type TestLedger } from '../support/app.js';

/**
 * Holds expire by Penny's clock (src/clock.ts), like every other time rule: under a controlled
 * clock, advancing it expires them, with no wait for real time. (This file alone runs controlled.)
 */
let penny: TestLedger;
let cash: string;
let wallet: string;
let merchant: string;

beforeAll(async () => {
  configureClock('controlled');
  penny = await createTestLedger();
  const open = async (type: string) => (await penny.request({ method: 'POST', url: '/v1/ledger/accounts',
    body: { currency: 'USD', type } })).body.id as string;
  cash = await open('asset');
  wallet = await open('liability');
  merchant = await open('liability');
  await penny.request({ method: 'POST', url: '/v1/ledger/entries', body: { external_reference: 'fund',
    postings: [{ account: cash, direction: 'debit', amount: 1000 }, { account: wallet, direction: 'credit', amount: 1000 }] } });
});

function hold(reference: string, expiresAtMs: number) {
  return penny.request({ method: 'POST', url: '/v1/ledger/entries', body: {
    external_reference: reference, pending: true, expires_at: new Date(expiresAtMs).toISOString(),
    postings: [{ account: wallet, direction: 'debit', amount: 100 }, { account: merchant, direction: 'credit', amount: 100 }],
  } });
}

describe('hold expiry on a controlled clock', () => {
  it('expires a hold once the clock is advanced past its expires_at, and then refuses to post it', async () => {
    const created = await hold('clock-hold-1', nowMs() + 3_600_000);
    expect(created.status).toBe(200);
    expect(await penny.ledger.expireDueHolds()).toBe(0);
    advanceClock(2 * 3_600_000);
    expect(await penny.ledger.expireDueHolds()).toBe(1);
    const fetched = await penny.request({ method: 'GET', url: `/v1/ledger/entries/${created.body.id}` });
    expect(fetched.body.status).toBe('expired');
    const posted = await penny.request({ method: 'POST', url: `/v1/ledger/entries/${created.body.id}/post` });
    expect(posted.status).toBe(409);
    expect(posted.body.error.code).toBe('hold_expired');
  });

  it('refuses a post of a hold the advanced clock has expired even before the worker runs', async () => {
    const created = await hold('clock-hold-2', nowMs() + 60_000);
    advanceClock(120_000);
    const posted = await penny.request({ method: 'POST', url: `/v1/ledger/entries/${created.body.id}/post` });
    expect(posted.status).toBe(409);
    expect(posted.body.error.code).toBe('hold_expired');
  });

  it('refuses a new hold whose expires_at is past by the advanced clock, though not by the wall clock', async () => {
    advanceClock(3_600_000);
    const refused = await hold('clock-hold-3', Date.now() + 60_000);
    expect(refused.status).toBe(400);
    expect(refused.body.error.param).toBe('expires_at');
  });
});
