import type { Queryable } from '../db/pool.js';
import type { LedgerService } from '../ledger/ledger-service.js';
import * as store from './balance-accounts-store.js';
import type { AccountRole } from './balance-accounts-store.js';

/**
 * The ledger accounts that hold a merchant's money, one per role and currency
 * (docs/accounting.md, "Chart of accounts"): owned by the merchant, or by one of its connected
 * accounts (`ownerId`, an `acct_` id either way). Created on first use through the ledger's own
 * service, inside the caller's transaction.
 */
export type { AccountRole };

export const accountRoleTypes: Readonly<Record<AccountRole, 'asset' | 'liability' | 'revenue' | 'expense'>> = {
  psp_receivable: 'asset',
  merchant_pending: 'liability',
  merchant_available: 'liability',
  penny_revenue: 'revenue',
  psp_fees: 'expense',
};

export type MerchantAccounts = Readonly<Record<AccountRole, string>>;

const roles = Object.keys(accountRoleTypes) as AccountRole[];

export class BalanceAccounts {
  /** owner:currency → accounts. Mappings never change once made. */
  private readonly accounts = new Map<string, MerchantAccounts>();

  constructor(private readonly ledger: LedgerService) {}

  /**
   * The owner's accounts in a currency, created on first use, inside the caller's transaction
   * (under an advisory lock, so two first payments create them once). Only accounts found already
   * committed are cached; new ones are cached the next time they are read.
   */
  async accountsFor(db: Queryable, key: { ownerId: string; currency: string }): Promise<MerchantAccounts> {
    const { ownerId, currency } = key;
    const cacheKey = `${ownerId}:${currency}`;
    const cached = this.accounts.get(cacheKey);
    if (cached !== undefined) return cached;
    const found = await store.selectMerchantAccountRoles(db, ownerId, currency);
    if (found.size === roles.length) {
      const accounts = Object.fromEntries(found) as MerchantAccounts;
      this.accounts.set(cacheKey, accounts);
      return accounts;
    }
    await store.lockMerchantAccountCreation(db, ownerId, currency);
    const current = await store.selectMerchantAccountRoles(db, ownerId, currency);
    for (const role of roles) {
      if (current.has(role)) continue;
      // Through the ledger's own service: an account is the ledger's to create.
      const id = await this.ledger.createAccountIn(db, { currency, type: accountRoleTypes[role], code: role,
        owner: ownerId, metadata: {}, limit: undefined });
      await store.insertMerchantAccountRole(db, { merchantId: ownerId, currency, role, ledgerAccountId: id });
      current.set(role, id);
    }
    return Object.fromEntries(current) as MerchantAccounts;
  }
}
