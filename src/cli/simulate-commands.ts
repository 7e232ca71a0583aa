import type { Command } from 'commander';
import { PennyError } from '../errors.js';
import { faultKinds, type FaultKind } from '../simulate/simulation-faults.js';
import {
  runSimulation, simulationFailed, type SimulationProgress, type SimulationResult,
} from '../simulate/simulation.js';
import { printResult } from './cli-support.js';

/**
 * `penny simulate`: a seeded run of clients against Penny under faults, on a throw-away
 * PostgreSQL of its own, then the checker (src/simulate/). Exit 1 when any figure is not 0.
 */
interface SimulateOptions {
  seed?: string;
  payments: string;
  duration: string;
  faults: string;
  clients: string;
  sellers: string;
  settle: string;
  replays: string;
  keep?: boolean;
  json?: boolean;
}

/** Bounds of a run: a seed is 32 bits; at most a million payments, a day of faults, 64 clients. */
const bounds = { paymentsMax: 1_000_000, durationSecondsMax: 86_400, clientsMax: 64, sellersMax: 100,
  settleSecondsMax: 3_600, replaysMax: 10_000 };

export function registerSimulateCommands(program: Command): void {
  program.command('simulate')
    .description('drive Penny with concurrent clients under faults, on a throw-away database, and check that no money went wrong')
    .option('--seed <n>', 'the seed (0 to 4294967295) of the operations and faults; random when absent')
    .option('--payments <n>', 'payments the clients make', '200')
    .option('--duration <seconds>', 'how long the clients and the faults run', '30')
    .option('--faults <list>', `faults to inject: ${faultKinds.join(', ')}, all or none`, 'all')
    .option('--clients <n>', 'concurrent clients', '8')
    .option('--sellers <n>', 'connected accounts of the platform', '3')
    .option('--settle <seconds>', 'the longest wait, once the faults stop, for what is under way', '60')
    .option('--replays <n>', 'successful requests replayed under their key and compared', '50')
    .option('--keep', 'keep the run\'s directory (database, Penny\'s log)')
    .option('--json', 'print one JSON object')
    .action(async (options: SimulateOptions) => {
      const seed = options.seed === undefined ? Math.floor(Math.random() * 2 ** 32)
        : readInteger(options.seed, 'seed', 0, 2 ** 32 - 1);
      const json = options.json === true;
      const result = await runSimulation({
        seed,
        payments: readInteger(options.payments, 'payments', 1, bounds.paymentsMax),
        durationMs: readInteger(options.duration, 'duration', 1, bounds.durationSecondsMax) * 1000,
        faults: readFaults(options.faults),
        clients: readInteger(options.clients, 'clients', 1, bounds.clientsMax),
        sellers: readInteger(options.sellers, 'sellers', 1, bounds.sellersMax),
        settleMs: readInteger(options.settle, 'settle', 1, bounds.settleSecondsMax) * 1000,
        replaysMax: readInteger(options.replays, 'replays', 0, bounds.replaysMax),
        keep: options.keep === true,
      }, { onProgress: progressPrinter(seed) });
      process.stderr.write('\n');
      printResult(json, result, summaryTable(result));
      if (simulationFailed(result)) process.exitCode = 1;
    });
}

function readInteger(text: string, param: string, min: number, max: number): number {
  const value = /^\d{1,10}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new PennyError({ code: 'parameter_invalid', param,
      message: `--${param} is a whole number from ${min} to ${max}, not "${text}".` });
  }
  return value;
}

function readFaults(text: string): Set<FaultKind> {
  if (text === 'all') return new Set(faultKinds);
  if (text === 'none') return new Set();
  const kinds = text.split(',').map((kind) => kind.trim());
  const unknown = kinds.find((kind) => !(faultKinds as readonly string[]).includes(kind));
  if (unknown !== undefined) {
    throw new PennyError({ code: 'parameter_invalid', param: 'faults',
      message: `--faults lists ${faultKinds.join(', ')} (or is all or none); "${unknown}" is none of them.` });
  }
  return new Set(kinds as FaultKind[]);
}

/** One line on stderr, rewritten in place on a terminal, else printed every 5 seconds. */
function progressPrinter(seed: number): (progress: SimulationProgress) => void {
  let lastPrintedMs = 0;
  return (progress) => {
    const line = `seed ${seed} · ${progress.phase} · ${progress.operations} operations · ${progress.faults} faults · `
      + `${Math.round(progress.elapsedMs / 1000)} s`;
    if (process.stderr.isTTY) {
      process.stderr.write(`\r${line.padEnd(80)}`);
      return;
    }
    if (Date.now() - lastPrintedMs >= 5000 || progress.phase !== 'running') {
      lastPrintedMs = Date.now();
      process.stderr.write(`${line}\n`);
    }
  };
}

function summaryTable(result: SimulationResult): string {
  const rows: [string, string][] = [
    ['seed', String(result.seed)],
    ['payments', String(result.payments)],
    ['operations ok / failed / indefinite', `${result.operations.ok} / ${result.operations.failed} / ${result.operations.indefinite}`],
    ['faults injected', Object.entries(result.faults_injected).map(([kind, count]) => `${kind} ${count}`).join(', ') || 'none'],
    ['acknowledged but lost', String(result.acknowledged_lost)],
    ['refused but applied', String(result.refused_applied)],
    ['duplicate effects', String(result.duplicate_effects)],
    ['unresolved', String(result.unresolved)],
    ['in manual review', String(result.in_review)],
    ['replays compared', String(result.replays_compared)],
    ['reconciliation breaks', String(result.reconciliation_breaks)],
    ['settlement pulls deferred', String(result.settlement_pulls_deferred)],
    ['violations', String(result.violations.length)],
    ['elapsed', `${Math.round(result.elapsed_ms / 1000)} s`],
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  const lines = rows.map(([name, value]) => `${name.padEnd(width)}  ${value}`);
  const first = result.violations[0];
  if (first !== undefined) {
    lines.push('', `FAILED: seed ${result.seed}; first violation: ${first.check}: ${first.message}`,
      `  objects: ${first.objects.join(', ')}`,
      `  replay: ${result.replay}`);
  }
  return lines.join('\n');
}
