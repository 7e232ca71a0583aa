import type { Queryable } from '../db/pool.js';
import { changedAttributes, recordEvent } from '../events/event-store.js';
import { presentBankAccount, presentConnectedAccount } from './account-presenter.js';
import type { ConnectedAccountRow } from './account-store.js';
import type { BankAccountRow } from './bank-account-store.js';

/**
 * The events of connected accounts, with Stripe's names, written in the transaction of the change
 * (through src/events, as payments write theirs). They belong to the platform merchant, whose
 * endpoints receive them, and name the connected account in `account`, as Connect's events do.
 */
export type ExternalAccountEventType = 'account.external_account.created' | 'account.external_account.updated'
  | 'account.external_account.deleted';

export const accountEventTypes = ['account.updated', 'account.external_account.created',
  'account.external_account.updated', 'account.external_account.deleted'] as const;

/** `account.updated`, with the fields that changed as they were; none when nothing Stripe shows changed. */
export async function recordAccountUpdated(db: Queryable, before: ConnectedAccountRow, after: ConnectedAccountRow):
Promise<void> {
  const object = presentConnectedAccount(after);
  const previous = changedAttributes(presentConnectedAccount(before), object);
  if (Object.keys(previous).length === 0) return;
  await recordEvent(db, { merchantId: after.merchantId, account: after.id, type: 'account.updated', object,
    previousAttributes: previous });
}

export async function recordExternalAccountEvent(db: Queryable, event: { type: ExternalAccountEventType;
  bank: BankAccountRow; deleted?: boolean }): Promise<void> {
  const object = event.deleted === true ? { ...presentBankAccount(event.bank), deleted: true }
    : presentBankAccount(event.bank);
  await recordEvent(db, { merchantId: event.bank.merchantId, account: event.bank.accountId, type: event.type,
    object });
}
