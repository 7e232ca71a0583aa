import type pg from 'pg';
import { inTransaction, type Queryable } from '../db/pool.js';
import { PennyError } from '../errors.js';
import { newId } from '../ids.js';
import { KeyedDigest } from '../security/keyed-digest.js';
import { SecretBox } from '../security/secret-box.js';
import type {
  BankAccountParams, CreateBankAccountCommand, MetadataChange, UpdateBankAccountCommand,
} from './account-commands.js';
import {
  clearDefaultForCurrency, insertBankAccount, markBankAccountDeleted, selectBankAccount, selectBankAccounts,
  selectBankAccountsInCurrency, updateBankAccount, type BankAccountOwner, type BankAccountRow,
} from './bank-account-store.js';
import { checkBankNumber } from './bank-numbers.js';

/**
 * Bank accounts, wherever they belong (a connected account's external accounts, a platform's own).
 * The number is checked (bank-numbers.ts), sealed with AES-256-GCM under a key derived from
 * PENNY_SECRET_KEY (as webhook secrets are), and shown only as `last4`; its `fingerprint` is an
 * HMAC of the platform and the normalized number (country, routing number, account number) under
 * another derived key, so the same bank account has the same fingerprint within a platform, and
 * neither the database nor a fingerprint gives the number back.
 */
export class BankAccountVault {
  private readonly box: SecretBox;
  private readonly digest: KeyedDigest;

  constructor(secretKey: string) {
    this.box = new SecretBox(secretKey, 'bank account numbers');
    this.digest = new KeyedDigest(secretKey, 'bank account fingerprints');
  }

  /** The row to insert, checked and sealed; refusals name `params`. Nothing is written. */
  prepare(owner: BankAccountOwner, command: CreateBankAccountCommand, params: BankAccountParams):
  Omit<BankAccountRow, 'status' | 'createdAt' | 'defaultForCurrency'> {
    const checked = checkBankNumber(command, params);
    return {
      merchantId: owner.merchantId, accountId: owner.accountId, id: newId('ba'), country: checked.country,
      currency: checked.currency, accountHolderName: command.accountHolderName,
      accountHolderType: command.accountHolderType, accountNumberCiphertext: this.box.seal(checked.accountNumber),
      last4: checked.last4,
      fingerprint: this.digest.hex([owner.merchantId, checked.country, checked.routingNumber ?? '',
        checked.accountNumber].join('|'), 16),
      routingNumber: checked.routingNumber, bankName: checked.bankName, metadata: command.metadata,
    };
  }

  /** The full number, for the payout that sends money to it. */
  accountNumberOf(bank: Pick<BankAccountRow, 'accountNumberCiphertext'>): string {
    return this.box.open(bank.accountNumberCiphertext);
  }
}

/**
 * Adds a prepared bank account in the caller's transaction, which holds the owner's lock. The first
 * in its currency is the default for it, as on Stripe; `defaultForCurrency` takes the default over.
 */
export async function addBankAccount(db: Queryable, prepared: ReturnType<BankAccountVault['prepare']>,
  options: { defaultForCurrency: boolean }): Promise<BankAccountRow> {
  const others = await selectBankAccountsInCurrency(db, prepared, prepared.currency);
  const makeDefault = options.defaultForCurrency || others.length === 0;
  if (makeDefault) await clearDefaultForCurrency(db, prepared, prepared.currency);
  return insertBankAccount(db, { ...prepared, defaultForCurrency: makeDefault });
}

export async function findBankAccount(db: Queryable, owner: BankAccountOwner, id: string,
  options: { forUpdate: boolean } = { forUpdate: false }): Promise<BankAccountRow> {
  const bank = await selectBankAccount(db, owner, id, options);
  if (bank === undefined) {
    // Only an id Penny could have made is quoted back (a path can hold any text).
    throw new PennyError({ code: 'resource_missing', param: 'id', message: /^ba_[A-Za-z0-9]{1,64}$/.test(id)
      ? `No such external account: '${id}'` : 'No such external account.' });
  }
  return bank;
}

/** Changes a bank account in the caller's transaction (owner locked); its row before and after. */
export async function changeBankAccount(db: Queryable, owner: BankAccountOwner, change: { id: string;
  command: UpdateBankAccountCommand }): Promise<{ before: BankAccountRow; after: BankAccountRow }> {
  const before = await findBankAccount(db, owner, change.id, { forUpdate: true });
  const { command } = change;
  if (command.defaultForCurrency === true && !before.defaultForCurrency) {
    await clearDefaultForCurrency(db, owner, before.currency);
  }
  const after = await updateBankAccount(db, owner, change.id, {
    accountHolderName: command.accountHolderName === undefined ? before.accountHolderName : command.accountHolderName,
    accountHolderType: command.accountHolderType === undefined ? before.accountHolderType : command.accountHolderType,
    defaultForCurrency: before.defaultForCurrency || command.defaultForCurrency === true,
    metadata: applyMetadataChange(before.metadata, command.metadata),
  });
  return { before, after };
}

/**
 * Deletes a bank account in the caller's transaction (owner locked). The default for a currency
 * cannot go while the owner has others in that currency: another must become the default first.
 */
export async function removeBankAccount(db: Queryable, owner: BankAccountOwner, id: string): Promise<BankAccountRow> {
  const bank = await findBankAccount(db, owner, id, { forUpdate: true });
  if (bank.defaultForCurrency) {
    const others = (await selectBankAccountsInCurrency(db, owner, bank.currency)).filter((other) => other.id !== id);
    if (others.length > 0) {
      throw new PennyError({ code: 'bank_account_is_default', param: 'id',
        message: `You cannot delete the default bank account for ${bank.currency}. Make another bank account the ` +
          'default for that currency (default_for_currency=true), then delete this one.' });
    }
  }
  await markBankAccountDeleted(db, owner, id);
  return bank;
}

/**
 * Sets a platform merchant's own bank account (the operator's `penny merchants bank-account`): it
 * replaces the merchant's bank accounts in that currency and is the default for it. The merchant
 * must exist (the caller checks); the replaced accounts stay in the table, deleted.
 */
export async function setPlatformBankAccount(client: pg.PoolClient, vault: BankAccountVault, request: {
  merchantId: string; command: CreateBankAccountCommand; params: BankAccountParams }): Promise<BankAccountRow> {
  const owner = { merchantId: request.merchantId, accountId: request.merchantId };
  const prepared = vault.prepare(owner, request.command, request.params);
  return inTransaction(client, async () => {
    for (const old of await selectBankAccountsInCurrency(client, owner, prepared.currency)) {
      await markBankAccountDeleted(client, owner, old.id);
    }
    return addBankAccount(client, prepared, { defaultForCurrency: true });
  });
}

/** The owner's default bank account for a currency (ISO, any case), if it has one: where a payout goes. */
export async function defaultBankAccount(db: Queryable, owner: BankAccountOwner, currency: string):
Promise<BankAccountRow | undefined> {
  const found = await selectBankAccountsInCurrency(db, owner, currency.toLowerCase());
  return found.find((bank) => bank.defaultForCurrency) ?? found[0];
}

/** A platform merchant's own bank accounts, newest first. */
export async function platformBankAccounts(db: Queryable, merchantId: string): Promise<BankAccountRow[]> {
  return selectBankAccounts(db, { merchantId, accountId: merchantId });
}

/** Stripe's metadata update: clear all (an empty `metadata`), then unset keys, then set keys; at most 50. */
export function applyMetadataChange(stored: Record<string, string>, change: MetadataChange): Record<string, string> {
  const next: Record<string, string> = change.clearAll ? {} : { ...stored };
  for (const key of change.unset) delete next[key];
  Object.assign(next, change.set);
  if (Object.keys(next).length > 50) {
    throw new PennyError({ code: 'metadata_invalid', param: 'metadata', message: 'metadata can have at most 50 keys.' });
  }
  return next;
}
