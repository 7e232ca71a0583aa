import type pg from 'pg';
import type { ConnectedAccounts } from '../accounts/account-service.js';
import type { BalanceService } from '../balances/balance-service.js';
import type { Queryable } from '../db/pool.js';
import { recordEvent } from '../events/event-store.js';
import { newId } from '../ids.js';
import type { LedgerService } from '../ledger/ledger-service.js';
import { refundShareMinor } from '../money/proportional.js';
import type {
  CapturedDestinationCharge, DestinationCharges, RefundedDestinationCharge,
} from '../payments/destination-charges.js';
import { applicationOf, presentApplicationFee } from './application-fee-presenter.js';
import * as feeStore from './application-fee-store.js';
import { lockIncomingAccount, moveBetweenOwners, recordSides } from './owner-movements.js';
import { presentTransfer } from './transfer-presenter.js';
import * as store from './transfer-store.js';

/**
 * Destination charges, as Stripe makes them (docs/accounting.md, "Destination charges"): the
 * charge is the platform's; at its capture a Transfer (tr_) passes the destination's share from
 * the platform's pending balance to the connected account's, and an ApplicationFee (fee_) brings
 * the platform's fee back from it. Both ride on the charge: pending until the charge settles,
 * available with it. A refund may reverse the transfer and refund the fee in proportion
 * (rounded down; the refund completing the charge takes the remainder), from the available
 * balances, posted even into the negative: the refund itself is not the seller's choice.
 */
export interface DestinationChargeDependencies {
  readonly ledger: LedgerService;
  readonly balances: BalanceService;
  readonly accounts: ConnectedAccounts;
}

export class DestinationChargeSplits implements DestinationCharges {
  constructor(private readonly dependencies: DestinationChargeDependencies) {}

  lockConnectedAccount(client: pg.PoolClient, key: { merchantId: string; accountId: string }, param: string):
  Promise<void> {
    return lockIncomingAccount(this.dependencies.accounts, client, key, param);
  }

  async captured(db: Queryable, capture: CapturedDestinationCharge):
  Promise<{ transferId: string; applicationFeeId: string | null }> {
    const { split, merchantId, chargeId, currency } = capture;
    const transferMinor = split.transferAmountMinor ?? capture.capturedMinor;
    const feeMinor = split.transferAmountMinor === null ? split.applicationFeeMinor ?? 0n : 0n;
    if (transferMinor > capture.capturedMinor || feeMinor > transferMinor) {
      throw new Error(`destination split of ${chargeId} (${transferMinor}, fee ${feeMinor}) exceeds its capture`);
    }
    const transferId = newId('tr');
    const paymentId = newId('py');
    const entryId = await this.movePending(db, { from: merchantId, to: split.destination, currency,
      amountMinor: transferMinor, reference: `penny:charge:${chargeId}:transfer`,
      description: `Transfer of ${chargeId} to ${split.destination}` });
    const transfer = await store.insertTransfer(db, { merchantId, id: transferId, destination: split.destination,
      currency, amountMinor: transferMinor, sourceTransaction: chargeId, destinationPayment: paymentId,
      transferGroup: split.transferGroup ?? `group_${capture.paymentIntentId}`, description: null, metadata: {},
      ledgerEntryId: entryId });
    const fee = feeMinor === 0n ? undefined : await this.takeFee(db, { capture, feeMinor });
    await this.recordRiders(db, { capture, transferId, paymentId, transferMinor, fee });
    await recordEvent(db, { merchantId, type: 'transfer.created', object: presentTransfer(transfer, []) });
    if (fee !== undefined) {
      await recordEvent(db, { merchantId, type: 'application_fee.created', object: presentApplicationFee(fee, []) });
    }
    return { transferId, applicationFeeId: fee?.id ?? null };
  }

  async refunded(db: Queryable, refund: RefundedDestinationCharge):
  Promise<{ transferReversalId: string | null; applicationFeeRefundId: string | null }> {
    const key = { merchantId: refund.merchantId, chargeId: refund.chargeId };
    const transfer = refund.reverseTransfer
      ? await store.selectDestinationTransferOfCharge(db, key, { forUpdate: true }) : undefined;
    const fee = refund.refundApplicationFee
      ? await feeStore.selectApplicationFeeOfCharge(db, key, { forUpdate: true }) : undefined;
    return {
      transferReversalId: transfer === undefined ? null : await this.reverseShare(db, { refund, transfer }),
      applicationFeeRefundId: fee === undefined ? null : await this.refundFeeShare(db, { refund, fee }),
    };
  }

  /** The refund's share of the transfer, from the connected account's available balance back to the platform's. */
  private async reverseShare(db: Queryable, input: { refund: RefundedDestinationCharge; transfer: store.TransferRow }):
  Promise<string | null> {
    const { refund, transfer } = input;
    const amountMinor = shareOf(refund, { partMinor: transfer.amountMinor,
      cumulativeMinor: refund.reversingRefundedMinor,
      givenByRefundsMinor: await store.selectReversedByRefunds(db, transfer),
      leftMinor: transfer.amountMinor - transfer.amountReversedMinor });
    if (amountMinor <= 0n) return null;
    const id = newId('trr');
    const entryId = await moveBetweenOwners(this.dependencies, db, { from: transfer.destination,
      to: refund.merchantId, currency: transfer.currency, amountMinor, role: 'merchant_available',
      reference: `penny:refund:${refund.refundId}:transfer_reversal`,
      description: `Reversal of ${transfer.id} for refund ${refund.refundId}`, guardedParam: null });
    await store.insertTransferReversal(db, { merchantId: refund.merchantId, id, transferId: transfer.id, amountMinor,
      metadata: {}, sourceRefund: refund.refundId, ledgerEntryId: entryId });
    const updated = await store.addTransferReversed(db, transfer, amountMinor);
    await recordSides(this.dependencies.balances, db, { merchantId: refund.merchantId, sourceId: id,
      currency: transfer.currency, reportingCategory: 'transfer_reversal',
      sides: [{ accountId: refund.merchantId, type: 'transfer_refund', amountMinor },
        { accountId: transfer.destination, type: 'payment_refund', amountMinor: -amountMinor }] });
    await recordEvent(db, { merchantId: refund.merchantId, type: 'transfer.reversed',
      object: presentTransfer(updated, await store.selectTransferReversals(db, updated)) });
    return id;
  }

  /** The refund's share of the application fee, from the platform's available balance back to the account's. */
  private async refundFeeShare(db: Queryable, input: { refund: RefundedDestinationCharge;
    fee: feeStore.ApplicationFeeRow }): Promise<string | null> {
    const { refund, fee } = input;
    const amountMinor = shareOf(refund, { partMinor: fee.amountMinor,
      cumulativeMinor: refund.feeRefundingRefundedMinor,
      givenByRefundsMinor: await feeStore.selectFeeRefundedByRefunds(db, fee),
      leftMinor: fee.amountMinor - fee.amountRefundedMinor });
    if (amountMinor <= 0n) return null;
    const feeRefund = await refundApplicationFee(this.dependencies, db, { fee, amountMinor, metadata: {},
      sourceRefund: refund.refundId, guardedParam: null });
    return feeRefund.id;
  }

  /** The fee, from the destination's pending balance to the platform's, with its ApplicationFee. */
  private async takeFee(db: Queryable, input: { capture: CapturedDestinationCharge; feeMinor: bigint }):
  Promise<feeStore.ApplicationFeeRow> {
    const { capture } = input;
    const id = newId('fee');
    const entryId = await this.movePending(db, { from: capture.split.destination, to: capture.merchantId,
      currency: capture.currency, amountMinor: input.feeMinor, reference: `penny:charge:${capture.chargeId}:application_fee`,
      description: `Application fee ${id} on ${capture.chargeId}` });
    return feeStore.insertApplicationFee(db, { merchantId: capture.merchantId, id, account: capture.split.destination,
      chargeId: capture.chargeId, currency: capture.currency, amountMinor: input.feeMinor, ledgerEntryId: entryId });
  }

  private movePending(db: Queryable, movement: { from: string; to: string; currency: string; amountMinor: bigint;
    reference: string; description: string }): Promise<string> {
    return moveBetweenOwners(this.dependencies, db, { ...movement, role: 'merchant_pending', guardedParam: null });
  }

  /**
   * The charge's riders, as Stripe shows them: on the platform, the transfer out and the fee in;
   * on the connected account, the payment in, with the fee in its fee_details.
   */
  private async recordRiders(db: Queryable, input: { capture: CapturedDestinationCharge; transferId: string;
    paymentId: string; transferMinor: bigint; fee: feeStore.ApplicationFeeRow | undefined }): Promise<void> {
    const { capture, fee } = input;
    const common = { merchantId: capture.merchantId, chargeId: capture.chargeId, currency: capture.currency,
      availableOn: capture.availableOn };
    const balances = this.dependencies.balances;
    await balances.recordRider(db, { ...common, accountId: capture.merchantId, type: 'transfer',
      reportingCategory: 'transfer', sourceId: input.transferId, amountMinor: -input.transferMinor, feeMinor: 0n,
      feeDetails: [], description: null });
    const feeMinor = fee?.amountMinor ?? 0n;
    await balances.recordRider(db, { ...common, accountId: capture.split.destination, type: 'payment',
      reportingCategory: 'charge', sourceId: input.paymentId, amountMinor: input.transferMinor, feeMinor,
      feeDetails: fee === undefined ? [] : [{ amountMinor: feeMinor, type: 'application_fee',
        description: 'Application fee', application: applicationOf(capture.merchantId) }],
      description: null });
    if (fee !== undefined) {
      await balances.recordRider(db, { ...common, accountId: capture.merchantId, type: 'application_fee',
        reportingCategory: 'platform_earning', sourceId: fee.id, amountMinor: fee.amountMinor, feeMinor: 0n,
        feeDetails: [], description: `Application fee from ${capture.split.destination}` });
    }
  }

}

/**
 * A refund's share of a part of its charge (the transfer, the fee): proportional, never more than
 * is left of the part (the platform may have reversed or refunded some of it by hand).
 */
function shareOf(refund: RefundedDestinationCharge, part: { partMinor: bigint; cumulativeMinor: bigint;
  givenByRefundsMinor: bigint; leftMinor: bigint }): bigint {
  const shareMinor = refundShareMinor({ partMinor: part.partMinor, wholeMinor: refund.capturedMinor,
    refundMinor: refund.refundMinor, cumulativeMinor: part.cumulativeMinor, givenMinor: part.givenByRefundsMinor,
    completesCharge: refund.completesCharge });
  return shareMinor < part.leftMinor ? shareMinor : part.leftMinor;
}

/**
 * An application fee refunded in whole or in part: from the platform's available balance back to
 * the connected account's, with a FeeRefund (fr_), a balance transaction on either side and
 * `application_fee.refunded`. The platform's own refund is guarded (a voluntary outflow); a charge
 * refund's share is not. The caller holds the fee's row lock.
 */
export async function refundApplicationFee(dependencies: DestinationChargeDependencies, db: Queryable,
  input: { fee: feeStore.ApplicationFeeRow; amountMinor: bigint; metadata: Record<string, string>;
    sourceRefund: string | null; guardedParam: string | null }): Promise<feeStore.ApplicationFeeRefundRow> {
  const { fee, amountMinor } = input;
  const id = newId('fr');
  const entryId = await moveBetweenOwners(dependencies, db, { from: fee.merchantId, to: fee.account,
    currency: fee.currency, amountMinor, role: 'merchant_available', reference: `penny:application_fee_refund:${id}`,
    description: `Refund ${id} of application fee ${fee.id}`, guardedParam: input.guardedParam });
  const refund = await feeStore.insertApplicationFeeRefund(db, { merchantId: fee.merchantId, id, feeId: fee.id,
    amountMinor, metadata: input.metadata, sourceRefund: input.sourceRefund, ledgerEntryId: entryId });
  const updated = await feeStore.addApplicationFeeRefunded(db, fee, amountMinor);
  // A transaction is one per source and type: the connected account's side is an adjustment.
  await recordSides(dependencies.balances, db, { merchantId: fee.merchantId, sourceId: id, currency: fee.currency,
    reportingCategory: 'platform_earning_refund', description: `Application fee refund ${id}`,
    sides: [{ accountId: fee.merchantId, type: 'application_fee_refund', amountMinor: -amountMinor },
      { accountId: fee.account, type: 'adjustment', amountMinor }] });
  await recordEvent(db, { merchantId: fee.merchantId, type: 'application_fee.refunded',
    object: presentApplicationFee(updated, await feeStore.selectApplicationFeeRefunds(db, updated)) });
  return refund;
}
