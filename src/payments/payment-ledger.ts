import { nowMs } from '../clock.js';
import { PennyError } from '../errors.js';
import type { Queryable } from '../db/pool.js';
import type { LedgerService } from '../ledger/ledger-service.js';
import type { CreateEntryCommand } from '../ledger/ledger-types.js';
import { internalEntry as entry } from '../ledger/ledger-commands.js';
import type { AccountRole, MerchantAccounts } from '../balances/balance-accounts.js';
import type { BalanceService } from '../balances/balance-service.js';
import type { DestinationCharges, DestinationSplit } from './destination-charges.js';

/**
 * The entries payments post (docs/accounting.md, "Entries per payment event"), on the caller's
 * connection so they commit with the payment's own state. References are derived from the charge
 * or refund under Penny's reserved `penny:` prefix, so a resumed request replays, never doubles.
 */
export type { AccountRole, MerchantAccounts };

export class PaymentLedger {
  constructor(private readonly ledger: LedgerService, private readonly balances: BalanceService,
    private readonly destinationCharges?: DestinationCharges) {}

  /** Connect's side of destination charges; refused loudly where Penny was built without it. */
  get destinations(): DestinationCharges {
    if (this.destinationCharges === undefined) throw new Error('destination charges are not wired in');
    return this.destinationCharges;
  }

  /** The merchant's accounts in a currency (src/balances/balance-accounts.ts), created on first use. */
  accountsFor(db: Queryable, merchantId: string, currency: string): Promise<MerchantAccounts> {
    return this.balances.accounts.accountsFor(db, { ownerId: merchantId, currency });
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
   * capture, one entry; then Penny's fee and the PSP's expected fee, with the charge's balance
   * transaction (gross, Penny's fee, pending), and for a destination charge its transfer and
   * application fee: all in the caller's transaction; made available at once when a settlement pull
   * already read its line (docs/accounting.md, "A capture booked after its settlement"). Answers
   * what the split made.
   */
  async capture(db: Queryable, input: { merchantId: string; currency: string; accounts: MerchantAccounts;
    chargeId: string; paymentIntentId: string; settlement: { connectorId: string; attemptId: string };
    amountMinor: bigint; authorizationEntryId: string | null;
    pennyFeeMinor: bigint; pspFeeMinor: bigint; fundsAvailableImmediately: boolean; split: DestinationSplit | null }):
  Promise<{ transferId: string; applicationFeeId: string | null } | null> {
    const { accounts } = input;
    // First, before any account is locked: a settlement pull applying this capture's line waits, or is waited for.
    const settlementReferences = [input.chargeId, input.settlement.attemptId];
    await this.balances.lockSettlementReferences(db, { connectorId: input.settlement.connectorId,
      references: settlementReferences });
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
    const charged = await this.balances.recordCharge(db, { merchantId: input.merchantId, accountId: input.merchantId,
      chargeId: input.chargeId, currency: input.currency, amountMinor: input.amountMinor,
      pennyFeeMinor: input.pennyFeeMinor });
    const made = input.split === null ? null : await this.destinations.captured(db, { merchantId: input.merchantId,
      chargeId: input.chargeId, paymentIntentId: input.paymentIntentId, currency: input.currency,
      capturedMinor: input.amountMinor, split: input.split, availableOn: charged.availableOn });
    // pm_card_bypassPending: the PSP does not make these funds wait for settlement.
    if (input.fundsAvailableImmediately) {
      await this.balances.makeChargeAvailable(db, { merchantId: input.merchantId, chargeId: input.chargeId,
        availableOn: new Date(nowMs()).toISOString() });
    }
    // A settlement pull that read this capture's line before it was booked: available now, as of the line's day.
    await this.balances.bookedAfterSettlement(db, { connectorId: input.settlement.connectorId,
      references: settlementReferences, merchantId: input.merchantId, chargeId: input.chargeId });
    return made;
  }

  /**
   * A dispute opened: its amount and the PSP's fee leave the merchant's available balance (not
   * guarded: an involuntary debit may take it negative, decisions.md) back to the PSP, with the
   * dispute's balance transaction; when won, the amount returns.
   */
  async dispute(db: Queryable, input: { merchantId: string; currency: string; accounts: MerchantAccounts;
    disputeId: string; amountMinor: bigint; feeMinor: bigint; reversal: boolean }): Promise<void> {
    const { accounts, disputeId } = input;
    const commands: CreateEntryCommand[] = [];
    if (input.reversal) {
      commands.push(entry({ reference: `penny:dispute:${disputeId}:reversal`, description: `Dispute ${disputeId} won`,
        legs: [[accounts.psp_receivable, 'debit', input.amountMinor], [accounts.merchant_available, 'credit', input.amountMinor]] }));
    } else {
      commands.push(entry({ reference: `penny:dispute:${disputeId}:withdrawal`, description: `Dispute ${disputeId}`,
        legs: [[accounts.merchant_available, 'debit', input.amountMinor], [accounts.psp_receivable, 'credit', input.amountMinor]] }));
      if (input.feeMinor > 0n) {
        commands.push(entry({ reference: `penny:dispute:${disputeId}:fee`, description: `Dispute fee of ${disputeId}`,
          legs: [[accounts.merchant_available, 'debit', input.feeMinor], [accounts.psp_receivable, 'credit', input.feeMinor]] }));
      }
    }
    await this.ledger.createEntriesIn(db, commands);
    await this.balances.recordDispute(db, { merchantId: input.merchantId, accountId: input.merchantId,
      disputeId, currency: input.currency, amountMinor: input.amountMinor, feeMinor: input.feeMinor,
      reversal: input.reversal });
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
    input: { merchantId: string; currency: string; accounts: MerchantAccounts; refundId: string; amountMinor: bigint },
  ): Promise<string> {
    const created = await this.ledger.createEntriesIn(db, [entry({
      reference: `penny:refund:${input.refundId}`, description: `Refund ${input.refundId}`,
      legs: [[input.accounts.merchant_available, 'debit', input.amountMinor],
        [input.accounts.psp_receivable, 'credit', input.amountMinor]],
    })]);
    await this.balances.recordRefund(db, { merchantId: input.merchantId, accountId: input.merchantId,
      refundId: input.refundId, currency: input.currency, amountMinor: input.amountMinor });
    return created.entries[0]?.id as string;
  }
}
