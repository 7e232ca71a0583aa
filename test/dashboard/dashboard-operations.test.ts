import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { advanceClock, configureClock, nowMs } from '../../src/clock.js';
import { withTransaction } from '../../src/db/pool.js';
import { minorToDecimal } from '../../src/money/decimal-amount.js';
import { openCase } from '../../src/payments/payment-cases.js';
import { payOutSettlementBatches } from '../../src/sandbox-psp/psp-settlement.js';
import { operatorKey } from '../support/app.js';
import { serveTestLedger, settlementPullWithPlant, type ServedLedger } from '../support/stripe.js';
import { hasChromium, launchBrowser, newPage, screenshot, signIn, skipReason } from './browser.js';

/**
 * The operator's pages in a real browser: home with its chart, a reconciliation break approved and
 * then closed for good by the next run, a settlement report uploaded, a case closed, the ledger.
 * The clock is controlled (reconciliation works on closed days); sessions run on the database's.
 */
describe.skipIf(!hasChromium)(`the dashboard's operator pages${hasChromium ? '' : ` (skipped: ${skipReason})`}`, () => {
  let penny: ServedLedger;
  let browser: Browser;
  let baseUrl: string;

  beforeAll(async () => {
    configureClock('controlled');
    penny = await serveTestLedger();
    baseUrl = `http://127.0.0.1:${penny.port}`;
    browser = await launchBrowser();
  });

  afterAll(() => {
    configureClock('system');
  });

  function today(): string {
    return new Date(nowMs()).toISOString().slice(0, 10);
  }

  async function operatorApi(method: 'GET' | 'POST', url: string, payload?: object) {
    const response = await penny.app.inject({ method, url, headers: { authorization: `Bearer ${operatorKey}` },
      ...(payload === undefined ? {} : { payload }) });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a JSON answer read by the test
    return { status: response.statusCode, body: response.json() as any };
  }

  it("shows the home page's figures and draws payments per hour", async () => {
    const shop = await penny.merchants.createMerchant('Home Shop');
    const stripe = penny.stripeFor(shop.secretKey);
    await stripe.paymentIntents.create({ amount: 2500, currency: 'usd', payment_method: 'pm_card_visa', confirm: true });
    await stripe.paymentIntents.create({ amount: 1750, currency: 'usd', payment_method: 'pm_card_visa', confirm: true });
    const page = await newPage(browser);
    const refusedScripts: string[] = [];
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) refusedScripts.push(message.text());
    });
    await signIn(page, baseUrl, operatorKey);
    expect(await page.textContent('#today')).toContain('42.50 USD');
    expect(await page.textContent('#today')).toContain('2 succeeded · 0 failed or canceled');
    await page.waitForSelector('#chart canvas');
    expect(refusedScripts).toEqual([]);
    await screenshot(page, 'home');
    await page.context().close();
  });

  it('approves a break from its page, and the next run leaves it closed', async () => {
    const shop = await penny.merchants.createMerchant('Breaks Shop');
    const stripe = penny.stripeFor(shop.secretKey);
    await stripe.paymentIntents.create({ amount: 6400, currency: 'usd', payment_method: 'pm_card_visa', confirm: true });
    await stripe.paymentIntents.create({ amount: 1000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true });
    const day = today();
    await payOutSettlementBatches(penny.pool, day);
    const report = await (await fetch(`${penny.sandbox.url}/v1/settlement_reports/${day}?currency=USD&plant=wrong_fee`))
      .text();
    advanceClock(86_400_000);
    await settlementPullWithPlant(penny, day, ['wrong_fee']);
    const page = await newPage(browser);
    await signIn(page, baseUrl, operatorKey);

    // The settlement report, uploaded from the page as an operator would.
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'penny-dashboard-')), 'report.csv');
    fs.writeFileSync(file, report);
    await page.goto(`${baseUrl}/dashboard/reconciliation`);
    await page.fill('#upload-form input[name=source]', 'sandbox');
    await page.setInputFiles('#upload-form input[type=file]', file);
    await Promise.all([page.waitForSelector('#import-summary'), page.click('#upload')]);
    expect(await page.textContent('#import-summary')).toContain('report.csv');

    const run = await operatorApi('POST', '/v1/reconciliation/runs', { as_of: today() });
    const fee = (run.body.breaks as { type: string; id: string; expected_minor: number; actual_minor: number;
      difference_minor: number }[]).find((row) => row.type === 'fee_mismatch');
    expect(fee).toBeDefined();
    await page.goto(`${baseUrl}/dashboard/reconciliation`);
    expect(await page.textContent('#break-ages')).toContain('fee_mismatch');
    await Promise.all([page.waitForURL(/\/reconciliation\/breaks\//), page.click(`a[href$="${fee?.id ?? ''}"]`)]);
    const usd = (minor: number | undefined) => `${minorToDecimal(BigInt(minor ?? 0), 'USD')} USD`;
    expect(await page.textContent('#sides')).toContain(usd(fee?.expected_minor));
    expect(await page.textContent('#sides')).toContain(usd(fee?.actual_minor));
    expect(await page.textContent('#proposal-postings')).toContain(usd(fee?.difference_minor));
    await screenshot(page, 'reconciliation-break');
    await Promise.all([page.waitForSelector('#notice'), page.click('#approve')]);
    expect(await page.textContent('#break-status')).toContain('resolved');
    const entry = await page.textContent('#repair-entry');
    expect(entry).toMatch(/^lent_/);

    await page.goto(`${baseUrl}/dashboard/reconciliation`);
    await Promise.all([page.waitForSelector('#notice'), page.click('#run-now')]);
    const rerun = await operatorApi('GET', '/v1/reconciliation/runs?limit=1');
    const latest = await operatorApi('GET', `/v1/reconciliation/runs/${rerun.body.data[0].id}`);
    expect(latest.body.breaks).toEqual([]);
    const after = await operatorApi('GET', `/v1/reconciliation/breaks/${fee?.id ?? ''}`);
    expect(after.body).toMatchObject({ status: 'resolved', resolution: 'repaired', repair_entry: entry });
    await screenshot(page, 'reconciliation');
    await page.context().close();
  });

  it('closes a case with a resolution', async () => {
    const shop = await penny.merchants.createMerchant('Case Shop');
    const intent = await penny.stripeFor(shop.secretKey).paymentIntents.create({ amount: 3100, currency: 'usd',
      payment_method: 'pm_card_visa', confirm: true });
    await withTransaction(penny.pool, (client) => openCase(client, { merchantId: shop.merchant.id,
      kind: 'contradicting_event', paymentIntentId: intent.id, subjectId: `evt_psp_${intent.id}`,
      detail: { psp_says: 'failed', penny_booked: 'succeeded' } }));
    const page = await newPage(browser);
    await signIn(page, baseUrl, operatorKey);
    await page.goto(`${baseUrl}/dashboard/cases`);
    await Promise.all([page.waitForURL(/\/dashboard\/cases\/case_/), page.click('#cases tbody a[href^="/dashboard/cases/"]')]);
    expect(await page.textContent('#case-detail')).toContain('psp_says');
    await page.fill('#resolution', 'Checked with the PSP: the capture stands.');
    await screenshot(page, 'case');
    await Promise.all([page.waitForSelector('#notice'), page.click('#close-case')]);
    expect(await page.textContent('#case-status')).toContain('closed');
    const cases = await operatorApi('GET', '/v1/cases?status=closed');
    expect(cases.body.data.map((row: { resolution: string }) => row.resolution))
      .toContain('Checked with the PSP: the capture stands.');
    await page.context().close();
  });

  it("shows the ledger's trial balance and an account's postings with a running balance", async () => {
    const page = await newPage(browser);
    await signIn(page, baseUrl, operatorKey);
    await page.goto(`${baseUrl}/dashboard/ledger`);
    expect(await page.textContent('#trial-balance')).toContain('USD');
    await Promise.all([page.waitForSelector('#last-verify strong'), page.click('#verify')]);
    expect(await page.textContent('#last-verify')).toContain('ok');
    await screenshot(page, 'ledger');
    await Promise.all([page.waitForURL(/\/ledger\/accounts\//), page.click('#accounts tbody a')]);
    expect(await page.locator('#postings tbody tr').count()).toBeGreaterThan(0);
    await screenshot(page, 'ledger-account');
    await page.context().close();
  });

  it('refuses the operator pages to a merchant session', async () => {
    const shop = await penny.merchants.createMerchant('Curious Shop');
    const page = await newPage(browser);
    await signIn(page, baseUrl, shop.secretKey);
    for (const url of ['/dashboard/ledger', '/dashboard/reconciliation', '/dashboard/cases']) {
      expect((await page.goto(`${baseUrl}${url}`))?.status()).toBe(404);
    }
    await page.context().close();
  });
});
