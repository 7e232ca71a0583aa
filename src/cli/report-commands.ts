import { once } from 'node:events';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { stringifyJson } from '../json.js';
import { journalFormats, exportJournal, type JournalFormat } from '../ledger/ledger-journal-export.js';
import {
  balanceCsvColumns, balanceCsvRows, checkPeriod, csvStream, LedgerReports, presentStatementPosting,
  presentStatementSummary, presentTrialBalanceLine, presentTrialBalanceTotal, sideBalances, statementCsvColumns,
  statementCsvRows, trialBalanceCsvColumns, trialBalanceCsvRows, type StatementPosting, type StatementSummary,
  type TrialBalanceLine,
} from '../ledger/ledger-reports.js';
import { minorToDecimal } from '../money/decimal-amount.js';
import { readTimestamp } from '../validation.js';
import { printResult, withDatabasePool } from './cli-support.js';

/**
 * `penny report …`: the ledger's reports for accountants, straight on the database (DATABASE_URL
 * or the embedded one), with or without a running server. `--format text|json|csv` (text by
 * default; `--json` is `--format json`); JSON is one document, CSV has a header line. Long reports
 * stream: pages of a bounded number of rows, written as they are read.
 */
type OutputFormat = 'text' | 'json' | 'csv';

interface FormatOptions { format?: OutputFormat; json?: boolean }

function formatOption(): Option {
  return new Option('--format <format>', 'text, json or csv').choices(['text', 'json', 'csv']);
}

function outputFormat(options: FormatOptions): OutputFormat {
  if (options.json === true) {
    if (options.format !== undefined && options.format !== 'json') {
      throw new InvalidArgumentError(`--json and --format ${options.format} disagree; give one.`);
    }
    return 'json';
  }
  return options.format ?? 'text';
}

/** An ISO 8601 instant with a time zone; anything else is wrong usage (exit 2). */
function readInstant(value: string): string {
  try {
    return readTimestamp(value, 'time') as string;
  } catch {
    throw new InvalidArgumentError('an ISO 8601 instant with a time zone, e.g. 2026-01-31T00:00:00Z.');
  }
}

/** Writes each chunk to stdout, waiting when its buffer is full (bounded memory for any size). */
async function writeAll(chunks: AsyncIterable<string | Buffer>): Promise<void> {
  for await (const chunk of chunks) {
    if (!process.stdout.write(chunk)) await once(process.stdout, 'drain');
  }
}

export function registerReportCommands(program: Command): void {
  const report = program.command('report').description('ledger reports for accountants, and the journal for plain-text accounting');

  report.command('trial-balance')
    .description('every account\'s posted debits and credits, with each currency\'s totals; exits 1 if a currency does not balance')
    .option('--as-of <time>', 'an ISO 8601 instant (inclusive); default now', readInstant)
    .addOption(formatOption())
    .option('--json', 'print JSON (same as --format json)')
    .action(async (options: FormatOptions & { asOf?: string }) => {
      const format = outputFormat(options);
      await withDatabasePool(async (pool) => {
        const unbalanced: string[] = [];
        const reports = new LedgerReports(pool);
        const lines = watchTotals(reports.trialBalanceLines({ asOf: options.asOf, totals: true }), unbalanced);
        const failure = () => unbalanced.length === 0 ? undefined : `Debits and credits differ in ${unbalanced.join(', ')}.`;
        if (format === 'csv') await writeAll(csvStream(trialBalanceCsvColumns, trialBalanceCsvRows(lines)));
        if (format === 'text') await writeAll(trialBalanceText(lines));
        if (format === 'json') await writeAll(trialBalanceJson(lines, options.asOf ?? null, failure));
        const message = failure();
        if (message !== undefined) {
          process.stderr.write(`penny: ${message}\n`);
          process.exitCode = 1;
        }
      });
    });

  report.command('statement')
    .description('an account\'s statement for [from, to): opening balance, postings with the running balance, closing balance')
    .argument('<account>', 'the ledger account (lacc_…)')
    .requiredOption('--from <time>', 'the period\'s start, an ISO 8601 instant (inclusive)', readInstant)
    .requiredOption('--to <time>', 'the period\'s end, an ISO 8601 instant (exclusive)', readInstant)
    .addOption(formatOption())
    .option('--json', 'print JSON (same as --format json)')
    .action(async (account: string, options: FormatOptions & { from: string; to: string }) => {
      const format = outputFormat(options);
      const period = checkPeriod(options.from, options.to, { from: '--from', to: '--to' });
      await withDatabasePool(async (pool) => {
        const reports = new LedgerReports(pool);
        await reports.account(account);
        const items = reports.statement(account, period);
        if (format === 'csv') await writeAll(csvStream(statementCsvColumns, statementCsvRows(items)));
        if (format === 'text') await writeAll(statementText(items));
        if (format === 'json') await writeAll(statementJson(items));
      });
    });

  report.command('balance')
    .description('an account\'s balances (posted, pending, available) as of an instant, or now')
    .argument('<account>', 'the ledger account (lacc_…)')
    .option('--as-of <time>', 'an ISO 8601 instant (inclusive); default now', readInstant)
    .addOption(formatOption())
    .option('--json', 'print JSON (same as --format json)')
    .action(async (account: string, options: FormatOptions & { asOf?: string }) => {
      const format = outputFormat(options);
      await withDatabasePool(async (pool) => {
        const balance = await new LedgerReports(pool).balance(account, options.asOf);
        if (format === 'csv') {
          await writeAll(csvStream(balanceCsvColumns, balanceCsvRows(balance)));
          return;
        }
        const amount = (value: bigint) => `${minorToDecimal(value, balance.currency)} ${balance.currency}`;
        printResult(format === 'json', balance, `${balance.account} as of ${balance.as_of ?? 'now'}: posted `
          + `${amount(balance.posted)}, pending ${amount(balance.pending)}, available ${amount(balance.available)}`);
      });
    });

  report.command('journal')
    .description('the whole journal (posted postings) as an hledger or beancount file on stdout')
    .addOption(new Option('--format <format>', 'hledger or beancount').choices([...journalFormats]).makeOptionMandatory())
    .option('--from <time>', 'only entries effective from this ISO 8601 instant (inclusive)', readInstant)
    .option('--to <time>', 'only entries effective before this ISO 8601 instant (exclusive)', readInstant)
    .option('--json', 'print a failure as one JSON object')
    .action(async (options: { format: JournalFormat; from?: string; to?: string }) => {
      if (options.from !== undefined && options.to !== undefined) checkPeriod(options.from, options.to, { from: '--from', to: '--to' });
      await withDatabasePool(async (pool) => {
        await writeAll(exportJournal(pool, { format: options.format, from: options.from, to: options.to }));
      });
    });
}

/** Passes the lines through, noting each currency whose total does not balance. */
async function* watchTotals(lines: AsyncIterable<TrialBalanceLine>, unbalanced: string[]):
  AsyncGenerator<TrialBalanceLine> {
  for await (const line of lines) {
    if (line.line === 'total' && line.debitsPosted !== line.creditsPosted) unbalanced.push(line.currency);
    yield line;
  }
}

async function* trialBalanceText(lines: AsyncIterable<TrialBalanceLine>): AsyncGenerator<string> {
  let any = false;
  for await (const line of lines) {
    any = true;
    const amount = (value: bigint) => minorToDecimal(value, line.currency);
    if (line.line === 'account') {
      const sides = sideBalances(line.debitsPosted, line.creditsPosted);
      yield `${line.currency}  ${line.account}  ${line.type}${line.code === null ? '' : ` ${line.code}`}  debits ${amount(line.debitsPosted)}`
        + `  credits ${amount(line.creditsPosted)}  balance ${sides.creditBalance > 0n ? `${amount(sides.creditBalance)} Cr`
          : `${amount(sides.debitBalance)} Dr`}\n`;
    } else {
      yield `${line.currency}  TOTAL (${line.accounts} accounts)  debits ${amount(line.debitsPosted)}  credits `
        + `${amount(line.creditsPosted)}  difference ${amount(line.debitsPosted - line.creditsPosted)}\n\n`;
    }
  }
  if (!any) yield 'The ledger has no posted entries.\n';
}

/** One JSON document, written as it is read: the account lines, then each currency's totals. */
async function* trialBalanceJson(lines: AsyncIterable<TrialBalanceLine>, asOf: string | null,
  failure: () => string | undefined): AsyncGenerator<string> {
  yield `{"object":"ledger.trial_balance_report","as_of":${stringifyJson(asOf)},"accounts":[`;
  const totals: unknown[] = [];
  let first = true;
  for await (const line of lines) {
    if (line.line === 'total') {
      totals.push(presentTrialBalanceTotal(line));
      continue;
    }
    yield `${first ? '' : ','}\n${stringifyJson(presentTrialBalanceLine(line))}`;
    first = false;
  }
  const message = failure();
  const error = message === undefined ? '' : `,"error":${stringifyJson({ type: 'api_error', code: 'check_failed', message })}`;
  yield `\n],"currencies":${stringifyJson(totals)}${error}}\n`;
}

async function* statementText(items: AsyncIterable<StatementSummary | StatementPosting>): AsyncGenerator<string> {
  let summary: StatementSummary | undefined;
  for await (const item of items) {
    if ('kind' in item) {
      summary = item;
      const amount = minorToDecimal(item.openingBalance, item.account.currency);
      yield `Statement of ${item.account.id} (${item.account.type}, ${item.account.currency}) for [${item.period.from}, ${item.period.to})\n`
        + `${item.period.from}  opening balance  ${amount}\n`;
      continue;
    }
    const currency = summary?.account.currency ?? 'XXX';
    yield `${item.effectiveAt}  ${item.entryId}  ${item.externalReference}  ${item.direction}  `
      + `${minorToDecimal(item.amountMinor, currency)}  balance ${minorToDecimal(item.runningBalance, currency)}\n`;
  }
  if (summary !== undefined) {
    yield `${summary.period.to}  closing balance  ${minorToDecimal(summary.closingBalance, summary.account.currency)}\n`;
  }
}

/** One JSON document: the statement's head, its every posting, as the JSON page shows them. */
async function* statementJson(items: AsyncIterable<StatementSummary | StatementPosting>): AsyncGenerator<string> {
  let first = true;
  let started = false;
  for await (const item of items) {
    if ('kind' in item) {
      const head = stringifyJson(presentStatementSummary(item));
      yield `${head.slice(0, -1)},"postings":[`;
      started = true;
      continue;
    }
    yield `${first ? '' : ','}\n${stringifyJson(presentStatementPosting(item))}`;
    first = false;
  }
  if (started) yield '\n]}\n';
}
