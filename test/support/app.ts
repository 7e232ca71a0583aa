import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterAll } from 'vitest';
import { amountMaxSafeMinor } from '../../src/config.js';
import { BalanceService, type AvailabilityMode } from '../../src/balances/balance-service.js';
import { PaymentFlows } from '../../src/payments/payment-flows.js';
import { PaymentLedger } from '../../src/payments/payment-ledger.js';
import { DestinationChargeSplits } from '../../src/transfers/destination-charges.js';
import { ConnectedAccounts } from '../../src/accounts/account-service.js';
import { PaymentRecovery } from '../../src/payments/payment-recovery.js';
import { PaymentPspEvents } from '../../src/payments/payment-psp-events.js';
import { PaymentDisputes } from '../../src/payments/payment-disputes.js';
import { ConnectorInbox } from '../../src/webhooks/connector-inbox.js';
import { ReconciliationImports } from '../../src/reconciliation/recon-import.js';
import { ReportDownloads } from '../../src/reconciliation/report-downloads.js';
import { PspEventRouter } from '../../src/webhooks/psp-event-router.js';
import { PayoutService } from '../../src/payouts/payout-service.js';
import { PayoutPspEvents } from '../../src/payouts/payout-psp-events.js';
import { BankAccountVault } from '../../src/accounts/bank-accounts.js';
import { buildServer } from '../../src/http/server.js';
import { LedgerService } from '../../src/ledger/ledger-service.js';
import { MerchantService } from '../../src/merchants/merchant-service.js';
import { ConnectorRegistry, type Connector } from '../../src/connectors/connector.js';
import { sandboxConnectorId } from '../../src/connectors/sandbox/sandbox-connector.js';
import type { Logger } from 'pino';
import { createLogger } from '../../src/logger.js';
import { connectorAccounts } from '../../src/app.js';
import { ConnectorRouting } from '../../src/merchants/connector-routing.js';
import { SecretBox } from '../../src/security/secret-box.js';
import { WebhookEndpoints } from '../../src/webhooks/webhook-endpoints.js';
import { startTestSandboxPsp, type TestSandboxPsp } from './sandbox-psp.js';
import { createTestDatabase, type TestDatabase } from './database.js';

export const operatorKey = 'op_test_0123456789abcdefghijklmnop';
export const testPepper = 'test_pepper_0123456789abcdefghijklmnopqrstuvwxyz';

export interface TestLedger extends TestDatabase {
  readonly ledger: LedgerService;
  readonly webhookEndpoints: WebhookEndpoints;
  readonly sandbox: TestSandboxPsp;
  readonly connectors: ConnectorRegistry;
  readonly recovery: PaymentRecovery;
  readonly inbox: ConnectorInbox;
  /** The report-downloads worker (Adyen's announced settlement reports), when `routing` was asked for. */
  readonly reportDownloads: ReportDownloads | undefined;
  readonly flows: PaymentFlows;
  readonly balances: BalanceService;
  readonly payouts: PayoutService;
  readonly disputes: PaymentDisputes;
  readonly merchants: MerchantService;
  readonly app: FastifyInstance;
  /** Merchants' connector routing, when `routing` was asked for. */
  readonly routing: ConnectorRouting | undefined;
  /** Calls the operator API in-process (no socket), authenticated with the operator key. */
  request(options: { method: string; url: string; body?: unknown; headers?: Record<string, string> }): Promise<{
    status: number;
    body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON under test
    headers: Record<string, unknown>;
  }>;
}

/** A fresh database, a LedgerService over it, and the HTTP API built on them. */
export interface TestLedgerOptions {
  amountMaxMinor?: bigint;
  merchantRequestsPerSecondMax?: number;
  /** The connectors to register (default: the sandbox's alone), built on the test's sandbox PSP. */
  connectors?: (sandbox: TestSandboxPsp) => Connector[];
  /** Where new payments are routed, read at each confirmation (default: the sandbox). */
  route?: () => string;
  /** When captured funds become available (default: at settlement). */
  availability?: AvailabilityMode;
  /**
   * Merchants' own routing (`penny merchants connector`), as the composition root wires it: the
   * merchant's route decides where its new payments go, and the Adyen connectors are built from the
   * sealed accounts (timeouts short for tests).
   */
  routing?: { adyenTimeoutMs?: number };
  /** The database to build on (default: a fresh clone of the template on the test server). */
  database?: TestDatabase;
  /** The server's operator key (default: `operatorKey`), as PENNY_OPERATOR_KEY would set it. */
  operatorKey?: string;
  /** Where Penny logs (default: silent, or at PENNY_TEST_LOG_LEVEL), for a test that reads the log. */
  logger?: Logger;
}

export async function createTestLedger(options: TestLedgerOptions = {}): Promise<TestLedger> {
  const database = options.database ?? await createTestDatabase();
  const ledger = new LedgerService(database.pool);
  const merchants = new MerchantService(database.pool, testPepper);
  const sandbox = await startTestSandboxPsp(database.url);
  const connectors = new ConnectorRegistry();
  for (const connector of options.connectors?.(sandbox) ?? [sandbox.connector]) connectors.register(connector);
  const route = options.route ?? (() => sandboxConnectorId);
  const webhookEndpoints = new WebhookEndpoints(database.pool, new SecretBox(testPepper, 'webhook secrets'),
    { allowPrivateUrls: true });
  // The 3-D Secure page's base URL: the test server's address once it listens (serveTestLedger).
  const server: { app?: FastifyInstance } = {};
  const balances = new BalanceService(database.pool, ledger, options.availability);
  const paymentLedger = new PaymentLedger(ledger, balances, new DestinationChargeSplits({ ledger, balances,
    accounts: new ConnectedAccounts(database.pool, new BankAccountVault(testPepper)) }));
  const disputes = new PaymentDisputes(database.pool, paymentLedger);
  // Tests route to a local stub of Adyen over http.
  const routing = options.routing === undefined ? undefined
    : new ConnectorRouting(database.pool, testPepper, { allowAnyEndpoint: true });
  const accounts = routing === undefined ? undefined : connectorAccounts(connectors, routing, { pool: database.pool,
    publicUrl: () => 'http://127.0.0.1', adyen: { timeoutMs: options.routing?.adyenTimeoutMs ?? 300,
      retryCountMax: 2, retryDelayInitialMs: 5, retryDelayMaxMs: 20 } });
  const flows = new PaymentFlows(connectors, paymentLedger, {
    get connectorId() { return route(); },
    ...(accounts === undefined ? {} : { routeOf: accounts.routeOf }),
    authorizationExpiryDays: 7,
    publicUrl: () => {
      const address = server.app?.server.address();
      return `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 80}`;
    },
  });
  const logger = options.logger ?? createLogger(process.env.PENNY_TEST_LOG_LEVEL ?? 'silent');
  const payouts = new PayoutService(database.pool, { connectors, ledger, balances,
    vault: new BankAccountVault(testPepper), connectorId: accounts?.routeOf ?? route, logger });
  const app = buildServer({
    payouts,
    pool: database.pool,
    logger,
    ledger,
    merchants,
    connectors,
    flows,
    balances,
    disputes,
    operatorKey: options.operatorKey ?? operatorKey,
    amountMaxMinor: options.amountMaxMinor ?? amountMaxSafeMinor,
    secretKey: testPepper,
    webhookEndpoints,
    merchantRequestsPerSecondMax: options.merchantRequestsPerSecondMax ?? 0,
    ...(routing === undefined || accounts === undefined ? {} : { routing, connectorAccounts: accounts }),
  });
  server.app = app;
  await app.ready();
  afterAll(async () => {
    await app.close();
  });
  return {
    ...database,
    ledger,
    merchants,
    webhookEndpoints,
    sandbox,
    connectors,
    recovery: new PaymentRecovery(database.pool, { connectors, flows, logger }),
    reportDownloads: accounts === undefined ? undefined : new ReportDownloads(database.pool, { connectors,
      ensureConnector: accounts.ensure, imports: new ReconciliationImports(database.pool), logger }),
    inbox: new ConnectorInbox(database.pool, new PspEventRouter({
      payments: new PaymentPspEvents(flows, logger, disputes), payouts: new PayoutPspEvents(payouts) }), logger),
    flows,
    balances,
    payouts,
    disputes,
    app,
    routing,
    async request({ method, url, body, headers }) {
      const injectOptions: InjectOptions = {
        method: method as InjectOptions['method'],
        url,
        headers: { authorization: `Bearer ${options.operatorKey ?? operatorKey}`, ...headers },
      };
      if (body !== undefined) {
        injectOptions.payload = typeof body === 'string' ? body : JSON.stringify(body);
        injectOptions.headers = { 'content-type': 'application/json', ...injectOptions.headers };
      }
      const response = await app.inject(injectOptions);
      const text = response.body;
      return {
        status: response.statusCode,
        body: text.length > 0 && response.headers['content-type']?.toString().includes('json') ? JSON.parse(text) : text,
        headers: response.headers,
      };
    },
  };
}
