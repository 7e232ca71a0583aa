import type { Queryable } from '../db/pool.js';
import { camt053Statement } from './bank-statement.js';
import { cardBrand } from './psp-decisions.js';
import { selectOperationsOfDay, type OperationRow } from './psp-store.js';
import {
  settlementDetailsReport, type SettledOperation, type SettlementBatch, type SettlementDiscrepancy,
} from './settlement-report.js';

/**
 * A settlement day of the sandbox acquirer: the captures and refunds it performed that UTC day,
 * one batch per currency, its Settlement details report, and the bank statement of the payouts.
 */
export const sandboxPriceList = { basisPoints: 200, fixedMinor: 20n } as const;
export const sandboxBankIban = 'NL91ABNA0417164300';

export async function settlementBatches(db: Queryable, day: string,
  discrepancies: readonly SettlementDiscrepancy[] = [], batchFeeMinor = 0n): Promise<SettlementBatch[]> {
  const operations = await selectOperationsOfDay(db, day);
  const byReference = new Map(operations.map((operation) => [operation.pspReference, operation]));
  const settled = operations.flatMap((operation) => settledFrom(operation, byReference));
  const currencies = [...new Set(settled.map((operation) => operation.currency))].sort();
  return currencies.map((currency, index) => settlementDetailsReport({
    companyAccount: 'PennySandbox', merchantAccount: 'PennySandboxMerchant',
    batchNumber: Number(day.replaceAll('-', '')) * 10 + index, settlementDate: day, currency,
    operations: settled.filter((operation) => operation.currency === currency),
    priceList: sandboxPriceList,
    discrepancies: index === 0 ? discrepancies.map((kind) => ({ kind })) : [],
    batchFeeMinor,
  }));
}

/** Captures (and authorizations captured at once) settle as credits; refunds and chargebacks as debits. */
function settledFrom(operation: OperationRow, byReference: Map<string, OperationRow>): SettledOperation[] {
  const captured = (operation.kind === 'authorize' && operation.outcome === 'captured')
    || (operation.kind === 'capture' && operation.outcome === 'captured');
  const refunded = operation.kind === 'refund' && operation.outcome === 'refunded';
  const chargedBack = operation.kind === 'chargeback';
  if (!captured && !refunded && !chargedBack) return [];
  const authorization = operation.kind === 'authorize' ? operation
    : byReference.get(operation.parentPspReference ?? '') ?? operation;
  const currency = operation.currency ?? authorization.currency;
  if (operation.amountMinor === null || currency === null) return [];
  return [{
    pspReference: operation.pspReference, merchantReference: operation.reference,
    kind: captured ? 'capture' : chargedBack ? 'chargeback' : 'refund', amountMinor: operation.amountMinor, currency,
    paymentMethod: cardBrand(authorization.paymentMethod ?? 'visa'), createdAt: operation.createdAt,
  }];
}

export function bankStatementFor(day: string, batches: readonly SettlementBatch[]): string[] {
  return batches.filter((batch) => batch.payoutAmountMinor > 0n).map((batch) => camt053Statement({
    statementId: `SANDBOX-${day}-${batch.payoutReference}`, accountIban: sandboxBankIban,
    currency: batch.rows[0]?.netCurrency ?? 'EUR', openingBalanceMinor: 0n, createdAt: `${day}T23:59:59Z`,
    fromDate: day, toDate: day,
    credits: [{ reference: batch.payoutReference, amountMinor: batch.payoutAmountMinor,
      currency: batch.rows[0]?.netCurrency ?? 'EUR', bookingDate: day }],
  }));
}
