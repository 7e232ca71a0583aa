import { PennyError } from '../errors.js';
import type { OperationRow } from './psp-store.js';

/**
 * The sandbox's own 409 `invalid_state`: a code of this service's API, not one of Penny's
 * (src/error-codes.ts), so it is not a PennyError. `penny sandbox-psp` reports it as
 * `sandbox_invalid_state`.
 */
export class InvalidStateError extends Error {
  override readonly name = 'InvalidStateError';
}

export function invalidState(operation: OperationRow, wanted: string): InvalidStateError {
  return new InvalidStateError(
    `Operation ${operation.pspReference} (${operation.kind}, ${operation.outcome}) cannot be ${wanted}.`);
}

export function notFound(reference: string, param = 'psp_reference'): PennyError {
  return new PennyError({ code: 'resource_missing', param, message: `No operation ${reference}.` });
}
