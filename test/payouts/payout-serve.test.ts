import fs from 'node:fs/promises';
import path from 'node:path';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setPlatformPayoutSchedule } from '../../src/accounts/payout-schedules.js';
import { BalanceService } from '../../src/balances/balance-service.js';
import { withTransaction } from '../../src/db/pool.js';
import { LedgerService } from '../../src/ledger/ledger-service.js';
import { MerchantService } from '../../src/merchants/merchant-service.js';
import { freePort } from '../global-setup.js';
import { operatorKey } from '../support/app.js';
import { eventually, startChildUntilHealthy, stopAllChildren } from '../support/child-penny.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * `penny serve` as composed by src/app.ts, with its own sandbox PSP and the system clock: a payout
 * reaches `paid` by the sandbox's webhooks through the inbox's router, within 30 seconds (issue 17).
 */
const secretKey = 'payout_serve_secret_0123456789abcdefghijklmnopqrstuv';
let database: TestDatabase;
let dataDirectory: string;

beforeAll(async () => {
  database = await createTestDatabase(2);
  dataDirectory = await fs.mkdtemp(path.join('/var/tmp', 'penny-payout-serve-'));
});

afterAll(async () => {
  await stopAllChildren();
  await fs.rm(dataDirectory, { recursive: true, force: true });
});

describe('a payout on penny serve', () => {
  it('reaches paid within 30 seconds with the system clock and no faults', async () => {
    const port = await freePort();
    const child = await startChildUntilHealthy({
      DATABASE_URL: database.url, PENNY_DATA_DIR: dataDirectory, PENNY_OPERATOR_KEY: operatorKey,
      PENNY_SECRET_KEY: secretKey, PENNY_LOG_LEVEL: 'warn', PENNY_SANDBOX_PSP_PORT: String(await freePort()),
      PENNY_SANDBOX_PSP_WEBHOOK_URL: `http://127.0.0.1:${port}/v1/connectors/sandbox/webhooks`,
    }, port);
    const created = await new MerchantService(database.pool, secretKey).createMerchant('Served Shop');
    const stripe = new Stripe(created.secretKey, { host: '127.0.0.1', port: child.port, protocol: 'http' });
    const intent = await stripe.paymentIntents.create({ amount: 9000, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true });
    const balances = new BalanceService(database.pool, new LedgerService(database.pool));
    await withTransaction(database.pool, (client) => balances.makeChargeAvailable(client, {
      merchantId: created.merchant.id, chargeId: intent.latest_charge as string,
      availableOn: new Date().toISOString() }));
    const payout = await stripe.payouts.create({ amount: 4000, currency: 'usd' });
    const started = Date.now();
    await eventually(async () => (await stripe.payouts.retrieve(payout.id)).status === 'paid', 30_000);
    expect(Date.now() - started).toBeLessThan(30_000);
  }, 60_000);
});

describe('automatic payouts on penny serve', () => {
  it('happen once the controlled clock is advanced into a due day, paying the whole available balance', async () => {
    const served = await createTestDatabase(2);
    const port = await freePort();
    const child = await startChildUntilHealthy({
      DATABASE_URL: served.url, PENNY_DATA_DIR: dataDirectory, PENNY_OPERATOR_KEY: operatorKey,
      PENNY_SECRET_KEY: secretKey, PENNY_LOG_LEVEL: 'warn', PENNY_SANDBOX_PSP_PORT: String(await freePort()),
      PENNY_SANDBOX_PSP_WEBHOOK_URL: `http://127.0.0.1:${port}/v1/connectors/sandbox/webhooks`,
      PENNY_CLOCK: 'controlled',
    }, port);
    const created = await new MerchantService(served.pool, secretKey).createMerchant('Scheduled Served Shop');
    const stripe = new Stripe(created.secretKey, { host: '127.0.0.1', port: child.port, protocol: 'http' });
    await stripe.paymentIntents.create({ amount: 9000, currency: 'usd', payment_method: 'pm_card_bypassPending',
      confirm: true });
    const funds = (await stripe.balance.retrieve()).available.find((item) => item.currency === 'usd')?.amount ?? 0;
    expect(funds).toBeGreaterThan(0);
    await setPlatformPayoutSchedule(served.pool, created.merchant.id, { interval: 'weekly', weeklyAnchor: 'monday' });
    // To the next Monday (UTC), whatever today is.
    const now = Date.now();
    const daysAhead = ((8 - new Date(now).getUTCDay()) % 7) || 7;
    const toMonday = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(),
      new Date(now).getUTCDate() + daysAhead, 0, 5) - now;
    const moved = await fetch(`http://127.0.0.1:${child.port}/v1/test_helpers/clock/advance`, { method: 'POST',
      headers: { authorization: `Bearer ${operatorKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ by: `${Math.ceil(toMonday / 1000)}s` }) });
    expect(moved.status).toBe(200);
    await eventually(async () => (await stripe.payouts.list()).data.length > 0, 30_000);
    const { data } = await stripe.payouts.list();
    expect(data).toHaveLength(1);
    expect(data[0]).toMatchObject({ automatic: true, amount: funds, currency: 'usd' });
    expect((await stripe.balance.retrieve()).available.find((item) => item.currency === 'usd')?.amount).toBe(0);
  }, 60_000);
});
