import type pg from 'pg';
import type { ConnectedAccounts } from '../accounts/account-service.js';
import type { BalanceService } from '../balances/balance-service.js';
import type { BalanceTransactionType } from '../balances/balance-store.js';
import type { AccountRole } from '../balances/balance-accounts.js';
import type { Queryable } from '../db/pool.js';
import { PennyError } from '../errors.js';
import { internalEntry } from '../ledger/ledger-commands.js';
import type { LedgerService } from '../ledger/ledger-service.js';

/**
 * One ledger entry moving money between two owners' balance accounts of the same role (a
 * platform's and one of its connected accounts'), in the caller's transaction. A voluntary
 * outflow is guarded (decisions.md: checked under the debited account's lock, so concurrent
 * transfers never take it below zero) and refused as Stripe refuses it, 400 `balance_insufficient`
 * naming `guardedParam`; an involuntary one (a refund's share) posts even into the negative.
 */
export interface OwnerMovement {
  readonly from: string;
  readonly to: string;
  readonly currency: string;
  readonly amountMinor: bigint;
  readonly role: Extract<AccountRole, 'merchant_available' | 'merchant_pending'>;
  readonly reference: string;
  readonly description: string;
  /** The parameter a refusal names; null for a movement that is never refused. */
  readonly guardedParam: string | null;
}

export async function moveBetweenOwners(dependencies: { ledger: LedgerService; balances: BalanceService },
  db: Queryable, movement: OwnerMovement): Promise<string> {
  const accounts = dependencies.balances.accounts;
  const from = (await accounts.accountsFor(db, { ownerId: movement.from, currency: movement.currency }))[movement.role];
  const to = (await accounts.accountsFor(db, { ownerId: movement.to, currency: movement.currency }))[movement.role];
  try {
    const created = await dependencies.ledger.createEntriesIn(db, [internalEntry({
      reference: movement.reference, description: movement.description,
      legs: [[from, 'debit', movement.amountMinor], [to, 'credit', movement.amountMinor]],
      ...(movement.guardedParam === null ? {} : { guardedAccount: from }),
    })]);
    const entry = created.entries[0];
    if (entry === undefined) throw new Error(`no entry for ${movement.reference}`);
    return entry.id;
  } catch (error) {
    if (movement.guardedParam !== null && error instanceof PennyError && error.code === 'insufficient_funds') {
      throw new PennyError({ code: 'balance_insufficient', param: movement.guardedParam,
        message: 'You have insufficient available funds in your account for this transfer.' });
    }
    throw error;
  }
}

/**
 * A live connected account of the platform about to receive money, share-locked for the caller's
 * transaction (a racing delete waits, then sees the money or the charge on its way and refuses);
 * another platform's, a deleted or a malformed one is 404 `resource_missing` naming `param`.
 */
export async function lockIncomingAccount(accounts: ConnectedAccounts, client: pg.PoolClient,
  key: { merchantId: string; accountId: string }, param: string): Promise<void> {
  try {
    await accounts.lockForIncomingMoney(client, { merchantId: key.merchantId, id: key.accountId });
  } catch (error) {
    if (!(error instanceof PennyError) || error.code !== 'resource_missing') throw error;
    throw new PennyError({ code: 'resource_missing', param, message: `No such destination: '${key.accountId}'` });
  }
}

/** A movement's balance transaction on each owner's side, available at once (signed: negative leaves). */
export async function recordSides(balances: BalanceService, db: Queryable, movement: { merchantId: string;
  sourceId: string; currency: string; reportingCategory: string; description?: string;
  sides: readonly { accountId: string; type: BalanceTransactionType; amountMinor: bigint }[] }): Promise<void> {
  for (const side of movement.sides) {
    await balances.recordMovement(db, { merchantId: movement.merchantId, accountId: side.accountId, type: side.type,
      reportingCategory: movement.reportingCategory, sourceId: movement.sourceId, currency: movement.currency,
      amountMinor: side.amountMinor, description: movement.description ?? null });
  }
}
