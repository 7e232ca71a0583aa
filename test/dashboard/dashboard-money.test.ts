import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { nowMs } from '../../src/clock.js';
import { withTransaction } from '../../src/db/pool.js';
import { createLogger } from '../../src/logger.js';
import { WebhookDeliveryWorker } from '../../src/webhooks/webhook-deliveries.js';
import { operatorKey } from '../support/app.js';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';
import { hasChromium, launchBrowser, newPage, screenshot, signIn, skipReason } from './browser.js';

/**
 * Balances, payouts and webhooks in a real browser: a manual payout made from the page once
 * (double-clicked), its balance transactions, and a failed webhook delivery resent from the page.
 */
describe.skipIf(!hasChromium)(`the dashboard's balances and webhooks${hasChromium ? '' : ` (skipped: ${skipReason})`}`,
  () => {
    let penny: ServedLedger;
    let browser: Browser;
    let baseUrl: string;
    let answers: number[] = [];
    const receiver = http.createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        response.statusCode = answers.shift() ?? 200;
        response.end('ok');
      });
    });

    beforeAll(async () => {
      penny = await serveTestLedger();
      baseUrl = `http://127.0.0.1:${penny.port}`;
      browser = await launchBrowser();
      await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    });

    afterAll(async () => {
      await new Promise((resolve) => receiver.close(resolve));
    });

    /** A new merchant with one charge of `amount` (Stripe's units) whose funds are available. */
    async function merchantWithAvailableCharge(name: string, amount: number, currency: string) {
      const created = await penny.merchants.createMerchant(name);
      const stripe = penny.stripeFor(created.secretKey);
      const intent = await stripe.paymentIntents.create({ amount, currency, payment_method: 'pm_card_visa',
        confirm: true });
      await withTransaction(penny.pool, (client) => penny.balances.makeChargeAvailable(client, {
        merchantId: created.merchant.id, chargeId: intent.latest_charge as string,
        availableOn: new Date(nowMs()).toISOString() }));
      return { created, stripe };
    }

    it('makes a manual payout from the balances page once, even when double-clicked', async () => {
      const { created, stripe } = await merchantWithAvailableCharge('Payout Shop', 10_000, 'usd');
      const page = await newPage(browser);
      await signIn(page, baseUrl, created.secretKey);
      await page.goto(`${baseUrl}/dashboard/balances`);
      expect(page.url()).toContain(`/dashboard/balances/${created.merchant.id}`);
      await page.fill('#payout-amount', '20.00');
      await page.dblclick('#create-payout');
      await page.waitForSelector('#notice');
      const payouts = await stripe.payouts.list();
      expect(payouts.data.map((payout) => payout.amount)).toEqual([2000]);
      await screenshot(page, 'balances');
      await Promise.all([page.waitForURL(/\/payouts\/po_/), page.click('#payouts tbody a')]);
      expect(await page.textContent('#payout')).toContain('20.00 USD');
      expect(await page.textContent('#payout-transactions')).toContain('payout');
      await page.context().close();
    });

    it('makes a manual payout in ISK for the amount typed, in Stripe\'s units of ISK', async () => {
      // Stripe writes ISK with two decimals (500 ISK is 50000); ISO 4217 gives it none.
      const { created, stripe } = await merchantWithAvailableCharge('Krona Payout Shop', 50_000, 'isk');
      const page = await newPage(browser);
      await signIn(page, baseUrl, created.secretKey);
      await page.goto(`${baseUrl}/dashboard/balances/${created.merchant.id}`);
      await page.fill('input[name="currency"]', 'isk');
      await page.fill('#payout-amount', '200');
      await page.click('#create-payout');
      await page.waitForSelector('#notice');
      const payouts = await stripe.payouts.list();
      expect(payouts.data.map((payout) => [payout.amount, payout.currency])).toEqual([[20_000, 'isk']]);
      await page.context().close();
    });

    it("lets the operator see a merchant's balances, and refuses another merchant's to a merchant", async () => {
      const mine = await penny.merchants.createMerchant('Own Shop');
      const theirs = await penny.merchants.createMerchant('Their Shop');
      const page = await newPage(browser);
      await signIn(page, baseUrl, mine.secretKey);
      expect((await page.goto(`${baseUrl}/dashboard/balances/${theirs.merchant.id}`))?.status()).toBe(404);
      expect((await page.goto(`${baseUrl}/dashboard/webhooks/${theirs.merchant.id}`))?.status()).toBe(404);
      await page.context().close();
      const operator = await newPage(browser);
      await signIn(operator, baseUrl, operatorKey);
      await operator.goto(`${baseUrl}/dashboard/balances`);
      expect(await operator.textContent('#merchants')).toContain(theirs.merchant.id);
      await operator.context().close();
    });

    it('resends a failed webhook delivery from the webhooks page', async () => {
      const created = await penny.merchants.createMerchant('Hook Shop');
      const stripe = penny.stripeFor(created.secretKey);
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
      await stripe.webhookEndpoints.create({ url, enabled_events: ['payment_intent.succeeded'] });
      await stripe.paymentIntents.create({ amount: 1500, currency: 'usd', payment_method: 'pm_card_visa',
        confirm: true });
      const worker = new WebhookDeliveryWorker(penny.pool, penny.webhookEndpoints,
        { allowPrivateUrls: true, logger: createLogger('silent') });
      answers = [500];
      await worker.deliverDue();
      const page = await newPage(browser);
      await signIn(page, baseUrl, operatorKey);
      await page.goto(`${baseUrl}/dashboard/webhooks`);
      await Promise.all([page.waitForURL(new RegExp(`/webhooks/${created.merchant.id}$`)),
        page.click(`a[href="/dashboard/webhooks/${created.merchant.id}"]`)]);
      expect(await page.textContent('#deliveries')).toContain('500');
      await page.click('#deliveries .resend');
      await page.waitForSelector('#notice');
      await worker.deliverDue();
      await page.reload();
      const deliveries = await page.textContent('#deliveries');
      expect(deliveries).toContain('#2');
      expect(deliveries).toContain('200');
      expect(deliveries).toContain('succeeded');
      await screenshot(page, 'webhooks');
      await page.context().close();
    });
  });
