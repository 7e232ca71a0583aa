import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import type pg from 'pg';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { limits } from '../config.js';
import { presentAccount, presentEntry, presentPosting, presentTrialBalance } from '../ledger/ledger-presenter.js';
import {
  balanceCsvColumns, balanceCsvRows, checkPeriod, csvStream, presentStatementPosting, presentStatementSummary,
  presentTrialBalanceLine, reportFormats, statementCsvColumns, statementCsvRows, trialBalanceCsvColumns,
  trialBalanceCsvRows, type LedgerReports,
} from '../ledger/ledger-reports.js';
import type { LedgerService, Page } from '../ledger/ledger-service.js';
import type { Entry } from '../ledger/ledger-types.js';
import {
  parseCreateAccount, parseCreateEntry, parseCreateEntryBatch, parseHoldPost, parseReverse,
} from '../ledger/ledger-validation.js';
import type { IdempotencyService } from '../idempotency/idempotency-service.js';
import { registerIntegerJsonParser } from './integer-json.js';
import { answeredInTransaction } from './route-support.js';
import { invalid, readCurrency, readEnum, readLimit, readObject, readString, readTimestamp } from '../validation.js';

export interface LedgerRouteDependencies {
  readonly ledger: LedgerService;
  /** Account creation takes an Idempotency-Key, kept under the operator's own scope. */
  readonly idempotency: IdempotencyService;
  readonly reports: LedgerReports;
  readonly checkOperator: (request: FastifyRequest) => void;
  readonly amountMaxMinor: bigint;
}

type IdParams = { Params: { id: string } };

/**
 * The operator's idempotency keys live beside the merchants' in one table, under this scope in
 * place of a merchant id: merchant ids are `acct_…`, so no merchant's key can collide with it.
 */
const operatorIdempotencyScope = 'operator';

/**
 * Runs `work` in one transaction that also stores its answer under the request's Idempotency-Key
 * (when it has one), and sends the answer, or the stored one to a retry, byte for byte.
 */
async function sendIdempotent(
  idempotency: IdempotencyService,
  request: FastifyRequest,
  reply: FastifyReply,
  work: (db: pg.PoolClient) => Promise<unknown>,
) {
  const header = request.headers['idempotency-key'];
  const response = await idempotency.run({
    merchantId: operatorIdempotencyScope,
    key: Array.isArray(header) ? header[0] : header,
    method: request.method,
    path: request.url.split('?')[0] ?? request.url,
    params: (request.body ?? {}) as Record<string, unknown>,
  }, (execution) => answeredInTransaction(execution, () => work(execution.client)));
  if (response.replayed) void reply.header('Idempotent-Replayed', 'true');
  return reply.status(response.status).type('application/json; charset=utf-8').send(response.body);
}

/** The ledger API under /v1/ledger, for the operator. JSON in, JSON out. */
export function registerLedgerRoutes(app: FastifyInstance, dependencies: LedgerRouteDependencies): void {
  const { ledger, reports } = dependencies;
  const rules = { amountMaxMinor: dependencies.amountMaxMinor };

  void app.register(async (scope) => {
    scope.addHook('onRequest', async (request) => dependencies.checkOperator(request));
    registerIntegerJsonParser(scope);

    // Operator requests that a retry must not repeat take an Idempotency-Key. Entries need none
    // (their external_reference is their key), nor does a reversal (its reference defaults to one).
    const idempotent = (request: FastifyRequest, reply: FastifyReply, work: (db: pg.PoolClient) => Promise<unknown>) =>
      sendIdempotent(dependencies.idempotency, request, reply, work);

    scope.post('/v1/ledger/accounts', async (request, reply) => {
      const command = parseCreateAccount(request.body);
      return idempotent(request, reply, async (db) => presentAccount(await ledger.createAccountAnswer(db, command)));
    });

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

    scope.get<IdParams>('/v1/ledger/accounts/:id/balance', async (request, reply) => {
      const query = readObject(request.query, '', ['as_of', 'format']);
      const asOf = readTimestamp(query.as_of, 'as_of');
      const format = readEnum(query.format, 'format', reportFormats) ?? 'json';
      // Without as_of: the balance now, including entries dated in the future (as the account shows).
      const balance = await reports.balance(request.params.id, asOf);
      if (format === 'json') return balance;
      return sendCsv(reply, `balance-${balance.account}.csv`, csvStream(balanceCsvColumns, balanceCsvRows(balance)));
    });

    scope.get<IdParams>('/v1/ledger/accounts/:id/statement', async (request, reply) => {
      const query = readObject(request.query, '', ['from', 'to', 'limit', 'starting_after', 'format']);
      const period = checkPeriod(readTimestamp(query.from, 'from'), readTimestamp(query.to, 'to'));
      const format = readEnum(query.format, 'format', reportFormats) ?? 'json';
      if (format === 'csv') {
        if (query.limit !== undefined || query.starting_after !== undefined) {
          throw invalid(query.limit !== undefined ? 'limit' : 'starting_after',
            'A CSV statement holds the whole period; limit and starting_after page the JSON statement only.');
        }
        await reports.account(request.params.id, 'id');
        return sendCsv(reply, `statement-${request.params.id}.csv`,
          csvStream(statementCsvColumns, statementCsvRows(reports.statement(request.params.id, period))));
      }
      const page = await reports.statementPage(request.params.id, period, {
        limit: readLimit(query.limit),
        startingAfter: readPostingId(query.starting_after),
      });
      const url = `/v1/ledger/accounts/${request.params.id}/statement`;
      return { ...presentStatementSummary(page.summary),
        postings: { object: 'list', data: page.postings.map(presentStatementPosting), has_more: page.hasMore, url } };
    });

    scope.get<IdParams>('/v1/ledger/accounts/:id/postings', async (request) => {
      const query = readObject(request.query, '', ['limit', 'starting_after', 'from', 'to']);
      const page = await ledger.listPostings({
        account: request.params.id,
        limit: readLimit(query.limit),
        startingAfter: readPostingId(query.starting_after),
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

    scope.post<IdParams>('/v1/ledger/entries/:id/post', async (request, reply) => {
      const { amountMinor } = parseHoldPost(request.body, rules);
      return idempotent(request, reply,
        async (db) => presentEntry(await ledger.postHold(request.params.id, amountMinor, db)));
    });

    scope.post<IdParams>('/v1/ledger/entries/:id/void', async (request, reply) => {
      readObject(request.body ?? {}, '', []);
      return idempotent(request, reply, async (db) => presentEntry(await ledger.voidHold(request.params.id, db)));
    });

    scope.post<IdParams>('/v1/ledger/entries/:id/reverse', async (request) => {
      const created = await ledger.reverseEntry(request.params.id, parseReverse(request.body));
      return presentEntry(onlyEntry(created.entries));
    });

    scope.get('/v1/ledger/trial_balance', async (request, reply) => {
      const query = readObject(request.query, '', ['as_of', 'format']);
      const asOf = readTimestamp(query.as_of, 'as_of');
      const format = readEnum(query.format, 'format', reportFormats) ?? 'json';
      if (format === 'json') return presentTrialBalance(await ledger.trialBalance(asOf), asOf);
      return sendCsv(reply, 'trial-balance.csv',
        csvStream(trialBalanceCsvColumns, trialBalanceCsvRows(reports.trialBalanceLines({ asOf, totals: true }))));
    });

    scope.get('/v1/ledger/trial_balance/accounts', async (request) => {
      const query = readObject(request.query, '', ['as_of', 'limit', 'starting_after']);
      const page = await reports.trialBalancePage({
        asOf: readTimestamp(query.as_of, 'as_of'),
        limit: readLimit(query.limit),
        startingAfter: readString(query.starting_after, 'starting_after', { lengthMax: 100 }),
      });
      return { object: 'list', data: page.data.map(presentTrialBalanceLine), has_more: page.hasMore,
        url: '/v1/ledger/trial_balance/accounts' };
    });
  });
}

function onlyEntry(entries: readonly Entry[]): Entry {
  assert.equal(entries.length, 1, 'a single-entry request returns one entry');
  return entries[0] as Entry;
}

/** A posting id as a cursor (a positive bigint), or undefined. */
function readPostingId(value: unknown): bigint | undefined {
  const startingAfter = readString(value, 'starting_after', { lengthMax: 20 });
  const postingIdMax = 9223372036854775807n;
  if (startingAfter !== undefined && (!/^\d{1,19}$/.test(startingAfter) || BigInt(startingAfter) > postingIdMax)) {
    throw invalid('starting_after', 'starting_after must be a posting id.');
  }
  return startingAfter === undefined ? undefined : BigInt(startingAfter);
}

/** CSV is chosen with `?format=csv`; it streams, so an error after the first row ends the response early. */
function sendCsv(reply: FastifyReply, filename: string, body: Readable): FastifyReply {
  return reply.header('content-type', 'text/csv; charset=utf-8')
    .header('content-disposition', `attachment; filename="${filename}"`)
    .send(body);
}

function presentList<T>(page: Page<T>, url: string, present: (item: T) => unknown) {
  return { object: 'list', data: page.data.map(present), has_more: page.hasMore, url };
}
