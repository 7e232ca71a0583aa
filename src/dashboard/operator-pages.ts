import type { FastifyInstance } from 'fastify';
import { registerCasePages } from './case-pages.js';
import { registerLedgerPages } from './ledger-pages.js';
import { registerReconciliationPages } from './reconciliation-pages.js';
import type { DashboardServices } from './dashboard-services.js';

/** The operator's pages: the ledger, reconciliation, cases (a merchant's session gets 404). */
export function registerOperatorPages(scope: FastifyInstance, services: DashboardServices): void {
  registerLedgerPages(scope, services);
  registerReconciliationPages(scope, services);
  registerCasePages(scope, services);
}
