import type { FastifyInstance } from 'fastify';
import type { ConnectedAccounts } from '../accounts/account-service.js';
import { presentBankAccount, presentConnectedAccount } from '../accounts/account-presenter.js';
import type { IdempotencyService } from '../idempotency/idempotency-service.js';
import { readEnum, readObject } from '../validation.js';
import {
  parseCreateAccount, parseCreateBankAccount, parseUpdateAccount, parseUpdateBankAccount,
} from './account-params.js';
import { merchantOf } from './merchant-routes.js';
import { answeredInTransaction, idempotent, readPage } from './route-support.js';

type IdParams = { Params: { id: string } };
type BankParams = { Params: { id: string; bank: string } };

/**
 * Stripe Connect's accounts API: a platform's connected accounts and their bank accounts
 * (external accounts). Routes parse, run idempotently, present. None of them acts as a connected
 * account (a connected account cannot manage accounts), so they refuse a Stripe-Account header.
 */
export function registerAccountRoutes(
  scope: FastifyInstance,
  dependencies: { accounts: ConnectedAccounts; idempotency: IdempotencyService },
): void {
  const { accounts, idempotency } = dependencies;
  const keyOf = (merchantId: string, id: string) => ({ merchantId, id });

  scope.post('/v1/accounts', async (request, reply) => {
    const command = parseCreateAccount(request.body);
    const merchant = merchantOf(request);
    return idempotent(idempotency, request, reply, (execution) => answeredInTransaction(execution,
      async () => presentConnectedAccount(await accounts.create(execution.client, merchant.id, command))));
  });

  scope.get<IdParams>('/v1/accounts/:id', async (request) => {
    readObject(request.query, '', ['expand']);
    return presentConnectedAccount(await accounts.get(keyOf(merchantOf(request).id, request.params.id)));
  });

  scope.post<IdParams>('/v1/accounts/:id', async (request, reply) => {
    const command = parseUpdateAccount(request.body);
    const key = keyOf(merchantOf(request).id, request.params.id);
    return idempotent(idempotency, request, reply, (execution) => answeredInTransaction(execution,
      async () => presentConnectedAccount(await accounts.update(execution.client, key, command))));
  });

  scope.get('/v1/accounts', async (request) => {
    const query = readObject(request.query, '', ['limit', 'starting_after', 'ending_before', 'expand', 'created']);
    const page = await accounts.list(merchantOf(request).id, readPage(query));
    return { object: 'list', data: page.rows.map(presentConnectedAccount), has_more: page.hasMore,
      url: '/v1/accounts' };
  });

  scope.delete<IdParams>('/v1/accounts/:id', async (request, reply) => {
    const key = keyOf(merchantOf(request).id, request.params.id);
    return idempotent(idempotency, request, reply, (execution) => answeredInTransaction(execution,
      () => accounts.delete(execution.client, key)));
  });

  scope.post<IdParams>('/v1/accounts/:id/external_accounts', async (request, reply) => {
    const command = parseCreateBankAccount(request.body);
    const key = keyOf(merchantOf(request).id, request.params.id);
    return idempotent(idempotency, request, reply, (execution) => answeredInTransaction(execution,
      async () => presentBankAccount(await accounts.createBankAccount(execution.client, key, command))));
  });

  scope.get<IdParams>('/v1/accounts/:id/external_accounts', async (request) => {
    const query = readObject(request.query, '', ['limit', 'starting_after', 'ending_before', 'expand', 'object']);
    const object = readEnum(query.object, 'object', ['bank_account', 'card']);
    const key = keyOf(merchantOf(request).id, request.params.id);
    const url = `/v1/accounts/${key.id}/external_accounts`;
    // Penny keeps no cards as external accounts: asking for cards alone finds none.
    if (object === 'card') {
      await accounts.get(key);
      return { object: 'list', data: [], has_more: false, url };
    }
    const page = await accounts.listBankAccounts(key, readPage(query));
    return { object: 'list', data: page.rows.map(presentBankAccount), has_more: page.hasMore, url };
  });

  scope.get<BankParams>('/v1/accounts/:id/external_accounts/:bank', async (request) => {
    readObject(request.query, '', ['expand']);
    const key = keyOf(merchantOf(request).id, request.params.id);
    return presentBankAccount(await accounts.retrieveBankAccount(key, request.params.bank));
  });

  scope.post<BankParams>('/v1/accounts/:id/external_accounts/:bank', async (request, reply) => {
    const command = parseUpdateBankAccount(request.body);
    const key = keyOf(merchantOf(request).id, request.params.id);
    return idempotent(idempotency, request, reply, (execution) => answeredInTransaction(execution,
      async () => presentBankAccount(
        await accounts.updateBankAccount(execution.client, key, { id: request.params.bank, command }))));
  });

  scope.delete<BankParams>('/v1/accounts/:id/external_accounts/:bank', async (request, reply) => {
    const key = keyOf(merchantOf(request).id, request.params.id);
    return idempotent(idempotency, request, reply, (execution) => answeredInTransaction(execution,
      () => accounts.deleteBankAccount(execution.client, key, request.params.bank)));
  });
}
