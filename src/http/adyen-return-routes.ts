import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PennyError } from '../errors.js';
import type { PaymentService } from '../payments/payment-service.js';
import { answer } from './authentication-routes.js';

export interface AdyenReturnRouteDependencies {
  readonly payments: PaymentService;
}

/** The fields of the shopper's return that Adyen's `/payments/details` takes. */
const detailFields = ['redirectResult', 'threeDSResult', 'payload', 'MD', 'PaRes'] as const;

/**
 * GET|POST /v1/connectors/adyen/return?attempt=pa_…: where Adyen sends the shopper back after its
 * own 3-D Secure page (the `returnUrl` Penny gives `/payments`, naming the attempt; Adyen appends
 * `redirectResult`, or posts it as a form). Penny passes the details to Adyen's
 * `/payments/details` through the attempt's connector, which resolves the attempt once
 * (authorized, captured, declined, or unknown until Adyen's AUTHORISATION), then sends the shopper
 * to the confirmation's `return_url` with `payment_intent` and `redirect_status`, as Stripe does.
 * No API key: the attempt's id is unguessable, as the sandbox's authentication page's is. A second
 * return, or one after Adyen's notification decided, only redirects.
 */
export function registerAdyenReturnRoutes(app: FastifyInstance, dependencies: AdyenReturnRouteDependencies): void {
  const path = '/v1/connectors/adyen/return';
  const handle = async (request: FastifyRequest, reply: FastifyReply, redirectCode: 302 | 303) => {
    const query = request.query as Record<string, unknown>;
    const attemptId = query.attempt;
    const attempt = typeof attemptId === 'string' && /^pa_[A-Za-z0-9]{1,64}$/.test(attemptId)
      ? await dependencies.payments.findAttempt(attemptId) : undefined;
    if (attempt === undefined || !attempt.connector.startsWith('adyen:')) {
      throw new PennyError({ code: 'resource_missing', param: 'attempt', message: 'No such Adyen authentication.' });
    }
    const body = typeof request.body === 'object' && request.body !== null ? request.body as Record<string, unknown> : {};
    const details: Record<string, string> = {};
    for (const field of detailFields) {
      const value = body[field] ?? query[field];
      if (typeof value === 'string' && value !== '') details[field] = value;
    }
    if (Object.keys(details).length > 0) await dependencies.payments.completePspAuthentication(attempt, details);
    // The redirectResult is in this URL: never cached, nor named in the next page's Referer.
    void reply.headers({ 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
    return answer(dependencies, attempt, reply, redirectCode);
  };
  app.get(path, { exposeHeadRoute: false }, (request, reply) => handle(request, reply, 302));
  // 303: the browser follows a POST's answer with a GET.
  app.post(path, (request, reply) => handle(request, reply, 303));
}
