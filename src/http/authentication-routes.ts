import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type pg from 'pg';
import { PennyError } from '../errors.js';
import type { IdempotencyService } from '../idempotency/idempotency-service.js';
import type { AttemptRow, PaymentIntentRow, PaymentService } from '../payments/payment-service.js';
import { presentPaymentIntent } from '../payments/payment-presenter.js';
import { readEnum, readObject } from '../validation.js';

export interface AuthenticationRouteDependencies {
  readonly pool: pg.Pool;
  readonly payments: PaymentService;
  readonly idempotency: IdempotencyService;
}

type PageRequest = FastifyRequest<{ Params: { id: string } }>;

/**
 * The sandbox's 3-D Secure page, as Stripe's test mode has one: `next_action.redirect_to_url.url`
 * of an intent in `requires_action` (no API key: it is named by the attempt's unguessable id).
 * - A browser (a request that accepts text/html) sees Stripe's test page: two buttons, Complete
 *   and Fail, each a POST form, so a browser's opening, a link preview or a prefetch pays nothing.
 * - A client that does not ask for a page (a test, `penny simulate`, a script following
 *   next_action) completes the authentication by opening the URL and is redirected to
 *   `return_url`, as decisions.md ("Stripe flows Penny adds to") says opening it does.
 * Complete confirms the intent again, authenticated; Fail returns it to requires_payment_method.
 * Either acts only on the intent's current challenge, checked under its row lock (so a confirm
 * racing it, the other button or a second press changes nothing twice), and sends the customer to
 * the confirmation's `return_url` with `payment_intent` and `redirect_status`, as Stripe does.
 */
export function registerAuthenticationRoutes(app: FastifyInstance, dependencies: AuthenticationRouteDependencies) {
  const path = '/v1/payment_intents/:id/authenticate';
  // No HEAD: a link checker gets nothing from the page.
  app.get<{ Params: { id: string } }>(path, { exposeHeadRoute: false }, async (request, reply) => {
    const attempt = await challengedAttempt(dependencies, request);
    const intent = await dependencies.payments.retrieve(attempt.merchantId, attempt.paymentIntentId);
    if (!challengeOpen(intent, attempt)) return answer(dependencies, attempt, reply, 302);
    if (!acceptsPage(request)) {
      await refusalLogged(request, attempt, () => completeAuthentication(dependencies, attempt, request));
      return answer(dependencies, attempt, reply, 302);
    }
    return reply.type('text/html; charset=utf-8').headers(pageHeaders).send(challengePage(attempt.id));
  });

  app.post<{ Params: { id: string } }>(path, async (request, reply) => {
    const attempt = await challengedAttempt(dependencies, request);
    const body = readObject(request.body ?? {}, '', ['outcome']);
    const outcome = readEnum(body.outcome, 'outcome', ['complete', 'fail']);
    if (outcome === undefined) {
      throw new PennyError({ code: 'parameter_missing', param: 'outcome', message: 'Missing required param: outcome.' });
    }
    const intent = await dependencies.payments.retrieve(attempt.merchantId, attempt.paymentIntentId);
    if (challengeOpen(intent, attempt)) {
      await refusalLogged(request, attempt, () => outcome === 'complete'
        ? completeAuthentication(dependencies, attempt, request)
        : dependencies.payments.failAuthentication(attempt));
    }
    // 303: the browser follows a POST's answer with a GET.
    return answer(dependencies, attempt, reply, 303);
  });
}

/** The attempt the URL names, if it is this intent's; 404 otherwise. */
async function challengedAttempt(dependencies: AuthenticationRouteDependencies, request: PageRequest) {
  // Other query parameters (a tracker's) are ignored; the attempt's id is all that counts.
  const attemptId = (request.query as Record<string, unknown>).attempt;
  const attempt = typeof attemptId === 'string' && /^pa_[A-Za-z0-9]{1,64}$/.test(attemptId)
    ? await dependencies.payments.findAttempt(attemptId) : undefined;
  if (attempt === undefined || attempt.paymentIntentId !== request.params.id) {
    throw new PennyError({ code: 'resource_missing', param: 'attempt',
      message: `No such authentication for PaymentIntent '${request.params.id}'.` });
  }
  return attempt;
}

/** Read without a lock, to choose the answer; the action checks again under the row lock. */
function challengeOpen(intent: PaymentIntentRow, attempt: AttemptRow): boolean {
  return intent.status === 'requires_action' && attempt.status === 'requires_action';
}

/** A browser's navigation asks for text/html; fetch, curl and the SDKs ask for anything or JSON. */
function acceptsPage(request: FastifyRequest): boolean {
  const accept = request.headers.accept;
  return typeof accept === 'string' && /\btext\/html\b/i.test(accept);
}

/** The page is the customer's alone: never cached, framed, or named in a Referer. */
const pageHeaders = {
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'content-security-policy': 'default-src \'none\'; style-src \'unsafe-inline\'; frame-ancestors \'none\'',
};

/**
 * Both forms post back to the page's own path (a relative URL of only the query, so a proxy's path
 * prefix is kept), naming the attempt, whose id was checked to be letters and digits.
 */
function challengePage(attemptId: string): string {
  const action = `?attempt=${encodeURIComponent(attemptId)}`;
  const button = (outcome: string, label: string) =>
    `<form method="post" action="${action}"><input type="hidden" name="outcome" value="${outcome}">` +
    `<button type="submit">${label}</button></form>`;
  return '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>3D Secure test payment</title>' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">' +
    '<style>body{font-family:sans-serif;max-width:28rem;margin:3rem auto}form{display:inline;margin-right:1rem}' +
    'button{font-size:1rem;padding:.5rem 1.5rem}</style></head><body>' +
    '<h1>3D Secure test payment</h1>' +
    '<p>Penny\'s sandbox stands in for the card issuer here. Complete or fail the authentication.</p>' +
    `${button('complete', 'Complete')}${button('fail', 'Fail')}</body></html>`;
}

/** The customer back to the confirmation's return_url with the outcome, or the outcome as JSON. */
export async function answer(dependencies: Pick<AuthenticationRouteDependencies, 'payments'>, attempt: AttemptRow,
  reply: FastifyReply,
  redirectCode: 302 | 303) {
  const intent = await dependencies.payments.retrieve(attempt.merchantId, attempt.paymentIntentId);
  const redirectStatus = redirectStatusOf(intent.status);
  if (attempt.returnUrl === null) {
    return { object: 'payment_intent_authentication', payment_intent: intent.id, redirect_status: redirectStatus };
  }
  const target = new URL(attempt.returnUrl);
  target.searchParams.set('payment_intent', intent.id);
  // Stripe.js return pages read it back; it is the intent's client_secret as Penny presents it.
  target.searchParams.set('payment_intent_client_secret', presentPaymentIntent(intent).client_secret);
  target.searchParams.set('redirect_status', redirectStatus);
  return reply.redirect(target.toString(), redirectCode);
}

/**
 * The authenticated confirmation, of this attempt's challenge only (checked under the row lock).
 * It runs as an idempotent request without a key, for the recovery of its PSP call.
 */
async function completeAuthentication(dependencies: AuthenticationRouteDependencies, attempt: AttemptRow,
  request: FastifyRequest): Promise<void> {
  await dependencies.idempotency.run(
    { merchantId: attempt.merchantId, key: undefined, method: 'POST', path: request.url.split('?')[0] as string,
      params: {} },
    async (execution) => {
      const intent = await dependencies.payments.flows.confirm(execution, { merchantId: attempt.merchantId,
        id: attempt.paymentIntentId, paymentMethod: undefined, returnUrl: attempt.returnUrl,
        authenticating: attempt.id });
      return { status: 200, body: { id: intent.id } };
    });
}

/** A refusal (a decline, a lost race, a challenge since replaced) shows in the intent's status, not as an error. */
async function refusalLogged(request: FastifyRequest, attempt: AttemptRow, action: () => Promise<unknown>) {
  try {
    await action();
  } catch (error) {
    if (!(error instanceof PennyError)) throw error;
    request.log.warn({ code: error.code, payment_intent: attempt.paymentIntentId },
      'the authentication page could not complete or fail the payment');
  }
}

/** Stripe's redirect_status: succeeded once the money is authorized, processing while unknown. */
function redirectStatusOf(status: string): 'succeeded' | 'processing' | 'failed' {
  if (status === 'succeeded' || status === 'requires_capture') return 'succeeded';
  return status === 'processing' ? 'processing' : 'failed';
}
