import type pg from 'pg';
import { nowMs } from '../clock.js';
import { limits } from '../config.js';
import { withTransaction, type Queryable } from '../db/pool.js';
import { recordEvent } from '../events/event-store.js';
import { PennyError } from '../errors.js';
import { newId } from '../ids.js';
import { internalEntry } from '../ledger/ledger-commands.js';
import type { LedgerService } from '../ledger/ledger-service.js';
import type { Direction } from '../ledger/ledger-types.js';
import { BalanceAccounts, type MerchantAccounts } from './balance-accounts.js';
import { selectOwnerAccountsOfRoles, selectReceivableCurrencies } from './balance-accounts-store.js';
import { presentBalance } from './balance-presenter.js';
import * as store from './balance-store.js';
import * as lines from './settlement-line-store.js';
import type { CurrencyBalance } from './balance-store.js';

/**
 * A merchant's money as Stripe shows it: the Balance (available and pending, per currency), read
 * from the ledger, which is the source of truth; and the BalanceTransactions that explain each
 * movement, written in the transaction of the movement itself. Funds of a capture are `pending`
 * until the PSP's settlement confirms them (or, in the fixed-delay mode, until their day comes),
 * then a ledger entry moves them from the pending to the available account and the transaction
 * becomes `available`.
 */
export interface BalanceOwner {
  /** The platform merchant (every row carries it). */
  readonly merchantId: string;
  /** Whose balance: the merchant itself, or one of its connected accounts. */
  readonly accountId: string;
}

export type { CurrencyBalance };

/** When captured funds become available (decisions.md, "Availability"). */
export type AvailabilityMode =
  | { readonly kind: 'settlement'; readonly expectedDelayDays: number }
  | { readonly kind: 'fixed_delay'; readonly delayDays: number };

export class BalanceService {
  readonly accounts: BalanceAccounts;

  constructor(private readonly pool: pg.Pool, private readonly ledger: LedgerService,
    readonly availability: AvailabilityMode = { kind: 'settlement', expectedDelayDays: 2 }) {
    this.accounts = new BalanceAccounts(ledger);
  }

  /** The owner's balance per currency, from its ledger accounts: exactly what the ledger says. */
  async balance(owner: BalanceOwner): Promise<CurrencyBalance[]> {
    const accounts = await selectOwnerAccountsOfRoles(this.pool, owner.accountId,
      ['merchant_available', 'merchant_pending']);
    const byCurrency = new Map<string, { availableMinor: bigint; pendingMinor: bigint }>();
    const ledgerAccounts = new Map((await this.ledger.getAccounts(accounts.map((account) => account.ledgerAccountId)))
      .map((ledgerAccount) => [ledgerAccount.id, ledgerAccount]));
    for (const account of accounts) {
      const balances = ledgerAccounts.get(account.ledgerAccountId)?.balances;
      if (balances === undefined) throw new Error(`ledger account ${account.ledgerAccountId} is missing`);
      // Liability accounts: the balance owed to the merchant is credits less debits, posted only.
      const owed = balances.creditsPosted - balances.debitsPosted;
      const current = byCurrency.get(account.currency) ?? { availableMinor: 0n, pendingMinor: 0n };
      byCurrency.set(account.currency, account.role === 'merchant_available'
        ? { ...current, availableMinor: owed } : { ...current, pendingMinor: owed });
    }
    return [...byCurrency].map(([currency, amounts]) => ({ currency, ...amounts }));
  }

  async retrieve(owner: BalanceOwner, id: string): Promise<store.BalanceTransactionRow> {
    const found = await store.selectBalanceTransaction(this.pool, { ...owner, id });
    if (found === undefined) {
      throw new PennyError({ code: 'resource_missing', param: 'id', message: `No such balance transaction: '${id}'` });
    }
    return found;
  }

  async list(query: store.BalanceTransactionListQuery) {
    const cursor = query.startingAfter ?? query.endingBefore;
    const found = cursor === undefined ? true
      : await store.selectBalanceTransaction(this.pool, { ...query, id: cursor }) !== undefined;
    if (!found) {
      throw new PennyError({ code: 'resource_missing', param: query.startingAfter === undefined ? 'ending_before'
        : 'starting_after', message: `No such balance transaction: '${cursor}'` });
    }
    return store.selectBalanceTransactionPage(this.pool, query);
  }

  /**
   * A capture's transaction, in the capture's transaction: the gross amount, Penny's processing
   * fee, pending until settlement (or available at once when the PSP says so).
   */
  recordCharge(db: Queryable, charge: BalanceOwner & { chargeId: string; currency: string; amountMinor: bigint;
    pennyFeeMinor: bigint }): Promise<store.BalanceTransactionRow> {
    return store.insertBalanceTransaction(db, {
      merchantId: charge.merchantId, accountId: charge.accountId, id: newId('txn'), type: 'charge',
      reportingCategory: 'charge', sourceId: charge.chargeId, currency: charge.currency,
      amountMinor: charge.amountMinor, feeMinor: charge.pennyFeeMinor,
      feeDetails: charge.pennyFeeMinor === 0n ? [] : [{ amountMinor: charge.pennyFeeMinor, type: 'stripe_fee',
        description: 'Penny processing fees', application: null }],
      status: 'pending', availableOn: this.expectedAvailability(), description: null,
    });
  }

  /** A refund's transaction: the money leaves the available balance at once. */
  recordRefund(db: Queryable, refund: BalanceOwner & { refundId: string; currency: string; amountMinor: bigint }):
  Promise<store.BalanceTransactionRow> {
    return this.recordMovement(db, { ...refund, type: 'refund', reportingCategory: 'refund', sourceId: refund.refundId,
      amountMinor: -refund.amountMinor, description: 'REFUND FOR CHARGE' });
  }

  /**
   * A movement of the available balance with no fee, available at once (a refund, a payout and
   * its return, a transfer on either side), in the caller's transaction; signed: negative leaves.
   */
  recordMovement(db: Queryable, movement: BalanceOwner & { type: store.BalanceTransactionType;
    reportingCategory: string; sourceId: string; currency: string; amountMinor: bigint; description: string | null }):
  Promise<store.BalanceTransactionRow> {
    return store.insertBalanceTransaction(db, {
      merchantId: movement.merchantId, accountId: movement.accountId, id: newId('txn'), type: movement.type,
      reportingCategory: movement.reportingCategory, sourceId: movement.sourceId, currency: movement.currency,
      amountMinor: movement.amountMinor, feeMinor: 0n, feeDetails: [], status: 'available',
      availableOn: new Date(nowMs()).toISOString(), description: movement.description,
    });
  }

  /** Whether the owner has ever held money in the currency (its role accounts exist). */
  async holdsCurrency(db: Queryable, key: { ownerId: string; currency: string }): Promise<boolean> {
    const held = await selectOwnerAccountsOfRoles(db, key.ownerId, ['merchant_available']);
    return held.some((account) => account.currency.trim() === key.currency);
  }


  /**
   * What an automatic payout pays, read in its own transaction: the available transactions of the
   * owner in the currency that no automatic payout has taken yet (locked), oldest first, and their
   * net sum; `limits.payoutLinkBatchRowsMax` rows a statement, so memory and locks stay bounded:
   * up to about `limits.automaticPayoutTransactionsMax` (one batch more at most) once they net to
   * `enoughMinor` (the payout step) or more; while they net to less (refunds and fees older than
   * the captures), on until they do, up to about `limits.automaticPayoutTransactionsReadMax`.
   * `complete` when every unpaid transaction was read.
   */
  async unpaidAvailable(db: Queryable, key: BalanceOwner & { currency: string; enoughMinor: bigint }):
  Promise<{ ids: string[]; netMinor: bigint; complete: boolean }> {
    const ids: string[] = [];
    let netMinor = 0n;
    let after: store.CreatedCursor | undefined;
    for (;;) {
      const rows = await store.selectUnpaidAvailable(db, { merchantId: key.merchantId, accountId: key.accountId,
        currency: key.currency, after, limit: limits.payoutLinkBatchRowsMax });
      for (const row of rows) {
        ids.push(row.id);
        netMinor += row.netMinor;
      }
      const last = rows[rows.length - 1];
      if (last === undefined || rows.length < limits.payoutLinkBatchRowsMax) return { ids, netMinor, complete: true };
      if ((ids.length >= limits.automaticPayoutTransactionsMax && netMinor >= key.enoughMinor)
        || ids.length >= limits.automaticPayoutTransactionsReadMax) return { ids, netMinor, complete: false };
      after = { createdAt: last.createdAt, id: last.id };
    }
  }

  /**
   * What every available transaction of the owner in the currency that no automatic payout has
   * taken yet nets to (one aggregate, nothing locked): at most what an automatic payout pays.
   */
  unpaidAvailableTotal(db: Queryable, key: BalanceOwner & { currency: string }): Promise<bigint> {
    return store.sumUnpaidAvailable(db, key);
  }

  /**
   * Links exactly the transactions an automatic payout pays (those it read, its own, and its
   * remainder's hold) to it (Stripe's `payout` filter, and the payout reconciliation report), in
   * the payout's transaction; `limits.payoutLinkBatchRowsMax` a statement. Answers how many.
   */
  async linkToAutomaticPayout(db: Queryable, payout: { merchantId: string; payoutId: string; ids: readonly string[] }):
  Promise<number> {
    let linked = 0;
    for (let at = 0; at < payout.ids.length; at += limits.payoutLinkBatchRowsMax) {
      linked += await store.linkToPayout(db, { merchantId: payout.merchantId, payoutId: payout.payoutId,
        ids: payout.ids.slice(at, at + limits.payoutLinkBatchRowsMax) });
    }
    return linked;
  }

  /** Every currency some merchant's PSP receivable is kept in: the settlement reports a pull reads. */
  receivableCurrencies(): Promise<string[]> {
    return selectReceivableCurrencies(this.pool);
  }

  /**
   * The PSP's payout of a settled batch to the operator's bank (docs/accounting.md, "The PSP pays
   * the operator"): one entry of its own, in the caller's transaction, that debits the operator's
   * bank account the amount paid and credits each merchant's PSP receivable its share of the batch
   * (a negative share, a merchant whose refunds and disputes outweighed its captures, is a debit);
   * the PSP's batch-level fees are the operator's expense, and what the payout paid beyond the
   * attributed lines (or short of them) goes to the suspense account. Posted once per payout
   * reference: a second pull of the report posts nothing, even if its lines were attributed
   * differently since (the first posting stands; reconciliation explains any difference).
   */
  async postPspPayout(db: Queryable, payout: { connectorId: string; payoutReference: string; currency: string;
    payoutMinor: bigint; shares: ReadonlyMap<string, bigint>; batchFeesMinor: bigint }):
  Promise<{ posted: boolean; entryId: string | undefined; differs: boolean }> {
    const reference = pspPayoutReference(payout.connectorId, payout.payoutReference);
    const operator = await this.accounts.operatorAccountsFor(db, payout.currency);
    const legs: [string, Direction, bigint][] = [];
    const signed = (account: string, creditMinor: bigint) => {
      if (creditMinor > 0n) legs.push([account, 'credit', creditMinor]);
      if (creditMinor < 0n) legs.push([account, 'debit', -creditMinor]);
    };
    signed(operator.operator_bank, -payout.payoutMinor);
    let attributedMinor = 0n;
    for (const [ownerId, shareMinor] of [...payout.shares].sort(([left], [right]) => left.localeCompare(right))) {
      const accounts = await this.accounts.accountsFor(db, { ownerId, currency: payout.currency });
      signed(accounts.psp_receivable, shareMinor);
      attributedMinor += shareMinor;
    }
    signed(operator.psp_batch_fees, -payout.batchFeesMinor);
    signed(operator.settlement_suspense, payout.payoutMinor - attributedMinor + payout.batchFeesMinor);
    try {
      const created = await this.ledger.createEntriesIn(db, [internalEntry({ reference,
        description: `${payout.connectorId} payout ${payout.payoutReference}`, legs })]);
      return { posted: !created.replayed, entryId: created.entries[0]?.id, differs: false };
    } catch (error) {
      // Posted already from the report as first read: the payout is not posted twice.
      if (error instanceof PennyError && error.code === 'reference_conflict') {
        return { posted: false, entryId: undefined, differs: true };
      }
      throw error;
    }
  }

  /**
   * A dispute's withdrawal (the disputed amount and the PSP's dispute fee leave the available
   * balance at once) or, when won, its reversal (the amount returns; the fee does not): an
   * `adjustment` of category `dispute` or `dispute_reversal`, sourced by the dispute.
   */
  recordDispute(db: Queryable, dispute: BalanceOwner & { disputeId: string; currency: string; amountMinor: bigint;
    feeMinor: bigint; reversal: boolean }): Promise<store.BalanceTransactionRow> {
    const fee = dispute.reversal ? 0n : dispute.feeMinor;
    return store.insertBalanceTransaction(db, {
      merchantId: dispute.merchantId, accountId: dispute.accountId, id: newId('txn'), type: 'adjustment',
      reportingCategory: dispute.reversal ? 'dispute_reversal' : 'dispute', sourceId: dispute.disputeId,
      currency: dispute.currency, amountMinor: dispute.reversal ? dispute.amountMinor : -dispute.amountMinor,
      feeMinor: fee, feeDetails: fee === 0n ? [] : [{ amountMinor: fee, type: 'stripe_fee', description: 'Dispute fee',
        application: null }],
      status: 'available', availableOn: new Date(nowMs()).toISOString(),
      description: dispute.reversal ? `Chargeback reversal for ${dispute.disputeId}`
        : `Chargeback withdrawal for ${dispute.disputeId}`,
    });
  }

  /**
   * A pending transaction riding on a charge (a destination charge's transfer and application
   * fee, on either side), in the capture's transaction: it waits for the charge's settlement, and
   * becomes available with it, as of the same day (`availableOn`, the charge's own expectation).
   */
  recordRider(db: Queryable, rider: BalanceOwner & { chargeId: string; type: store.BalanceTransactionType;
    reportingCategory: string; sourceId: string; currency: string; amountMinor: bigint; feeMinor: bigint;
    feeDetails: readonly store.FeeDetail[]; description: string | null; availableOn: string }):
  Promise<store.BalanceTransactionRow> {
    return store.insertBalanceTransaction(db, {
      merchantId: rider.merchantId, accountId: rider.accountId, id: newId('txn'), type: rider.type,
      reportingCategory: rider.reportingCategory, sourceId: rider.sourceId, currency: rider.currency,
      amountMinor: rider.amountMinor, feeMinor: rider.feeMinor, feeDetails: rider.feeDetails,
      status: 'pending', availableOn: rider.availableOn, description: rider.description, settlesWith: rider.chargeId,
    });
  }

  /**
   * Makes a charge's funds available, once, in the caller's transaction: its pending transaction
   * and those riding on it (a destination charge's transfer and fee, on either side) each move
   * their net from their owner's pending to its available account in one ledger entry, and become
   * available as of `availableOn`. Answers whose funds moved (the merchant, and a destination
   * charge's connected account), or undefined when there is no such pending charge (not booked by
   * Penny, or available already).
   */
  async makeChargeAvailable(db: Queryable, charge: { merchantId: string; chargeId: string; availableOn: string }):
  Promise<readonly BalanceOwner[] | undefined> {
    const pending = await store.selectBalanceTransactionBySource(db,
      { merchantId: charge.merchantId, sourceId: charge.chargeId, type: 'charge', reportingCategory: 'charge' },
      { forUpdate: true });
    if (pending?.status !== 'pending') return undefined;
    const riders = await store.selectPendingRiders(db, charge);
    for (const rider of riders) {
      await this.makeAvailable(db, rider, { availableOn: charge.availableOn,
        reference: `penny:balance_transaction:${rider.id}:available` });
    }
    await this.makeAvailable(db, pending, { availableOn: charge.availableOn,
      reference: `penny:charge:${charge.chargeId}:available` });
    const accountIds = new Set([pending.accountId, ...riders.map((rider) => rider.accountId)]);
    return [...accountIds].map((accountId) => ({ merchantId: charge.merchantId, accountId }));
  }

  /**
   * Serializes, in the caller's transaction, what touches the settlement of these PSP references: a
   * settlement pull applying the report's lines, and the booking of the capture they name (whichever
   * comes second sees what the first did). Taken in one statement, in sorted order.
   */
  lockSettlementReferences(db: Queryable, key: { connectorId: string; references: readonly string[] }): Promise<void> {
    const references = [...new Set(key.references)].sort();
    if (references.length === 0) return Promise.resolve();
    return lines.lockSettlementReferences(db, { connector: key.connectorId, references });
  }

  /**
   * A report's `Settled` line, under its reference's lock: the capture's funds made available as of
   * `availableOn` (`settled`), or available already (`alreadyAvailable`); a capture Penny has not
   * booked yet (no charge, or one whose capture's answer was lost) is recorded, so that its booking
   * makes it available at once, as of the same day (`unmatched`: nothing moved now).
   */
  async settleCapture(db: Queryable, line: { connectorId: string; reference: string;
    charge: { merchantId: string; chargeId: string } | undefined; availableOn: string }):
  Promise<{ result: 'settled' | 'alreadyAvailable' | 'unmatched'; owners: readonly BalanceOwner[] }> {
    if (line.charge !== undefined) {
      const made = await this.makeChargeAvailable(db, { ...line.charge, availableOn: line.availableOn });
      if (made !== undefined) return { result: 'settled', owners: made };
      if (await this.chargeBooked(db, line.charge)) return { result: 'alreadyAvailable', owners: [] };
    }
    await lines.insertUnbookedLine(db, { connector: line.connectorId, reference: line.reference,
      availableOn: line.availableOn });
    return { result: 'unmatched', owners: [] };
  }

  /**
   * A `Settled` line a PSP payout just posted left in settlement suspense (nobody's share: the
   * capture was not booked when the pull read it), under its reference's lock: recorded for the
   * capture's booking to move to the merchant's PSP receivable or, when the capture was booked
   * since, moved now.
   */
  async suspendedLine(db: Queryable, line: { connectorId: string; reference: string; currency: string;
    netMinor: bigint; charge: { merchantId: string; chargeId: string } | undefined }): Promise<void> {
    await lines.updateUnbookedLineSuspense(db, { connector: line.connectorId, reference: line.reference,
      currency: line.currency, suspenseMinor: line.netMinor });
    if (line.charge === undefined || !await this.chargeBooked(db, line.charge)) return;
    const rows = await lines.selectUnbookedLines(db, { connector: line.connectorId, references: [line.reference] });
    for (const row of rows) {
      await this.attributeSuspendedLine(db, { row, merchantId: line.charge.merchantId });
    }
  }

  /**
   * The booking of a capture, in its transaction, once its balance transaction (and those riding
   * on it) are written: when a settlement pull already read its `Settled` line (`references`, the
   * charge's and its attempt's), its funds become available at once, as of the line's day, and
   * what the PSP's payout left in suspense for it goes to the merchant's PSP receivable. The caller
   * holds the references' locks (lockSettlementReferences, taken before its ledger entries).
   */
  async bookedAfterSettlement(db: Queryable, capture: { connectorId: string; references: readonly string[];
    merchantId: string; chargeId: string }): Promise<void> {
    const references = [...new Set(capture.references)].sort();
    const rows = await lines.selectUnbookedLines(db, { connector: capture.connectorId, references });
    const first = rows[0];
    if (first === undefined) return;
    await this.makeChargeAvailable(db, { merchantId: capture.merchantId, chargeId: capture.chargeId,
      availableOn: first.availableOn });
    for (const row of rows) await this.attributeSuspendedLine(db, { row, merchantId: capture.merchantId });
  }

  /** Whether the charge's own balance transaction is written (its capture booked). */
  private async chargeBooked(db: Queryable, charge: { merchantId: string; chargeId: string }): Promise<boolean> {
    return await store.selectBalanceTransactionBySource(db, { merchantId: charge.merchantId, sourceId: charge.chargeId,
      type: 'charge', reportingCategory: 'charge' }) !== undefined;
  }

  /** Settlement suspense to the merchant's PSP receivable, the line's net: once (its reference). */
  private async attributeSuspendedLine(db: Queryable, at: { row: lines.UnbookedLineRow; merchantId: string }):
  Promise<void> {
    const { row } = at;
    if (row.suspenseCurrency === null || row.suspenseMinor === null || row.suspenseMinor === 0n) return;
    const operator = await this.accounts.operatorAccountsFor(db, row.suspenseCurrency);
    const accounts = await this.accounts.accountsFor(db, { ownerId: at.merchantId, currency: row.suspenseCurrency });
    const amountMinor = row.suspenseMinor > 0n ? row.suspenseMinor : -row.suspenseMinor;
    const [debit, credit] = row.suspenseMinor > 0n ? [operator.settlement_suspense, accounts.psp_receivable]
      : [accounts.psp_receivable, operator.settlement_suspense];
    await this.ledger.createEntriesIn(db, [internalEntry({
      reference: `penny:settlement_line:${row.connector}:${row.merchantReference}:attributed`,
      description: `Settled line ${row.merchantReference} attributed once booked`,
      legs: [[debit, 'debit', amountMinor], [credit, 'credit', amountMinor]],
    })]);
  }

  private async makeAvailable(db: Queryable, transaction: store.BalanceTransactionRow,
    at: { availableOn: string; reference: string }): Promise<store.BalanceTransactionRow> {
    const accounts = await this.accounts.accountsFor(db, { ownerId: transaction.accountId,
      currency: transaction.currency });
    const entryId = await this.postAvailability(db, { accounts, sourceId: transaction.sourceId,
      netMinor: transaction.netMinor, reference: at.reference });
    return store.markBalanceTransactionAvailable(db, transaction,
      { availableOn: at.availableOn, availabilityEntryId: entryId });
  }

  /** Pending to available for a positive net; back the other way for a negative one (fees above the amount). */
  private async postAvailability(db: Queryable, input: { accounts: MerchantAccounts; sourceId: string;
    netMinor: bigint; reference: string }): Promise<string | null> {
    if (input.netMinor === 0n) return null;
    const { merchant_pending: pending, merchant_available: available } = input.accounts;
    const amountMinor = input.netMinor > 0n ? input.netMinor : -input.netMinor;
    const [from, to] = input.netMinor > 0n ? [pending, available] : [available, pending];
    const created = await this.ledger.createEntriesIn(db, [internalEntry({
      reference: input.reference, description: `Funds of ${input.sourceId} available`,
      legs: [[from, 'debit', amountMinor], [to, 'credit', amountMinor]],
    })]);
    const entry = created.entries[0];
    if (entry === undefined) throw new Error(`no availability entry for ${input.sourceId}`);
    return entry.id;
  }

  /**
   * The fixed-delay mode (PENNY_FUNDS_AVAILABILITY=T+n): charges whose day has come, up to
   * `limits.availabilityBatchMax` a run, each made available in a transaction of its own, then
   * `balance.available` for each merchant whose funds moved. Nothing in the settlement mode.
   */
  async releaseDue(): Promise<number> {
    if (this.availability.kind !== 'fixed_delay') return 0;
    const due = await store.selectDuePendingTransactions(this.pool,
      { now: new Date(nowMs()).toISOString(), limit: limits.availabilityBatchMax });
    const owners: BalanceOwner[] = [];
    for (const transaction of due.filter((row) => row.type === 'charge')) {
      const made = await withTransaction(this.pool, (client) => this.makeChargeAvailable(client, {
        merchantId: transaction.merchantId, chargeId: transaction.sourceId, availableOn: transaction.availableOn }));
      owners.push(...made ?? []);
    }
    return this.announceAvailableTo(owners);
  }

  /** balance.available once for each owner whose funds moved; answers how many were told. */
  async announceAvailableTo(owners: readonly BalanceOwner[]): Promise<number> {
    const distinct = new Map(owners.map((owner) => [`${owner.merchantId}/${owner.accountId}`, owner]));
    for (const owner of distinct.values()) await this.announceAvailable(owner.merchantId, owner.accountId);
    return distinct.size;
  }

  /**
   * Stripe's balance.available: the Balance of the merchant, or of one of its connected accounts
   * (the event then names it in `account`), as it now is.
   */
  async announceAvailable(merchantId: string, accountId: string = merchantId): Promise<void> {
    const balance = await this.balance({ merchantId, accountId });
    await recordEvent(this.pool, { merchantId, account: accountId, type: 'balance.available',
      object: presentBalance(balance) });
  }

  /** When a new capture's funds are expected: its settlement's usual delay, or the fixed delay. */
  private expectedAvailability(): string {
    const days = this.availability.kind === 'settlement' ? this.availability.expectedDelayDays
      : this.availability.delayDays;
    return new Date(nowMs() + days * 86_400_000).toISOString();
  }
}

/** The ledger reference of a PSP's payout to the operator: one per connector and payout (batch) reference. */
export function pspPayoutReference(connectorId: string, payoutReference: string): string {
  return `penny:psp_payout:${connectorId}:${payoutReference}`;
}
