import { describe, expect, it } from 'vitest';
import { isErrorCode, isHttpErrorCode, nonHttpErrorCodes, statusByCode, type ErrorCode } from '../src/error-codes.js';
import { PennyError } from '../src/errors.js';

describe('the table of error codes', () => {
  it('gives every code a 4xx or 5xx status', () => {
    const outOfRange = Object.entries(statusByCode).filter(([, status]) => status < 400 || status > 599);
    expect(outOfRange).toEqual([]);
  });

  it('does not compile a PennyError with a code it does not list (checked by npm run typecheck)', () => {
    // @ts-expect-error: 'no_such_code' is not an ErrorCode; if this line ever compiles, typecheck fails.
    const unknown = new PennyError({ code: 'no_such_code', message: 'never thrown' });
    const known: ErrorCode = 'card_declined';
    expect([unknown.code, new PennyError({ code: known, message: 'declined' }).code])
      .toEqual(['no_such_code', 'card_declined']);
  });

  it('narrows text from outside (a PSP, a stored error) to a code, and nothing else', () => {
    expect(['card_declined', 'invalid_configuration', 'do_not_honor', 'toString', ''].filter(isErrorCode))
      .toEqual(['card_declined', 'invalid_configuration']);
  });

  it('keeps the codes that never reach HTTP out of the status table', () => {
    expect(nonHttpErrorCodes.filter(isHttpErrorCode)).toEqual([]);
    expect(nonHttpErrorCodes.every(isErrorCode)).toBe(true);
  });
});
