import type pg from 'pg';
import { inTransaction, type Queryable } from '../db/pool.js';
import { PennyError } from '../errors.js';
import { newId } from '../ids.js';
import {
  externalAccountParams, type CreateAccountCommand, type CreateBankAccountCommand, type PayoutSchedule,
  type UpdateAccountCommand, type UpdateBankAccountCommand,
} from './account-commands.js';
import { recordAccountUpdated, recordExternalAccountEvent } from './account-events.js';
import {
  connectedAccountExists, insertConnectedAccount, markConnectedAccountDeleted, selectConnectedAccount,
  selectConnectedAccountPage, selectHoldsMoney, updateConnectedAccount, type ConnectedAccountRow,
} from './account-store.js';
import { selectBankAccountPage, type BankAccountRow } from './bank-account-store.js';
import { platformPayoutSchedule } from './payout-schedules.js';
import {
  addBankAccount, applyMetadataChange, changeBankAccount, findBankAccount, removeBankAccount, type BankAccountVault,
} from './bank-accounts.js';

/** A connected account, named by its platform merchant and its id. */
export interface AccountKey {
  readonly merchantId: string;
  readonly id: string;
}

export interface PageQuery {
  readonly limit: number;
  readonly startingAfter: string | undefined;
  readonly endingBefore: string | undefined;
}

/** An id Penny could have made (`acct_` and base-62), checked before any look-up. */
const accountIdPattern = /^acct_[A-Za-z0-9]{8,64}$/;

/**
 * Connected accounts (Stripe Connect): the sellers of a platform merchant, and their bank
 * accounts. Every operation names the platform, and an account of another platform, or a deleted
 * one, is answered as missing, never told apart.
 */
export class ConnectedAccounts {
  constructor(private readonly pool: pg.Pool, private readonly vault: BankAccountVault) {}

  /** A live connected account of the platform, read from the pool. */
  async get(key: AccountKey): Promise<ConnectedAccountRow> {
    return this.retrieve(this.pool, key);
  }

  /** The platform merchant's own payout schedule (`manual` until the operator sets one). */
  platformPayoutSchedule(merchantId: string): Promise<PayoutSchedule> {
    return platformPayoutSchedule(this.pool, merchantId);
  }

  async create(client: pg.PoolClient, merchantId: string, command: CreateAccountCommand): Promise<ConnectedAccountRow> {
    return insertConnectedAccount(client, {
      merchantId, id: newId('acct'), type: command.type, country: command.country, email: command.email,
      businessProfile: withoutNulls(command.businessProfile), metadata: command.metadata,
      payoutSchedule: command.payoutSchedule,
    });
  }

  async retrieve(db: Queryable, key: AccountKey, options: { forUpdate?: boolean; forShare?: boolean } = {}):
  Promise<ConnectedAccountRow> {
    const account = accountIdPattern.test(key.id) ? await selectConnectedAccount(db, key, options) : undefined;
    if (account === undefined) throw noSuchAccount(accountIdPattern.test(key.id) ? key.id : undefined, 'account');
    return account;
  }

  /**
   * A live connected account about to receive money (a transfer), share-locked to the end of the
   * caller's transaction: a delete (which locks the row for update, then checks that the account
   * holds no money) waits for the money to land and then refuses, or runs first and the account is
   * missing. Concurrent transfers to one account do not wait for each other.
   */
  async lockForIncomingMoney(client: pg.PoolClient, key: AccountKey): Promise<ConnectedAccountRow> {
    return this.retrieve(client, key, { forShare: true });
  }

  /**
   * The account a request with `Stripe-Account: id` acts as: the platform itself (its own id), or
   * one of its live connected accounts. Anything else is 404 `resource_missing` naming the header,
   * the same answer for a malformed id, another platform's account and a deleted one.
   */
  async actingAccount(merchantId: string, id: string): Promise<string | null> {
    if (id === merchantId) return null;
    if (accountIdPattern.test(id) && await connectedAccountExists(this.pool, { merchantId, id })) return id;
    throw noSuchAccount(accountIdPattern.test(id) ? id : undefined, 'Stripe-Account');
  }

  async update(client: pg.PoolClient, key: AccountKey, command: UpdateAccountCommand): Promise<ConnectedAccountRow> {
    return inTransaction(client, async () => {
      const before = await this.retrieve(client, key, { forUpdate: true });
      const after = await updateConnectedAccount(client, key, {
        email: command.email === undefined ? before.email : command.email,
        businessProfile: command.businessProfile === undefined ? before.businessProfile
          : withoutNulls({ ...before.businessProfile, ...command.businessProfile }),
        metadata: applyMetadataChange(before.metadata, command.metadata),
        payoutSchedule: command.payoutSchedule ?? before.payoutSchedule,
      });
      await recordAccountUpdated(client, before, after);
      return after;
    });
  }

  async list(merchantId: string, page: PageQuery) {
    const cursor = page.startingAfter ?? page.endingBefore;
    if (cursor !== undefined) await this.retrieve(this.pool, { merchantId, id: cursor });
    return selectConnectedAccountPage(this.pool, { merchantId, ...page });
  }

  /** Deletes an account that holds no money (Stripe's rule); afterwards it is answered as missing. */
  async delete(client: pg.PoolClient, key: AccountKey) {
    return inTransaction(client, async () => {
      await this.retrieve(client, key, { forUpdate: true });
      if (await holdsMoney(client, key.id)) {
        throw new PennyError({ code: 'account_balance_not_zero', param: 'account',
          message: `The account ${key.id} still holds money: pay out or transfer its balance before deleting it.` });
      }
      await markConnectedAccountDeleted(client, key);
      return { id: key.id, object: 'account', deleted: true };
    });
  }

  /** Adds a bank account to the connected account, under its lock; `account.updated` when it can now be paid. */
  async createBankAccount(client: pg.PoolClient, key: AccountKey, command: CreateBankAccountCommand):
  Promise<BankAccountRow> {
    const prepared = this.vault.prepare({ merchantId: key.merchantId, accountId: key.id }, command,
      externalAccountParams);
    return inTransaction(client, async () => {
      const before = await this.retrieve(client, key, { forUpdate: true });
      const bank = await addBankAccount(client, prepared, { defaultForCurrency: command.defaultForCurrency });
      await recordExternalAccountEvent(client, { type: 'account.external_account.created', bank });
      await recordAccountUpdated(client, before, { ...before, hasBankAccount: true });
      return bank;
    });
  }

  async retrieveBankAccount(key: AccountKey, id: string): Promise<BankAccountRow> {
    await this.retrieve(this.pool, key);
    return findBankAccount(this.pool, ownerOf(key), id);
  }

  async listBankAccounts(key: AccountKey, page: PageQuery) {
    await this.retrieve(this.pool, key);
    const cursor = page.startingAfter ?? page.endingBefore;
    if (cursor !== undefined) await findBankAccount(this.pool, ownerOf(key), cursor);
    return selectBankAccountPage(this.pool, { ...ownerOf(key), ...page });
  }

  async updateBankAccount(client: pg.PoolClient, key: AccountKey, change: { id: string;
    command: UpdateBankAccountCommand }): Promise<BankAccountRow> {
    return inTransaction(client, async () => {
      await this.retrieve(client, key, { forUpdate: true });
      const { after } = await changeBankAccount(client, ownerOf(key), change);
      await recordExternalAccountEvent(client, { type: 'account.external_account.updated', bank: after });
      return after;
    });
  }

  async deleteBankAccount(client: pg.PoolClient, key: AccountKey, id: string) {
    return inTransaction(client, async () => {
      const account = await this.retrieve(client, key, { forUpdate: true });
      const bank = await removeBankAccount(client, ownerOf(key), id);
      await recordExternalAccountEvent(client, { type: 'account.external_account.deleted', bank, deleted: true });
      const after = await this.retrieve(client, key);
      await recordAccountUpdated(client, account, after);
      return { id, object: 'bank_account', currency: bank.currency, deleted: true };
    });
  }
}

/**
 * Whether the connected account holds money, which forbids deleting it: any of its ledger
 * accounts with a balance, posted or pending. Until the balances work books sellers' money, it
 * finds none.
 */
export async function holdsMoney(db: Queryable, accountId: string): Promise<boolean> {
  return selectHoldsMoney(db, accountId);
}

function ownerOf(key: AccountKey) {
  return { merchantId: key.merchantId, accountId: key.id };
}

function withoutNulls<T extends Record<string, string | null | undefined>>(profile: T): Record<string, string> {
  return Object.fromEntries(Object.entries(profile).filter((entry): entry is [string, string] =>
    typeof entry[1] === 'string' && entry[1] !== ''));
}

function noSuchAccount(id: string | undefined, param: string): PennyError {
  return new PennyError({ code: 'resource_missing', param,
    message: id === undefined ? `The ${param} given names no account of yours.` : `No such account: '${id}'` });
}
