import type { CreateEntryCommand, Direction } from './ledger-types.js';
import { fingerprint } from './ledger-validation.js';

/**
 * An entry Penny posts for itself (payments, balances), under a reference of its reserved
 * `penny:` namespace: its fingerprint is derived from what it moves, so a replay under the same
 * reference is recognised and a different entry under it is refused.
 */
export function internalEntry(input: { reference: string; description: string; pending?: boolean; expiresAt?: string;
  legs: readonly (readonly [string, Direction, bigint])[];
  /**
   * The account whose debit is guarded (decisions.md, "Who may go negative"): the posting carries
   * `must_not_overdraw`, checked under the account's lock, so a voluntary outflow (a payout) never
   * takes it below zero, also under concurrent entries.
   */
  guardedAccount?: string }): CreateEntryCommand {
  const guarded = (account: string, direction: Direction) =>
    input.guardedAccount !== undefined && account === input.guardedAccount && direction === 'debit';
  return {
    externalReference: input.reference,
    requestFingerprint: fingerprint({
      reference: input.reference, pending: input.pending ?? false,
      legs: input.legs.map(([account, direction, amount]) => [account, direction, amount.toString()]),
      // Only a guarded entry's fingerprint names the guard: unguarded entries keep theirs.
      ...(input.guardedAccount === undefined ? {} : { guardedAccount: input.guardedAccount }),
    }),
    description: input.description,
    metadata: {},
    effectiveAt: undefined,
    pending: input.pending ?? false,
    expiresAt: input.expiresAt,
    postings: input.legs.map(([account, direction, amountMinor]) => ({
      account, direction, amountMinor, currency: undefined, mustNotOverdraw: guarded(account, direction),
    })),
  };
}
