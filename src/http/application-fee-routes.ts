import type { FastifyInstance } from 'fastify';
import type { IdempotencyService } from '../idempotency/idempotency-service.js';
import { presentApplicationFee, presentFeeRefund } from '../transfers/application-fee-presenter.js';
import type { ApplicationFeeService, RefundApplicationFeeCommand } from '../transfers/application-fee-service.js';
import { invalid, readObject, readString } from '../validation.js';
import { merchantOf } from './merchant-routes.js';
import { answeredInTransaction, idempotent, readCreatedFilter, readPage } from './route-support.js';
import { readStripeAmount } from './stripe-form.js';
import { readStripeMetadata } from './stripe-payment-params.js';

/** Stripe's ApplicationFees API: the platform's fees on its destination charges, and their refunds. */
type IdParams = { Params: { id: string } };

export function registerApplicationFeeRoutes(scope: FastifyInstance, dependencies: {
  applicationFees: ApplicationFeeService; idempotency: IdempotencyService }): void {
  const { applicationFees } = dependencies;
  scope.get('/v1/application_fees', async (request) => {
    const query = readObject(request.query, '', ['limit', 'starting_after', 'ending_before', 'charge', 'created',
      'expand']);
    const page = await applicationFees.list({ merchantId: merchantOf(request).id, ...readPage(query),
      chargeId: readString(query.charge, 'charge', { lengthMax: 255 }), ...readCreatedFilter(query.created) });
    return { object: 'list', data: page.rows.map((row) => presentApplicationFee(row.fee, row.refunds)),
      has_more: page.hasMore, url: '/v1/application_fees' };
  });

  scope.get<IdParams>('/v1/application_fees/:id', async (request) => {
    readObject(request.query, '', ['expand']);
    const fee = await applicationFees.retrieve({ merchantId: merchantOf(request).id, id: request.params.id });
    return presentApplicationFee(fee, await applicationFees.refundsOf(fee));
  });

  scope.post<IdParams>('/v1/application_fees/:id/refunds', async (request, reply) => {
    const command = parseRefundApplicationFee(request.body);
    const key = { merchantId: merchantOf(request).id, id: request.params.id };
    return idempotent(dependencies.idempotency, request, reply, (execution) => answeredInTransaction(execution,
      async () => {
        const refunded = await applicationFees.refund(execution.client, key, command);
        return presentFeeRefund(refunded.fee, refunded.refund);
      }));
  });

  scope.get<IdParams>('/v1/application_fees/:id/refunds', async (request) => {
    readObject(request.query, '', ['limit', 'starting_after', 'ending_before', 'expand']);
    const fee = await applicationFees.retrieve({ merchantId: merchantOf(request).id, id: request.params.id });
    const refunds = await applicationFees.refundsOf(fee);
    return { object: 'list', data: refunds.map((refund) => presentFeeRefund(fee, refund)), has_more: false,
      url: `/v1/application_fees/${fee.id}/refunds` };
  });
}

function parseRefundApplicationFee(body: unknown): RefundApplicationFeeCommand {
  const object = readObject(body ?? {}, '', ['amount', 'metadata', 'expand']);
  const amount = readStripeAmount(object.amount, 'amount');
  if (amount !== undefined && amount <= 0n) {
    throw invalid('amount', 'amount must be a positive integer.', 'parameter_invalid_integer');
  }
  return { amount, metadata: readStripeMetadata(object.metadata) };
}
