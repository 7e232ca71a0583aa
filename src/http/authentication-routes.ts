import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type pg from 'pg';
import { PennyError } from '../errors.js';
import type { IdempotencyService } from '../idempotency/idempotency-service.js';
import type { AttemptRow, PaymentService } from '../payments/payment-service.js';
import { presentPaymentIntent } from '../payments/payment-presenter.js';

export interface AuthenticationRouteDependencies {
  readonly pool: pg.Pool;
  readonly payments: PaymentService;
  readonly idempotency: IdempotencyService;
}

/**
 * The sandbox's 3-D Secure page, as Stripe's test mode has one: `next_action.redirect_to_url.url`
 * of an intent in `requires_action`. The customer's browser opens it (no API key: it is named by
 * the attempt's unguessable id), which completes the authentication: the intent is confirmed
 * again, authenticated, under its row lock (so a confirm racing it, or a second visit, confirms
 * nothing twice), and the browser is sent to the confirmation's `return_url` with
 * `payment_intent` and `redirect_status`, as Stripe sends it.
 */
export function registerAuthenticationRoutes(app: FastifyInstance, dependencies: AuthenticationRouteDependencies) {
  // No HEAD: a link checker's HEAD must not complete a payment.
  app.get<{ Params: { id: string } }>('/v1/payment_intents/:id/authenticate', { exposeHeadRoute: false },
    async (request, reply) => {
      // Other query parameters (a tracker's) are ignored; the attempt's id is all that counts.
      const attemptId = (request.query as Record<string, unknown>).attempt;
      const attempt = typeof attemptId === 'string' && /^pa_[A-Za-z0-9]{1,64}$/.test(attemptId)
        ? await dependencies.payments.findAttempt(attemptId) : undefined;
      if (attempt === undefined || attempt.paymentIntentId !== request.params.id) {
        throw new PennyError({ code: 'resource_missing', param: 'attempt',
          message: `No such authentication for PaymentIntent '${request.params.id}'.` });
      }
      const before = await dependencies.payments.retrieve(attempt.merchantId, attempt.paymentIntentId);
      if (before.status === 'requires_action' && attempt.status === 'requires_action') {
        await completeAuthentication(dependencies, attempt, request);
      }
      return answer(dependencies, attempt, reply);
    });
}

/** The customer back to the confirmation's return_url with the outcome, or the outcome as JSON. */
async function answer(dependencies: AuthenticationRouteDependencies, attempt: AttemptRow, reply: FastifyReply) {
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
  return reply.redirect(target.toString(), 302);
}

/**
 * The authenticated confirmation, of this attempt's challenge only (checked under the row lock);
 * its refusal (a decline, a lost race, a challenge since replaced) shows in the intent's status.
 */
async function completeAuthentication(dependencies: AuthenticationRouteDependencies, attempt: AttemptRow,
  request: FastifyRequest): Promise<void> {
  try {
    await dependencies.idempotency.run(
      { merchantId: attempt.merchantId, key: undefined, method: 'GET', path: request.url.split('?')[0] as string,
        params: {} },
      async (execution) => {
        const intent = await dependencies.payments.flows.confirm(execution, { merchantId: attempt.merchantId,
          id: attempt.paymentIntentId, paymentMethod: undefined, returnUrl: attempt.returnUrl,
          authenticating: attempt.id });
        return { status: 200, body: { id: intent.id } };
      });
  } catch (error) {
    if (!(error instanceof PennyError)) throw error;
    request.log.warn({ code: error.code, payment_intent: attempt.paymentIntentId },
      'the authentication page could not complete the payment');
  }
}

/** Stripe's redirect_status: succeeded once the money is authorized, processing while unknown. */
function redirectStatusOf(status: string): 'succeeded' | 'processing' | 'failed' {
  if (status === 'succeeded' || status === 'requires_capture') return 'succeeded';
  return status === 'processing' ? 'processing' : 'failed';
}
