import { CommanderError } from 'commander';
import { PennyError } from '../errors.js';

/**
 * How a failed command ends: its exit code (1 for a failure it explains, 2 for wrong usage) and
 * the error object a `--json` caller reads on stdout, in the API's shape
 * (`{"error": {"type", "code", "message", …}}`).
 */
export interface CommandFailure {
  readonly exitCode: 1 | 2;
  readonly error: { readonly type: string; readonly code: string; readonly message: string;
    readonly [field: string]: unknown };
}

/** Undefined for what is no failure: help or the version, shown on request. */
export function commandFailureOf(error: unknown): CommandFailure | undefined {
  if (error instanceof CommanderError) {
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return undefined;
    // Commander has written its message (and the help) to stderr already.
    return { exitCode: 2, error: { type: 'invalid_request_error', code: 'usage_invalid',
      message: error.message.replace(/^error: /, ''), commander_code: error.code } };
  }
  if (error instanceof PennyError) {
    return { exitCode: 1, error: { type: error.type, code: error.code, message: error.message,
      ...(error.param === undefined ? {} : { param: error.param }) } };
  }
  const message = error instanceof Error ? error.message : String(error);
  const advice = adviceFor(error);
  return { exitCode: 1, error: { type: 'api_error', code: 'command_failed',
    message: advice === undefined ? message : `${message}\n${advice}` } };
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

/** `--json` among the arguments (before a `--`, after which arguments are operands). */
export function jsonRequested(argumentsGiven: readonly string[]): boolean {
  const end = argumentsGiven.indexOf('--');
  return (end === -1 ? argumentsGiven : argumentsGiven.slice(0, end)).includes('--json');
}
