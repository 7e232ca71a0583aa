import type { FastifyInstance } from 'fastify';
import type { DashboardServices } from './dashboard-services.js';

/** The operator's pages: ledger, reconciliation, cases. */
export function registerOperatorPages(_scope: FastifyInstance, _services: DashboardServices): void {
}
