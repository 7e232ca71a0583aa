import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { nowMs } from '../clock.js';
import { reconFormats, type ReconFormat } from '../reconciliation/recon-records.js';
import type { ReconciliationBreaks } from '../reconciliation/recon-breaks.js';
import { proposeRepair } from '../reconciliation/recon-breaks.js';
import { breakStatuses } from '../reconciliation/recon-break-store.js';
import { readAsOfDay } from '../reconciliation/recon-dates.js';
import type { ReconciliationImports } from '../reconciliation/recon-import.js';
import { presentBreak, presentRun } from '../reconciliation/recon-presenter.js';
import type { ReconciliationRuns } from '../reconciliation/recon-run.js';
import { presentEntry } from '../ledger/ledger-presenter.js';
import { readEnum, readObject, readString } from '../validation.js';
import { readPage } from './route-support.js';

export interface ReconciliationRouteDependencies {
  readonly imports: ReconciliationImports;
  readonly runs: ReconciliationRuns;
  readonly breaks: ReconciliationBreaks;
  readonly checkOperator: (request: FastifyRequest) => void;
}

type IdParams = { Params: { id: string } };

/**
 * Reconciliation's inputs, for the operator: `POST /v1/reconciliation/files` takes the raw file
 * as the body (any content type; streamed, never buffered whole, up to 1 GiB), with `source`,
 * `format` and `filename` in the query string. 201 with the import's summary; 200 with the first
 * import's when the same bytes were imported before.
 */
export function registerReconciliationRoutes(app: FastifyInstance,
  dependencies: ReconciliationRouteDependencies): void {
  void app.register(async (scope) => {
    scope.addHook('onRequest', async (request) => dependencies.checkOperator(request));
    // The body is the file itself: handed over as a stream, whatever its type.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, payload, done) => {
      done(null, payload);
    });

    scope.post('/v1/reconciliation/files', async (request, reply) => {
      const query = readObject(request.query, '', ['source', 'format', 'filename']);
      const source = readString(query.source, 'source', { lengthMax: 64 });
      const format = readEnum<ReconFormat>(query.format, 'format', reconFormats);
      const filename = readString(query.filename, 'filename', { lengthMax: 255 }) || 'upload';
      const body = (request.body as Readable | undefined) ?? request.raw;
      const summary = await dependencies.imports.importFile({ body, filename, source, format });
      return reply.status(summary.already_known ? 200 : 201).send(summary);
    });

    scope.get<IdParams>('/v1/reconciliation/files/:id', async (request) => {
      readObject(request.query, '', []);
      return dependencies.imports.describe(request.params.id);
    });
  });
  void app.register(async (scope) => {
    scope.addHook('onRequest', async (request) => dependencies.checkOperator(request));
    registerRunRoutes(scope, dependencies);
    registerBreakRoutes(scope, dependencies);
  });
}

function today(): string {
  return new Date(nowMs()).toISOString().slice(0, 10);
}

/**
 * Runs: `POST /v1/reconciliation/runs` `{as_of?}` (default today, UTC, on Penny's clock) runs now
 * and answers the run with the breaks it opened (the first page; `GET
 * /v1/reconciliation/breaks?run=` pages the rest); `GET /v1/reconciliation/runs[/:id]`.
 */
function registerRunRoutes(scope: FastifyInstance, dependencies: ReconciliationRouteDependencies): void {
  scope.post('/v1/reconciliation/runs', async (request, reply) => {
    const body = readObject(request.body ?? {}, '', ['as_of']);
    const run = await dependencies.runs.run({ asOf: readAsOfDay(body.as_of, 'as_of', today) });
    return reply.status(201).send(await describeRun(dependencies, run.id));
  });
  scope.get('/v1/reconciliation/runs', async (request) => {
    const page = readPage(readObject(request.query, '', ['limit', 'starting_after']));
    const runs = await dependencies.breaks.runs(page);
    return { object: 'list', data: runs.runs.map((run) => presentRun(run, undefined)), has_more: runs.hasMore,
      url: '/v1/reconciliation/runs' };
  });
  scope.get<IdParams>('/v1/reconciliation/runs/:id', async (request) => {
    readObject(request.query, '', []);
    return describeRun(dependencies, request.params.id);
  });
}

async function describeRun(dependencies: ReconciliationRouteDependencies, id: string) {
  const run = await dependencies.breaks.run(id);
  const page = await dependencies.breaks.list({ runId: id, limit: 100 });
  return presentRun(run, { rows: page.breaks, hasMore: page.hasMore });
}

/**
 * Breaks: list (`run`, `status`, `type`, cursor), retrieve, `POST …/:id/repair` (applies the
 * proposed entry; again answers the same entry) and `POST …/:id/ignore` `{reason}`.
 */
function registerBreakRoutes(scope: FastifyInstance, dependencies: ReconciliationRouteDependencies): void {
  scope.get('/v1/reconciliation/breaks', async (request) => {
    const query = readObject(request.query, '', ['run', 'status', 'type', 'limit', 'starting_after']);
    const page = readPage(query);
    const list = await dependencies.breaks.list({ ...page,
      runId: readString(query.run, 'run', { lengthMax: 70 }),
      status: readEnum(query.status, 'status', breakStatuses),
      type: readString(query.type, 'type', { lengthMax: 64 }) });
    return { object: 'list', data: list.breaks.map((row) => presentBreak(row, proposeRepair(row))),
      has_more: list.hasMore, url: '/v1/reconciliation/breaks' };
  });
  scope.get<IdParams>('/v1/reconciliation/breaks/:id', async (request) => {
    readObject(request.query, '', []);
    const row = await dependencies.breaks.get(request.params.id);
    return presentBreak(row, proposeRepair(row));
  });
  scope.post<IdParams>('/v1/reconciliation/breaks/:id/repair', async (request) => {
    readObject(request.body ?? {}, '', []);
    const repaired = await dependencies.breaks.repair(request.params.id);
    return { ...presentBreak(repaired.break, null), repair: presentEntry(repaired.entry) };
  });
  scope.post<IdParams>('/v1/reconciliation/breaks/:id/ignore', async (request) => {
    const body = readObject(request.body ?? {}, '', ['reason']);
    const reason = readString(body.reason, 'reason', { lengthMax: 1000, required: true });
    return presentBreak(await dependencies.breaks.ignore(request.params.id, reason), null);
  });
}
