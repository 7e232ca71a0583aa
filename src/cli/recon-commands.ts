import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { ImportSummary } from '../reconciliation/recon-presenter.js';
import { ReconciliationImports } from '../reconciliation/recon-import.js';
import { reconFormats, type ReconFormat } from '../reconciliation/recon-records.js';
import { invalid } from '../validation.js';
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
