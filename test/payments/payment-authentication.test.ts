import type Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/**
 * 3-D Secure in test mode (decisions.md): pm_card_authenticationRequired yields requires_action
 * with next_action.redirect_to_url {url, return_url}; opening the URL completes the
 * authentication and redirects to return_url, as Stripe's test flow does.
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

/** Opens the page as a browser would, without following the redirect. */
function open(url: string) {
  return fetch(url, { redirect: 'manual' });
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

describe('3-D Secure redirect', () => {
  it('asks for authentication with a redirect to a page Penny serves and the return_url given', async () => {
    const intent = await needingAuthentication();
    expect(intent.next_action).toMatchObject({
      type: 'redirect_to_url',
      redirect_to_url: { return_url: returnUrl },
    });
    const url = intent.next_action?.redirect_to_url?.url as string;
    expect(url.startsWith(`http://127.0.0.1:${penny.port}/v1/payment_intents/${intent.id}/authenticate?attempt=pa_`))
      .toBe(true);
  });

  it('completes the payment when the page is opened, and redirects to return_url with the outcome', async () => {
    const intent = await needingAuthentication();
    const response = await open(intent.next_action?.redirect_to_url?.url as string);
    expect(response.status).toBe(302);
    const location = new URL(response.headers.get('location') as string);
    expect(`${location.origin}${location.pathname}`).toBe('https://shop.example/return');
    expect(Object.fromEntries(location.searchParams)).toEqual({ order: '42', payment_intent: intent.id,
      payment_intent_client_secret: intent.client_secret, redirect_status: 'succeeded' });
    const completed = await stripe.paymentIntents.retrieve(intent.id);
    expect(completed).toMatchObject({ status: 'succeeded', amount_received: 3000, next_action: null });
    expect(await authorizations(intent.id)).toBe(1);
  });

  it('authorizes once when the page is opened twice, or after a further confirm', async () => {
    const twice = await needingAuthentication();
    const url = twice.next_action?.redirect_to_url?.url as string;
    await Promise.all([open(url), open(url)]);
    const again = await open(url);
    expect(again.status).toBe(302);
    expect(await authorizations(twice.id)).toBe(1);

    const confirmedFirst = await needingAuthentication();
    expect((await stripe.paymentIntents.confirm(confirmedFirst.id)).status).toBe('succeeded');
    const late = await open(confirmedFirst.next_action?.redirect_to_url?.url as string);
    expect(new URL(late.headers.get('location') as string).searchParams.get('redirect_status')).toBe('succeeded');
    expect(await authorizations(confirmedFirst.id)).toBe(1);
  });

  it('keeps a manual-capture payment for capture after authentication', async () => {
    const intent = await needingAuthentication({ capture_method: 'manual' });
    await open(intent.next_action?.redirect_to_url?.url as string);
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('requires_capture');
  });

  it('answers the page with the outcome when the confirmation named no return_url', async () => {
    const intent = await stripe.paymentIntents.create({ amount: 3000, currency: 'usd',
      payment_method: 'pm_card_authenticationRequired', confirm: true });
    expect(intent.next_action?.redirect_to_url?.return_url).toBeNull();
    const response = await open(intent.next_action?.redirect_to_url?.url as string);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ object: 'payment_intent_authentication', payment_intent: intent.id,
      redirect_status: 'succeeded' });
  });

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

  it('does nothing from an old page once the merchant confirmed again into a new challenge', async () => {
    const intent = await needingAuthentication({ return_url: 'https://shop.example/old' });
    const oldUrl = intent.next_action?.redirect_to_url?.url as string;
    const again = await stripe.paymentIntents.confirm(intent.id,
      { payment_method: 'pm_card_threeDSecure2Required', return_url: 'https://shop.example/new' });
    expect(again.status).toBe('requires_action');
    const attemptsBefore = await attemptCount(intent.id);
    const response = await open(oldUrl);
    expect(new URL(response.headers.get('location') as string).searchParams.get('redirect_status')).toBe('failed');
    expect(await attemptCount(intent.id)).toBe(attemptsBefore);
    expect(await authorizations(intent.id)).toBe(0);
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('requires_action');
  });

  it('is not completed by a HEAD request (a link checker\'s)', async () => {
    const intent = await needingAuthentication();
    const response = await fetch(intent.next_action?.redirect_to_url?.url as string, { method: 'HEAD' });
    expect(response.status).toBe(404);
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('requires_action');
  });

  it('ignores other query parameters, and answers 404 for a malformed attempt id', async () => {
    const intent = await needingAuthentication();
    const url = new URL(intent.next_action?.redirect_to_url?.url as string);
    const malformed = new URL(url);
    malformed.searchParams.set('attempt', 'pa_\u0000');
    expect((await open(malformed.toString())).status).toBe(404);
    url.searchParams.set('utm_source', 'mail');
    expect((await open(url.toString())).status).toBe(302);
  });

  it('answers 404 for an attempt that is not the intent\'s', async () => {
    const intent = await needingAuthentication();
    const other = await needingAuthentication();
    const url = new URL(intent.next_action?.redirect_to_url?.url as string);
    const attempt = new URL(other.next_action?.redirect_to_url?.url as string).searchParams.get('attempt') as string;
    url.searchParams.set('attempt', attempt);
    const response = await open(url.toString());
    expect(response.status).toBe(404);
    expect((await stripe.paymentIntents.retrieve(intent.id)).status).toBe('requires_action');
  });
});
