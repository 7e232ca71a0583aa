import { InvalidArgumentError, Option, type Command } from 'commander';
import { configureClock } from '../clock.js';
import { loadConfig } from '../config.js';
import { openDatabase } from '../db/database.js';
import { migrate } from '../db/migrate.js';
import { PennyError } from '../errors.js';
import { createLogger } from '../logger.js';
import { parseDurationMs } from '../http/clock-routes.js';
import { resolveOperatorKey } from '../operator-key.js';
import { disputeReasons, type DisputeReason } from '../sandbox-psp/psp-decisions.js';
import { decideDispute, openDispute, type DisputeRequest } from '../sandbox-psp/psp-disputes.js';
import { InvalidStateError } from '../sandbox-psp/psp-errors.js';
import {
  callFaults, FaultInjector, noFaults, parseFaultProfile, presentFaultProfile, type FaultProfile,
} from '../sandbox-psp/psp-faults.js';
import { sandboxBankIban } from '../sandbox-psp/psp-settlement.js';
import { presentOperation, type OperationRow } from '../sandbox-psp/psp-store.js';
import {
  faultProfileFromEnvironment, faultProfileFromJson, resolveSandboxWebhookSecret, startSandboxPsp,
} from '../sandbox-psp/psp-service.js';
import { settlementDiscrepancies, type SettlementDiscrepancy } from '../sandbox-psp/settlement-report.js';
import { printResult, withDatabasePool } from './cli-support.js';

/**
 * `penny sandbox-psp` serves the sandbox acquirer on its own (PENNY_SANDBOX_PSP_PORT);
 * `settle --date D` pays out day D's batches; `report --date D` prints its settlement details
 * report (Adyen CSV) or a bank statement (camt.053), with discrepancies planted on request;
 * `dispute CHARGE` opens a dispute and `dispute-decide ID` decides it. `settle` and `report` ask the
 * running sandbox at PENNY_SANDBOX_PSP_URL; `dispute` and `dispute-decide` work on the sandbox's
 * tables directly, so they need no running sandbox (a running one sends their webhooks).
 * `penny clock advance 3d` moves a running Penny's controlled clock.
 */
export function registerSandboxPspCommands(program: Command): void {
  const sandbox = program.command('sandbox-psp')
    .description('the sandbox PSP: serve it (the default), settle a day, print its reports');
  sandbox.command('serve', { isDefault: true })
    .description('serve the sandbox PSP on PENNY_SANDBOX_PSP_PORT')
    .option('--faults <json>', 'a fault profile, as POST /control/faults takes it')
    .option('--seed <n>', 'the seed of the fault profile')
    .option('--latency <min-max>', 'latency of every call in ms, e.g. 5-50')
    .option('--rate <fault=rate...>', `chance per call of a fault (${callFaults.join(', ')}), e.g. timeout_after=0.05`)
    .action(serveSandbox);

  sandbox.command('settle')
    .description('pay out the settlement batches of a UTC day (one payout per currency)')
    .requiredOption('--date <YYYY-MM-DD>', 'the settlement day')
    .option('--plant <kinds>', `pay the batches as the report planted with these reads: ${settlementDiscrepancies.join(', ')}`)
    .option('--json', 'print JSON')
    .action(async (options: { date: string; plant?: string; json?: boolean }) => {
      const day = readDay(options.date);
      const planted = readPlanted(options.plant);
      const query = planted.length === 0 ? '' : `?plant=${planted.join(',')}`;
      const settled = await askSandbox('POST', `/control/settlements/${day}${query}`) as { payouts: { reference: string;
        amount_minor: number; currency: string }[] };
      const { payouts } = settled;
      printResult(options.json === true, { date: day, payouts },
        payouts.length === 0 ? `Nothing settled on ${day}.`
          : payouts.map((payout) => `${payout.reference}: ${payout.amount_minor} ${payout.currency}`).join('\n'));
    });

  sandbox.command('report')
    .description('print a day\'s settlement details report (CSV) or bank statement (camt.053)')
    .requiredOption('--date <YYYY-MM-DD>', 'the settlement day')
    .option('--format <format>', 'sdr (Adyen settlement details CSV) or camt053', 'sdr')
    .option('--currency <code>', 'the batch currency (default: the first)')
    .option('--plant <kinds>', `discrepancies to plant: ${settlementDiscrepancies.join(', ')}`)
    .option('--batch-fee <minor>', 'a batch-level Fee row of this many minor units')
    .option('--account <account>', `camt053: the bank account (IBAN or number; default the operator's ${sandboxBankIban})`)
    .action(async (options: { date: string; format: string; currency?: string; plant?: string; batchFee?: string;
      account?: string }) => {
      const day = readDay(options.date);
      const batchFeeMinor = readMinor(options.batchFee);
      const planted = readPlanted(options.plant);
      if (options.format !== 'sdr' && options.format !== 'camt053') {
        throw new PennyError({ code: 'parameter_invalid', message: '--format is sdr or camt053.' });
      }
      const query = new URLSearchParams();
      if (options.currency !== undefined) query.set('currency', options.currency);
      if (options.format === 'camt053') {
        query.set('account', options.account ?? sandboxBankIban);
      } else {
        if (planted.length > 0) query.set('plant', planted.join(','));
        if (batchFeeMinor > 0n) query.set('batch_fee_minor', batchFeeMinor.toString());
      }
      const route = options.format === 'camt053' ? 'bank_statements' : 'settlement_reports';
      process.stdout.write(await askSandbox('GET', `/v1/${route}/${day}?${query.toString()}`) as string);
    });

  sandbox.command('dispute')
    .description('open a dispute on a captured charge (Penny\'s charge or attempt id, or a PSP reference)')
    .argument('<charge>', 'Penny\'s reference of the charge (its ch_ or pa_ id) or the PSP reference (sbx_…)')
    .addOption(new Option('--reason <reason>', 'Stripe\'s dispute reason').choices(disputeReasons)
      .default('fraudulent'))
    .option('--amount <minor>', 'the disputed amount in minor units (default: what was captured)', readMinorArgument)
    .option('--decide-after <ms>', 'decide the dispute by itself after this many milliseconds', readMinorArgument)
    .addOption(new Option('--decide-outcome <outcome>', 'with --decide-after: won or lost').choices(['won', 'lost'])
      .default('won'))
    .option('--json', 'print JSON')
    .action(async (charge: string, options: { reason: DisputeReason; amount?: bigint; decideAfter?: bigint;
      decideOutcome: 'won' | 'lost'; json?: boolean }) => {
      const request: Omit<DisputeRequest, 'chargeReference' | 'pspReference'> = {
        reason: options.reason, amountMinor: options.amount,
        decideAfterMs: options.decideAfter === undefined ? undefined : Number(options.decideAfter),
        decideOutcome: options.decideOutcome,
      };
      const dispute = await withDatabasePool((pool) => sandboxState(async () => {
        const injector = new FaultInjector();
        try {
          return await openDispute(pool, injector, { ...request, chargeReference: charge });
        } catch (error) {
          // Not Penny's reference of an operation: perhaps the PSP's reference of one.
          if (!(error instanceof PennyError && error.code === 'resource_missing')) throw error;
          return openDispute(pool, injector, { ...request, pspReference: charge });
        }
      }));
      printDispute(options.json === true, dispute, `Dispute ${dispute.pspReference} opened on ${charge}`);
    });

  sandbox.command('dispute-decide')
    .description('decide a dispute that needs a response: won or lost')
    .argument('<id>', 'the dispute\'s PSP reference (sbx_…)')
    .addOption(new Option('--outcome <outcome>', 'won or lost').choices(['won', 'lost']).makeOptionMandatory())
    .option('--json', 'print JSON')
    .action(async (id: string, options: { outcome: 'won' | 'lost'; json?: boolean }) => {
      const dispute = await withDatabasePool((pool) => sandboxState(() =>
        decideDispute(pool, new FaultInjector(), id, options.outcome)));
      printDispute(options.json === true, dispute, `Dispute ${dispute.pspReference}`);
    });

  program.command('clock')
    .description('the controlled clock of a running Penny (PENNY_CLOCK=controlled)')
    .command('advance <duration>')
    .description('move it forward, e.g. 90s, 15m, 2h, 3d')
    .option('--url <url>', 'the running Penny', undefined)
    .action(async (duration: string, options: { url?: string }) => {
      parseDurationMs(duration);
      const config = loadConfig();
      const url = options.url ?? `http://${config.host}:${config.port}`;
      const key = await resolveOperatorKey(config);
      const response = await fetch(`${url}/v1/test_helpers/clock/advance`, {
        method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ by: duration }),
      });
      const body = await response.json() as { now?: string; error?: { message: string } };
      if (!response.ok) throw new PennyError({ code: 'clock_not_controlled', message: body.error?.message ?? 'refused' });
      printResult(false, body, `The clock is now ${body.now ?? '?'}.`);
    });
}

interface SandboxServeOptions {
  faults?: string;
  seed?: string;
  latency?: string;
  rate?: string[];
}

/** The profile from --faults (or PENNY_SANDBOX_PSP_FAULTS), with --seed, --latency and --rate on top. */
function profileFromFlags(options: SandboxServeOptions, fromEnvironment: string | undefined): FaultProfile {
  const base = (options.faults === undefined ? faultProfileFromEnvironment(fromEnvironment)
    : faultProfileFromJson(options.faults)) ?? noFaults;
  const latency = options.latency === undefined ? undefined : /^(\d{1,6})-(\d{1,6})$/.exec(options.latency);
  if (options.latency !== undefined && latency === null) {
    throw new PennyError({ code: 'parameter_invalid', message: '--latency takes min-max in ms, e.g. 5-50.' });
  }
  const rates = Object.fromEntries((options.rate ?? []).map((item) => {
    const [fault, rate] = item.split('=');
    return [fault ?? '', Number(rate)];
  }));
  return parseFaultProfile({
    ...presentFaultProfile(base),
    ...(options.seed === undefined ? {} : { seed: readSeed(options.seed) }),
    ...(latency === null || latency === undefined ? {}
      : { latency_ms: { min: Number(latency[1]), max: Number(latency[2]) } }),
    rates: { ...presentFaultProfile(base).rates, ...rates },
  });
}

async function serveSandbox(options: SandboxServeOptions): Promise<void> {
  const config = loadConfig();
  configureClock(config.clockMode);
  const logger = createLogger(config.logLevel);
  const database = await openDatabase(config, { logger, ownsServer: true });
  await migrate(database.url, logger);
  const profile = profileFromFlags(options, config.sandboxPspFaults);
  const running = await startSandboxPsp({
    databaseUrl: database.url, host: config.host, port: config.sandboxPspPort, logger,
    webhookUrl: config.sandboxPspWebhookUrl, webhookSecret: await resolveSandboxWebhookSecret(config),
    faults: profile,
  });
  await new Promise<void>((resolve) => {
    const shutdown = () => {
      running.stop().then(resolve, resolve);
    };
    process.once('SIGINT', shutdown);
    process.once('SIGTERM', shutdown);
  });
  await database.close();
}

function printDispute(json: boolean, dispute: OperationRow, text: string): void {
  printResult(json, presentOperation(dispute), `${text}: ${dispute.amountMinor ?? 0n} ${dispute.currency ?? ''}, `
    + `${dispute.reason ?? ''}, ${dispute.outcome} (fee ${dispute.feeMinor ?? 0n}).`);
}

/** The sandbox's 409 `invalid_state` as a command failure (exit 1) with Penny's error shape. */
async function sandboxState<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof InvalidStateError) {
      throw new PennyError({ code: 'sandbox_invalid_state', message: error.message });
    }
    throw error;
  }
}

/** A whole number of minor units (or milliseconds); anything else is wrong usage (exit 2). */
function readMinorArgument(value: string): bigint {
  if (!/^\d{1,15}$/.test(value) || BigInt(value) === 0n) throw new InvalidArgumentError('a positive whole number.');
  return BigInt(value);
}

/**
 * Asks the running sandbox PSP at PENNY_SANDBOX_PSP_URL (the contract: the settle and
 * report commands talk to it, as an operator's scripts would); a sandbox that is not running is a
 * failure the message explains (exit 1).
 */
async function askSandbox(method: 'GET' | 'POST', route: string): Promise<unknown> {
  const { sandboxPspUrl } = loadConfig();
  const url = `${sandboxPspUrl.replace(/\/+$/, '')}${route}`;
  const response = await fetch(url, { method, signal: AbortSignal.timeout(30_000),
    ...(method === 'POST' ? { headers: { 'content-type': 'application/json' }, body: '{}' } : {}) })
    .catch((error: unknown) => {
      throw new PennyError({ code: 'command_failed', message: `The sandbox PSP at ${sandboxPspUrl} does not answer `
        + `(${error instanceof Error ? error.message : String(error)}): start it with \`penny sandbox-psp\` or \`npm start\`.` });
    });
  const text = await response.text();
  if (!response.ok) {
    throw new PennyError({ code: 'command_failed', message: `The sandbox PSP answered ${response.status} to ${method} `
      + `${route}: ${text.slice(0, 500)}` });
  }
  return (response.headers.get('content-type') ?? '').startsWith('application/json') ? JSON.parse(text) : text;
}

function readMinor(value: string | undefined): bigint {
  if (value === undefined) return 0n;
  if (!/^\d{1,15}$/.test(value)) throw new PennyError({ code: 'parameter_invalid', message: '--batch-fee takes minor units.' });
  return BigInt(value);
}

function readSeed(value: string): number {
  if (!/^\d{1,9}$/.test(value)) throw new PennyError({ code: 'parameter_invalid', message: '--seed takes a whole number.' });
  return Number(value);
}

function readDay(value: string): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value) || Number.isNaN(Date.parse(`${value}T00:00:00Z`))) {
    throw new PennyError({ code: 'parameter_invalid', message: `--date takes YYYY-MM-DD, not ${value}.` });
  }
  return value;
}

function readPlanted(value: string | undefined): SettlementDiscrepancy[] {
  if (value === undefined) return [];
  const kinds = value.split(',');
  const unknown = kinds.filter((kind) => !(settlementDiscrepancies as readonly string[]).includes(kind));
  if (unknown.length > 0) {
    throw new PennyError({ code: 'parameter_invalid',
      message: `--plant takes ${settlementDiscrepancies.join(', ')}; not ${unknown.join(', ')}.` });
  }
  return kinds as SettlementDiscrepancy[];
}
