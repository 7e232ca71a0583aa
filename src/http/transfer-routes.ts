import type { FastifyInstance } from 'fastify';
import type { IdempotencyService } from '../idempotency/idempotency-service.js';
import { parseStripeCurrency } from '../money/stripe-currency.js';
import { presentTransfer, presentTransferReversal } from '../transfers/transfer-presenter.js';
import type { CreateTransferCommand, ReverseTransferCommand, TransferService } from '../transfers/transfer-service.js';
import { invalid, missing, readObject, readString } from '../validation.js';
import { merchantOf } from './merchant-routes.js';
import { answeredInTransaction, idempotent, readCreatedFilter, readPage } from './route-support.js';
import { readStripeAmount } from './stripe-form.js';
import { readStripeMetadata } from './stripe-payment-params.js';

/** Stripe's Transfers API: separate transfers to the platform's connected accounts, and their reversals. */
type IdParams = { Params: { id: string } };

export function registerTransferRoutes(scope: FastifyInstance, dependencies: { transfers: TransferService;
  idempotency: IdempotencyService }): void {
  const { transfers } = dependencies;
  scope.post('/v1/transfers', async (request, reply) => {
    const command = parseCreateTransfer(request.body);
    const merchantId = merchantOf(request).id;
    return idempotent(dependencies.idempotency, request, reply, (execution) => answeredInTransaction(execution,
      async () => presentTransfer(await transfers.create(execution.client, merchantId, command), [])));
  });

  scope.get<IdParams>('/v1/transfers/:id', async (request) => {
    readObject(request.query, '', ['expand']);
    const transfer = await transfers.retrieve({ merchantId: merchantOf(request).id, id: request.params.id });
    return presentTransfer(transfer, await transfers.reversalsOf(transfer));
  });

  scope.get('/v1/transfers', async (request) => {
    const query = readObject(request.query, '', ['limit', 'starting_after', 'ending_before', 'destination',
      'transfer_group', 'created', 'expand']);
    const page = await transfers.list({ merchantId: merchantOf(request).id, ...readPage(query),
      destination: readString(query.destination, 'destination', { lengthMax: 255 }),
      transferGroup: readString(query.transfer_group, 'transfer_group', { lengthMax: 255 }),
      ...readCreatedFilter(query.created) });
    return { object: 'list', data: page.rows.map((transfer) => presentTransfer(transfer, [])),
      has_more: page.hasMore, url: '/v1/transfers' };
  });

  scope.post<IdParams>('/v1/transfers/:id/reversals', async (request, reply) => {
    const command = parseReverseTransfer(request.body);
    const key = { merchantId: merchantOf(request).id, id: request.params.id };
    return idempotent(dependencies.idempotency, request, reply, (execution) => answeredInTransaction(execution,
      async () => {
        const reversal = await transfers.reverse(execution.client, key, command);
        return presentTransferReversal(await transfers.retrieveIn(execution.client, key), reversal);
      }));
  });

  scope.get<IdParams>('/v1/transfers/:id/reversals', async (request) => {
    readObject(request.query, '', ['limit', 'starting_after', 'ending_before', 'expand']);
    const transfer = await transfers.retrieve({ merchantId: merchantOf(request).id, id: request.params.id });
    const reversals = await transfers.reversalsOf(transfer);
    return { object: 'list', data: reversals.map((reversal) => presentTransferReversal(transfer, reversal)),
      has_more: false, url: `/v1/transfers/${transfer.id}/reversals` };
  });
}

function parseCreateTransfer(body: unknown): CreateTransferCommand {
  const object = readObject(body ?? {}, '', ['amount', 'currency', 'destination', 'source_transaction',
    'transfer_group', 'description', 'metadata', 'expand']);
  const amount = readStripeAmount(object.amount, 'amount');
  if (amount === undefined) throw missing('amount');
  if (amount <= 0n) throw invalid('amount', 'amount must be a positive integer.', 'parameter_invalid_integer');
  if (object.currency === undefined) throw missing('currency');
  const destination = readString(object.destination, 'destination', { lengthMax: 255 });
  if (destination === undefined || destination === '') throw missing('destination');
  return {
    amount, currency: parseStripeCurrency(object.currency, 'currency'), destination,
    sourceTransaction: readString(object.source_transaction, 'source_transaction', { lengthMax: 255 }) || undefined,
    transferGroup: readString(object.transfer_group, 'transfer_group', { lengthMax: 255 }) || undefined,
    description: readString(object.description, 'description', { lengthMax: 1000 }) || undefined,
    metadata: readStripeMetadata(object.metadata),
  };
}

function parseReverseTransfer(body: unknown): ReverseTransferCommand {
  const object = readObject(body ?? {}, '', ['amount', 'metadata', 'description', 'refund_application_fee', 'expand']);
  const amount = readStripeAmount(object.amount, 'amount');
  if (amount !== undefined && amount <= 0n) {
    throw invalid('amount', 'amount must be a positive integer.', 'parameter_invalid_integer');
  }
  return { amount, metadata: readStripeMetadata(object.metadata) };
}
