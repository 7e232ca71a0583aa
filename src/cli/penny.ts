#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { loadConfig } from '../config.js';
import { PennyError } from '../errors.js';
import { registerCaseCommands } from './case-commands.js';
import { registerLedgerCommands } from './ledger-commands.js';
import { registerMerchantCommands } from './merchant-commands.js';
import { registerSandboxPspCommands } from './sandbox-psp-commands.js';
import { registerServeCommands } from './serve-commands.js';

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

try {
  loadConfig();
  await program.parseAsync(process.argv);
} catch (error) {
  process.exitCode = exitCodeFor(error);
}

function exitCodeFor(error: unknown): number {
  if (error instanceof CommanderError) {
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return 0;
    return 2;
  }
  if (error instanceof PennyError) {
    process.stderr.write(`penny: ${error.message}\n`);
    return 1;
  }
  const message = error instanceof Error ? error.message : String(error);
  const advice = adviceFor(error);
  process.stderr.write(`penny: ${message}${advice === undefined ? '' : `\n${advice}`}\n`);
  return 1;
}

/** What to do about the system errors a command meets most: a port taken, a server not reachable. */
function adviceFor(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'EADDRINUSE') {
    return 'A port Penny listens on is taken: stop what listens there, or set PORT (the API) or ' +
      'PENNY_SANDBOX_PSP_PORT (the sandbox PSP) to a free port.';
  }
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'ETIMEDOUT'
    || code === 'EHOSTUNREACH') {
    return 'Penny could not reach a server: if it is the database, check that PostgreSQL runs where ' +
      'DATABASE_URL says, or unset DATABASE_URL to use the embedded PostgreSQL in PENNY_DATA_DIR.';
  }
  return undefined;
}
