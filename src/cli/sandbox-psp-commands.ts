import type { Command } from 'commander';
import { configureClock } from '../clock.js';
import { loadConfig } from '../config.js';
import { openDatabase } from '../db/database.js';
import { migrate } from '../db/migrate.js';
import { withTransaction } from '../db/pool.js';
import { PennyError } from '../errors.js';
import { createLogger } from '../logger.js';
import { parseDurationMs } from '../http/clock-routes.js';
import { resolveOperatorKey } from '../operator-key.js';
import {
  callFaults, noFaults, parseFaultProfile, presentFaultProfile, type FaultProfile,
} from '../sandbox-psp/psp-faults.js';
import { bankStatementFor, sandboxBankIban, settlementBatches } from '../sandbox-psp/psp-settlement.js';
import { recordOperation } from '../sandbox-psp/psp-store.js';
import {
  faultProfileFromEnvironment, faultProfileFromJson, resolveSandboxWebhookSecret, startSandboxPsp,
} from '../sandbox-psp/psp-service.js';
import { settlementDiscrepancies, type SettlementDiscrepancy } from '../sandbox-psp/settlement-report.js';
import { printResult, withDatabasePool } from './cli-support.js';

/**
 * `penny sandbox-psp` serves the sandbox acquirer on its own (PENNY_SANDBOX_PSP_PORT);
 * `settle --date D` pays out day D's batches; `report --date D` prints its settlement details
 * report (Adyen CSV) or its bank statement (camt.053), with discrepancies planted on request.
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
    .option('--json', 'print JSON')
    .action(async (options: { date: string; json?: boolean }) => {
      const day = readDay(options.date);
      const payouts = await withDatabasePool(async (pool) => {
        const batches = await settlementBatches(pool, day);
        return withTransaction(pool, async (client) => {
          const done = [];
          for (const batch of batches.filter((item) => item.payoutAmountMinor > 0n)) {
            const currency = batch.rows[0]?.netCurrency ?? 'EUR';
            const recorded = await recordOperation(client, {
              idempotencyKey: `settlement:${day}:${currency}`, reference: batch.payoutReference, kind: 'payout',
              parentPspReference: null, amountMinor: batch.payoutAmountMinor, currency, outcome: 'paid',
              declineCode: null, paymentMethod: null, requestFingerprint: `settlement:${day}`,
            });
            done.push({ reference: batch.payoutReference, currency, amount_minor: batch.payoutAmountMinor,
              psp_reference: recorded.operation.pspReference, destination: sandboxBankIban });
          }
          return done;
        });
      });
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
    .action(async (options: { date: string; format: string; currency?: string; plant?: string; batchFee?: string }) => {
      const day = readDay(options.date);
      const batchFeeMinor = readMinor(options.batchFee);
      const planted = readPlanted(options.plant);
      if (options.format !== 'sdr' && options.format !== 'camt053') {
        throw new PennyError({ code: 'parameter_invalid', message: '--format is sdr or camt053.' });
      }
      const text = await withDatabasePool(async (pool) => {
        const batches = (await settlementBatches(pool, day, planted, batchFeeMinor))
          .filter((batch) => options.currency === undefined || batch.rows[0]?.netCurrency === options.currency);
        return options.format === 'sdr' ? batches.map((batch) => batch.csv).join('')
          : bankStatementFor(day, batches).join('\n');
      });
      process.stdout.write(text);
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
