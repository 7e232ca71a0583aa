import type pg from 'pg';
import { PennyError } from '../errors.js';
import { stripeAmountToMinor } from '../money/stripe-currency.js';
import * as store from './application-fee-store.js';
import { refundApplicationFee, type DestinationChargeDependencies } from './destination-charges.js';

/**
 * The platform's application fees (taken at the capture of its destination charges), and their
 * refunds to the connected account they were taken from. Every fee is the platform's object: a
 * connected account does not list them.
 */
export interface RefundApplicationFeeCommand {
  /** In Stripe's units of the currency; absent: what is left of the fee. */
  readonly amount: bigint | undefined;
  readonly metadata: Record<string, string>;
}

export class ApplicationFeeService {
  constructor(private readonly pool: pg.Pool, private readonly dependencies: DestinationChargeDependencies) {}

  async retrieve(key: { merchantId: string; id: string }): Promise<store.ApplicationFeeRow> {
    const fee = await store.selectApplicationFee(this.pool, key);
    if (fee === undefined) throw noSuchFee(key.id);
    return fee;
  }

  refundsOf(fee: store.ApplicationFeeRow): Promise<store.ApplicationFeeRefundRow[]> {
    return store.selectApplicationFeeRefunds(this.pool, fee);
  }

  /** A page of fees with each one's refunds, read in one query for the whole page. */
  async list(query: Parameters<typeof store.selectApplicationFeePage>[1]):
  Promise<{ rows: { fee: store.ApplicationFeeRow; refunds: store.ApplicationFeeRefundRow[] }[]; hasMore: boolean }> {
    const cursor = query.startingAfter ?? query.endingBefore;
    if (cursor !== undefined
      && await store.selectApplicationFee(this.pool, { merchantId: query.merchantId, id: cursor }) === undefined) {
      throw new PennyError({ code: 'resource_missing', param: query.startingAfter === undefined ? 'ending_before'
        : 'starting_after', message: `No such application fee: '${cursor}'` });
    }
    const page = await store.selectApplicationFeePage(this.pool, query);
    const refunds = await store.selectRefundsOfFees(this.pool, query.merchantId, page.rows.map((fee) => fee.id));
    return { hasMore: page.hasMore, rows: page.rows.map((fee) => ({ fee,
      refunds: refunds.filter((refund) => refund.feeId === fee.id) })) };
  }

  /** A refund of what is left of the fee (or part of it), under the fee's row lock, in the caller's transaction. */
  async refund(client: pg.PoolClient, key: { merchantId: string; id: string }, command: RefundApplicationFeeCommand):
  Promise<{ fee: store.ApplicationFeeRow; refund: store.ApplicationFeeRefundRow }> {
    const fee = await store.selectApplicationFee(client, key, { forUpdate: true });
    if (fee === undefined) throw noSuchFee(key.id);
    const leftMinor = fee.amountMinor - fee.amountRefundedMinor;
    const amountMinor = command.amount === undefined ? leftMinor
      : stripeAmountToMinor(fee.currency.toLowerCase(), command.amount);
    if (leftMinor === 0n || amountMinor > leftMinor) {
      throw new PennyError({ code: 'amount_too_large', param: 'amount', judgedOnState: true,
        message: `The refund (${amountMinor}) is more than is left of application fee ${fee.id} (${leftMinor}).` });
    }
    const refund = await refundApplicationFee(this.dependencies, client, { fee, amountMinor,
      metadata: command.metadata, sourceRefund: null, guardedParam: 'amount' });
    const updated = await store.selectApplicationFee(client, key);
    if (updated === undefined) throw new Error(`application fee ${key.id} vanished`);
    return { fee: updated, refund };
  }
}

function noSuchFee(id: string): PennyError {
  return new PennyError({ code: 'resource_missing', param: 'id', message: `No such application fee: '${id}'` });
}
