import { InvalidArgumentError, type Command } from 'commander';
import { presentTrialBalance } from '../ledger/ledger-presenter.js';
import { sealPending } from '../ledger/ledger-sealer.js';
import { LedgerService } from '../ledger/ledger-service.js';
import { checkStoredBalances, verifyLedger } from '../ledger/ledger-verify.js';
import { readTimestamp } from '../validation.js';
import { printCheck, printResult, withDatabasePool } from './cli-support.js';

/** A chain head is 64 lower-case hex digits; anything else is wrong usage (exit 2), not a failed check. */
function readAnchor(value: string): string {
  if (!/^[0-9a-f]+$/.test(value) || value.length !== 64) {
    throw new InvalidArgumentError('a chain head is 64 lower-case hexadecimal digits, as the sealer publishes it.');
  }
  return value;
}

export function registerLedgerCommands(program: Command): void {
  const ledger = program.command('ledger').description('inspect and verify the ledger');

  ledger.command('verify')
    .description('recompute the hash chain, every entry and every balance; report the first difference')
    .option('--anchor <hash>', 'a chain head published earlier, which must still be in the chain', readAnchor)
    .option('--json', 'print JSON')
    .action(async (options: { anchor?: string; json?: boolean }) => {
      // Verification only reads: it never seals, so an entry edited before sealing is not blessed;
      // entries left unsealed longer than the lag limit are reported instead.
      await withDatabasePool(async (pool) => {
        const report = await verifyLedger(pool, { anchor: options.anchor });
        const text = report.ok
          ? `Ledger verified: ${report.sealsChecked} sealed entries, ${report.accountsChecked} accounts; ` +
            `chain head ${report.head?.hash ?? '(empty)'}.`
          : `Ledger verification FAILED:\n${report.failures.map((failure) => `- ${failure.message}`).join('\n')}\n` +
            'Investigate the rows named above; restore them from a backup or post a correcting entry.';
        printCheck(options.json === true, report, text, report.ok ? undefined
          : `The ledger failed verification (${report.failures.length} difference(s)); see failures.`);
      });
    });

  ledger.command('check-balances')
    .description('recompute every account balance from its postings and compare with the stored one')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      await withDatabasePool(async (pool) => {
        const result = await checkStoredBalances(pool);
        const text = result.failures.length === 0
          ? `All ${result.accountsChecked} stored balances equal the sums of their postings.`
          : result.failures.map((failure) => `- ${failure.message}`).join('\n');
        printCheck(options.json === true, { ok: result.failures.length === 0, ...result }, text,
          result.failures.length === 0 ? undefined
            : `${result.failures.length} stored balance(s) differ from the sums of their postings; see failures.`);
      });
    });

  ledger.command('trial-balance')
    .description('debits and credits per currency over all accounts; each difference must be 0')
    .option('--as-of <time>', 'an ISO 8601 instant')
    .option('--json', 'print JSON')
    .action(async (options: { asOf?: string; json?: boolean }) => {
      const asOf = readTimestamp(options.asOf, '--as-of');
      await withDatabasePool(async (pool) => {
        const trial = presentTrialBalance(await new LedgerService(pool).trialBalance(asOf), asOf);
        const lines = trial.currencies.map((row) =>
          `${row.currency}  debits ${row.debits_posted}  credits ${row.credits_posted}  difference ${row.difference}`);
        const unbalanced = trial.currencies.filter((row) => row.difference !== 0n).map((row) => row.currency);
        printCheck(options.json === true, trial, lines.length === 0 ? 'The ledger is empty.' : lines.join('\n'),
          unbalanced.length === 0 ? undefined : `Debits and credits differ in ${unbalanced.join(', ')}.`);
      });
    });

  ledger.command('seal')
    .description('chain every committed entry that is not sealed yet, and print the chain head')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      await withDatabasePool(async (pool, config) => {
        const result = await sealPending(pool, { anchorFile: config.ledgerAnchorFile, batchesMax: 1000 });
        printResult(options.json === true, result,
          `Sealed ${result.sealed} entries; head ${result.head?.hash ?? '(empty)'}.`);
      });
    });
}
