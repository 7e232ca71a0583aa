import { expect } from 'vitest';
import { PennyError } from '../../src/errors.js';

/** Runs something that must be refused and returns the PennyError it threw. */
export function refusal(run: () => unknown): PennyError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(PennyError);
    return error as PennyError;
  }
  throw new Error('expected a refusal, but it was accepted');
}
