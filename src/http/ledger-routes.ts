import assert from 'node:assert/strict';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { limits } from '../config.js';
import { presentAccount, presentBalances, presentEntry, presentPosting, presentTrialBalance } from '../ledger/ledger-presenter.js';
import type { LedgerService, Page } from '../ledger/ledger-service.js';
import type { Entry } from '../ledger/ledger-types.js';
import {
  parseCreateAccount, parseCreateEntry, parseCreateEntryBatch, parseHoldPost, parseReverse,
} from '../ledger/ledger-validation.js';
import { registerIntegerJsonParser } from './integer-json.js';
import { invalid, readCurrency, readLimit, readObject, readString, readTimestamp } from '../validation.js';

export interface LedgerRouteDependencies {
  readonly ledger: LedgerService;
  readonly checkOperator: (request: FastifyRequest) => void;
  readonly amountMaxMinor: bigint;
}

type IdParams = { Params: { id: string } };

/** The ledger API under /v1/ledger, for the operator. JSON in, JSON out. */
export function registerLedgerRoutes(app: FastifyInstance, dependencies: LedgerRouteDependencies): void {
  const { ledger } = dependencies;
  const rules = { amountMaxMinor: dependencies.amountMaxMinor };

  void app.register(async (scope) => {
    scope.addHook('onRequest', async (request) => dependencies.checkOperator(request));
    registerIntegerJsonParser(scope);

    scope.post('/v1/ledger/accounts', async (request) =>
      presentAccount(await ledger.createAccount(parseCreateAccount(request.body))));

    scope.get<IdParams>('/v1/ledger/accounts/:id', async (request) => {
      readObject(request.query, '', []);
      return presentAccount(await ledger.getAccount(request.params.id));
    });

    scope.get('/v1/ledger/accounts', async (request) => {
      const query = readObject(request.query, '', ['limit', 'starting_after', 'owner', 'currency']);
      const page = await ledger.listAccounts({
        limit: readLimit(query.limit),
        startingAfter: readString(query.starting_after, 'starting_after', { lengthMax: 100 }),
        owner: readString(query.owner, 'owner', { lengthMax: 255 }),
        currency: readCurrency(query.currency, 'currency'),
      });
      return presentList(page, '/v1/ledger/accounts', presentAccount);
    });

    scope.get<IdParams>('/v1/ledger/accounts/:id/balance', async (request) => {
      const query = readObject(request.query, '', ['as_of']);
      const asOf = readTimestamp(query.as_of, 'as_of');
      if (asOf === undefined) {
        // Without as_of: the balance now, including entries dated in the future (as the account shows).
        const account = await ledger.getAccount(request.params.id);
        return { object: 'ledger.balance', account: account.id, currency: account.currency, as_of: null,
          ...presentBalances(account, account.balances) };
      }
      const { account, balances } = await ledger.balanceAsOf(request.params.id, asOf);
      return { object: 'ledger.balance', account: account.id, currency: account.currency, as_of: asOf,
        ...presentBalances(account, balances) };
    });

    scope.get<IdParams>('/v1/ledger/accounts/:id/postings', async (request) => {
      const query = readObject(request.query, '', ['limit', 'starting_after', 'from', 'to']);
      const startingAfter = readString(query.starting_after, 'starting_after', { lengthMax: 20 });
      const postingIdMax = 9223372036854775807n;
      if (startingAfter !== undefined && (!/^\d{1,19}$/.test(startingAfter) || BigInt(startingAfter) > postingIdMax)) {
        throw invalid('starting_after', 'starting_after must be a posting id.');
      }
      const page = await ledger.listPostings({
        account: request.params.id,
        limit: readLimit(query.limit),
        startingAfter: startingAfter === undefined ? undefined : BigInt(startingAfter),
        from: readTimestamp(query.from, 'from'),
        to: readTimestamp(query.to, 'to'),
      });
      return presentList(page, `/v1/ledger/accounts/${request.params.id}/postings`, presentPosting);
    });

    scope.post('/v1/ledger/entries', async (request) => {
      const created = await ledger.createEntry(parseCreateEntry(request.body, rules));
      return presentEntry(onlyEntry(created.entries));
    });

    scope.post('/v1/ledger/entries/batch', { bodyLimit: limits.ledgerBatchBodyBytesMax }, async (request) => {
      const created = await ledger.createEntryBatch(parseCreateEntryBatch(request.body, rules));
      return { object: 'list', data: created.entries.map(presentEntry), has_more: false,
        url: '/v1/ledger/entries/batch' };
    });

    scope.get<IdParams>('/v1/ledger/entries/:id', async (request) => {
      readObject(request.query, '', []);
      return presentEntry(await ledger.getEntry(request.params.id));
    });

    scope.get('/v1/ledger/entries', async (request) => {
      const query = readObject(request.query, '', ['limit', 'starting_after', 'account', 'from', 'to']);
      const page = await ledger.listEntries({
        limit: readLimit(query.limit),
        startingAfter: readString(query.starting_after, 'starting_after', { lengthMax: 100 }),
        account: readString(query.account, 'account', { lengthMax: 100 }),
        from: readTimestamp(query.from, 'from'),
        to: readTimestamp(query.to, 'to'),
      });
      return presentList(page, '/v1/ledger/entries', presentEntry);
    });

    scope.post<IdParams>('/v1/ledger/entries/:id/post', async (request) => {
      const { amountMinor } = parseHoldPost(request.body, rules);
      return presentEntry(await ledger.postHold(request.params.id, amountMinor));
    });

    scope.post<IdParams>('/v1/ledger/entries/:id/void', async (request) => {
      readObject(request.body ?? {}, '', []);
      return presentEntry(await ledger.voidHold(request.params.id));
    });

    scope.post<IdParams>('/v1/ledger/entries/:id/reverse', async (request) => {
      const created = await ledger.reverseEntry(request.params.id, parseReverse(request.body));
      return presentEntry(onlyEntry(created.entries));
    });

    scope.get('/v1/ledger/trial_balance', async (request) => {
      const query = readObject(request.query, '', ['as_of']);
      const asOf = readTimestamp(query.as_of, 'as_of');
      return presentTrialBalance(await ledger.trialBalance(asOf), asOf);
    });
  });
}

function onlyEntry(entries: readonly Entry[]): Entry {
  assert.equal(entries.length, 1, 'a single-entry request returns one entry');
  return entries[0] as Entry;
}

function presentList<T>(page: Page<T>, url: string, present: (item: T) => unknown) {
  return { object: 'list', data: page.data.map(present), has_more: page.hasMore, url };
}
