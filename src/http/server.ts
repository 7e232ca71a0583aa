import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type pg from 'pg';
import type { Logger } from 'pino';
import { lazyChildLogger } from '../logger.js';
import { limits } from '../config.js';
import { appliedMigrationNames, listMigrationFiles } from '../db/migrate.js';
import { PennyError } from '../errors.js';
import { newId } from '../ids.js';
import type { LedgerService } from '../ledger/ledger-service.js';
import { IdempotencyService, idempotencyKeyLengthMax } from '../idempotency/idempotency-service.js';
import type { MerchantService } from '../merchants/merchant-service.js';
import type { ConnectorRegistry } from '../connectors/connector.js';
import type { PaymentFlows } from '../payments/payment-flows.js';
import { registerConnectorWebhookRoutes } from './connector-webhook-routes.js';
import { registerAdyenReturnRoutes } from './adyen-return-routes.js';
import { registerAdyenWebhookRoutes } from './adyen-webhook-routes.js';
import { registerConnectorRoutingRoutes } from './connector-routing-routes.js';
import type { ConnectorRouting } from '../merchants/connector-routing.js';
import type { Queryable } from '../db/pool.js';
import { registerClockRoutes } from './clock-routes.js';
import { PaymentService } from '../payments/payment-service.js';
import { errorBody, handleError, statusOf } from './http-errors.js';
import { registerCaseRoutes } from './case-routes.js';
import { registerBalanceRoutes } from './balance-routes.js';
import { registerDisputeRoutes } from './dispute-routes.js';
import { registerTransferRoutes } from './transfer-routes.js';
import { TransferService } from '../transfers/transfer-service.js';
import { ApplicationFeeService } from '../transfers/application-fee-service.js';
import { registerApplicationFeeRoutes } from './application-fee-routes.js';
import type { PaymentDisputes } from '../payments/payment-disputes.js';
import { registerAccountRoutes } from './account-routes.js';
import { registerPayoutRoutes } from './payout-routes.js';
import type { PayoutService } from '../payouts/payout-service.js';
import { ConnectedAccounts } from '../accounts/account-service.js';
import { BankAccountVault } from '../accounts/bank-accounts.js';
import { registerEventRoutes } from './event-routes.js';
import { registerPaymentRoutes } from './payment-routes.js';
import { registerAuthenticationRoutes } from './authentication-routes.js';
import { registerBodyDrain } from './body-drain.js';
import { registerNulCharacterCheck } from './nul-characters.js';
import { registerReplayShortcut } from './replay-shortcut.js';
import { registerWebhookEndpointRoutes } from './webhook-endpoint-routes.js';
import { recordHttpRequest, renderMetrics } from '../metrics/metrics.js';
import { SecretBox } from '../security/secret-box.js';
import type { WebhookEndpoints } from '../webhooks/webhook-endpoints.js';
import type { BalanceService } from '../balances/balance-service.js';
import { parseStripeForm, registerStripeFormParser } from './stripe-form.js';
import { stringifyJson } from '../json.js';
import { registerLedgerRoutes } from './ledger-routes.js';
import { LedgerReports } from '../ledger/ledger-reports.js';
import { registerReconciliationRoutes } from './reconciliation-routes.js';
import { ReconciliationImports } from '../reconciliation/recon-import.js';
import { ReconciliationBreaks } from '../reconciliation/recon-breaks.js';
import { ReconciliationRuns } from '../reconciliation/recon-run.js';
import { registerMerchantApi } from './merchant-routes.js';
import { createOperatorCheck } from './operator-auth.js';
import { registerReportingRoutes } from './reporting-routes.js';
import { ReportRuns } from '../reporting/report-runs.js';
import { registerDashboard } from '../dashboard/dashboard-routes.js';

export interface ServerDependencies {
  readonly pool: pg.Pool;
  readonly logger: Logger;
  readonly ledger: LedgerService;
  readonly merchants: MerchantService;
  /** PSP connectors by id; the composition root registers them, the core never imports one. */
  readonly connectors: ConnectorRegistry;
  readonly flows: PaymentFlows;
  /** Balances and balance transactions (the Balance APIs), read from the ledger. */
  readonly balances: BalanceService;
  /** Disputes, opened and decided by the PSP, answered or accepted by the merchant. */
  readonly disputes: PaymentDisputes;
  /** Payouts (built by the composition root, which also gives them to the PSP-webhook inbox). */
  readonly payouts: PayoutService;
  readonly operatorKey: string;
  readonly amountMaxMinor: bigint;
  /** PENNY_SECRET_KEY: seals stored secrets (webhook signing secrets, responses that show one). */
  readonly secretKey: string;
  readonly webhookEndpoints: WebhookEndpoints;
  /** Other processes' clocks that follow Penny's controlled clock (a separate sandbox PSP). */
  readonly clockFollowers?: readonly string[];
  /** PENNY_RATE_LIMIT_PER_SECOND: each merchant's requests a second; 0 or absent = no limit. */
  readonly merchantRequestsPerSecondMax?: number;
  /** PENNY_PUBLIC_URL (answers built for a request use the address the request reached instead). */
  readonly publicUrl?: () => string;
  /** Merchants' connector routing (the operator's API); absent: every merchant on the sandbox. */
  readonly routing?: ConnectorRouting;
  /** Registers the connector of a PSP account merchants are routed to (Adyen's webhooks name it). */
  readonly connectorAccounts?: { ensure(db: Queryable, connectorId: string): Promise<boolean>;
    adyenAccounts?(db: Queryable, limit: number): Promise<string[]> };
}

/** Builds the HTTP API. Routes are thin: parse, call a service, present. */
export function buildServer(dependencies: ServerDependencies): FastifyInstance {
  const app = Fastify({
    loggerInstance: dependencies.logger as FastifyBaseLogger,
    genReqId: () => newId('req'),
    childLoggerFactory: (logger, bindings, options) =>
      lazyChildLogger(logger as Logger, bindings, options) as FastifyBaseLogger,
    bodyLimit: limits.requestBodyBytesMax,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    forceCloseConnections: 'idle',
    // While closing, new requests get 503 in Penny's error shape (the hook below), not Fastify's.
    return503OnClosing: false,
    // Stripe's query strings nest like its bodies (created[gte]=…); a refusal is raised in a
    // hook, because an exception thrown by the parser itself would escape the error handler.
    // A path parameter may be an idempotency key (GET /v1/idempotency_keys/:key), up to 255
    // characters, each up to three when percent-encoded; the router's default stops at 100.
    routerOptions: { querystringParser: parseQueryString, maxParamLength: 3 * idempotencyKeyLengthMax },
    // A path that does not decode (`/v1/payment_intents/%ff`) is refused before any hook runs:
    // answered in Penny's shape, with its Request-Id, instead of Fastify's own body.
    frameworkErrors: (error, request, reply) => {
      void reply.header('Request-Id', request.id);
      handleError(error, request, reply);
    },
  });
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  // The first onRequest hook, one callback (no promise a request): every answer carries the
  // Request-Id, refusals by later hooks too; then a closing server's 503, then a query refused.
  app.addHook('onRequest', (request, reply, done) => {
    void reply.header('Request-Id', request.id);
    if (closing) {
      done(new PennyError({
        code: 'service_unavailable', type: 'api_error',
        message: 'Penny is shutting down; retry the request in a moment.',
      }));
      return;
    }
    const refusal = (request.query as Record<symbol, unknown> | undefined)?.[queryRefusal];
    done(refusal === undefined ? undefined : refusal as Error);
  });
  // JSON only: a text/plain body is refused as such, not parsed into a string.
  app.removeContentTypeParser('text/plain');
  app.setReplySerializer((payload) => stringifyJson(payload));
  app.setErrorHandler(handleError);
  registerBodyDrain(app);
  const idempotency = new IdempotencyService(dependencies.pool,
    (error) => ({ status: statusOf(error), body: errorBody(error) }),
    new SecretBox(dependencies.secretKey, 'idempotent responses'));
  // Before the NUL check: a replay answered from its text alone skips every later check.
  const answeredByText = registerReplayShortcut(app, idempotency);
  registerNulCharacterCheck(app);
  app.setNotFoundHandler((request) => {
    throw new PennyError({
      code: 'route_not_found',
      message: `Unrecognized request URL (${request.method}: ${request.url.split('?')[0]}).`,
    });
  });

  app.addHook('onResponse', (request, reply, done) => {
    recordHttpRequest(request.routeOptions.url ?? 'unmatched', request.method, reply.statusCode,
      reply.elapsedTime / 1000);
    done();
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  const checkMetricsOperator = createOperatorCheck(dependencies.operatorKey);
  app.get('/metrics', async (request, reply) => {
    checkMetricsOperator(request);
    const metrics = await renderMetrics(dependencies.pool);
    return reply.type(metrics.contentType).send(metrics.text);
  });
  app.get('/readyz', async (_request, reply) => {
    const reason = await readinessProblem(dependencies.pool);
    if (reason === undefined) return { status: 'ready' };
    return reply.status(503).send({ status: 'not_ready', reason });
  });

  registerLedgerRoutes(app, {
    ledger: dependencies.ledger,
    idempotency,
    reports: new LedgerReports(dependencies.pool),
    checkOperator: createOperatorCheck(dependencies.operatorKey),
    amountMaxMinor: dependencies.amountMaxMinor,
  });
  const reconciliationImports = new ReconciliationImports(dependencies.pool);
  const reconciliationRuns = new ReconciliationRuns(dependencies.pool, { logger: dependencies.logger });
  const reconciliationBreaks = new ReconciliationBreaks(dependencies.pool, { ledger: dependencies.ledger,
    accounts: dependencies.balances.accounts });
  registerReconciliationRoutes(app, { imports: reconciliationImports, runs: reconciliationRuns,
    breaks: reconciliationBreaks, checkOperator: createOperatorCheck(dependencies.operatorKey) });
  registerClockRoutes(app, { checkOperator: createOperatorCheck(dependencies.operatorKey),
    followers: dependencies.clockFollowers ?? [] });
  registerCaseRoutes(app, { pool: dependencies.pool, checkOperator: createOperatorCheck(dependencies.operatorKey) });
  registerStripeFormParser(app, { bodyLimit: limits.requestBodyBytesMax, answeredByText });
  const payments = new PaymentService(dependencies.pool, dependencies.flows);
  const accounts = new ConnectedAccounts(dependencies.pool, new BankAccountVault(dependencies.secretKey));
  const transfers = new TransferService(dependencies.pool,
    { ledger: dependencies.ledger, balances: dependencies.balances, accounts });
  const applicationFees = new ApplicationFeeService(dependencies.pool,
    { ledger: dependencies.ledger, balances: dependencies.balances, accounts });
  const reports = new ReportRuns(dependencies.pool, { accounts, logger: dependencies.logger,
    publicUrl: dependencies.publicUrl ?? (() => 'http://127.0.0.1') });
  registerConnectorWebhookRoutes(app, { pool: dependencies.pool, connectors: dependencies.connectors });
  const { connectorAccounts, routing } = dependencies;
  registerAdyenWebhookRoutes(app, { pool: dependencies.pool, connectors: dependencies.connectors,
    ensureConnector: (db, connectorId) => connectorAccounts?.ensure(db, connectorId) ?? Promise.resolve(false),
    adyenAccounts: (db, limit) => connectorAccounts?.adyenAccounts?.(db, limit) ?? Promise.resolve([]) });
  if (routing !== undefined) {
    registerConnectorRoutingRoutes(app, { routing, checkOperator: createOperatorCheck(dependencies.operatorKey) });
  }
  registerDashboard(app, { pool: dependencies.pool, operatorKey: dependencies.operatorKey,
    secretKey: dependencies.secretKey, merchants: dependencies.merchants, payments, idempotency,
    ledger: dependencies.ledger, ledgerReports: new LedgerReports(dependencies.pool), disputes: dependencies.disputes,
    balances: dependencies.balances, payouts: dependencies.payouts, accounts, breaks: reconciliationBreaks,
    runs: reconciliationRuns, imports: reconciliationImports, webhookEndpoints: dependencies.webhookEndpoints,
    publicUrl: dependencies.publicUrl });
  registerAuthenticationRoutes(app, { pool: dependencies.pool, payments, idempotency });
  registerAdyenReturnRoutes(app, { payments });
  registerMerchantApi(app,
    { merchants: dependencies.merchants, accounts,
      requestsPerSecondMax: dependencies.merchantRequestsPerSecondMax ?? 0 },
    (scope) => {
      registerPaymentRoutes(scope, { pool: dependencies.pool, payments, idempotency });
      registerEventRoutes(scope, dependencies.pool);
      registerBalanceRoutes(scope, dependencies.balances);
      registerDisputeRoutes(scope, { disputes: dependencies.disputes, idempotency });
      registerAccountRoutes(scope, { accounts, idempotency });
      registerTransferRoutes(scope, { transfers, idempotency });
      registerApplicationFeeRoutes(scope, { applicationFees, idempotency });
      registerPayoutRoutes(scope, { payouts: dependencies.payouts, idempotency });
      registerReportingRoutes(scope, { reports, idempotency });
      registerWebhookEndpointRoutes(scope, { pool: dependencies.pool, endpoints: dependencies.webhookEndpoints,
        idempotency });
    });
  return app;
}

const queryRefusal = Symbol('query refusal');

function parseQueryString(text: string): Record<string, unknown> {
  try {
    return parseStripeForm(text);
  } catch (error) {
    return { [queryRefusal]: error } as Record<string, unknown>;
  }
}

/** Ready means: the database answers and every migration on disk has been applied. */
async function readinessProblem(pool: pg.Pool): Promise<string | undefined> {
  try {
    const names = new Set(await appliedMigrationNames(pool));
    const missing = (await listMigrationFiles()).filter((file) => !names.has(file));
    return missing.length === 0 ? undefined : `migrations not applied: ${missing.join(', ')}`;
  } catch (error) {
    return `database unreachable: ${(error as Error).message}`;
  }
}
