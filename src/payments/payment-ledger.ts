import { PennyError } from '../errors.js';
import type { Queryable } from '../db/pool.js';
import type { LedgerService } from '../ledger/ledger-service.js';
import type { CreateEntryCommand, Direction } from '../ledger/ledger-types.js';
import { fingerprint } from '../ledger/ledger-validation.js';
import * as store from './payment-ledger-store.js';
import type { AccountRole } from './payment-ledger-store.js';

/**
 * The entries payments post (docs/accounting.md, "Entries per payment event"), on the caller's
 * connection so they commit with the payment's own state. References are derived from the charge
 * or refund under Penny's reserved `penny:` prefix, so a resumed request replays, never doubles.
 */
export type { AccountRole };

const roleTypes: Record<AccountRole, 'asset' | 'liability' | 'revenue' | 'expense'> = {
  psp_receivable: 'asset',
  merchant_pending: 'liability',
  merchant_available: 'liability',
  penny_revenue: 'revenue',
  psp_fees: 'expense',
};

export type MerchantAccounts = Readonly<Record<AccountRole, string>>;

const roles = Object.keys(roleTypes) as AccountRole[];

export class PaymentLedger {
  /** merchant:currency → accounts. Mappings never change once made. */
  private readonly accounts = new Map<string, MerchantAccounts>();

  constructor(private readonly ledger: LedgerService) {}

  /**
   * The merchant's accounts in a currency, created on first use, inside the caller's transaction
   * (under an advisory lock, so two first payments create them once). Only accounts found already
   * committed are cached; new ones are cached the next time they are read.
   */
  async accountsFor(db: Queryable, merchantId: string, currency: string): Promise<MerchantAccounts> {
    const cacheKey = `${merchantId}:${currency}`;
    const cached = this.accounts.get(cacheKey);
    if (cached !== undefined) return cached;
    const found = await store.selectMerchantAccountRoles(db, merchantId, currency);
    if (found.size === roles.length) {
      const accounts = Object.fromEntries(found) as MerchantAccounts;
      this.accounts.set(cacheKey, accounts);
      return accounts;
    }
    await store.lockMerchantAccountCreation(db, merchantId, currency);
    const current = await store.selectMerchantAccountRoles(db, merchantId, currency);
    for (const role of roles) {
      if (current.has(role)) continue;
      // Through the ledger's own service: an account is the ledger's to create.
      const id = await this.ledger.createAccountIn(db, { currency, type: roleTypes[role], code: role,
        owner: merchantId, metadata: {}, limit: undefined });
      await store.insertMerchantAccountRole(db, { merchantId, currency, role, ledgerAccountId: id });
      current.set(role, id);
    }
    return Object.fromEntries(current) as MerchantAccounts;
  }

  /** Authorization: a hold from PSP receivable to the merchant's pending balance. */
  async authorize(db: Queryable, input: { accounts: MerchantAccounts; chargeId: string; amountMinor: bigint;
    expiresAt: string }): Promise<string> {
    const created = await this.ledger.createEntriesIn(db, [entry({
      reference: `penny:charge:${input.chargeId}:authorization`,
      description: `Authorization of ${input.chargeId}`,
      pending: true,
      expiresAt: input.expiresAt,
      legs: [[input.accounts.psp_receivable, 'debit', input.amountMinor],
        [input.accounts.merchant_pending, 'credit', input.amountMinor]],
    })]);
    return created.entries[0]?.id as string;
  }

  /**
   * Capture: the authorization hold posted (in part, the rest released) or, for automatic
   * capture, one entry; then Penny's fee and the PSP's expected fee, all in the caller's transaction.
   */
  async capture(db: Queryable, input: { accounts: MerchantAccounts; chargeId: string; amountMinor: bigint;
    authorizationEntryId: string | null; pennyFeeMinor: bigint; pspFeeMinor: bigint }): Promise<void> {
    const { accounts } = input;
    if (input.authorizationEntryId !== null) {
      await this.ledger.postHold(input.authorizationEntryId, input.amountMinor, db);
    }
    const commands: CreateEntryCommand[] = [];
    if (input.authorizationEntryId === null) {
      commands.push(entry({
        reference: `penny:charge:${input.chargeId}:capture`, description: `Capture of ${input.chargeId}`,
        legs: [[accounts.psp_receivable, 'debit', input.amountMinor], [accounts.merchant_pending, 'credit', input.amountMinor]],
      }));
    }
    if (input.pennyFeeMinor > 0n) {
      commands.push(entry({
        reference: `penny:charge:${input.chargeId}:penny_fee`, description: `Penny fee on ${input.chargeId}`,
        legs: [[accounts.merchant_pending, 'debit', input.pennyFeeMinor], [accounts.penny_revenue, 'credit', input.pennyFeeMinor]],
      }));
    }
    if (input.pspFeeMinor > 0n) {
      commands.push(entry({
        reference: `penny:charge:${input.chargeId}:psp_fee`, description: `Expected PSP fee on ${input.chargeId}`,
        legs: [[accounts.psp_fees, 'debit', input.pspFeeMinor], [accounts.psp_receivable, 'credit', input.pspFeeMinor]],
      }));
    }
    if (commands.length > 0) await this.ledger.createEntriesIn(db, commands);
  }

  /** Releases the authorization hold; one the ledger has already expired (or voided) is released already. */
  async cancelAuthorization(db: Queryable, authorizationEntryId: string): Promise<void> {
    try {
      await this.ledger.voidHold(authorizationEntryId, db);
    } catch (error) {
      if (error instanceof PennyError && (error.code === 'hold_expired' || error.code === 'hold_already_voided')) return;
      throw error;
    }
  }

  /** A refund takes the money back from the merchant (it may go negative) to the PSP. */
  async refund(
    db: Queryable,
    input: { accounts: MerchantAccounts; refundId: string; amountMinor: bigint },
  ): Promise<string> {
    const created = await this.ledger.createEntriesIn(db, [entry({
      reference: `penny:refund:${input.refundId}`, description: `Refund ${input.refundId}`,
      legs: [[input.accounts.merchant_available, 'debit', input.amountMinor],
        [input.accounts.psp_receivable, 'credit', input.amountMinor]],
    })]);
    return created.entries[0]?.id as string;
  }
}

function entry(input: { reference: string; description: string; pending?: boolean; expiresAt?: string;
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
