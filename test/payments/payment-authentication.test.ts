import type Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import { deliverSandboxWebhooks, sandboxSenderOf, serveTestLedger, type ServedLedger } from '../support/stripe.js';

/**
 * 3-D Secure in test mode: pm_card_authenticationRequired yields requires_action with
 * next_action.redirect_to_url {url, return_url}. The URL opens Penny's test page, which offers
 * Complete and Fail as Stripe's does; either sends the customer to return_url with the outcome.
 */
let penny: ServedLedger;
let stripe: Stripe;

beforeAll(async () => {
  penny = await serveTestLedger();
  stripe = penny.stripeFor((await penny.merchants.createMerchant('Authentication Shop')).secretKey);
});

const returnUrl = 'https://shop.example/return?order=42';

async function needingAuthentication(extra: Partial<Stripe.PaymentIntentCreateParams> = {}) {
  const intent = await stripe.paymentIntents.create({ amount: 3000, currency: 'usd',
    payment_method: 'pm_card_authenticationRequired', confirm: true, return_url: returnUrl, ...extra });
  expect(intent.status).toBe('requires_action');
  return intent;
}

/** A browser's Accept header on navigation (Chromium's). */
const browserAccept = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';

/** Opens the page as a browser would, without following a redirect. */
function open(url: string) {
  return fetch(url, { redirect: 'manual', headers: { accept: browserAccept } });
}

/** Presses one of the page's buttons: posts its form, as a browser does, to the page's URL. */
function press(url: string, outcome: string) {
  return fetch(url, { method: 'POST', redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `outcome=${outcome}` });
}

function pageOf(intent: Stripe.PaymentIntent): string {
  return intent.next_action?.redirect_to_url?.url as string;
}

function redirectStatusOf(response: Response): string | null {
  return new URL(response.headers.get('location') as string).searchParams.get('redirect_status');
}

async function attemptCount(intentId: string): Promise<number> {
  const result = await penny.pool.query<{ count: bigint }>(
    'SELECT count(*) AS count FROM payment_attempts WHERE payment_intent_id = $1', [intentId]);
  return Number(result.rows[0]?.count);
}

async function authorizations(intentId: string): Promise<number> {
  const result = await penny.pool.query<{ count: bigint }>(
    `SELECT count(*) AS count FROM sandbox_psp_operations o JOIN payment_attempts a ON a.id = o.merchant_reference
     WHERE a.payment_intent_id = $1 AND o.kind = 'authorize' AND o.outcome IN ('authorized', 'captured')`, [intentId]);
  return Number(result.rows[0]?.count);
}

async function ledgerEntryCount(): Promise<number> {
  const result = await penny.pool.query<{ count: bigint }>('SELECT count(*) AS count FROM ledger_entries');
  return Number(result.rows[0]?.count);
}

/** What the sandbox PSP recorded for the authorization of the attempt the page names. */
async function pspAuthorizationOf(page: string): Promise<string | undefined> {
  const attempt = new URL(page).searchParams.get('attempt');
  const result = await penny.pool.query<{ outcome: string }>(
    `SELECT outcome FROM sandbox_psp_operations WHERE merchant_reference = $1 AND kind = 'authorize'`, [attempt]);
  return result.rows[0]?.outcome;
}

async function attemptStatusOf(page: string): Promise<string | undefined> {
  const result = await penny.pool.query<{ status: string }>('SELECT status FROM payment_attempts WHERE id = $1',
    [new URL(page).searchParams.get('attempt')]);
  return result.rows[0]?.status;
}

describe('the 3-D Secure test page', () => {
  it('asks for authentication with a redirect to a page Penny serves and the return_url given', async () => {
    const intent = await needingAuthentication();
    expect(intent.next_action).toMatchObject({
      type: 'redirect_to_url',
      redirect_to_url: { return_url: returnUrl },
    });
    expect(pageOf(intent).startsWith(`http://127.0.0.1:${penny.port}/v1/payment_intents/${intent.id}/authenticate?attempt=pa_`))
      .toBe(true);
  });

  it('offers Complete and Fail as two forms posted to the page, and opening it changes nothing', async () => {
    const intent = await needingAuthentication();
    const attemptsBefore = await attemptCount(intent.id);
    const response = await open(pageOf(intent));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/html');
    const html = await response.text();
    const form = /<form method="post" action="([^"]+)">.*?name="outcome" value="(\w+)".*?<button[^>]*>(\w+)</g;
    const forms = [...html.matchAll(form)]
      .map((match) => [new URL(match[1] as string, pageOf(intent)).toString(), match[2], match[3]]);
    expect(forms).toEqual([[pageOf(intent), 'complete', 'Complete'], [pageOf(intent), 'fail', 'Fail']]);
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('requires_action');
    expect(await attemptCount(intent.id)).toBe(attemptsBefore);
  });

  it('completes the authentication when opened by a client that asks for no page, as decisions.md says', async () => {
    const intent = await needingAuthentication();
    const response = await fetch(pageOf(intent), { redirect: 'manual' });
    expect(response.status).toBe(302);
    expect(redirectStatusOf(response)).toBe('succeeded');
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('succeeded');
    expect(await authorizations(intent.id)).toBe(1);
  });

  it('is answered 404 to a HEAD request (a link checker\'s)', async () => {
    const intent = await needingAuthentication();
    const response = await fetch(pageOf(intent), { method: 'HEAD' });
    expect(response.status).toBe(404);
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('requires_action');
  });

  it('ignores other query parameters, answers 404 for a malformed attempt id, and 400 for one holding NUL', async () => {
    const intent = await needingAuthentication();
    const url = new URL(pageOf(intent));
    const malformed = new URL(url);
    malformed.searchParams.set('attempt', 'pa_!!');
    expect((await open(malformed.toString())).status).toBe(404);
    expect((await press(malformed.toString(), 'complete')).status).toBe(404);
    // U+0000 is refused for every request before any route reads it (src/http/nul-characters.ts).
    malformed.searchParams.set('attempt', 'pa_\u0000');
    expect((await open(malformed.toString())).status).toBe(400);
    expect((await press(malformed.toString(), 'complete')).status).toBe(400);
    url.searchParams.set('utm_source', 'mail');
    expect((await open(url.toString())).status).toBe(200);
    expect((await press(url.toString(), 'complete')).status).toBe(303);
  });

  it('answers 404 for an attempt that is not the intent\'s', async () => {
    const intent = await needingAuthentication();
    const other = await needingAuthentication();
    const url = new URL(pageOf(intent));
    url.searchParams.set('attempt', new URL(pageOf(other)).searchParams.get('attempt') as string);
    expect((await press(url.toString(), 'complete')).status).toBe(404);
    expect((await press(url.toString(), 'fail')).status).toBe(404);
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('requires_action');
    expect((await stripe.paymentIntents.retrieve(other.id)).status).toBe('requires_action');
  });

  it('refuses an outcome other than complete or fail with 400, changing nothing', async () => {
    const intent = await needingAuthentication();
    const response = await press(pageOf(intent), 'skip');
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: unknown }).error)
      .toMatchObject({ code: 'parameter_invalid', param: 'outcome' });
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('requires_action');
  });
});

describe('Complete', () => {
  it('completes the payment and redirects to return_url with the outcome', async () => {
    const intent = await needingAuthentication();
    const response = await press(pageOf(intent), 'complete');
    expect(response.status).toBe(303);
    const location = new URL(response.headers.get('location') as string);
    expect(`${location.origin}${location.pathname}`).toBe('https://shop.example/return');
    expect(Object.fromEntries(location.searchParams)).toEqual({ order: '42', payment_intent: intent.id,
      payment_intent_client_secret: intent.client_secret, redirect_status: 'succeeded' });
    const completed = await stripe.paymentIntents.retrieve(intent.id);
    expect(completed).toMatchObject({ status: 'succeeded', amount_received: 3000, next_action: null });
    expect(await authorizations(intent.id)).toBe(1);
  });

  it('authorizes once when pressed twice, or after a further confirm; the page then shows the outcome', async () => {
    const twice = await needingAuthentication();
    await Promise.all([press(pageOf(twice), 'complete'), press(pageOf(twice), 'complete')]);
    const again = await press(pageOf(twice), 'complete');
    expect(redirectStatusOf(again)).toBe('succeeded');
    expect(await authorizations(twice.id)).toBe(1);
    const reopened = await open(pageOf(twice));
    expect(reopened.status).toBe(302);
    expect(redirectStatusOf(reopened)).toBe('succeeded');

    const confirmedFirst = await needingAuthentication();
    expect((await stripe.paymentIntents.confirm(confirmedFirst.id)).status).toBe('succeeded');
    expect(redirectStatusOf(await press(pageOf(confirmedFirst), 'complete'))).toBe('succeeded');
    expect(await authorizations(confirmedFirst.id)).toBe(1);
  });

  it('keeps a manual-capture payment for capture', async () => {
    const intent = await needingAuthentication({ capture_method: 'manual' });
    await press(pageOf(intent), 'complete');
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('requires_capture');
  });

  it('answers with the outcome as JSON when the confirmation named no return_url', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 3000, currency: 'usd',
      payment_method: 'pm_card_authenticationRequired', confirm: true });
    expect(intent.next_action?.redirect_to_url?.return_url).toBeNull();
    const response = await press(pageOf(intent), 'complete');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ object: 'payment_intent_authentication', payment_intent: intent.id,
      redirect_status: 'succeeded' });
  });

  it('does nothing from an old page once the merchant confirmed again into a new challenge', async () => {
    const intent = await needingAuthentication({ return_url: 'https://shop.example/old' });
    const oldPage = pageOf(intent);
    const again = await stripe.paymentIntents.confirm(intent.id,
      { payment_method: 'pm_card_threeDSecure2Required', return_url: 'https://shop.example/new' });
    expect(again.status).toBe('requires_action');
    const attemptsBefore = await attemptCount(intent.id);
    expect(redirectStatusOf(await press(oldPage, 'complete'))).toBe('failed');
    expect(await attemptCount(intent.id)).toBe(attemptsBefore);
    expect(await authorizations(intent.id)).toBe(0);
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('requires_action');
  });
});

describe('Fail', () => {
  it('returns the intent to requires_payment_method with payment_intent_authentication_failure', async () => {
    const intent = await needingAuthentication();
    const response = await press(pageOf(intent), 'fail');
    expect(response.status).toBe(303);
    expect(redirectStatusOf(response)).toBe('failed');
    const failed = await stripe.paymentIntents.retrieve(intent.id);
    expect(failed).toMatchObject({ status: 'requires_payment_method', next_action: null, latest_charge: null,
      amount_received: 0, amount_capturable: 0 });
    expect(failed.last_payment_error).toMatchObject({ type: 'invalid_request_error',
      code: 'payment_intent_authentication_failure', message: expect.stringContaining('failed authentication'),
      payment_method: { id: 'pm_card_authenticationRequired' } });
  });

  it('emits payment_intent.payment_failed with the error', async () => {
    const intent = await needingAuthentication();
    await press(pageOf(intent), 'fail');
    const events = await stripe.events.list({ type: 'payment_intent.payment_failed', limit: 100 });
    const ours = events.data.filter((event) => (event.data.object as Stripe.PaymentIntent).id === intent.id);
    expect(ours).toHaveLength(1);
    expect(ours[0]?.data.object).toMatchObject({ status: 'requires_payment_method',
      last_payment_error: { code: 'payment_intent_authentication_failure' } });
  });

  it('records the attempt\'s failure, books nothing, and leaves the PSP\'s authorization uncaptured', async () => {
    const intent = await needingAuthentication();
    const entriesBefore = await ledgerEntryCount();
    await press(pageOf(intent), 'fail');
    expect(await attemptStatusOf(pageOf(intent))).toBe('authentication_failed');
    expect(await ledgerEntryCount()).toBe(entriesBefore);
    expect(await pspAuthorizationOf(pageOf(intent))).toBe('requires_action');
    expect(await authorizations(intent.id)).toBe(0);
  });

  it('lets the intent be confirmed again, with another card', async () => {
    const intent = await needingAuthentication();
    await press(pageOf(intent), 'fail');
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('requires_payment_method');
    const confirmed = await stripe.paymentIntents.confirm(intent.id, { payment_method: 'pm_card_visa' });
    expect(confirmed).toMatchObject({ status: 'succeeded', last_payment_error: null, amount_received: 3000 });
  });

  it('does nothing from an old page once the merchant confirmed again into a new challenge', async () => {
    const intent = await needingAuthentication();
    const oldPage = pageOf(intent);
    const again = await stripe.paymentIntents.confirm(intent.id, { payment_method: 'pm_card_threeDSecure2Required' });
    expect(redirectStatusOf(await press(oldPage, 'fail'))).toBe('failed');
    expect(await stripe.paymentIntents.retrieve(intent.id)).toMatchObject({ status: 'requires_action',
      last_payment_error: null, next_action: again.next_action });
    expect(await attemptStatusOf(oldPage)).toBe('requires_action');
  });

  it('changes nothing once Complete was pressed', async () => {
    const intent = await needingAuthentication();
    await press(pageOf(intent), 'complete');
    expect(redirectStatusOf(await press(pageOf(intent), 'fail'))).toBe('succeeded');
    expect(await stripe.paymentIntents.retrieve(intent.id)).toMatchObject({ status: 'succeeded',
      last_payment_error: null });
  });

  it('once pressed, leaves Complete nothing to do', async () => {
    const intent = await needingAuthentication();
    await press(pageOf(intent), 'fail');
    expect(redirectStatusOf(await press(pageOf(intent), 'complete'))).toBe('failed');
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('requires_payment_method');
    expect(await authorizations(intent.id)).toBe(0);
  });

  it('and Complete pressed at once: exactly one takes effect', async () => {
    const intent = await needingAuthentication();
    await Promise.all([press(pageOf(intent), 'complete'), press(pageOf(intent), 'fail')]);
    const after = await stripe.paymentIntents.retrieve(intent.id);
    expect(['succeeded', 'requires_payment_method']).toContain(after.status);
    expect(await authorizations(intent.id)).toBe(after.status === 'succeeded' ? 1 : 0);
    expect(await attemptStatusOf(pageOf(intent)))
      .toBe(after.status === 'succeeded' ? 'requires_action' : 'authentication_failed');
  });
});

describe('3-D Secure return_url', () => {
  it('takes return_url on confirm too', async () => {
    const created = await stripe.paymentIntents.create({ amount: 3000, currency: 'usd',
      payment_method: 'pm_card_authenticationRequired' });
    const confirmed = await stripe.paymentIntents.confirm(created.id, { return_url: returnUrl });
    expect(confirmed.next_action?.redirect_to_url?.return_url).toBe(returnUrl);
  });

  it('refuses a return_url that is not an absolute http(s) URL, and stores nothing', async () => {
    const error = await stripe.paymentIntents.create({ amount: 3000, currency: 'usd',
      payment_method: 'pm_card_authenticationRequired', confirm: true, return_url: 'javascript:alert(1)' })
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ statusCode: 400, code: 'url_invalid', param: 'return_url' });
  });
});

describe('the PSP\'s webhooks after a failed challenge', () => {
  it('take the PSP\'s echo of requires_action as late, opening no case and raising nothing', async () => {
    const intent = await needingAuthentication();
    expect((await press(pageOf(intent), 'fail')).status).toBe(303);
    const sender = sandboxSenderOf(penny);
    await deliverSandboxWebhooks(penny, sender);
    const attempt = new URL(pageOf(intent)).searchParams.get('attempt');
    const events = await penny.pool.query<{ status: string; note: string }>(
      `SELECT status, note FROM connector_webhook_inbox WHERE payload->>'reference' = $1`, [attempt]);
    expect(events.rows).toEqual([{ status: 'ignored', note: 'late: requires_action after authentication_failed' }]);
    const cases = await penny.pool.query('SELECT kind FROM payment_cases WHERE payment_intent_id = $1', [intent.id]);
    expect(cases.rows).toEqual([]);
  });
});

