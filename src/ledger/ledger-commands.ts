import type { CreateEntryCommand, Direction } from './ledger-types.js';
import { fingerprint } from './ledger-validation.js';

/**
 * An entry Penny posts for itself (payments, balances), under a reference of its reserved
 * `penny:` namespace: its fingerprint is derived from what it moves, so a replay under the same
 * reference is recognised and a different entry under it is refused.
 */
export function internalEntry(input: { reference: string; description: string; pending?: boolean; expiresAt?: string;
  legs: readonly (readonly [string, Direction, bigint])[] }): CreateEntryCommand {
  return {
    externalReference: input.reference,
    requestFingerprint: fingerprint({
      reference: input.reference, pending: input.pending ?? false,
      legs: input.legs.map(([account, direction, amount]) => [account, direction, amount.toString()]),
    }),
    description: input.description,
    metadata: {},
    effectiveAt: undefined,
    pending: input.pending ?? false,
    expiresAt: input.expiresAt,
    postings: input.legs.map(([account, direction, amountMinor]) => ({
      account, direction, amountMinor, currency: undefined, mustNotOverdraw: false,
    })),
  };
}
