import path from 'node:path';
import { parseDatabaseUrl } from './database-url.js';
import { PennyError } from './errors.js';

/**
 * Configuration comes from environment variables, validated once at start. A bad value stops
 * Penny with a message naming the variable. Every limit Penny enforces is named here.
 */
export interface PennyConfig {
  readonly port: number;
  readonly host: string;
  readonly databaseUrl: string | undefined;
  readonly dataDirectory: string;
  readonly embeddedPostgresPort: number;
  readonly embeddedPostgresDirectory: string;
  readonly operatorKey: string | undefined;
  readonly secretKey: string | undefined;
  readonly logLevel: string;
  readonly ledgerAnchorFile: string | undefined;
  readonly amountMaxMinor: bigint;
  readonly databasePoolSizeMax: number;
  readonly clockMode: 'system' | 'controlled';
  readonly webhooksAllowPrivateUrls: boolean;
  /** A connector account's endpoint may be any http(s) URL (a local test stub), not only Adyen's https hosts. */
  readonly connectorsAllowAnyEndpoint: boolean;
  readonly sandboxPsp: boolean;
  readonly sandboxPspPort: number;
  readonly sandboxPspUrl: string;
  /** Penny's base URL as customers' browsers reach it (the 3-D Secure page); PENNY_PUBLIC_URL. */
  readonly publicUrl: string;
  /** Signs the sandbox's webhooks; Penny's sandbox connector verifies them with it. */
  readonly sandboxPspWebhookSecret: string | undefined;
  /** Where the sandbox sends its webhooks (default: this Penny's connector endpoint). */
  readonly sandboxPspWebhookUrl: string;
  /** A fault profile (JSON, as POST /control/faults takes it) the sandbox starts with. */
  readonly sandboxPspFaults: string | undefined;
  /** Uncaptured authorizations expire after this many days (Stripe: 7). */
  readonly authorizationExpiryDays: number;
  /** Requests a second each merchant may make on the merchant API (Stripe's live mode: 100); 0 = no limit. */
  readonly merchantRequestsPerSecondMax: number;
  /**
   * PENNY_FUNDS_AVAILABILITY: captured funds become available when the PSP's settlement confirms
   * them (`settlement`, the default), or after a fixed n days (`T+n`), for operators who front the
   * money (decisions.md, "Availability").
   */
  readonly fundsAvailability: { readonly kind: 'settlement' } | { readonly kind: 'fixed_delay'; readonly delayDays: number };
  /**
   * PENNY_RECON_SCHEDULE: the UTC time of day (`HH:MM`) of the daily reconciliation run (the
   * previous day's settlement reports and the inbox's statements imported, then a run); unset, no
   * scheduled run (issue 18, "Runs").
   */
  readonly reconciliationSchedule: { readonly hour: number; readonly minute: number } | undefined;
  /** PENNY_RECON_INBOX: a directory whose bank statements and reports the scheduled run imports first. */
  readonly reconciliationInbox: string | undefined;
}

/** Bounds that are not configurable: each says what it bounds and why it is this size. */
export const limits = {
  /** Merchant API bodies (decisions.md). */
  requestBodyBytesMax: 1024 * 1024,
  /**
   * An answer given before a body was read (a 413, a 401) waits while the rest of the body is read
   * and discarded, so that closing does not reset a client still sending; at most this much, for
   * at most this long, then the connection is closed. Twice the largest accepted body; well within
   * the shutdown grace.
   */
  bodyDrainBytesMax: 32 * 1024 * 1024,
  bodyDrainTimeoutMs: 5_000,
  /** Statement and report uploads stream, up to 1 GiB (decisions.md, "Limits"). */
  reconciliationFileBytesMax: 1024 * 1024 * 1024,
  /** An import's answer lists at most this many statements and conflicting records (the counts are whole). */
  reconciliationSummaryItemsMax: 100,
  /** The ledger batch endpoint carries up to 1,000 entries. */
  ledgerBatchBodyBytesMax: 16 * 1024 * 1024,
  ledgerBatchEntriesMax: 1000,
  ledgerPostingsPerEntryMax: 100,
  /**
   * Ledger reports (statements, trial balance by account, the journal export) stream: each query
   * reads at most this many rows (postings, or account lines), so memory stays bounded whatever
   * the period. The journal reads entries, each with its postings (at most ledgerPostingsPerEntryMax
   * posted ones), a fifth as many at a time.
   */
  ledgerReportRowsPerQueryMax: 1000,
  ledgerJournalEntriesPerQueryMax: 200,
  listPageSizeMax: 100,
  /** The rate limiter keeps a window for this many merchants at once (least recently seen dropped). */
  rateLimitMerchantsTrackedMax: 10_000,
  listPageSizeDefault: 10,
  metadataKeysMax: 50,
  metadataKeyLengthMax: 40,
  metadataValueLengthMax: 500,
  descriptionLengthMax: 1000,
  externalReferenceLengthMax: 255,
  accountCodeLengthMax: 255,
  sealBatchEntriesMax: 1000,
  /** Account currencies never change, so the ledger caches them (oldest evicted first). */
  accountCurrencyCacheEntriesMax: 100_000,
  sealIntervalMs: 500,
  /** Balance-change rows (one per posting statement) folded per transaction, and rounds per tick. */
  compactionBatchRowsMax: 1000,
  compactionRoundsMax: 10,
  compactionIntervalMs: 1000,
  holdExpiryBatchMax: 100,
  holdExpiryIntervalMs: 1000,
  /** Verification reports entries left unsealed longer than this as a failure of the sealer. */
  sealLagSecondsMax: 30,
  shutdownGraceMs: 10_000,
  idempotencyReapBatchMax: 1000,
  /**
   * Finished idempotent responses a process keeps in memory for replays (they never change until
   * reaped): at most this many bytes of stored bodies and parameters, least recently used evicted.
   */
  idempotencyReplayCacheBytesMax: 16 * 1024 * 1024,
  idempotencyReapIntervalMs: 60_000,
  /** Webhook delivery: one POST waits this long; a claimed delivery is retried after the lease if its worker died. */
  webhookTimeoutMs: 10_000,
  webhookLeaseMs: 30_000,
  webhookClaimBatchMax: 32,
  webhookConcurrencyMax: 8,
  webhookIntervalMs: 250,
  /** Stripe's window: an event is retried for up to 3 days, then given up. */
  webhookRetryWindowMs: 3 * 86_400_000,
  webhookFirstRetryDelayMs: 10_000,
  webhookRetryDelayMaxMs: 12 * 3_600_000,
  /** An endpoint whose deliveries have failed without a success for this long is disabled. */
  webhookEndpointDisableAfterMs: 2 * 86_400_000,
  webhookEndpointsPerMerchantMax: 16,
  /** Uncaptured authorizations expired per tick of the expiry worker, each in transactions of its own. */
  authorizationExpiryBatchMax: 32,
  /** Payouts whose PSP answer was lost: looked up every 2 s, once 10 s old, 16 a run. */
  payoutLookupIntervalMs: 2_000,
  payoutLookupGraceMs: 10_000,
  payoutLookupBatchMax: 16,
  /**
   * Automatic payouts: every 10 s the scheduler takes the next 100 accounts whose schedule is due
   * on the current UTC day (one pass a day per process), and tries an account that failed again
   * on later ticks, at most 3 times a day.
   */
  automaticPayoutIntervalMs: 10_000,
  automaticPayoutBatchMax: 100,
  automaticPayoutTriesMax: 3,
  /** An automatic payout marks the transactions it pays out this many rows a statement (in its transaction). */
  payoutLinkBatchRowsMax: 1000,
  /**
   * An automatic payout pays at most this many transactions, oldest first (their ids held and their
   * rows locked in its transaction); what is left is the next payout's.
   */
  automaticPayoutTransactionsMax: 100_000,
  /**
   * While the oldest transactions an automatic payout reads net to less than the payout step
   * (refunds and fees older than the captures) and all of them net to more, it reads on, batch by
   * batch, up to this many; past it nothing is paid and an ALERT is logged.
   */
  automaticPayoutTransactionsReadMax: 1_000_000,
  /**
   * Report runs (Stripe's Reports API): every 1 s the worker claims up to 2 pending runs, each for
   * a 5-minute lease, tried at most 3 times; a run reads 1,000 rows a query and writes its CSV in
   * parts of about 256 KiB; a report of more than 1,000,000 rows fails, asking for a shorter interval.
   */
  reportRunIntervalMs: 1_000,
  reportRunClaimBatchMax: 2,
  reportRunLeaseMs: 300_000,
  reportRunAttemptsMax: 3,
  reportRowsPerQueryMax: 1000,
  reportFilePartBytes: 256 * 1024,
  reportRowsMax: 1_000_000,
  /** Payouts a payout report reads per query (each followed by its transactions, 1,000 a query). */
  reportPayoutsPerQueryMax: 100,
  recoveryIntervalMs: 500,
  /** Recovery of unknown PSP outcomes: jobs run per tick, each claimed for a lease (another process takes it after). */
  recoveryBatchMax: 16,
  recoveryLeaseMs: 60_000,
  /** An operation whose request has not applied an outcome after this long is looked up (the request died). */
  recoveryGraceMs: 60_000,
  /** The first look-up of an outcome known to be unknown; the schedule below continues from there. */
  recoveryFirstDelayMs: 2_000,
  /** The delay before each further look-up; when it runs out, the subject goes to manual review. */
  recoveryScheduleMs: [2_000, 10_000, 30_000, 120_000, 600_000, 1_800_000, 7_200_000, 21_600_000, 43_200_000,
    86_400_000],
  /** The last error kept with a recovery job. */
  recoveryErrorLengthMax: 500,
  inboxIntervalMs: 100,
  /** How often the reconciliation scheduler looks whether today's run is due (PENNY_RECON_SCHEDULE). */
  reconciliationScheduleIntervalMs: 60_000,
  /**
   * The daily run imports each connector's settlement reports of the closed days not imported yet,
   * at most this many days back (older days: `penny recon import --source <connector>`).
   */
  reconciliationReportCatchUpDays: 14,
  /**
   * An `unexpected_bank_entry` repair reads the PSP payouts the settlement booked within 31 days of
   * the entry, at most this many; with more, it cannot tell whether the entry names one, and refuses.
   */
  reconciliationBookedPayoutsReadMax: 10_000,
  /**
   * The settlement worker, once a minute, pulls the closed days not pulled yet of the last
   * `settlementLookbackDays`, every tick; and of the older ones since the first day it pulled in
   * the last `settlementCatchUpDaysMax` (Penny was down, a pull failed, a batch not paid yet), at
   * most `settlementPullDaysPerTickMax` a tick, oldest first, each tried at most once an hour
   * (none pulled in that window: the look-back only; older days by hand, `penny settlement pull`).
   */
  settlementPullIntervalMs: 60_000,
  settlementLookbackDays: 3,
  settlementCatchUpDaysMax: 31,
  settlementPullDaysPerTickMax: 7,
  /** Pending charges whose fixed delay has passed, made available per tick (PENNY_FUNDS_AVAILABILITY=T+n). */
  availabilityBatchMax: 100,
  availabilityIntervalMs: 1_000,
  /** PSP events processed one transaction each per tick, after the echoes of applied authorizations. */
  inboxProcessBatchMax: 32,
  /** Echoes of applied authorizations settled in one statement per tick. */
  inboxEchoBatchMax: 128,
  /** A parked event is retried with doubling delays, capped, then set aside with an alert. */
  inboxRetryDelayFirstMs: 1_000,
  inboxRetryDelayMaxMs: 3_600_000,
  inboxParkCountMax: 20,
  /** The error kept with an event that could not be processed. */
  inboxErrorLengthMax: 300,
  /** A connector's HTTP call: its timeout, retries of a safe failure with capped backoff, and circuit breaker. */
  connectorTimeoutMs: 8_000,
  connectorRetryCountMax: 2,
  connectorRetryDelayInitialMs: 100,
  connectorRetryDelayMaxMs: 2_000,
  connectorBreakerFailuresMax: 10,
  connectorBreakerOpenMs: 5_000,
  /** A PSP webhook's raw body, read whole before its signature is verified. */
  connectorWebhookBodyBytesMax: 256 * 1024,
  /** A signed PSP webhook older or newer than this is refused as stale (Stripe's default tolerance). */
  connectorWebhookToleranceSeconds: 300,
  /**
   * Adyen's newer webhooks (signed in the `HmacSignature` header) name no merchant account: the
   * HMAC keys of at most this many Adyen accounts are tried, in the order of their names.
   */
  adyenHeaderSignatureAccountsMax: 50,
  /** A PSP's settlement report download (Adyen's REPORT_AVAILABLE URL), body included. */
  connectorReportDownloadTimeoutMs: 300_000,
  /** Report downloads tried per worker run, and tries of one before it is set aside as failed. */
  reportDownloadBatchMax: 5,
  reportDownloadAttemptMax: 8,
  /** The first retry of a failed download; doubled each time, capped at an hour. */
  reportDownloadRetryDelayFirstMs: 60_000,
  reportDownloadRetryDelayMaxMs: 3_600_000,
  /** How often the worker looks for announced reports to download. */
  reportDownloadIntervalMs: 30_000,
  /** An id, type or reference in a PSP webhook longer than this is refused as malformed. */
  connectorWebhookFieldLengthMax: 255,
} as const;

export const amountMaxSafeMinor = BigInt(Number.MAX_SAFE_INTEGER);

type Environment = Readonly<Record<string, string | undefined>>;

export function loadConfig(environment: Environment = process.env): PennyConfig {
  const dataDirectory = path.resolve(environment.PENNY_DATA_DIR || './.penny');
  const sandboxPspPort = readPort(environment, 'PENNY_SANDBOX_PSP_PORT', 4243);
  const port = readPort(environment, 'PORT', 4242);
  return {
    port,
    host: readNonEmpty(environment, 'HOST', '127.0.0.1'),
    publicUrl: readHttpUrl(environment, 'PENNY_PUBLIC_URL', `http://${publicHost(environment.HOST)}:${port}`),
    databaseUrl: readDatabaseUrl(environment, 'DATABASE_URL'),
    dataDirectory,
    embeddedPostgresPort: readPort(environment, 'PENNY_PG_PORT', 54329),
    embeddedPostgresDirectory: path.resolve(
      environment.PENNY_PG_DIR || path.join(dataDirectory, 'postgres'),
    ),
    operatorKey: readOperatorKey(environment),
    secretKey: readSecretKey(environment),
    logLevel: readLogLevel(environment),
    ledgerAnchorFile: environment.PENNY_LEDGER_ANCHOR_FILE || undefined,
    amountMaxMinor: readAmountMax(environment),
    databasePoolSizeMax: readInteger(environment, 'PENNY_DB_POOL_SIZE', 8, { min: 1, max: 100 }),
    clockMode: readChoice(environment, 'PENNY_CLOCK', ['system', 'controlled'], 'system'),
    webhooksAllowPrivateUrls: readChoice(environment, 'PENNY_WEBHOOKS_ALLOW_PRIVATE_URLS', ['true', 'false'],
      'false') === 'true',
    connectorsAllowAnyEndpoint: readChoice(environment, 'PENNY_CONNECTORS_ALLOW_ANY_ENDPOINT', ['true', 'false'],
      'false') === 'true',
    sandboxPsp: readChoice(environment, 'PENNY_SANDBOX_PSP', ['on', 'off'], 'on') === 'on',
    sandboxPspPort,
    sandboxPspUrl: readHttpUrl(environment, 'PENNY_SANDBOX_PSP_URL', `http://127.0.0.1:${sandboxPspPort}`),
    sandboxPspWebhookSecret: readSecret(environment, 'PENNY_SANDBOX_PSP_WEBHOOK_SECRET'),
    sandboxPspWebhookUrl: readHttpUrl(environment, 'PENNY_SANDBOX_PSP_WEBHOOK_URL',
      `http://127.0.0.1:${port}/v1/connectors/sandbox/webhooks`),
    sandboxPspFaults: readOptionalText(environment, 'PENNY_SANDBOX_PSP_FAULTS'),
    authorizationExpiryDays: readInteger(environment, 'PENNY_AUTHORIZATION_EXPIRY_DAYS', 7, { min: 1, max: 30 }),
    merchantRequestsPerSecondMax: readInteger(environment, 'PENNY_RATE_LIMIT_PER_SECOND', 100,
      { min: 0, max: 1_000_000 }),
    fundsAvailability: readFundsAvailability(environment),
    reconciliationSchedule: readTimeOfDay(environment, 'PENNY_RECON_SCHEDULE'),
    reconciliationInbox: environment.PENNY_RECON_INBOX ? path.resolve(environment.PENNY_RECON_INBOX) : undefined,
  };
}

function readTimeOfDay(environment: Environment, variable: string): PennyConfig['reconciliationSchedule'] {
  const raw = environment[variable];
  if (raw === undefined || raw === '') return undefined;
  const match = /^(\d{2}):(\d{2})$/.exec(raw);
  const [hour, minute] = [Number(match?.[1]), Number(match?.[2])];
  if (match === null || hour > 23 || minute > 59) {
    throw configError(variable, `must be a UTC time of day, HH:MM (for example 02:00), got "${raw}"`);
  }
  return { hour, minute };
}

/**
 * Kept as text: the sandbox owns the fault profile's shape, and the commands that serve it check it
 * before they start anything (faultProfileFromEnvironment), naming the variable.
 */
function readOptionalText(environment: NodeJS.ProcessEnv, variable: string): string | undefined {
  const raw = environment[variable];
  return raw === undefined || raw === '' ? undefined : raw;
}

function readFundsAvailability(environment: Environment): PennyConfig['fundsAvailability'] {
  const raw = environment.PENNY_FUNDS_AVAILABILITY;
  if (raw === undefined || raw === '' || raw === 'settlement') return { kind: 'settlement' };
  const delay = /^T\+(\d{1,2})$/i.exec(raw);
  const delayDays = delay === null ? Number.NaN : Number(delay[1]);
  if (!(delayDays >= 0 && delayDays <= 30)) {
    throw configError('PENNY_FUNDS_AVAILABILITY', `must be settlement or T+n with n from 0 to 30 days, got "${raw}"`);
  }
  return { kind: 'fixed_delay', delayDays };
}

export function configError(variable: string, message: string): PennyError {
  return new PennyError({
    code: 'invalid_configuration',
    param: variable,
    message: `${variable}: ${message}`,
  });
}

function readPort(environment: Environment, name: string, fallback: number): number {
  return readInteger(environment, name, fallback, { min: 0, max: 65535 });
}

function readInteger(
  environment: Environment,
  name: string,
  fallback: number,
  range: { min: number; max: number },
): number {
  const raw = environment[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw configError(name, `must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < range.min || value > range.max) {
    throw configError(name, `must be between ${range.min} and ${range.max}, got ${raw}`);
  }
  return value;
}

function readChoice<T extends string>(environment: Environment, name: string, choices: readonly T[], fallback: T): T {
  const raw = environment[name];
  if (raw === undefined || raw === '') return fallback;
  if (!(choices as readonly string[]).includes(raw)) {
    throw configError(name, `must be one of ${choices.join(', ')}, got "${raw}"`);
  }
  return raw as T;
}

/** The host a browser on this machine reaches Penny at: any-address binds are reached on loopback. */
function publicHost(host: string | undefined): string {
  if (host === undefined || host === '' || host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

function readHttpUrl(environment: Environment, name: string, fallback: string): string {
  const raw = environment[name];
  if (raw === undefined || raw === '') return fallback;
  if (!URL.canParse(raw) || !/^https?:$/.test(new URL(raw).protocol)) {
    throw configError(name, `must be an http:// or https:// URL, got "${raw}"`);
  }
  return raw.replace(/\/+$/, '');
}

function readNonEmpty(environment: Environment, name: string, fallback: string): string {
  const raw = environment[name];
  if (raw === undefined || raw === '') return fallback;
  if (raw.trim() !== raw) throw configError(name, 'must not start or end with spaces');
  return raw;
}

function readDatabaseUrl(environment: Environment, name: string): string | undefined {
  const raw = environment[name];
  if (raw === undefined || raw === '') return undefined;
  if (!/^postgres(ql)?:\/\//.test(raw)) {
    throw configError(name, 'must be a postgres:// or postgresql:// connection URL');
  }
  try {
    parseDatabaseUrl(raw);
  } catch (error) {
    throw configError(name, (error as Error).message);
  }
  return raw;
}

function readOperatorKey(environment: Environment): string | undefined {
  const raw = environment.PENNY_OPERATOR_KEY;
  if (raw === undefined || raw === '') return undefined;
  if (raw.length < 24) throw configError('PENNY_OPERATOR_KEY', 'must be at least 24 characters');
  return raw;
}

function readSecretKey(environment: Environment): string | undefined {
  return readSecret(environment, 'PENNY_SECRET_KEY');
}

function readSecret(environment: Environment, name: string): string | undefined {
  const raw = environment[name];
  if (raw === undefined || raw === '') return undefined;
  if (raw.length < 32) throw configError(name, 'must be at least 32 characters');
  return raw;
}

function readLogLevel(environment: Environment): string {
  const raw = environment.PENNY_LOG_LEVEL || 'info';
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  if (!levels.includes(raw)) throw configError('PENNY_LOG_LEVEL', `must be one of ${levels.join(', ')}`);
  return raw;
}

function readAmountMax(environment: Environment): bigint {
  const raw = environment.PENNY_AMOUNT_MAX_MINOR;
  if (raw === undefined || raw === '') return amountMaxSafeMinor;
  if (!/^[1-9]\d*$/.test(raw)) {
    throw configError('PENNY_AMOUNT_MAX_MINOR', `must be a positive whole number, got "${raw}"`);
  }
  const value = BigInt(raw);
  if (value > amountMaxSafeMinor) {
    throw configError('PENNY_AMOUNT_MAX_MINOR', `must be at most ${amountMaxSafeMinor}`);
  }
  return value;
}
