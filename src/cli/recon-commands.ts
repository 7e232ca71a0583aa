import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type pg from 'pg';
import { BalanceAccounts } from '../balances/balance-accounts.js';
import { nowMs } from '../clock.js';
import { presentEntry } from '../ledger/ledger-presenter.js';
import { LedgerService } from '../ledger/ledger-service.js';
import { createLogger } from '../logger.js';
import { breakStatuses, type BreakRow } from '../reconciliation/recon-break-store.js';
import { proposeRepair, ReconciliationBreaks } from '../reconciliation/recon-breaks.js';
import { readAsOfDay } from '../reconciliation/recon-dates.js';
import { presentBreak, presentRun, type ImportSummary } from '../reconciliation/recon-presenter.js';
import { ReconciliationImports } from '../reconciliation/recon-import.js';
import { reconFormats, type ReconFormat } from '../reconciliation/recon-records.js';
import { ReconciliationRuns } from '../reconciliation/recon-run.js';
import { invalid, readEnum, readLimit, readString } from '../validation.js';
import { printResult, withDatabasePool } from './cli-support.js';

/**
 * `penny recon import FILE [--source NAME] [--format F] [--json]`: imports a PSP report or bank
 * statement straight into the database (DATABASE_URL or the embedded one), exactly as
 * `POST /v1/reconciliation/files` does, with a progress bar on stderr when it is a terminal.
 */
export function registerReconCommands(program: Command): void {
  const recon = program.command('recon').description('reconciliation: PSP reports and bank statements against the ledger');
  recon.command('import')
    .description('import a settlement report or bank statement (Adyen SDR, Stripe payout reconciliation, camt.053, MT940)')
    .argument('<file>', 'the file to import')
    .option('--source <name>', 'the namespace of its external ids (a PSP account, a bank); default: the format')
    .option('--format <format>', `the file's format, instead of detecting it: ${reconFormats.join(', ')}`)
    .option('--json', 'print JSON')
    .action(async (file: string, options: { source?: string; format?: string; json?: boolean }) => {
      if (options.format !== undefined && !(reconFormats as readonly string[]).includes(options.format)) {
        throw invalid('--format', `--format must be one of: ${reconFormats.join(', ')}.`);
      }
      const size = (await fs.promises.stat(file)).size;
      await withDatabasePool(async (pool) => {
        const progress = progressBar(size, options.json !== true && process.stderr.isTTY === true);
        const body = fs.createReadStream(file);
        const summary = await new ReconciliationImports(pool).importFile({
          body,
          filename: path.basename(file),
          source: options.source,
          format: options.format as ReconFormat | undefined,
          onProgress: progress.update,
        }).finally(() => {
          progress.done();
          body.destroy();
        });
        printResult(options.json === true, summary, describe(summary));
      });
    });
  registerRunCommands(recon);
}

function breaksOf(pool: pg.Pool): ReconciliationBreaks {
  const ledger = new LedgerService(pool);
  return new ReconciliationBreaks(pool, { ledger, accounts: new BalanceAccounts(ledger) });
}

/** One line per break: what a person reads first. */
function breakLine(row: BreakRow): string {
  return `${row.id} ${row.status} ${row.type} (${row.leg}) ${row.currency ?? '---'} expected ${row.expectedMinor} `
    + `actual ${row.actualMinor} difference ${row.differenceMinor}: ${row.detail}`;
}

/**
 * `penny recon run [--date D]`, `recon breaks [--run ID] [--status S] [--type T]`, `recon repair
 * BREAK [--approve]` and `recon ignore BREAK --reason TEXT`: the run, its breaks and what an
 * operator does with them, straight on the database (issue 18, "Driving it from the command line").
 */
function registerRunCommands(recon: Command): void {
  recon.command('run')
    .description('reconcile as of a day: every item and record not yet reconciled up to it, windows measured to it')
    .option('--date <day>', 'the as-of day, YYYY-MM-DD (UTC); default today')
    .option('--json', 'print JSON')
    .action(async (options: { date?: string; json?: boolean }) => {
      const asOf = readAsOfDay(options.date, '--date', () => new Date(nowMs()).toISOString().slice(0, 10));
      await withDatabasePool(async (pool, config) => {
        const run = await new ReconciliationRuns(pool, { logger: createLogger(config.logLevel) }).run({ asOf });
        const breaks = breaksOf(pool);
        const page = await breaks.list({ runId: run.id, limit: 1000 });
        const presented = presentRun(await breaks.run(run.id), { rows: page.breaks, hasMore: page.hasMore });
        const opened = Object.entries(run.counts.breaks_opened).map(([type, count]) => `${type} ${count}`).join(', ');
        printResult(options.json === true, presented, [`${run.id} as of ${run.asOf}: matched `
          + `${run.counts.matched.ledger_psp} ledger↔PSP, ${run.counts.matched.psp_bank} PSP↔bank; pending `
          + `${run.counts.pending.ledger_psp + run.counts.pending.psp_bank}; breaks opened: ${opened === '' ? 'none' : opened}`,
        ...page.breaks.map(breakLine)].join('\n'));
      });
    });
  recon.command('breaks')
    .description('list reconciliation breaks (oldest first, at most --limit)')
    .option('--run <id>', 'only the breaks this run opened')
    .option('--status <status>', `only breaks in this status: ${breakStatuses.join(', ')}`)
    .option('--type <type>', 'only breaks of this type')
    .option('--limit <n>', 'at most this many (1 to 100)', '100')
    .option('--starting-after <break>', 'the page after this break (the last id of the page before)')
    .option('--json', 'print JSON')
    .action(async (options: { run?: string; status?: string; type?: string; limit: string; startingAfter?: string;
      json?: boolean }) => {
      const status = readEnum(options.status, '--status', breakStatuses);
      const limit = readLimit(options.limit, '--limit');
      await withDatabasePool(async (pool) => {
        const page = await breaksOf(pool).list({ runId: readString(options.run, '--run', { lengthMax: 70 }), status,
          type: readString(options.type, '--type', { lengthMax: 64 }), limit,
          startingAfter: readString(options.startingAfter, '--starting-after', { lengthMax: 70 }) });
        printResult(options.json === true, { object: 'list', data: page.breaks.map((row) => presentBreak(row,
          proposeRepair(row))), has_more: page.hasMore }, page.breaks.map(breakLine).join('\n') || 'no breaks');
      });
    });
  recon.command('repair')
    .description('show the entry Penny proposes for a break; with --approve, post it and resolve the break')
    .argument('<break>', 'the break id (rbrk_…)')
    .option('--approve', 'post the proposed entry')
    .option('--json', 'print JSON')
    .action(async (id: string, options: { approve?: boolean; json?: boolean }) => {
      await withDatabasePool(async (pool) => {
        const breaks = breaksOf(pool);
        if (options.approve !== true) {
          const row = await breaks.get(id);
          const presented = presentBreak(row, proposeRepair(row));
          printResult(options.json === true, presented, `${breakLine(row)}\nproposed: `
            + `${JSON.stringify(presented.proposed_repair, (_key, value: unknown) =>
              (typeof value === 'bigint' ? value.toString() : value))}\n(add --approve to post it)`);
          return;
        }
        const repaired = await breaks.repair(id);
        const entry = presentEntry(repaired.entry);
        printResult(options.json === true, { ...presentBreak(repaired.break, null), repair: entry },
          `${breakLine(repaired.break)}\nrepair entry ${repaired.entry.id} (${repaired.entry.externalReference})`);
      });
    });
  recon.command('ignore')
    .description('close a break without an entry, saying why')
    .argument('<break>', 'the break id (rbrk_…)')
    .requiredOption('--reason <text>', 'why it needs no entry')
    .option('--json', 'print JSON')
    .action(async (id: string, options: { reason: string; json?: boolean }) => {
      const reason = readString(options.reason, '--reason', { lengthMax: 1000, required: true });
      await withDatabasePool(async (pool) => {
        const row = await breaksOf(pool).ignore(id, reason);
        printResult(options.json === true, presentBreak(row, null), breakLine(row));
      });
    });
}

function describe(summary: ImportSummary): string {
  const head = `${summary.id} ${summary.filename}: ${summary.format}${summary.version === null ? '' : ` ${summary.version}`}, `
    + `${summary.lines} lines, ${summary.records.total} records (${summary.records.new} new, ${summary.records.known} known, `
    + `${summary.records.conflicting} conflicting)${summary.already_known ? ', already imported: nothing added' : ''}`;
  const statements = summary.statements.map((statement) => `  statement ${statement.statement_ref} (${statement.account}): `
    + `${statement.entries} entries, ${statement.balance_check}`
    + (statement.balance_check === 'mismatch' ? ` by ${statement.difference_minor} minor units` : '')
    + (statement.reason === null ? '' : ` (${statement.reason})`));
  const conflicts = summary.conflicting_external_records.map((conflict) =>
    `  conflicting_external_record ${conflict.external_id} at line ${conflict.line}`);
  return [head, ...statements, ...conflicts].join('\n');
}

/** A one-line progress bar on stderr, redrawn at most every 200 ms. */
function progressBar(totalBytes: number, enabled: boolean): { update: (bytes: number) => void; done: () => void } {
  let drawnAt = 0;
  const draw = (bytes: number) => {
    const share = totalBytes === 0 ? 1 : Math.min(1, bytes / totalBytes);
    const width = 30;
    const filled = Math.round(share * width);
    process.stderr.write(`\r[${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${Math.floor(share * 100)}% `
      + `${Math.floor(bytes / 1048576)} MiB`);
  };
  return {
    update: (bytes) => {
      if (!enabled || Date.now() - drawnAt < 200) return;
      drawnAt = Date.now();
      draw(bytes);
    },
    done: () => {
      if (enabled && drawnAt > 0) {
        draw(totalBytes);
        process.stderr.write('\n');
      }
    },
  };
}
