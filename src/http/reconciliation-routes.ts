import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { reconFormats, type ReconFormat } from '../reconciliation/recon-records.js';
import type { ReconciliationImports } from '../reconciliation/recon-import.js';
import { readEnum, readObject, readString } from '../validation.js';

export interface ReconciliationRouteDependencies {
  readonly imports: ReconciliationImports;
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
}
