import { beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { nowMs } from '../../src/clock.js';
import { withTransaction } from '../../src/db/pool.js';
import { operatorKey } from '../support/app.js';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';
import { formFields, hasChromium, launchBrowser, newPage, screenshot, signIn, skipReason } from './browser.js';

/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core) against a Penny
 * on port 0 with the real PostgreSQL: sign-in, the payments list, a payment's page and its refund.
 */
describe.skipIf(!hasChromium)(`the dashboard's payments${hasChromium ? '' : ` (skipped: ${skipReason})`}`, () => {
  let penny: ServedLedger;
  let browser: Browser;
  let baseUrl: string;
  let shop: { id: string; secretKey: string };
  let other: { id: string; secretKey: string };

  beforeAll(async () => {
    penny = await serveTestLedger();
    baseUrl = `http://127.0.0.1:${penny.port}`;
    browser = await launchBrowser();
    const created = await penny.merchants.createMerchant('Dashboard Shop');
    shop = { id: created.merchant.id, secretKey: created.secretKey };
    const nosy = await penny.merchants.createMerchant('Other Shop');
    other = { id: nosy.merchant.id, secretKey: nosy.secretKey };
  });

  async function capturedPayment(secretKey: string, amount: number, metadata: Record<string, string> = {}) {
    return penny.stripeFor(secretKey).paymentIntents.create({ amount, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true, metadata });
  }

  it('signs in with the operator key, and signs out ending the session', async () => {
    const page = await newPage(browser);
    await signIn(page, baseUrl, operatorKey);
    expect(await page.textContent('h1')).toBe('Home');
    const cookies = await page.context().cookies();
    const session = cookies.find((cookie) => cookie.name === 'penny_dashboard_session');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/dashboard' });
    expect(session?.expires).toBeGreaterThan(Date.now() / 1000);
    await screenshot(page, 'home-signed-in');
    await Promise.all([page.waitForURL(/\/dashboard\/sign-in$/), page.click('#sign-out')]);
    // The old cookie, sent again by hand, no longer opens anything: the session ended on the server.
    const replay = await fetch(`${baseUrl}/dashboard/payments`,
      { headers: { cookie: `penny_dashboard_session=${session?.value}` }, redirect: 'manual' });
    expect(replay.status).toBe(303);
    expect(replay.headers.get('location')).toBe('/dashboard/sign-in');
    // htmx's own requests are told to load the sign-in page whole.
    const swapped = await fetch(`${baseUrl}/dashboard/payments`, { redirect: 'manual',
      headers: { cookie: `penny_dashboard_session=${session?.value}`, 'hx-request': 'true' } });
    expect(swapped.status).toBe(401);
    expect(swapped.headers.get('hx-redirect')).toBe('/dashboard/sign-in');
    await page.context().close();
  });

  it("ends a merchant's session when the key it was opened with is revoked", async () => {
    const created = await penny.merchants.createMerchant('Revoked Shop');
    const page = await newPage(browser);
    await signIn(page, baseUrl, created.secretKey);
    expect((await page.goto(`${baseUrl}/dashboard/payments`))?.url()).toMatch(/\/dashboard\/payments$/);
    await penny.merchants.revokeKey(created.keyId);
    await page.goto(`${baseUrl}/dashboard/payments`);
    expect(page.url()).toMatch(/\/dashboard\/sign-in$/);
    await page.context().close();
  });

  it("serves its pages with a CSP allowing only Penny's own scripts, and leaves the API's answers alone", async () => {
    const page = await fetch(`${baseUrl}/dashboard/sign-in`);
    const policy = page.headers.get('content-security-policy') ?? '';
    expect(policy).toContain("script-src 'self'");
    expect(policy).toContain("default-src 'self'");
    expect(policy).not.toContain('unsafe-inline');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await page.text()).not.toMatch(/<script(?![^>]*\bsrc=)/);
    const htmx = await fetch(`${baseUrl}/dashboard/assets/htmx/htmx.min.js`);
    expect(htmx.status).toBe(200);
    expect((await fetch(`${baseUrl}/healthz`)).headers.get('content-security-policy')).toBeNull();
  });

  it('refuses a wrong key at sign-in', async () => {
    const page = await newPage(browser);
    await page.goto(`${baseUrl}/dashboard/sign-in`);
    await page.fill('input[name=key]', 'sk_test_notakeyatall0000000000');
    const [response] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/dashboard/sign-in')
      && r.request().method() === 'POST'), page.click('#sign-in')]);
    expect(response.status()).toBe(401);
    expect(await page.textContent('#error')).toContain('neither the operator key nor an active secret key');
    expect(await page.context().cookies()).toEqual([]);
    await screenshot(page, 'sign-in-refused');
    await page.context().close();
  });

  it('filters the payments list by status and amount', async () => {
    const small = await capturedPayment(shop.secretKey, 1500);
    const large = await capturedPayment(shop.secretKey, 9900);
    const held = await penny.stripeFor(shop.secretKey).paymentIntents.create({ amount: 5000, currency: 'usd',
      payment_method: 'pm_card_visa', confirm: true, capture_method: 'manual' });
    const page = await newPage(browser);
    await signIn(page, baseUrl, operatorKey);
    await page.goto(`${baseUrl}/dashboard/payments`);
    await page.selectOption('select[name=status]', 'succeeded');
    await page.fill('input[name=merchant]', shop.id);
    await page.fill('input[name=currency]', 'usd');
    await page.fill('input[name=amount_min]', '50.00');
    await Promise.all([page.waitForURL(/status=succeeded/), page.click('#apply-filters')]);
    const ids = await page.locator('#payments tbody a').allTextContents();
    expect(ids).toEqual([large.id]);
    expect(ids).not.toContain(small.id);
    expect(ids).not.toContain(held.id);
    expect(await page.textContent('#payments tbody')).toContain('99.00 USD');
    await screenshot(page, 'payments-filtered');
    await page.context().close();
  });

  it('pages the payments list with Stripe cursors, older then newer', async () => {
    const created = await penny.merchants.createMerchant('Paged Shop');
    const first = await capturedPayment(created.secretKey, 1100);
    const second = await capturedPayment(created.secretKey, 1200);
    const third = await capturedPayment(created.secretKey, 1300);
    const page = await newPage(browser);
    await signIn(page, baseUrl, operatorKey);
    await page.goto(`${baseUrl}/dashboard/payments?merchant=${created.merchant.id}&limit=2`);
    expect(await page.locator('#payments tbody a').allTextContents()).toEqual([third.id, second.id]);
    expect(await page.locator('a[rel=prev]').count()).toBe(0);
    await Promise.all([page.waitForURL(/starting_after=/), page.click('a[rel=next]')]);
    expect(await page.locator('#payments tbody a').allTextContents()).toEqual([first.id]);
    expect(await page.locator('a[rel=next]').count()).toBe(0);
    await Promise.all([page.waitForURL(/ending_before=/), page.click('a[rel=prev]')]);
    expect(await page.locator('#payments tbody a').allTextContents()).toEqual([third.id, second.id]);
    await page.context().close();
  });

  it("shows a payment's timeline and ledger entries after a capture and a partial refund through the SDK", async () => {
    const stripe = penny.stripeFor(shop.secretKey);
    const intent = await stripe.paymentIntents.create({ amount: 12000, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true, capture_method: 'manual', metadata: { order: 'A-1' } });
    await stripe.paymentIntents.capture(intent.id);
    const refund = await stripe.refunds.create({ payment_intent: intent.id, amount: 2500 });
    // The PSP's settlement makes the charge's funds available (what the settlement pull does).
    await withTransaction(penny.pool, (client) => penny.balances.makeChargeAvailable(client, {
      merchantId: shop.id, chargeId: intent.latest_charge as string, availableOn: new Date(nowMs()).toISOString() }));
    const page = await newPage(browser);
    await signIn(page, baseUrl, operatorKey);
    await page.goto(`${baseUrl}/dashboard/payments`);
    await page.fill('input[name=q]', 'A-1');
    await Promise.all([page.waitForURL(/q=A-1/), page.click('#apply-filters')]);
    await Promise.all([page.waitForURL(new RegExp(`/dashboard/payments/${intent.id}$`)),
      page.click(`a[href="/dashboard/payments/${intent.id}"]`)]);
    expect(await page.textContent('#payment-amount')).toBe('120.00 USD');
    expect(await page.textContent('#payment-refunded')).toBe('25.00 USD');
    const timeline = await page.textContent('#timeline');
    for (const type of ['payment_intent.created', 'payment_intent.amount_capturable_updated', 'payment_intent.succeeded',
      'charge.captured', 'refund.created']) expect(timeline).toContain(type);
    expect(timeline).toContain(`settled ${intent.latest_charge as string}`);
    const entryIds = await page.locator('#ledger-entries .entry-id').allTextContents();
    expect(entryIds.length).toBeGreaterThanOrEqual(3);
    for (const id of entryIds) expect(id).toMatch(/^lent_/);
    const entries = await page.textContent('#ledger-entries');
    expect(entries).toContain(`Refund ${refund.id}`);
    expect(entries).toContain('25.00 USD');
    expect(await page.textContent('#refunds')).toContain(refund.id);
    expect(await page.locator('time[datetime]').first().getAttribute('title')).toContain('local time');
    await screenshot(page, 'payment-page');
    await screenshot(page, 'payment-timeline', '#timeline');
    await screenshot(page, 'payment-ledger-entries', '#ledger-entries');
    await page.context().close();
  });

  it('refunds part of a payment from its page exactly once, even when Refund is double-clicked', async () => {
    const intent = await capturedPayment(shop.secretKey, 8000);
    const page = await newPage(browser);
    await signIn(page, baseUrl, shop.secretKey);
    await page.goto(`${baseUrl}/dashboard/payments/${intent.id}`);
    await page.fill('#refund-amount', '30.00');
    await page.dblclick('#refund');
    await page.waitForSelector('#notice');
    // (The page may send the second click or not; the next test sends the same form three times at
    // once, which only the idempotency key made from the form's nonce turns into one refund.)
    const refunds = await penny.stripeFor(shop.secretKey).refunds.list({ payment_intent: intent.id });
    expect(refunds.data.map((refund) => refund.amount)).toEqual([3000]);
    expect(refunds.data[0]?.status).toBe('succeeded');
    expect(await page.textContent('#payment-refunded')).toBe('30.00 USD');
    // The ledger is the operator's: a merchant's page shows no entries (they name the operator's accounts).
    expect(await page.locator('#ledger-entries').count()).toBe(0);
    await screenshot(page, 'payment-refunded');
    await page.context().close();
  });

  it('refunds once when the same form is posted twice at the same moment', async () => {
    const intent = await capturedPayment(shop.secretKey, 6000);
    const page = await newPage(browser);
    await signIn(page, baseUrl, shop.secretKey);
    await page.goto(`${baseUrl}/dashboard/payments/${intent.id}`);
    const form = await formFields(page, '#refund-form');
    const send = () => page.context().request.post(`${baseUrl}/dashboard/payments/${intent.id}/refund`,
      { form: { ...form, amount: '10.00' }, maxRedirects: 0 }).then((response) => response.status());
    const statuses = await Promise.all([send(), send(), send()]);
    expect(statuses.every((status) => status === 303 || status === 409)).toBe(true);
    const refunds = await penny.stripeFor(shop.secretKey).refunds.list({ payment_intent: intent.id });
    expect(refunds.data.map((refund) => refund.amount)).toEqual([1000]);
    await page.context().close();
  });

  it('captures part of an authorized payment from its page, and cancels another', async () => {
    const stripe = penny.stripeFor(shop.secretKey);
    const held = await stripe.paymentIntents.create({ amount: 9000, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true, capture_method: 'manual' });
    const other = await stripe.paymentIntents.create({ amount: 4000, currency: 'usd', payment_method: 'pm_card_visa',
      confirm: true, capture_method: 'manual' });
    const page = await newPage(browser);
    const confirmations: string[] = [];
    page.on('dialog', (dialog) => void confirmations.push(dialog.message()));
    await signIn(page, baseUrl, shop.secretKey);
    await page.goto(`${baseUrl}/dashboard/payments/${held.id}`);
    await page.fill('#capture-form input[name=amount]', '60.00');
    await Promise.all([page.waitForSelector('#notice'), page.click('#capture')]);
    expect(confirmations).toEqual(['Capture this payment? The amount is taken from the customer.']);
    expect(await page.textContent('#payment-status')).toBe('succeeded');
    expect(await stripe.paymentIntents.retrieve(held.id)).toMatchObject({ status: 'succeeded', amount_received: 6000 });
    expect(await page.textContent('#balance-transactions')).toContain('charge');
    await page.goto(`${baseUrl}/dashboard/payments/${other.id}`);
    await page.selectOption('#cancel-form select[name=cancellation_reason]', 'requested_by_customer');
    await Promise.all([page.waitForSelector('#notice'), page.click('#cancel')]);
    expect(await stripe.paymentIntents.retrieve(other.id)).toMatchObject({ status: 'canceled',
      cancellation_reason: 'requested_by_customer' });
    const timeline = await page.textContent('#timeline');
    expect(timeline).toContain('payment_intent.canceled');
    expect(timeline).toMatch(/key dashboard_/);
    await page.context().close();
  });

  it("answers 404 to a merchant opening another merchant's payment", async () => {
    const theirs = await capturedPayment(other.secretKey, 4200);
    const page = await newPage(browser);
    await signIn(page, baseUrl, shop.secretKey);
    const response = await page.goto(`${baseUrl}/dashboard/payments/${theirs.id}`);
    expect(response?.status()).toBe(404);
    expect(await page.textContent('#error')).toContain(`No such payment_intent: '${theirs.id}'`);
    await page.goto(`${baseUrl}/dashboard/payments`);
    expect(await page.textContent('#payments')).not.toContain(theirs.id);
    await screenshot(page, 'payment-of-another-merchant');
    await page.context().close();
  });

  it("answers 404 to a merchant paging its list from another merchant's payment", async () => {
    const theirs = await capturedPayment(other.secretKey, 4300);
    const page = await newPage(browser);
    await signIn(page, baseUrl, shop.secretKey);
    const response = await page.goto(`${baseUrl}/dashboard/payments?starting_after=${theirs.id}`);
    expect(response?.status()).toBe(404);
    expect(await page.textContent('#error')).toContain(theirs.id);
    await page.context().close();
  });

  it('refuses a form posted from another site, even a sign-in, with 403', async () => {
    const signInFromElsewhere = await fetch(`${baseUrl}/dashboard/sign-in`, { method: 'POST', redirect: 'manual',
      headers: { origin: 'http://elsewhere.example', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ key: operatorKey }) });
    expect(signInFromElsewhere.status).toBe(403);
    expect(signInFromElsewhere.headers.get('set-cookie')).toBeNull();
    const intent = await capturedPayment(shop.secretKey, 6600);
    const page = await newPage(browser);
    await signIn(page, baseUrl, shop.secretKey);
    await page.goto(`${baseUrl}/dashboard/payments/${intent.id}`);
    const form = await formFields(page, '#refund-form');
    const status = (await page.context().request.post(`${baseUrl}/dashboard/payments/${intent.id}/refund`,
      { form, maxRedirects: 0, headers: { origin: 'http://elsewhere.example' } })).status();
    expect(status).toBe(403);
    expect((await penny.stripeFor(shop.secretKey).refunds.list({ payment_intent: intent.id })).data).toEqual([]);
    await page.context().close();
  });

  it('refuses a POST without the CSRF token with 403, and refunds nothing', async () => {
    const intent = await capturedPayment(shop.secretKey, 7000);
    const page = await newPage(browser);
    await signIn(page, baseUrl, shop.secretKey);
    await page.goto(`${baseUrl}/dashboard/payments/${intent.id}`);
    const form = await formFields(page, '#refund-form');
    delete form._csrf;
    const status = (await page.context().request.post(`${baseUrl}/dashboard/payments/${intent.id}/refund`,
      { form, maxRedirects: 0 })).status();
    expect(status).toBe(403);
    const refunds = await penny.stripeFor(shop.secretKey).refunds.list({ payment_intent: intent.id });
    expect(refunds.data).toEqual([]);
    await page.context().close();
  });
});
