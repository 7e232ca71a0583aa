import type pg from 'pg';
import { withTransaction, type Queryable } from '../db/pool.js';
import { camt053Statement } from './bank-statement.js';
import { cardBrand, normalizeAccount } from './psp-decisions.js';
import {
  lockBookings, recordOperation, selectOperationsOfDay, selectPayoutsPaidOnDay, selectSettlementPayouts,
  type OperationRow,
} from './psp-store.js';
import {
  settlementDetailsReport, type SettledOperation, type SettlementBatch, type SettlementDiscrepancy,
} from './settlement-report.js';

/**
 * A settlement day of the sandbox acquirer: the captures, refunds and dispute movements of that
 * UTC day, one batch per currency, its Settlement details report, and the sandbox bank's
 * statements of the day: the operator's account receives the batches' payouts, and each
 * merchant payout paid that day is a credit on its destination account's statement.
 */
/** The sandbox's published price: 2% + 20 minor units per capture, 1500 minor units per dispute (Stripe's $15). */
export const sandboxPriceList = { basisPoints: 200, fixedMinor: 20n, disputeFeeMinor: 1500n } as const;
/** The operator's account at the sandbox bank, where the PSP's settlement payouts arrive. */
export const sandboxBankIban = 'NL91ABNA0417164300';
/** The reference of the sandbox's payout of a batch begins so (`batch-<number>-<currency>`). */
const settlementPayoutPrefix = 'batch-';

/**
 * A day's batches, one per currency. As published (`published`), a batch the sandbox has not
 * closed yet has no MerchantPayout line: its payout is not made, and a reader must not book one
 * that the day's later bookings would change.
 */
export async function settlementBatches(db: Queryable, day: string,
  discrepancies: readonly SettlementDiscrepancy[] = [], batchFeeMinor = 0n,
  options: { published?: boolean } = {}): Promise<SettlementBatch[]> {
  const operations = await selectOperationsOfDay(db, day);
  const paid = options.published === true
    ? new Set((await selectSettlementPayouts(db, day)).map((payout) => payout.currency)) : undefined;
  const byReference = new Map(operations.map((operation) => [operation.pspReference, operation]));
  const settled = operations.flatMap((operation) => settledFrom(operation, byReference, day));
  const currencies = [...new Set(settled.map((operation) => operation.currency))].sort();
  return currencies.map((currency, index) => settlementDetailsReport({
    companyAccount: 'PennySandbox', merchantAccount: 'PennySandboxMerchant',
    batchNumber: Number(day.replaceAll('-', '')) * 10 + index, settlementDate: day, currency,
    operations: settled.filter((operation) => operation.currency === currency),
    priceList: sandboxPriceList,
    discrepancies: index === 0 ? discrepancies.map((kind) => ({ kind })) : [],
    batchFeeMinor,
    open: paid !== undefined && !paid.has(currency),
  }));
}

/**
 * The PSP pays out a day's batches (`penny sandbox-psp settle --date D [--plant …]`): one payout
 * per currency whose batch nets to anything but zero (a negative one is collected from the
 * operator by direct debit), of the batch's MerchantPayout amount (with the planted
 * discrepancies, when the PSP is to get its own report wrong for real), to the operator's account
 * at the sandbox bank, under the batch's payout reference (so it is on that day's camt.053). A
 * second settle of the day pays nothing again (the payout's idempotency key is the day and currency).
 */
export async function payOutSettlementBatches(pool: pg.Pool, day: string,
  discrepancies: readonly SettlementDiscrepancy[] = []): Promise<{ reference: string;
  currency: string; amount_minor: bigint; psp_reference: string; destination: string }[]> {
  return withTransaction(pool, async (client) => {
    // The day is read once every booking dated in it has committed, and none can be added while it is paid.
    await lockBookings(client);
    const batches = await settlementBatches(client, day, discrepancies);
    const done = [];
    // A negative batch is collected from the operator's bank: a payout of a negative amount, a debit there.
    for (const batch of batches.filter((item) => item.payoutAmountMinor !== 0n)) {
      const currency = batch.rows[0]?.netCurrency ?? 'EUR';
      const recorded = await recordOperation(client, {
        idempotencyKey: `settlement:${day}:${currency}`, reference: batch.payoutReference, kind: 'payout',
        parentPspReference: null, amountMinor: batch.payoutAmountMinor, currency, outcome: 'paid',
        declineCode: null, paymentMethod: null, requestFingerprint: `settlement:${day}`,
        destination: sandboxBankIban,
      });
      done.push({ reference: batch.payoutReference, currency, amount_minor: batch.payoutAmountMinor,
        psp_reference: recorded.operation.pspReference, destination: sandboxBankIban });
    }
    return done;
  });
}

/**
 * Captures (and authorizations captured at once) settle as credits; refunds as debits; a dispute
 * as a `Chargeback` debit (with its fee) on the day it opens and, when won, a `ChargebackReversed`
 * credit on the day it is decided; a merchant payout as a `PaidOut` debit on the day it is paid
 * (the PSP pays merchants out of what it holds, so the operator's payout is the rest). Operations
 * of the day are those created or decided on it.
 */
function settledFrom(operation: OperationRow, byReference: Map<string, OperationRow>, day: string): SettledOperation[] {
  if (operation.kind === 'payout') return paidOutFrom(operation, day);
  const captured = (operation.kind === 'authorize' && operation.outcome === 'captured')
    || (operation.kind === 'capture' && operation.outcome === 'captured');
  const refunded = operation.kind === 'refund' && operation.outcome === 'refunded';
  const disputed = operation.kind === 'chargeback';
  if (!captured && !refunded && !disputed) return [];
  const authorization = operation.kind === 'authorize' ? operation
    : byReference.get(operation.parentPspReference ?? '') ?? operation;
  const currency = operation.currency ?? authorization.currency;
  if (operation.amountMinor === null || currency === null) return [];
  // An authorization that was pending settles on the day it was decided (captured), not asked for.
  const settledAt = operation.kind === 'authorize' ? operation.decidedAt ?? operation.createdAt : operation.createdAt;
  const line = {
    pspReference: operation.pspReference, merchantReference: operation.reference, amountMinor: operation.amountMinor,
    currency, paymentMethod: cardBrand(authorization.paymentMethod ?? 'visa'), createdAt: settledAt,
  };
  if (!disputed) {
    return settledAt.slice(0, 10) === day ? [{ ...line, kind: captured ? 'capture' : 'refund' }] : [];
  }
  const lines: SettledOperation[] = [];
  if (operation.createdAt.slice(0, 10) === day) {
    lines.push({ ...line, kind: 'chargeback', ...(operation.feeMinor === null ? {} : { feeMinor: operation.feeMinor }) });
  }
  if (operation.outcome === 'won' && operation.decidedAt?.slice(0, 10) === day) {
    lines.push({ ...line, kind: 'chargeback_reversed', createdAt: operation.decidedAt });
  }
  return lines;
}

/** A merchant payout paid on `day`; never the sandbox's own payout of a batch to the operator. */
function paidOutFrom(operation: OperationRow, day: string): SettledOperation[] {
  if (operation.outcome !== 'paid' || operation.reference.startsWith(settlementPayoutPrefix)) return [];
  if (operation.decidedAt?.slice(0, 10) !== day) return [];
  if (operation.amountMinor === null || operation.currency === null) return [];
  return [{ pspReference: operation.pspReference, merchantReference: operation.reference, kind: 'paid_out',
    amountMinor: operation.amountMinor, currency: operation.currency, paymentMethod: 'bank_transfer',
    createdAt: operation.decidedAt }];
}

/**
 * The sandbox bank's statements of one account for a day, one per currency (camt.053 states one
 * account in one currency): the operator's account (`sandboxBankIban`) gets the day's settlement
 * payouts; any account gets the merchant payouts paid to it that day (a destination is matched
 * without spaces, case-insensitively). A day with no credit has no statement.
 */
export async function bankStatementsFor(db: Queryable, day: string,
  options: { account: string; currency?: string | undefined }): Promise<string[]> {
  const account = normalizeAccount(options.account);
  const credits = (await selectPayoutsPaidOnDay(db, day))
    .filter((payout) => payout.destination !== null && normalizeAccount(payout.destination) === account)
    .map((payout) => ({ reference: payout.reference, amountMinor: payout.amountMinor ?? 0n,
      currency: payout.currency ?? 'EUR', bookingDate: day }));
  if (account === sandboxBankIban) {
    // What the PSP paid for the day's batches when it settled them (planted discrepancies included),
    // not what the batches would pay now: the bank shows what arrived.
    const paid = await selectSettlementPayouts(db, day);
    credits.unshift(...paid.map((payout) => ({ reference: payout.reference, amountMinor: payout.amountMinor ?? 0n,
      currency: payout.currency ?? 'EUR', bookingDate: day })));
  }
  const currencies = [...new Set(credits.map((credit) => credit.currency))].sort()
    .filter((currency) => options.currency === undefined || currency === options.currency);
  return currencies.map((currency) => camt053Statement({
    statementId: `SANDBOX-${day}-${account.slice(-8)}-${currency}`, accountIban: account, currency,
    openingBalanceMinor: 0n, createdAt: `${day}T23:59:59Z`, fromDate: day, toDate: day,
    credits: credits.filter((credit) => credit.currency === currency),
  }));
}
