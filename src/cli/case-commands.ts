import type { Command } from 'commander';
import { closeCase, listCases } from '../payments/payment-cases.js';
import { readEnum, readString } from '../validation.js';
import { printResult, withDatabasePool } from './cli-support.js';

/** `penny cases list|close`: the cases Penny opened for a human, and closing them. */
export function registerCaseCommands(program: Command): void {
  const cases = program.command('cases').description('payment cases opened for a human');

  cases.command('list')
    .description('cases, newest first (at most 100)')
    .option('--status <status>', 'open or closed')
    .option('--json', 'print JSON')
    .action(async (options: { status?: string; json?: boolean }) => {
      const status = readEnum(options.status, '--status', ['open', 'closed']);
      await withDatabasePool(async (pool) => {
        const page = await listCases(pool, { status, limit: 100, startingAfter: undefined });
        const text = page.rows.length === 0 ? 'No cases.' : page.rows.map((item) =>
          `${item.id}  ${item.status}  ${item.kind}  ${item.payment_intent}  ${item.subject}`).join('\n');
        printResult(options.json === true, { data: page.rows, has_more: page.hasMore }, text);
      });
    });

  cases.command('close')
    .description('close a case with what was done about it')
    .argument('<id>', 'the case id (case_…)')
    .requiredOption('--resolution <text>', 'what was done (kept with the case)')
    .option('--json', 'print JSON')
    .action(async (id: string, options: { resolution: string; json?: boolean }) => {
      const resolution = readString(options.resolution, '--resolution', { lengthMax: 1000, required: true });
      await withDatabasePool(async (pool) => {
        const closed = await closeCase(pool, id, resolution);
        printResult(options.json === true, closed, `Closed ${closed.id}: ${closed.resolution}`);
      });
    });
}
