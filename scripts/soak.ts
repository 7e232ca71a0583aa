/**
 * `npm run soak [-- --seeds N --payments M --duration S --clients C --faults LIST]`: long runs of
 * `penny simulate` with random seeds, one after another, each on its own throw-away PostgreSQL.
 * Prints one line a seed as it ends and, at the end, every seed that failed with its first
 * violation, so it can be replayed with `penny simulate --seed N` and the same options. Exit 1 when
 * any seed failed.
 */
import { randomInt } from 'node:crypto';
import { Command } from 'commander';
import { faultKinds, type FaultKind } from '../src/simulate/simulation-faults.js';
import {
  runSimulation, simulationFailed, type SimulationProgress, type SimulationResult,
} from '../src/simulate/simulation.js';

const program = new Command('soak')
  .option('--seeds <n>', 'how many random seeds to run', '20')
  .option('--payments <n>', 'payments a seed', '2000')
  .option('--duration <seconds>', 'how long each seed\'s clients and faults run', '300')
  .option('--clients <n>', 'concurrent clients', '16')
  .option('--faults <list>', `faults: ${faultKinds.join(', ')} or all`, 'all')
  .parse(process.argv);
const options = program.opts<{ seeds: string; payments: string; duration: string; clients: string; faults: string }>();

/** A line on stderr a minute while a seed runs, and at each change of phase. */
function progressEveryMinute(seed: number, index: number, seeds: number): (progress: SimulationProgress) => void {
  let lastPrintedMs = 0;
  let lastPhase = '';
  return (progress) => {
    if (Date.now() - lastPrintedMs < 60_000 && progress.phase === lastPhase) return;
    lastPrintedMs = Date.now();
    lastPhase = progress.phase;
    process.stderr.write(`${new Date().toISOString()} seed ${index + 1}/${seeds} (${seed}) · ${progress.phase} · `
      + `${progress.operations} operations · ${progress.faults} faults · ${Math.round(progress.elapsedMs / 1000)} s\n`);
  };
}

const failed: SimulationResult[] = [];
const seeds = Number(options.seeds);
let payments = 0;
for (let index = 0; index < seeds; index += 1) {
  const seed = randomInt(0, 2 ** 32);
  const result = await runSimulation({
    seed, payments: Number(options.payments), durationMs: Number(options.duration) * 1000,
    faults: options.faults === 'all' ? new Set(faultKinds) : new Set(options.faults.split(',') as FaultKind[]),
    clients: Number(options.clients), sellers: 5, settleMs: 300_000, replaysMax: 200, keep: false,
  }, { onProgress: progressEveryMinute(seed, index, seeds) });
  payments += result.payments;
  const bad = simulationFailed(result);
  if (bad) failed.push(result);
  const faults = Object.values(result.faults_injected).reduce((sum, count) => sum + count, 0);
  process.stdout.write(`${bad ? 'FAIL' : 'ok  '} seed ${seed}: ${result.operations.ok} ok, ${result.operations.failed} `
    + `failed, ${result.operations.indefinite} indefinite; ${faults} faults; lost ${result.acknowledged_lost}, `
    + `refused-applied ${result.refused_applied}, duplicates ${result.duplicate_effects}, unresolved `
    + `${result.unresolved}, breaks ${result.reconciliation_breaks}, violations ${result.violations.length}, `
    + `pulls deferred ${result.settlement_pulls_deferred}; `
    + `${Math.round(result.elapsed_ms / 1000)} s\n`);
  for (const violation of result.violations.slice(0, 3)) {
    process.stdout.write(`     ${violation.check}: ${violation.message} (${violation.objects.join(', ')})\n`);
  }
}
process.stdout.write(`\n${seeds} seeds, ${payments} payments, ${failed.length} failed\n`);
for (const result of failed) {
  const first = result.violations[0];
  process.stdout.write(`seed ${result.seed}: ${first?.check ?? 'a figure'}: ${first?.message ?? ''} `
    + `(${first?.objects.join(', ') ?? ''})\n  replay: ${result.replay}\n`);
}
if (failed.length > 0) process.exitCode = 1;
