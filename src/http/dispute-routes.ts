import type { FastifyInstance } from 'fastify';
import type { IdempotencyService } from '../idempotency/idempotency-service.js';
import { disputeEvidenceFields, presentDispute } from '../payments/dispute-presenter.js';
import type { PaymentDisputes } from '../payments/payment-disputes.js';
import { invalid, readObject, readString } from '../validation.js';
import { merchantOf } from './merchant-routes.js';
import { answeredInTransaction, idempotent, readCreatedFilter, readPage } from './route-support.js';
import { readStripeMetadata } from './stripe-payment-params.js';

/** Stripe's Disputes API: list, retrieve, answer with evidence or metadata, close (accept). */
type IdParams = { Params: { id: string } };

export function registerDisputeRoutes(scope: FastifyInstance, dependencies: { disputes: PaymentDisputes;
  idempotency: IdempotencyService }): void {
  const { disputes } = dependencies;
  scope.get('/v1/disputes', async (request) => {
    const query = readObject(request.query, '', ['limit', 'starting_after', 'ending_before', 'charge',
      'payment_intent', 'created', 'expand']);
    const page = await disputes.list({
      merchantId: merchantOf(request).id, ...readPage(query),
      chargeId: readString(query.charge, 'charge', { lengthMax: 255 }),
      paymentIntentId: readString(query.payment_intent, 'payment_intent', { lengthMax: 255 }),
      ...readCreatedFilter(query.created),
    });
    return { object: 'list', data: page.rows.map(presentDispute), has_more: page.hasMore, url: '/v1/disputes' };
  });

  scope.get<IdParams>('/v1/disputes/:id', async (request) => {
    readObject(request.query, '', ['expand']);
    return presentDispute(await disputes.retrieve(merchantOf(request).id, request.params.id));
  });

  scope.post<IdParams>('/v1/disputes/:id', async (request, reply) => {
    const object = readObject(request.body ?? {}, '', ['evidence', 'metadata', 'submit', 'expand']);
    const change = { evidence: readEvidence(object.evidence),
      metadata: object.metadata === undefined ? undefined : readStripeMetadata(object.metadata) };
    const key = { merchantId: merchantOf(request).id, id: request.params.id };
    return idempotent(dependencies.idempotency, request, reply, (execution) =>
      answeredInTransaction(execution,
        async () => presentDispute(await disputes.update(execution.client, key, change))));
  });

  scope.post<IdParams>('/v1/disputes/:id/close', async (request, reply) => {
    readObject(request.body ?? {}, '', ['expand']);
    const key = { merchantId: merchantOf(request).id, id: request.params.id };
    return idempotent(dependencies.idempotency, request, reply, (execution) =>
      answeredInTransaction(execution, async () => presentDispute(await disputes.close(execution.client, key))));
  });
}

/** Evidence as text fields of Stripe's list (files are not taken), at most 20,000 characters each. */
function readEvidence(value: unknown): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  const object = readObject(value, 'evidence', disputeEvidenceFields);
  const evidence: Record<string, string> = {};
  for (const [field, item] of Object.entries(object)) {
    const text = readString(item, `evidence[${field}]`, { lengthMax: 20_000 });
    if (text === undefined) throw invalid(`evidence[${field}]`, `evidence[${field}] is text.`);
    evidence[field] = text;
  }
  return evidence;
}
