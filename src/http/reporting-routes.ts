import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import type { IdempotencyService } from '../idempotency/idempotency-service.js';
import { presentFile, presentReportRun, presentReportType } from '../reporting/report-presenter.js';
import type { ReportOwner, ReportRuns } from '../reporting/report-runs.js';
import { findReportType, isReportTypeId, reportTypeDefinitions } from '../reporting/report-types.js';
import { invalid, missing, readObject, readString } from '../validation.js';
import { merchantOf } from './merchant-routes.js';
import { answeredInTransaction, idempotent, readCreatedFilter, readPage } from './route-support.js';

type IdParams = { Params: { id: string } };

/**
 * Stripe's Reports API (`/v1/reporting/report_types`, `/v1/reporting/report_runs`) and the Files
 * its runs produce (`/v1/files/:id`, `/v1/files/:id/contents`), for the platform or, with
 * Stripe-Account, one of its connected accounts. A file's `url` is built from the address the
 * request reached Penny at, so a client that fetches it with its secret key gets the CSV.
 */
export function registerReportingRoutes(scope: FastifyInstance,
  dependencies: { reports: ReportRuns; idempotency: IdempotencyService }): void {
  const { reports, idempotency } = dependencies;
  const acting = { config: { actsAsConnectedAccount: true } };

  scope.get('/v1/reporting/report_types', acting, async (request) => {
    readObject(request.query, '', ['expand']);
    const available = reports.availability(merchantOf(request).createdAt);
    const data = reportTypeDefinitions().map((type) => presentReportType(type, available));
    return { object: 'list', data, has_more: false, url: '/v1/reporting/report_types' };
  });

  scope.get<IdParams>('/v1/reporting/report_types/:id', acting, async (request) => {
    readObject(request.query, '', ['expand']);
    return presentReportType(findReportType(request.params.id), reports.availability(merchantOf(request).createdAt));
  });

  scope.post('/v1/reporting/report_runs', acting, async (request, reply) => {
    const body = readObject(request.body ?? {}, '', ['report_type', 'parameters', 'expand']);
    const typeId = readString(body.report_type, 'report_type', { lengthMax: 100, required: true });
    if (!isReportTypeId(typeId)) {
      throw invalid('report_type', `Invalid report_type: ${typeId}. Penny runs ${reportTypeDefinitions()
        .map((type) => type.id).join(', ')}.`);
    }
    if (body.parameters === undefined) throw missing('parameters[interval_start]');
    const owner = ownerOf(request);
    const baseUrl = baseUrlOf(request);
    // The run and the answer a retry replays commit together: a retry never records a second run.
    return idempotent(idempotency, request, reply, (execution) => answeredInTransaction(execution, async () =>
      presentReportRun(await reports.create(execution.client, { owner,
        platformCreatedAt: merchantOf(request).createdAt, type: findReportType(typeId, 'report_type'),
        parameters: body.parameters }), undefined, baseUrl)));
  });

  scope.get<IdParams>('/v1/reporting/report_runs/:id', acting, async (request) => {
    readObject(request.query, '', ['expand']);
    const { run, file } = await reports.retrieve(ownerOf(request), request.params.id);
    return presentReportRun(run, file, baseUrlOf(request));
  });

  scope.get('/v1/reporting/report_runs', acting, async (request) => {
    const query = readObject(request.query, '', ['limit', 'starting_after', 'ending_before', 'created', 'expand']);
    const page = await reports.list({ ...ownerOf(request), ...readPage(query), ...readCreatedFilter(query.created) });
    const baseUrl = baseUrlOf(request);
    return { object: 'list', data: page.rows.map(({ run, file }) => presentReportRun(run, file, baseUrl)),
      has_more: page.hasMore, url: '/v1/reporting/report_runs' };
  });

  scope.get<IdParams>('/v1/files/:id', acting, async (request) => {
    readObject(request.query, '', ['expand']);
    return presentFile(await reports.file(ownerOf(request), request.params.id), baseUrlOf(request));
  });

  scope.get<IdParams>('/v1/files/:id/contents', acting, async (request, reply) => {
    readObject(request.query, '', []);
    const file = await reports.file(ownerOf(request), request.params.id);
    return reply.type('text/csv; charset=utf-8').header('Content-Length', file.sizeBytes.toString())
      .header('Content-Disposition', `attachment; filename="${file.filename}"`)
      .send(Readable.from(reports.contents(file)));
  });
}

function ownerOf(request: FastifyRequest): ReportOwner {
  const merchant = merchantOf(request);
  return { merchantId: merchant.id, accountId: request.actingAccountId ?? merchant.id };
}

/** Where the caller reached Penny: the base of a file's `url`. */
function baseUrlOf(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`;
}
