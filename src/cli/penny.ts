#!/usr/bin/env node
import { Command } from 'commander';
import { loadConfig } from '../config.js';
import { stringifyJson } from '../json.js';
import { commandFailureOf, jsonRequested, type CommandFailure } from './cli-errors.js';
import { registerCaseCommands } from './case-commands.js';
import { registerHaCommands } from './ha-commands.js';
import { registerLedgerCommands } from './ledger-commands.js';
import { registerMerchantCommands } from './merchant-commands.js';
import { registerReconCommands } from './recon-commands.js';
import { registerReportCommands } from './report-commands.js';
import { registerSandboxPspCommands } from './sandbox-psp-commands.js';
import { registerServeCommands } from './serve-commands.js';
import { registerSettlementCommands } from './settlement-commands.js';
import { registerSimulateCommands } from './simulate-commands.js';

/**
 * `penny`: thin commands over the services. Exit 0 on success, 1 on a failure it explains,
 * 2 on wrong usage. Every command honours DATABASE_URL and PENNY_DATA_DIR.
 */
const program = new Command('penny')
  .description('Penny: payments moved correctly, to the penny.')
  .showHelpAfterError()
  .exitOverride();

registerServeCommands(program);
registerLedgerCommands(program);
registerMerchantCommands(program);
registerSandboxPspCommands(program);
registerCaseCommands(program);
registerSettlementCommands(program);
registerReconCommands(program);
registerReportCommands(program);
registerSimulateCommands(program);
registerHaCommands(program);

const json = jsonRequested(process.argv.slice(2));
try {
  loadConfig();
  await program.parseAsync(process.argv);
} catch (error) {
  const failure = commandFailureOf(error);
  if (failure !== undefined) report(failure);
  process.exitCode = failure?.exitCode ?? 0;
}

/**
 * Commander wrote a usage error to stderr itself; other failures are written there here. With
 * `--json`, stdout gets exactly one JSON error object too, so a script reads it as it reads a result.
 */
function report(failure: CommandFailure): void {
  if (failure.exitCode === 1) process.stderr.write(`penny: ${failure.error.message}\n`);
  if (json) process.stdout.write(`${stringifyJson({ error: failure.error })}\n`);
}
