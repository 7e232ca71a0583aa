import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import type { Logger } from 'pino';
import { configureClock, followClockOffset } from './clock.js';
import { limits, type PennyConfig } from './config.js';
import { openDatabase, type OpenDatabase } from './db/database.js';
import { migrate } from './db/migrate.js';
import { createPool } from './db/pool.js';
import { buildServer } from './http/server.js';
import { sealPending } from './ledger/ledger-sealer.js';
import { idempotencyKeyRetentionHours, reapFinishedKeys } from './idempotency/idempotency-service.js';
import { ConnectorRegistry } from './connectors/connector.js';
import { SandboxConnector, sandboxConnectorId } from './connectors/sandbox/sandbox-connector.js';
import { AdyenConnector } from './connectors/adyen/adyen-connector.js';
import { ConnectorRouting, type OpenedConnectorAccount } from './merchants/connector-routing.js';
import type { Queryable } from './db/pool.js';
import {
  faultProfileFromEnvironment, resolveSandboxWebhookSecret, startSandboxPsp, type RunningSandboxPsp,
} from './sandbox-psp/psp-service.js';
import { LedgerService } from './ledger/ledger-service.js';
import { KeyRevocationListener } from './merchants/key-revocations.js';
import { MerchantService } from './merchants/merchant-service.js';
import { resolveSecretKey } from './secret-key.js';
import { resolveOperatorKey } from './operator-key.js';
import { startWorker, type Worker } from './workers.js';
import { SecretBox } from './security/secret-box.js';
import { WebhookDeliveryWorker } from './webhooks/webhook-deliveries.js';
import { ConnectorInbox, reportedOperations } from './webhooks/connector-inbox.js';
import { BalanceService, type AvailabilityMode } from './balances/balance-service.js';
import { PaymentFlows } from './payments/payment-flows.js';
import { PaymentLedger } from './payments/payment-ledger.js';
import { DestinationChargeSplits } from './transfers/destination-charges.js';
import { ConnectedAccounts } from './accounts/account-service.js';
import { PaymentRecovery } from './payments/payment-recovery.js';
import { PaymentExpiry } from './payments/payment-expiry.js';
import { PaymentPspEvents } from './payments/payment-psp-events.js';
import { PaymentDisputes } from './payments/payment-disputes.js';
import { PayoutService } from './payouts/payout-service.js';
import { PayoutPspEvents } from './payouts/payout-psp-events.js';
import { PayoutScheduler } from './payouts/payout-scheduler.js';
import { BankAccountVault } from './accounts/bank-accounts.js';
import { PspEventRouter } from './webhooks/psp-event-router.js';
import { SettlementService } from './settlement/settlement-service.js';
import { WebhookEndpoints } from './webhooks/webhook-endpoints.js';
import { ReportRuns } from './reporting/report-runs.js';
import { ReconciliationImports } from './reconciliation/recon-import.js';
import { ReportDownloads } from './reconciliation/report-downloads.js';
import { ReconciliationRuns } from './reconciliation/recon-run.js';
import { ReconciliationSchedule } from './reconciliation/recon-schedule.js';

/** The composition root: configuration, database, migrations, services, HTTP, workers. */
export interface RunningPenny {
  readonly server: FastifyInstance;
  readonly pool: pg.Pool;
  readonly url: string;
  stop(): Promise<void>;
}

export async function startPenny(config: PennyConfig, logger: Logger): Promise<RunningPenny> {
  configureClock(config.clockMode);
  if (config.clockMode === 'controlled' && !config.sandboxPsp) await catchUpWithSandboxClock(config.sandboxPspUrl, logger);
  // Checked before anything starts, so a bad profile stops Penny at once, naming the variable.
  const sandboxFaults = config.sandboxPsp ? faultProfileFromEnvironment(config.sandboxPspFaults) : undefined;
  const database = await openDatabase(config, { logger, ownsServer: true });
  let pool: pg.Pool | undefined;
  let sandbox: RunningSandboxPsp | undefined;
  let keyRevocations: KeyRevocationListener | undefined;
  const workers: Worker[] = [];
  try {
    const migrated = await migrate(database.url, logger);
    if (migrated.applied.length > 0) logger.info({ applied: migrated.applied }, 'migrations applied');
    const livePool = createPool({ connectionString: database.url, sizeMax: config.databasePoolSizeMax });
    pool = livePool;
    const ledger = new LedgerService(pool);
    const operatorKey = await resolveOperatorKey(config, logger);
    const secretKey = await resolveSecretKey(config, logger);
    const merchants = new MerchantService(pool, secretKey);
    keyRevocations = new KeyRevocationListener(database.url, merchants, logger);
    await keyRevocations.start();
    const webhookEndpoints = new WebhookEndpoints(pool, new SecretBox(secretKey, 'webhook secrets'),
      { allowPrivateUrls: config.webhooksAllowPrivateUrls });
    // The sandbox PSP is a separate service (its own port and pool); Penny reaches it over HTTP.
    const webhookSecret = await resolveSandboxWebhookSecret(config);
    if (config.sandboxPsp) {
      sandbox = await startSandboxPsp({
        databaseUrl: database.url, host: '127.0.0.1', port: config.sandboxPspPort, logger, webhookSecret,
        webhookUrl: config.sandboxPspWebhookUrl, faults: sandboxFaults,
      });
    }
    const connectors = buildConnectorRegistry(config, webhookSecret);
    const routing = new ConnectorRouting(livePool, secretKey, { allowAnyEndpoint: config.connectorsAllowAnyEndpoint });
    const accounts = connectorAccounts(connectors, routing, { pool: livePool, publicUrl: () => config.publicUrl });
    // Every PSP account's connector, so the payments recorded on it are followed up after a restart.
    await accounts.loadAll();
    const balances = new BalanceService(livePool, ledger, availabilityMode(config));
    const paymentLedger = buildPaymentLedger(livePool, { ledger, balances, secretKey });
    const disputes = new PaymentDisputes(livePool, paymentLedger);
    const flows = new PaymentFlows(connectors, paymentLedger, {
      connectorId: sandboxConnectorId, authorizationExpiryDays: config.authorizationExpiryDays,
      publicUrl: () => config.publicUrl, routeOf: accounts.routeOf,
    });
    // Payouts go to the connector the merchant's payments are routed to (none to Adyen: it has no payouts).
    const payouts = new PayoutService(livePool, { connectors, ledger, balances,
      vault: new BankAccountVault(secretKey), connectorId: accounts.routeOf, logger });
    const payoutScheduler = new PayoutScheduler(livePool, { payouts, balances, logger });
    const pspEvents = new PspEventRouter({ payments: new PaymentPspEvents(flows, logger, disputes),
      payouts: new PayoutPspEvents(payouts) });
    const server = buildServer({
      pool, logger, ledger, merchants, connectors, flows, balances, disputes, payouts, operatorKey, routing,
      connectorAccounts: accounts,
      amountMaxMinor: config.amountMaxMinor, secretKey, webhookEndpoints,
      clockFollowers: config.sandboxPsp ? [] : [config.sandboxPspUrl],
      merchantRequestsPerSecondMax: config.merchantRequestsPerSecondMax,
      publicUrl: () => config.publicUrl,
    });
    const reports = new ReportRuns(livePool, {
      accounts: new ConnectedAccounts(livePool, new BankAccountVault(secretKey)),
      publicUrl: () => config.publicUrl, logger,
    });
    const deliveries = new WebhookDeliveryWorker(livePool, webhookEndpoints,
      { allowPrivateUrls: config.webhooksAllowPrivateUrls, logger });
    workers.push(
      keyRevocations,
      ...startLedgerWorkers(pool, ledger, config, logger),
      startWorker('idempotency-reaper', limits.idempotencyReapIntervalMs, () => reapFinishedKeys(livePool, {
        retentionHours: idempotencyKeyRetentionHours, batchMax: limits.idempotencyReapBatchMax,
      }), logger),
      startWorker('webhook-delivery', limits.webhookIntervalMs, () => deliveries.deliverDue(), logger),
      startWorker('payment-recovery', limits.recoveryIntervalMs,
        () => new PaymentRecovery(livePool, { connectors, flows, logger }).runDue(), logger),
      startWorker('payment-authorization-expiry', limits.holdExpiryIntervalMs, () => new PaymentExpiry(livePool, flows,
        { logger }).expireDue(), logger),
      startWorker('connector-inbox', limits.inboxIntervalMs,
        () => new ConnectorInbox(livePool, pspEvents, logger).processDue(), logger),
      startWorker('payouts', limits.payoutLookupIntervalMs, () => payouts.resolveUnknown(), logger),
      startWorker('report-downloads', limits.reportDownloadIntervalMs, () => new ReportDownloads(livePool, {
        connectors, ensureConnector: accounts.ensure, imports: new ReconciliationImports(livePool), logger,
      }).runDue(), logger),
      startWorker('payout-schedule', limits.automaticPayoutIntervalMs,
        () => payoutScheduler.runDue(), logger),
      startWorker('settlement-pull', limits.settlementPullIntervalMs,
        () => new SettlementService(livePool, { connectors, balances, logger, chargebacks: disputes, payouts })
          .pullClosedDays(),
        logger),
      startWorker('balance-availability', limits.availabilityIntervalMs, () => balances.releaseDue(), logger),
      startWorker('report-runs', limits.reportRunIntervalMs, () => reports.runDue(), logger),
      ...reconciliationWorkers(livePool, config, { connectors, balances, logger }),
    );
    await server.listen({ port: config.port, host: config.host });
    return { server, pool, url: database.url, stop: stopper(server, workers, [pool], database, sandbox) };
  } catch (error) {
    // Workers already started (listen can fail: the port is taken) stop before their pool ends,
    // or they would keep the process alive, failing on an ended pool.
    await Promise.all(workers.map((worker) => worker.stop()));
    await keyRevocations?.stop();
    await pool?.end();
    await sandbox?.stop();
    await database.close();
    throw error;
  }
}

function startLedgerWorkers(pool: pg.Pool, ledger: LedgerService, config: PennyConfig, logger: Logger): Worker[] {
  return [
    startWorker('ledger-sealer', limits.sealIntervalMs,
      () => sealPending(pool, { logger, anchorFile: config.ledgerAnchorFile }), logger),
    startWorker('ledger-compaction', limits.compactionIntervalMs, () => ledger.compactBalances(), logger),
    startWorker('ledger-hold-expiry', limits.holdExpiryIntervalMs, () => ledger.expireDueHolds(), logger),
  ];
}

/** In-flight requests finish, workers finish their task, then the pool and the database stop. */
function stopper(server: FastifyInstance, workers: Worker[], pools: pg.Pool[], database: OpenDatabase,
  sandbox: RunningSandboxPsp | undefined) {
  let stopping: Promise<void> | undefined;
  return () => {
    stopping ??= (async () => {
      await closeServer(server);
      await Promise.all(workers.map((worker) => worker.stop()));
      await sandbox?.stop();
      await Promise.all(pools.map((pool) => pool.end()));
      await database.close();
    })();
    return stopping;
  };
}

/**
 * Stops accepting connections and waits for in-flight requests. A keep-alive connection turns
 * idle only after its response, so idle connections are closed as they appear; after the grace
 * period, whatever is left is cut.
 */
async function closeServer(server: FastifyInstance): Promise<void> {
  const sweeper = setInterval(() => server.server.closeIdleConnections(), 50);
  const deadline = setTimeout(() => server.server.closeAllConnections(), limits.shutdownGraceMs);
  try {
    await server.close();
  } finally {
    clearInterval(sweeper);
    clearTimeout(deadline);
  }
}

/** The connectors Penny speaks to, by id: the one place a concrete connector is chosen. */
export function buildConnectorRegistry(config: PennyConfig, sandboxWebhookSecret: string): ConnectorRegistry {
  const connectors = new ConnectorRegistry();
  connectors.register(new SandboxConnector({ baseUrl: config.sandboxPspUrl, webhookSecrets: [sandboxWebhookSecret] }));
  return connectors;
}

/**
 * The connectors of the PSP accounts merchants are routed to (Adyen's), built from their sealed
 * credentials and registered by id; rebuilt when an account's credentials change (the CLI may
 * change them while Penny runs: the next payment routed to the account, or webhook from it, reads
 * them again).
 */
export interface ConnectorAccounts {
  loadAll(): Promise<void>;
  /** Registers the account's connector if it is one Penny knows; false for an unknown id. */
  ensure(db: Queryable, connectorId: string): Promise<boolean>;
  /** The connector the merchant's new payments go to, registered. */
  routeOf(db: Queryable, merchantId: string): Promise<string>;
  /** Up to `limit` Adyen accounts' connectors, registered: a webhook that names no account tries their keys. */
  adyenAccounts(db: Queryable, limit: number): Promise<string[]>;
}

export function connectorAccounts(connectors: ConnectorRegistry, routing: ConnectorRouting,
  options: { pool: pg.Pool; publicUrl: () => string; adyen?: { timeoutMs?: number; retryCountMax?: number;
    retryDelayInitialMs?: number; retryDelayMaxMs?: number } }): ConnectorAccounts {
  const versions = new Map<string, string>();
  const install = (account: OpenedConnectorAccount) => {
    if (versions.get(account.connector) === account.version && connectors.has(account.connector)) return;
    connectors.replace(new AdyenConnector({
      merchantAccount: account.merchantAccount, apiKey: account.apiKey, hmacKeyHex: account.hmacKeyHex,
      endpoint: account.endpoint, livePrefix: account.livePrefix, priceList: account.priceList,
      returnUrl: `${options.publicUrl()}/v1/connectors/adyen/return`,
      notificationLog: (connectorId, reference) => reportedOperations(options.pool, connectorId, reference),
      ...options.adyen,
    }));
    versions.set(account.connector, account.version);
  };
  const ensure = async (db: Queryable, connectorId: string) => {
    if (connectorId === sandboxConnectorId) return connectors.has(connectorId);
    const account = await routing.openAccount(db, connectorId);
    if (account === undefined) return false;
    install(account);
    return true;
  };
  return {
    async loadAll() {
      for (const account of await routing.openAccounts()) install(account);
    },
    ensure,
    async routeOf(db, merchantId) {
      const connectorId = await routing.connectorOf(db, merchantId);
      if (!await ensure(db, connectorId)) throw new Error(`merchant ${merchantId} is routed to unknown ${connectorId}`);
      return connectorId;
    },
    async adyenAccounts(db, limit) {
      const ids = [];
      for (const connectorId of await routing.accountIds(db, limit)) {
        if (await ensure(db, connectorId)) ids.push(connectorId);
      }
      return ids;
    },
  };
}

/** What a charge's money movements are booked through (the API's, the settlement command's). */
export function buildPaymentLedger(pool: pg.Pool, parts: { ledger: LedgerService; balances: BalanceService;
  secretKey: string }): PaymentLedger {
  return new PaymentLedger(parts.ledger, parts.balances, new DestinationChargeSplits({ ledger: parts.ledger,
    balances: parts.balances, accounts: new ConnectedAccounts(pool, new BankAccountVault(parts.secretKey)) }));
}

/** PENNY_FUNDS_AVAILABILITY as the balances take it (settlement's usual delay: two days, as Stripe's US one). */
export function availabilityMode(config: PennyConfig): AvailabilityMode {
  return config.fundsAvailability.kind === 'settlement' ? { kind: 'settlement', expectedDelayDays: 2 }
    : config.fundsAvailability;
}

/** The daily reconciliation run, when PENNY_RECON_SCHEDULE sets its time. */
function reconciliationWorkers(pool: pg.Pool, config: PennyConfig, dependencies: { connectors: ConnectorRegistry;
  balances: BalanceService; logger: Logger }): Worker[] {
  const schedule = config.reconciliationSchedule;
  if (schedule === undefined) return [];
  const runs = new ReconciliationRuns(pool, { logger: dependencies.logger });
  const scheduled = new ReconciliationSchedule(pool, { ...dependencies, schedule, inbox: config.reconciliationInbox,
    runs, imports: new ReconciliationImports(pool) });
  return [startWorker('reconciliation-schedule', limits.reconciliationScheduleIntervalMs, () => scheduled.runDue(),
    dependencies.logger)];
}

/**
 * A controlled clock lives in memory: a restarted Penny would start days behind a sandbox PSP that
 * runs apart and was told every advance. It reads the sandbox's offset back before anything runs,
 * so its clock never moves backwards across a restart. A sandbox that does not answer is logged.
 */
export async function catchUpWithSandboxClock(sandboxUrl: string, logger: Logger): Promise<void> {
  try {
    const response = await fetch(`${sandboxUrl}/control/clock`, { signal: AbortSignal.timeout(5000) });
    const body = await response.json() as { offset_ms?: unknown };
    if (response.ok && typeof body.offset_ms === 'number' && Number.isSafeInteger(body.offset_ms)) {
      followClockOffset(body.offset_ms);
    }
  } catch (error) {
    logger.warn({ err: error, sandboxUrl }, 'the sandbox PSP did not tell its clock; the controlled clock starts at its own');
  }
}
