import type { FastifyInstance, FastifyRequest } from 'fastify';
import type pg from 'pg';
import { closeCase, listCases, retrieveCase } from '../payments/payment-cases.js';
import { readEnum, readObject, readString } from '../validation.js';
import { readPage } from './route-support.js';

type IdParams = { Params: { id: string } };

/**
 * Payment cases for operators (operator key): GET /v1/cases (`status`, `limit`,
 * `starting_after`), GET /v1/cases/:id, and POST /v1/cases/:id/close with the `resolution`.
 */
export function registerCaseRoutes(app: FastifyInstance, dependencies: {
  pool: pg.Pool;
  checkOperator: (request: FastifyRequest) => void;
}): void {
  const { pool } = dependencies;
  void app.register(async (scope) => {
    scope.addHook('onRequest', async (request) => dependencies.checkOperator(request));
    scope.get('/v1/cases', async (request) => {
      const query = readObject(request.query, '', ['status', 'limit', 'starting_after']);
      const page = readPage(query);
      const cases = await listCases(pool, { status: readEnum(query.status, 'status', ['open', 'closed']),
        limit: page.limit, startingAfter: page.startingAfter });
      return { object: 'list', data: cases.rows, has_more: cases.hasMore, url: '/v1/cases' };
    });
    scope.get<IdParams>('/v1/cases/:id', async (request) => retrieveCase(pool, request.params.id));
    scope.post<IdParams>('/v1/cases/:id/close', async (request) => {
      const body = readObject(request.body ?? {}, '', ['resolution']);
      const resolution = readString(body.resolution, 'resolution', { lengthMax: 1000, required: true });
      return closeCase(pool, request.params.id, resolution);
    });
  });
}
