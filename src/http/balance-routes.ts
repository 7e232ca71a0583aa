import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { BalanceOwner, BalanceService } from '../balances/balance-service.js';
import { presentBalance, presentBalanceTransaction } from '../balances/balance-presenter.js';
import { parseStripeCurrency } from '../money/stripe-currency.js';
import { readEnum, readObject, readString } from '../validation.js';
import { merchantOf } from './merchant-routes.js';
import { readCreatedFilter, readPage } from './route-support.js';

/**
 * Stripe's Balance and BalanceTransactions APIs: the authenticated merchant's own balance, or with
 * the Stripe-Account header one of its connected accounts'.
 */
const transactionTypes = ['charge', 'refund', 'adjustment', 'application_fee', 'application_fee_refund', 'payout',
  'payout_cancel', 'payout_failure', 'payout_minimum_balance_hold', 'payout_minimum_balance_release', 'transfer',
  'transfer_refund', 'payment', 'payment_refund'] as const;

export function registerBalanceRoutes(scope: FastifyInstance, balances: BalanceService): void {
  const actingConnectedAccount = { config: { actsAsConnectedAccount: true } };
  scope.get('/v1/balance', actingConnectedAccount, async (request) => {
    readObject(request.query, '', ['expand']);
    return presentBalance(await balances.balance(ownerOf(request)));
  });

  scope.get<{ Params: { id: string } }>('/v1/balance_transactions/:id', actingConnectedAccount, async (request) => {
    readObject(request.query, '', ['expand']);
    return presentBalanceTransaction(await balances.retrieve(ownerOf(request), request.params.id));
  });

  scope.get('/v1/balance_transactions', actingConnectedAccount, async (request) => {
    const query = readObject(request.query, '', ['limit', 'starting_after', 'ending_before', 'type', 'payout',
      'source', 'currency', 'created', 'expand']);
    const page = await balances.list({
      ...ownerOf(request),
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

/** Whose balance: the platform's own, or the connected account the Stripe-Account header names. */
function ownerOf(request: FastifyRequest): BalanceOwner {
  const merchant = merchantOf(request);
  return { merchantId: merchant.id, accountId: request.actingAccountId ?? merchant.id };
}
