import type pg from 'pg';
import type { ConnectedAccounts } from '../accounts/account-service.js';
import type { BalanceService } from '../balances/balance-service.js';
import type { Queryable } from '../db/pool.js';
import { PennyError } from '../errors.js';
import { recordEvent } from '../events/event-store.js';
import { newId } from '../ids.js';
import type { LedgerService } from '../ledger/ledger-service.js';
import { stripeAmountToMinor } from '../money/stripe-currency.js';
import { lockChargeOfReference } from '../payments/payment-service.js';
import { lockIncomingAccount, moveBetweenOwners, recordSides } from './owner-movements.js';
import { presentTransfer } from './transfer-presenter.js';
import * as store from './transfer-store.js';

/**
 * Separate charges and transfers (each operation in the caller's transaction: the idempotent
 * request's, which stores its answer with it): a platform moves funds from its available balance to one of
 * its connected accounts' (a voluntary outflow, so the debit is guarded, decisions.md: concurrent
 * transfers never take the platform below zero), and reverses them in whole or in part (the
 * connected account's debit guarded likewise). Each movement is one ledger entry with a balance
 * transaction on either side, in the idempotent request's transaction.
 */
export interface CreateTransferCommand {
  /** In Stripe's units of the currency. */
  readonly amount: bigint;
  /** Lower case, as Stripe takes it. */
  readonly currency: string;
  readonly destination: string;
  readonly sourceTransaction: string | undefined;
  readonly transferGroup: string | undefined;
  readonly description: string | undefined;
  readonly metadata: Record<string, string>;
}

export interface ReverseTransferCommand {
  /** Absent: what is left of the transfer. */
  readonly amount: bigint | undefined;
  readonly metadata: Record<string, string>;
}

export interface TransferDependencies {
  readonly ledger: LedgerService;
  readonly balances: BalanceService;
  readonly accounts: ConnectedAccounts;
}

export class TransferService {
  constructor(private readonly pool: pg.Pool, private readonly dependencies: TransferDependencies) {}

  async create(client: pg.PoolClient, merchantId: string, command: CreateTransferCommand): Promise<store.TransferRow> {
    await this.lockDestination(client, merchantId, command.destination);
    const currency = command.currency.toUpperCase();
    const amountMinor = stripeAmountToMinor(command.currency, command.amount);
    const sourceTransaction = command.sourceTransaction === undefined ? null
      : await this.assertWithinSource(client, { merchantId, reference: command.sourceTransaction, currency,
        amountMinor });
    const id = newId('tr');
    const entryId = await this.move(client, { merchantId, from: merchantId, to: command.destination, currency,
      amountMinor, reference: `penny:transfer:${id}`, guardedParam: 'amount' });
    const transfer = await store.insertTransfer(client, { merchantId, id, destination: command.destination, currency,
      amountMinor, sourceTransaction, destinationPayment: null,
      transferGroup: command.transferGroup ?? null,
      description: command.description ?? null, metadata: command.metadata, ledgerEntryId: entryId });
    await this.recordTransactions(client, { merchantId, sourceId: id, currency, amountMinor,
      platform: { accountId: merchantId, type: 'transfer', sign: -1n },
      destination: { accountId: command.destination, type: 'payment', sign: 1n }, reportingCategory: 'transfer' });
    await this.recordTransferEvent(client, 'transfer.created', transfer);
    return transfer;
  }

  async reverse(client: pg.PoolClient, key: { merchantId: string; id: string }, command: ReverseTransferCommand):
  Promise<store.TransferReversalRow> {
    const transfer = await store.selectTransfer(client, key, { forUpdate: true });
    if (transfer === undefined) throw noSuchTransfer(key.id);
    const left = transfer.amountMinor - transfer.amountReversedMinor;
    const amountMinor = command.amount === undefined ? left
      : stripeAmountToMinor(transfer.currency.toLowerCase(), command.amount);
    if (left === 0n || amountMinor > left) {
      throw new PennyError({ code: 'amount_too_large', param: 'amount', judgedOnState: true,
        message: `The reversal (${amountMinor}) is more than is left of transfer ${transfer.id} (${left}).` });
    }
    const id = newId('trr');
    const entryId = await this.move(client, { merchantId: key.merchantId, from: transfer.destination,
      to: key.merchantId, currency: transfer.currency, amountMinor, reference: `penny:transfer_reversal:${id}`,
      guardedParam: 'amount' });
    const reversal = await store.insertTransferReversal(client, { merchantId: key.merchantId, id,
      transferId: transfer.id, amountMinor, metadata: command.metadata, sourceRefund: null,
      ledgerEntryId: entryId });
    const updated = await store.addTransferReversed(client, transfer, amountMinor);
    await this.recordTransactions(client, { merchantId: key.merchantId, sourceId: id, currency: transfer.currency,
      amountMinor, platform: { accountId: key.merchantId, type: 'transfer_refund', sign: 1n },
      destination: { accountId: transfer.destination, type: 'payment_refund', sign: -1n },
      reportingCategory: 'transfer_reversal' });
    await this.recordTransferEvent(client, 'transfer.reversed', updated);
    return reversal;
  }

  retrieve(key: { merchantId: string; id: string }): Promise<store.TransferRow> {
    return this.retrieveIn(this.pool, key);
  }

  /** A transfer as the caller's connection (and transaction) sees it. */
  async retrieveIn(db: Queryable, key: { merchantId: string; id: string }): Promise<store.TransferRow> {
    const transfer = await store.selectTransfer(db, key);
    if (transfer === undefined) throw noSuchTransfer(key.id);
    return transfer;
  }

  reversalsOf(transfer: store.TransferRow): Promise<store.TransferReversalRow[]> {
    return store.selectTransferReversals(this.pool, transfer);
  }

  async list(query: Parameters<typeof store.selectTransferPage>[1]) {
    const cursor = query.startingAfter ?? query.endingBefore;
    if (cursor !== undefined && await store.selectTransfer(this.pool, { merchantId: query.merchantId, id: cursor })
      === undefined) {
      throw new PennyError({ code: 'resource_missing', param: query.startingAfter === undefined ? 'ending_before'
        : 'starting_after', message: `No such transfer: '${cursor}'` });
    }
    return store.selectTransferPage(this.pool, query);
  }

  /**
   * A live connected account of this platform, share-locked in the transfer's transaction so a
   * delete of the account cannot run between this check and the money landing (the delete waits,
   * then finds the money and refuses; or it ran first, and the account is missing). Another
   * platform's account, or a deleted one, is a 404.
   */
  private lockDestination(client: pg.PoolClient, merchantId: string, destination: string): Promise<void> {
    return lockIncomingAccount(this.dependencies.accounts, client, { merchantId, accountId: destination },
      'destination');
  }

  /**
   * A transfer naming its source charge passes on no more than the charge kept (captured less
   * refunded). The charge's row is locked (FOR UPDATE) before the earlier transfers are summed and
   * held until this transaction, which inserts the transfer, commits: concurrent transfers from one
   * charge (to any destinations) and its refunds are serialized, and each reads what the one before
   * it left. Lock order: the destination account's share lock (lockDestination), then the source
   * charge, then the ledger accounts (the posting). Refunds and disputes take the charge, then
   * transfer rows and ledger accounts, never a connected account's row; nothing that locks a
   * connected account's row exclusively (update, delete, bank accounts) waits on a charge; and a
   * reversal locks its transfer and the ledger, never the charge. So no cycle can form.
   */
  private async assertWithinSource(db: Queryable, source: { merchantId: string; reference: string; currency: string;
    amountMinor: bigint }): Promise<string> {
    const charge = await lockChargeOfReference(db, { merchantId: source.merchantId, reference: source.reference });
    if (charge === undefined || charge.merchantId !== source.merchantId || !charge.captured) {
      throw new PennyError({ code: 'resource_missing', param: 'source_transaction',
        message: `No such charge to transfer from: '${source.reference}'` });
    }
    if (charge.currency.toUpperCase() !== source.currency) {
      throw new PennyError({ code: 'currency_mismatch', param: 'currency',
        message: `The transfer's currency must be the source charge's (${charge.currency}).` });
    }
    const kept = stripeAmountToMinor(charge.currency, charge.amountCaptured - charge.amountRefunded);
    // Counted under either name of the charge; a new transfer names it by its id (ch_…), whichever it was given.
    const transferred = await store.selectTransferredFromSource(db, { merchantId: source.merchantId,
      references: [charge.id, charge.attemptId] });
    if (transferred + source.amountMinor > kept) {
      throw new PennyError({ code: 'amount_too_large', param: 'amount', judgedOnState: true,
        message: `The transfer would pass on more than charge ${charge.id} kept (${kept - transferred} left).` });
    }
    return charge.id;
  }

  /** One entry from one owner's available balance to another's, the debit guarded. */
  private move(db: Queryable, movement: { merchantId: string; from: string; to: string; currency: string;
    amountMinor: bigint; reference: string; guardedParam: string }): Promise<string> {
    return moveBetweenOwners(this.dependencies, db, { ...movement, role: 'merchant_available',
      description: `Transfer from ${movement.from} to ${movement.to}`, guardedParam: movement.guardedParam });
  }

  private recordTransactions(db: Queryable, movement: { merchantId: string; sourceId: string;
    currency: string; amountMinor: bigint; reportingCategory: string;
    platform: { accountId: string; type: 'transfer' | 'transfer_refund'; sign: bigint };
    destination: { accountId: string; type: 'payment' | 'payment_refund'; sign: bigint } }): Promise<void> {
    return recordSides(this.dependencies.balances, db, { ...movement,
      sides: [movement.platform, movement.destination].map((side) => ({ accountId: side.accountId, type: side.type,
        amountMinor: side.sign * movement.amountMinor })) });
  }


  private async recordTransferEvent(db: Queryable, type: string, transfer: store.TransferRow): Promise<void> {
    await recordEvent(db, { merchantId: transfer.merchantId, type, object: presentTransfer(transfer, []) });
  }
}

function noSuchTransfer(id: string): PennyError {
  return new PennyError({ code: 'resource_missing', param: 'id', message: `No such transfer: '${id}'` });
}
