import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { statusByCode } from '../../src/http/http-errors.js';

/**
 * docs/errors.md names every code the API answers with, and every code thrown in src/ has an HTTP
 * status in statusByCode. The scan of src/ is a plain text scan, deliberately simple; the
 * sanity test below makes sure each of its patterns still finds what it is meant to find.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const errorsDoc = fs.readFileSync(path.join(root, 'docs', 'errors.md'), 'utf8');

/**
 * Codes that are never an HTTP error: they stop Penny at start, fail a CLI command, or are only a
 * PaymentIntent's last_payment_error.
 */
const notHttpCodes = new Set(['invalid_configuration', 'embedded_postgres_failed', 'usage_invalid', 'command_failed',
  'check_failed', 'payment_intent_authentication_failure']);
/** The 500 answer that handleError writes itself; it is not thrown, so it has no entry in statusByCode. */
const fallbackCode = 'internal_error';

function sourceFiles(directory: string, extension: string): string[] {
  return fs.readdirSync(directory, { withFileTypes: true }).flatMap((item) => {
    const full = path.join(directory, item.name);
    if (item.isDirectory()) return sourceFiles(full, extension);
    return item.name.endsWith(extension) ? [full] : [];
  });
}

function matches(text: string, pattern: RegExp, group = 1): string[] {
  return [...text.matchAll(pattern)].map((match) => match[group] as string);
}

/** Every error code written as a literal in src/, by the ways src/ writes them. */
function thrownCodes(): Set<string> {
  // The sandbox PSP is another service, with its own statuses (src/sandbox-psp/psp-server.ts).
  const sources = sourceFiles(path.join(root, 'src'), '.ts')
    .filter((file) => !file.includes(`${path.sep}sandbox-psp${path.sep}`))
    .map((file) => fs.readFileSync(file, 'utf8'));
  const codes = new Set<string>();
  const add = (found: string[]) => found.forEach((code) => codes.add(code));
  for (const text of sources) {
    // new PennyError({ code: 'x', … }) and fallbacks such as code: error.message ?? 'x'
    add(matches(text, /\bcode: [^,\n}]*?'([a-z_]+)'/g));
    // invalid(param, message, 'x'): the call may span lines and nest parentheses
    add(matches(text, /\binvalid\([^;]*?,\s*'([a-z_]+)'\)\s*;/g));
    // a default code parameter: function invalid(…, code = 'x')
    add(matches(text, /\bcode = '([a-z_]+)'/g));
    // a table of codes: const codes: Record<string, string> = { kind: 'x', … }
    for (const table of matches(text, /const codes\b[^=]*=\s*\{([^}]*)\}/g)) add(matches(table, /: '([a-z_]+)'/g));
  }
  add(passedThroughDatabaseCodes());
  return codes;
}

/**
 * fromDatabaseError passes some SQLSTATEs through with the trigger's MESSAGE as the code
 * (`code: error.message`); those messages come from the migrations.
 */
function passedThroughDatabaseCodes(): string[] {
  const mapper = fs.readFileSync(path.join(root, 'src', 'ledger', 'ledger-errors.ts'), 'utf8');
  const states = matches(mapper, /((?:case 'PN\d{3}':\s*)+)return new PennyError\(\{\s*code: error\.message/g)
    .flatMap((cases) => matches(cases, /'(PN\d{3})'/g));
  const migrations = sourceFiles(path.join(root, 'src', 'db', 'migrations'), '.sql')
    .map((file) => fs.readFileSync(file, 'utf8')).join('\n');
  return states.flatMap((state) =>
    matches(migrations, new RegExp(`ERRCODE = '${state}', MESSAGE = '([a-z_]+)'`, 'g')));
}

/** The codes of the table rows in docs/errors.md: lines that start with | `code` |. */
function documentedRows(): string[] {
  return matches(errorsDoc, /^\| `([a-z_]+)` \| \d{3} \|/gm);
}

describe('docs/errors.md', () => {
  it('names every code in statusByCode, and the 500 fallback', () => {
    const missing = [...Object.keys(statusByCode), fallbackCode]
      .filter((code) => !errorsDoc.includes(`\`${code}\``));
    expect(missing).toEqual([]);
  });

  it('gives each code the status statusByCode gives it, and lists no code that does not exist', () => {
    const rows = [...errorsDoc.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)]
      .map((match) => [match[1] as string, Number(match[2])] as const);
    const wrong = rows.filter(([code, status]) =>
      (code === fallbackCode ? 500 : statusByCode[code]) !== status);
    expect(wrong).toEqual([]);
    expect(new Set(documentedRows())).toEqual(new Set([...Object.keys(statusByCode), fallbackCode]));
  });
});

describe('statusByCode', () => {
  const codes = thrownCodes();

  it('finds the codes each pattern of the scan is meant to find', () => {
    for (const code of ['parameter_missing', 'duplicate_external_reference', 'parameter_invalid',
      'hold_already_posted', 'history_is_append_only', 'balance_write_refused', 'insufficient_funds']) {
      expect(codes, code).toContain(code);
    }
  });

  it('has an HTTP status for every code thrown in src/', () => {
    const withoutStatus = [...codes]
      .filter((code) => !notHttpCodes.has(code) && code !== fallbackCode && statusByCode[code] === undefined)
      .sort();
    expect(withoutStatus).toEqual([]);
  });
});
