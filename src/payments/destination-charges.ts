import type pg from 'pg';
import type { Queryable } from '../db/pool.js';
import { PennyError } from '../errors.js';
import { stripeAmountToMinor } from '../money/stripe-currency.js';
import type { ConnectFields } from './payment-store.js';

/**
 * The Connect side of a destination charge, as payments need it: a port that src/transfers
 * implements and src/app.ts wires in (transfers name their source charges, so they are above
 * payments and payments never import them). Every call runs in the caller's transaction: the
 * capture's or the refund's, so the split commits with the movement it splits. Amounts are ledger
 * minor units; currencies upper case.
 */
export interface DestinationSplit {
  /** The connected account the charge's funds go to (transfer_data[destination]). */
  readonly destination: string;
  /** transfer_data[amount]: what the destination receives; null passes on the whole capture. */
  readonly transferAmountMinor: bigint | null;
  /** application_fee_amount: what the platform keeps of what it passes on; null for none. */
  readonly applicationFeeMinor: bigint | null;
  readonly transferGroup: string | null;
}

export interface CapturedDestinationCharge {
  readonly merchantId: string;
  readonly chargeId: string;
  readonly paymentIntentId: string;
  readonly currency: string;
  readonly capturedMinor: bigint;
  readonly split: DestinationSplit;
  /** When the charge's funds are expected: its transfer and fee wait as long. */
  readonly availableOn: string;
}

export interface RefundedDestinationCharge {
  readonly merchantId: string;
  readonly chargeId: string;
  readonly refundId: string;
  readonly currency: string;
  readonly capturedMinor: bigint;
  readonly refundMinor: bigint;
  /** This refund brings the charge's refunds to its captured amount: it takes the remainders. */
  readonly completesCharge: boolean;
  /** The charge's refunds (this one included) that asked for each reversal, in total. */
  readonly reversingRefundedMinor: bigint;
  readonly feeRefundingRefundedMinor: bigint;
  readonly reverseTransfer: boolean;
  readonly refundApplicationFee: boolean;
}

export interface DestinationCharges {
  /**
   * A live connected account of the platform, share-locked for the caller's transaction (so a
   * delete waits, then sees the charge on its way and refuses), or 404 `resource_missing` naming `param`.
   */
  lockConnectedAccount(client: pg.PoolClient, key: { merchantId: string; accountId: string }, param: string):
  Promise<void>;
  /** At capture: the Transfer to the destination and the platform's ApplicationFee. */
  captured(db: Queryable, capture: CapturedDestinationCharge):
  Promise<{ transferId: string; applicationFeeId: string | null }>;
  /** At a refund's success: its share of the transfer reversed, of the fee refunded, as asked. */
  refunded(db: Queryable, refund: RefundedDestinationCharge):
  Promise<{ transferReversalId: string | null; applicationFeeRefundId: string | null }>;
}

/** The split a charge's Connect fields ask for, in minor units; null for a charge of the platform's own. */
export function destinationSplit(connect: ConnectFields, currency: string): DestinationSplit | null {
  if (connect.transferDestination === null) return null;
  const minor = (amount: bigint | null) => amount === null ? null : stripeAmountToMinor(currency, amount);
  return { destination: connect.transferDestination, transferAmountMinor: minor(connect.transferAmount),
    applicationFeeMinor: minor(connect.applicationFeeAmount), transferGroup: connect.transferGroup };
}

/**
 * A destination charge's split fits its intent: what it passes on (transfer_data[amount]) or keeps
 * (application_fee_amount) is at most the amount, and is an amount of the currency. Checked when an
 * update changes the amount or the currency, and again before an attempt is recorded, so the PSP
 * never charges an amount whose capture Penny could not book. `param` names what the client changed.
 */
export function assertSplitFits(connect: ConnectFields, intent: { currency: string; amount: bigint },
  param: 'amount' | 'currency'): void {
  if (connect.transferDestination === null) return;
  const parts = [['transfer_data[amount]', connect.transferAmount],
    ['application_fee_amount', connect.applicationFeeAmount]] as const;
  for (const [name, part] of parts) {
    if (part === null) continue;
    if (part > intent.amount) {
      throw new PennyError({ code: 'amount_too_small', param: 'amount',
        message: `The amount (${intent.amount}) is less than the destination charge's ${name} (${part}).` });
    }
    stripeAmountToMinor(intent.currency, part, { param });
  }
}
