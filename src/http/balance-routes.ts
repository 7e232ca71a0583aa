import type { FastifyInstance } from 'fastify';
import type { BalanceService } from '../balances/balance-service.js';
import { presentBalance, presentBalanceTransaction } from '../balances/balance-presenter.js';
import { parseStripeCurrency } from '../money/stripe-currency.js';
import { readEnum, readObject, readString } from '../validation.js';
import { merchantOf } from './merchant-routes.js';
import { readCreatedFilter, readPage } from './route-support.js';

/** Stripe's Balance and BalanceTransactions APIs, for the authenticated merchant's own balance. */
const transactionTypes = ['charge', 'refund', 'adjustment', 'application_fee', 'application_fee_refund', 'payout',
  'payout_cancel', 'payout_failure', 'transfer', 'transfer_refund', 'payment', 'payment_refund'] as const;

export function registerBalanceRoutes(scope: FastifyInstance, balances: BalanceService): void {
  scope.get('/v1/balance', async (request) => {
    readObject(request.query, '', ['expand']);
    const merchant = merchantOf(request);
    return presentBalance(await balances.balance({ merchantId: merchant.id, accountId: merchant.id }));
  });

  scope.get<{ Params: { id: string } }>('/v1/balance_transactions/:id', async (request) => {
    readObject(request.query, '', ['expand']);
    const merchant = merchantOf(request);
    const row = await balances.retrieve({ merchantId: merchant.id, accountId: merchant.id }, request.params.id);
    return presentBalanceTransaction(row);
  });

  scope.get('/v1/balance_transactions', async (request) => {
    const query = readObject(request.query, '', ['limit', 'starting_after', 'ending_before', 'type', 'payout',
      'source', 'currency', 'created', 'expand']);
    const merchant = merchantOf(request);
    const page = await balances.list({
      merchantId: merchant.id, accountId: merchant.id,
      ...readPage(query),
      type: readEnum(query.type, 'type', transactionTypes),
      payoutId: readString(query.payout, 'payout', { lengthMax: 255 }),
      sourceId: readString(query.source, 'source', { lengthMax: 255 }),
      currency: query.currency === undefined ? undefined : parseStripeCurrency(query.currency).toUpperCase(),
      ...readCreatedFilter(query.created),
    });
    return { object: 'list', data: page.rows.map(presentBalanceTransaction), has_more: page.hasMore,
      url: '/v1/balance_transactions' };
  });
}
