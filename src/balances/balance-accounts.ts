import type { Queryable } from '../db/pool.js';
import type { LedgerService } from '../ledger/ledger-service.js';
import * as store from './balance-accounts-store.js';
import type { AccountRole, OperatorAccountRole } from './balance-accounts-store.js';

/**
 * The ledger accounts that hold a merchant's money, one per role and currency
 * (docs/accounting.md, "Chart of accounts"): owned by the merchant, or by one of its connected
 * accounts (`ownerId`, an `acct_` id either way). Created on first use through the ledger's own
 * service, inside the caller's transaction.
 */
export type { AccountRole, OperatorAccountRole };

export const accountRoleTypes: Readonly<Record<AccountRole, 'asset' | 'liability' | 'revenue' | 'expense'>> = {
  psp_receivable: 'asset',
  merchant_pending: 'liability',
  merchant_available: 'liability',
  penny_revenue: 'revenue',
  psp_fees: 'expense',
};

export type MerchantAccounts = Readonly<Record<AccountRole, string>>;

const roles = Object.keys(accountRoleTypes) as AccountRole[];

/**
 * The operator's own accounts per currency (docs/accounting.md, operator-wide): its bank account
 * (an asset that never goes below zero), the PSP's batch-level fees that name no merchant, and the
 * suspense account for what a PSP payout paid that Penny cannot attribute to a merchant.
 */
export const operatorAccountRoles: Readonly<Record<OperatorAccountRole, { type: 'asset' | 'liability' | 'expense';
  limit: 'credits_must_not_exceed_debits' | undefined }>> = {
  operator_bank: { type: 'asset', limit: 'credits_must_not_exceed_debits' },
  psp_batch_fees: { type: 'expense', limit: undefined },
  settlement_suspense: { type: 'liability', limit: undefined },
};

export type OperatorAccounts = Readonly<Record<OperatorAccountRole, string>>;

const operatorRoles = Object.keys(operatorAccountRoles) as OperatorAccountRole[];

export class BalanceAccounts {
  /** owner:currency → accounts. Mappings never change once made. */
  private readonly accounts = new Map<string, MerchantAccounts>();
  private readonly operatorAccounts = new Map<string, OperatorAccounts>();
  /**
   * The sets each connection created (kept while the connection lives; the pool reuses it): that
   * connection never caches them, since it reads its own transaction's rows before they commit and
   * that transaction may still roll back. Another connection sees only committed rows and caches.
   * Found by penny simulate: a second look in the creating transaction cached the new accounts,
   * the transaction was lost with its connection, and later postings named accounts that never
   * existed (404 account_not_found).
   */
  private readonly createdBy = new WeakMap<object, Set<string>>();

  constructor(private readonly ledger: LedgerService) {}

  /**
   * The owner's accounts in a currency, created on first use, inside the caller's transaction
   * (under an advisory lock, so two first payments create them once). Only accounts known to be
   * committed are cached: found by a connection other than the one that created them.
   */
  accountsFor(db: Queryable, key: { ownerId: string; currency: string }): Promise<MerchantAccounts> {
    const { ownerId, currency } = key;
    return this.findOrCreate(db, { cache: this.accounts, lockOwner: ownerId, currency, roles,
      select: () => store.selectMerchantAccountRoles(db, ownerId, currency),
      // Through the ledger's own service: an account is the ledger's to create.
      create: async (role) => {
        const id = await this.ledger.createAccountIn(db, { currency, type: accountRoleTypes[role], code: role,
          owner: ownerId, metadata: {}, limit: undefined });
        await store.insertMerchantAccountRole(db, { merchantId: ownerId, currency, role, ledgerAccountId: id });
        return id;
      } });
  }

  /** The operator's accounts in a currency, created on first use as the merchants' are. */
  operatorAccountsFor(db: Queryable, currency: string): Promise<OperatorAccounts> {
    return this.findOrCreate(db, { cache: this.operatorAccounts, lockOwner: 'operator', currency,
      roles: operatorRoles, select: () => store.selectOperatorAccountRoles(db, currency),
      create: async (role) => {
        const { type, limit } = operatorAccountRoles[role];
        const id = await this.ledger.createAccountIn(db, { currency, type, code: undefined, owner: undefined,
          metadata: { penny_role: role }, limit });
        await store.insertOperatorAccountRole(db, { currency, role, ledgerAccountId: id });
        return id;
      } });
  }

  /** A set of role accounts: cached once all committed, else the missing ones created under the lock. */
  private async findOrCreate<R extends string>(db: Queryable, spec: { cache: Map<string, Readonly<Record<R, string>>>;
    lockOwner: string; currency: string; roles: readonly R[]; select: () => Promise<Map<R, string>>;
    create: (role: R) => Promise<string> }): Promise<Readonly<Record<R, string>>> {
    const cacheKey = `${spec.lockOwner}:${spec.currency}`;
    const cached = spec.cache.get(cacheKey);
    if (cached !== undefined) return cached;
    const found = await spec.select();
    if (found.size === spec.roles.length) {
      const accounts = Object.fromEntries(found) as Record<R, string>;
      if (this.createdBy.get(db)?.has(cacheKey) !== true) spec.cache.set(cacheKey, accounts);
      return accounts;
    }
    await store.lockMerchantAccountCreation(db, spec.lockOwner, spec.currency);
    const current = await spec.select();
    for (const role of spec.roles) {
      if (current.has(role)) continue;
      current.set(role, await spec.create(role));
      const created = this.createdBy.get(db) ?? new Set<string>();
      created.add(cacheKey);
      this.createdBy.set(db, created);
    }
    return Object.fromEntries(current) as Record<R, string>;
  }
}
