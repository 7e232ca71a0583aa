import { isErrorCode, type ErrorCode } from '../error-codes.js';
import { PennyError } from '../errors.js';

/**
 * The ledger's operating errors, and the translation of what the database refuses (custom
 * SQLSTATEs raised by the triggers in 0001_ledger.sql, and constraint violations) into them.
 */
export function accountNotFound(id: string, param = 'account'): PennyError {
  return new PennyError({ code: 'account_not_found', param, message: `No ledger account ${id}.` });
}

export function entryNotFound(id: string, param = 'id'): PennyError {
  return new PennyError({ code: 'entry_not_found', param, message: `No ledger entry ${id}.` });
}

export function referenceConflict(reference: string, param: string): PennyError {
  return new PennyError({
    code: 'reference_conflict',
    param,
    message: `The external reference "${reference}" was already used for a different request; ` +
      'nothing was written. Use a new reference, or resend the original request exactly.',
  });
}

export function holdAlreadyResolved(holdId: string, resolutionKind: string): PennyError {
  const codes: Record<string, ErrorCode> = {
    hold_post: 'hold_already_posted',
    hold_void: 'hold_already_voided',
    hold_expiry: 'hold_expired',
  };
  const code = codes[resolutionKind];
  if (code === undefined) throw new Error(`a hold resolved by an entry of kind ${resolutionKind}`);
  const what = code === 'hold_expired' ? 'has expired' : `was already ${code.replace('hold_already_', '')}`;
  return new PennyError({ code, param: 'id', message: `Hold ${holdId} ${what}.` });
}

interface DatabaseError {
  readonly code?: string;
  readonly message?: string;
  readonly detail?: string;
  readonly constraint?: string;
}

export function isDatabaseError(error: unknown): error is DatabaseError {
  return typeof error === 'object' && error !== null && 'code' in error && 'severity' in error;
}

/**
 * Maps a refusal by the database to a PennyError; returns undefined for anything that is not an
 * operating error (those propagate as the bugs they are).
 */
export function fromDatabaseError(error: unknown): PennyError | undefined {
  if (!isDatabaseError(error)) return undefined;
  switch (error.code) {
    case 'PN001':
      return new PennyError({
        code: 'unbalanced_entry',
        param: 'postings',
        message: `The entry does not balance: ${error.detail ?? 'debits and credits differ'}. ` +
          'Per currency, debits must equal credits.',
      });
    case 'PN002':
      return new PennyError({
        code: 'insufficient_funds',
        param: 'postings',
        message: `Account ${error.detail ?? ''} has insufficient funds for this entry; nothing was written.`,
      });
    case 'PN009':
      return new PennyError({
        code: 'currency_mismatch',
        message: `A posting's currency differs from its account's (account ${error.detail ?? ''}).`,
      });
    case 'PN010':
      return accountNotFound(error.detail ?? '(unknown)', 'postings');
    case 'PN003':
    case 'PN007':
      return new PennyError({
        code: error.message !== undefined && isErrorCode(error.message) ? error.message : 'history_is_append_only',
        message: error.detail ?? 'The ledger refuses to change its history.',
      });
    default:
      return undefined;
  }
}

export function isUniqueViolation(error: unknown, constraint: string): boolean {
  return isDatabaseError(error) && error.code === '23505' && error.constraint === constraint;
}
