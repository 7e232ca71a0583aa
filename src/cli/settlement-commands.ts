import type { Command } from 'commander';
import { availabilityMode, buildConnectorRegistry, buildPaymentLedger, catchUpWithSandboxClock } from '../app.js';
import { configureClock } from '../clock.js';
import { BalanceService } from '../balances/balance-service.js';
import { LedgerService } from '../ledger/ledger-service.js';
import { createLogger } from '../logger.js';
import { PaymentDisputes } from '../payments/payment-disputes.js';
import { PayoutService } from '../payouts/payout-service.js';
import { BankAccountVault } from '../accounts/bank-accounts.js';
import { resolveSecretKey } from '../secret-key.js';
import { resolveSandboxWebhookSecret } from '../sandbox-psp/psp-service.js';
import { listReportFileAttempts, releaseReportFile, reportFileAttemptsListedMax } from '../settlement/held-reports.js';
import { SettlementService } from '../settlement/settlement-service.js';
import { invalid, readString } from '../validation.js';
import { printResult, withDatabasePool } from './cli-support.js';

/**
 * `penny settlement pull --date D`: reads a PSP's settlement report of a day and settles what it
 * names. `penny settlement failed-reports` lists the imported reports settlement failed to read;
 * `penny settlement release FILE` has a held one read again on the next tick.
 */
export function registerSettlementCommands(program: Command): void {
  const settlement = program.command('settlement').description('captured funds made available by PSP settlement');
  settlement.command('pull')
    .description('read the settlement report of a day, make the settled captures\' funds available and, for a '
      + 'closed day, post the PSP\'s payouts to the operator')
    .requiredOption('--date <day>', 'the settlement day, YYYY-MM-DD (UTC)')
    .option('--connector <id>', 'the connector whose report to read', 'sandbox')
    .option('--json', 'print JSON')
    .action(async (options: { date: string; connector: string; json?: boolean }) => {
      const day = readDay(options.date);
      const connectorId = readString(options.connector, '--connector', { lengthMax: 64, required: true });
      await withDatabasePool(async (pool, config) => {
        // Which days are over is the clock's to say: a controlled one, as the serving Penny's, follows the sandbox's.
        configureClock(config.clockMode);
        if (config.clockMode === 'controlled' && !config.sandboxPsp) {
          await catchUpWithSandboxClock(config.sandboxPspUrl, createLogger(config.logLevel));
        }
        const connectors = buildConnectorRegistry(config, await resolveSandboxWebhookSecret(config));
        if (!connectors.has(connectorId)) throw invalid('--connector', `No connector ${connectorId}.`);
        const ledger = new LedgerService(pool);
        const balances = new BalanceService(pool, ledger, availabilityMode(config));
        const logger = createLogger(config.logLevel);
        const secretKey = await resolveSecretKey(config, logger);
        const chargebacks = new PaymentDisputes(pool, buildPaymentLedger(pool, { ledger, balances, secretKey }));
        const payouts = new PayoutService(pool, { connectors, ledger, balances, vault: new BankAccountVault(secretKey),
          connectorId: () => connectorId, logger });
        const summary = await new SettlementService(pool, { connectors, balances, logger, chargebacks, payouts })
          .pull({ connectorId, day });
        printResult(options.json === true, summary, `${summary.connector} ${summary.day}: ${summary.settled} `
          + `settled, ${summary.alreadyAvailable} already available, ${summary.unmatched} not booked by Penny (yet); `
          + `${summary.payouts} PSP payouts posted, ${summary.payoutsAlreadyPosted} posted before.`);
      });
    });
  registerHeldReportCommands(settlement);
}

function registerHeldReportCommands(settlement: Command): void {
  settlement.command('failed-reports')
    .description('list the imported settlement reports settlement failed to read: held for an operator first, '
      + `then those retrying after a backoff (at most ${reportFileAttemptsListedMax})`)
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      await withDatabasePool(async (pool) => {
        const { attempts, hasMore } = await listReportFileAttempts(pool);
        const lines = attempts.map((attempt) => `${attempt.fileId} ${attempt.filename}: ${attempt.status} after `
          + `${attempt.attemptCount} attempt(s)${attempt.nextAttemptAt === null ? '' : `, due ${attempt.nextAttemptAt}`}`
          + `; last error: ${attempt.lastError}`);
        if (hasMore) lines.push(`(more not listed: the first ${reportFileAttemptsListedMax} only)`);
        const text = lines.length === 0 ? 'No imported settlement report failed to be read.' : lines.join('\n');
        printResult(options.json === true, { object: 'list', data: attempts, has_more: hasMore }, text);
      });
    });
  settlement.command('release')
    .description('read a held (or retrying) imported settlement report again on the next tick, once its cause is '
      + 'fixed; a report held after its last attempt is held again by one more failure')
    .argument('<file>', 'the report\'s file id (rfile_…), as failed-reports lists it')
    .option('--json', 'print JSON')
    .action(async (file: string, options: { json?: boolean }) => {
      const fileId = readString(file, 'file', { lengthMax: 100, required: true });
      await withDatabasePool(async (pool, config) => {
        // Due "now" on the server's clock: a controlled one follows the sandbox's, as for a pull.
        configureClock(config.clockMode);
        if (config.clockMode === 'controlled' && !config.sandboxPsp) {
          await catchUpWithSandboxClock(config.sandboxPspUrl, createLogger(config.logLevel));
        }
        await releaseReportFile(pool, fileId);
        printResult(options.json === true, { file: fileId, released: true },
          `${fileId}: released; the next settlement tick reads it.`);
      });
    });
}

function readDay(value: string): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value) || Number.isNaN(Date.parse(`${value}T00:00:00Z`))) {
    throw invalid('--date', '--date takes a day as YYYY-MM-DD.');
  }
  return value;
}
