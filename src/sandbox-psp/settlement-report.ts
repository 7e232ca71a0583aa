import assert from 'node:assert/strict';
import { stringify } from 'csv-stringify/sync';
import { currencyExponent } from '../money/currency.js';
import { minorToDecimal } from '../money/decimal-amount.js';
import { feeMinor } from '../money/fee.js';

/**
 * The sandbox PSP's settlement details report (SDR): one CSV per payable batch in the
 * long-standing Adyen layout (reconciliation.md §2), so Penny's reconciler reads the sandbox's
 * reports exactly as it would read a real PSP's. Discrepancies can be planted on purpose
 * (decisions.md, "Sandbox PSP") to prove the reconciler finds them.
 */

export type SettlementDiscrepancy =
  | 'missing_line'
  | 'wrong_fee'
  | 'duplicate_line'
  | 'changed_currency'
  | 'changed_amount';

export const settlementDiscrepancies: readonly SettlementDiscrepancy[] = [
  'missing_line',
  'wrong_fee',
  'duplicate_line',
  'changed_currency',
  'changed_amount',
];

/** The first 33 columns of the SDR, the layout every Adyen account has; no newer optional columns. */
export const settlementReportColumns: readonly string[] = [
  'Company Account', 'Merchant Account', 'Psp Reference', 'Merchant Reference', 'Payment Method',
  'Creation Date', 'TimeZone', 'Type', 'Modification Reference', 'Gross Currency', 'Gross Debit (GC)',
  'Gross Credit (GC)', 'Exchange Rate', 'Net Currency', 'Net Debit (NC)', 'Net Credit (NC)',
  'Commission (NC)', 'Markup (NC)', 'Scheme Fees (NC)', 'Interchange (NC)', 'Payment Method Variant',
  'Modification Merchant Reference', 'Batch Number', 'Reserved4', 'Reserved5', 'Reserved6', 'Reserved7',
  'Reserved8', 'Reserved9', 'Reserved10', 'Booking Date', 'Booking Date TimeZone', 'Metadata',
];

/**
 * What the sandbox charges per chargeback, in minor units of the batch currency (its price list's
 * dispute fee), written in Markup; a line may carry the fee its dispute recorded instead.
 */
export const chargebackFeeMinor = 1500n;
/** What a planted `wrong_fee` adds to Interchange (and takes from Net). */
export const plantedFeeErrorMinor = 7n;
/** What a planted `changed_amount` adds to Gross and Net. */
export const plantedAmountErrorMinor = 100n;

export type PspPriceList = Parameters<typeof feeMinor>[1];

export interface SettledOperation {
  readonly pspReference: string;
  readonly merchantReference: string;
  /**
   * `chargeback`: a dispute opened (the amount withdrawn); `chargeback_reversed`: a dispute won (it
   * comes back); `paid_out`: a merchant payout the PSP paid from the batch (Penny's payout id as
   * Merchant Reference).
   */
  readonly kind: 'capture' | 'refund' | 'chargeback' | 'chargeback_reversed' | 'paid_out';
  readonly amountMinor: bigint;
  /** A chargeback's fee as recorded; the sandbox's `chargebackFeeMinor` when absent. */
  readonly feeMinor?: bigint;
  readonly currency: string;
  readonly paymentMethod: string;
  readonly createdAt: string;
}

export interface SettlementBatchInput {
  readonly companyAccount: string;
  readonly merchantAccount: string;
  readonly batchNumber: number;
  /** 'YYYY-MM-DD', a UTC day. */
  readonly settlementDate: string;
  /** One batch per currency. */
  readonly currency: string;
  readonly operations: readonly SettledOperation[];
  readonly priceList: PspPriceList;
  readonly discrepancies?: readonly { kind: SettlementDiscrepancy; merchantReference?: string }[];
  /** A batch-level transaction fee, written as a `Fee` row with no PSP reference; none when absent or 0. */
  readonly batchFeeMinor?: bigint;
  /** A batch the PSP has not closed (paid) yet: its report has no MerchantPayout line, the payout not being made. */
  readonly open?: boolean;
}

export type SettlementRowType = 'Settled' | 'Refunded' | 'Chargeback' | 'ChargebackReversed' | 'PaidOut' | 'Fee'
  | 'MerchantPayout';

/** One SDR line as written. Money columns are unsigned minor units of the row's currency; null = empty. */
export interface SettlementRow {
  readonly type: SettlementRowType;
  readonly pspReference: string;
  readonly merchantReference: string;
  readonly modificationReference: string;
  readonly modificationMerchantReference: string;
  readonly paymentMethod: string;
  /** 'YYYY-MM-DD HH:MM:SS' in UTC. */
  readonly creationDate: string;
  readonly grossCurrency: string;
  readonly netCurrency: string;
  readonly grossDebitMinor: bigint | null;
  readonly grossCreditMinor: bigint | null;
  readonly netDebitMinor: bigint | null;
  readonly netCreditMinor: bigint | null;
  readonly commissionMinor: bigint | null;
  readonly markupMinor: bigint | null;
  readonly schemeFeesMinor: bigint | null;
  readonly interchangeMinor: bigint | null;
}

export interface SettlementBatch {
  readonly csv: string;
  readonly payoutReference: string;
  /**
   * The MerchantPayout as written (after planting): positive, paid to the operator; negative, taken
   * from the operator's bank by direct debit (the batch paid out more than it took in); 0n when the
   * batch nets to zero and has no payout.
   */
  readonly payoutAmountMinor: bigint;
  readonly rows: readonly SettlementRow[];
  readonly planted: readonly { kind: SettlementDiscrepancy; merchantReference: string }[];
}

export interface PspFeeBreakdown {
  readonly commissionMinor: bigint;
  readonly markupMinor: bigint;
  readonly schemeFeesMinor: bigint;
  readonly interchangeMinor: bigint;
}


/**
 * Splits the sandbox's fee for a capture over the four SDR fee columns so they sum to
 * `feeMinor(amount, priceList)` exactly: the fixed part is Commission, and the rest is shared
 * 60/25/15 between Interchange, Scheme Fees and Markup, Markup taking the rounding remainder.
 */
export function pspFeeBreakdown(amountMinor: bigint, priceList: PspPriceList): PspFeeBreakdown {
  const fee = feeMinor(amountMinor, priceList);
  const commissionMinor = priceList.fixedMinor < fee ? priceList.fixedMinor : fee;
  const rest = fee - commissionMinor;
  const interchangeMinor = (rest * 60n) / 100n;
  const schemeFeesMinor = (rest * 25n) / 100n;
  const markupMinor = rest - interchangeMinor - schemeFeesMinor;
  return { commissionMinor, markupMinor, schemeFeesMinor, interchangeMinor };
}

/** Writes one batch's SDR, planting the requested discrepancies. */
export function settlementDetailsReport(input: SettlementBatchInput): SettlementBatch {
  validateBatch(input);
  const bookingDateTime = `${input.settlementDate} 23:59:59`;
  const drafts = input.operations.map((operation) => draftRow(operation, input.priceList));
  const { written, planted } = plantDiscrepancies(drafts, input.discrepancies ?? [], input.currency);
  const operationRows = written.map(renderRow);
  if ((input.batchFeeMinor ?? 0n) > 0n) {
    operationRows.push(feeRow(input.batchFeeMinor ?? 0n, input.currency, bookingDateTime, input.batchNumber));
  }
  const payoutReference = `batch-${input.batchNumber}-${input.currency}`;
  const payoutAmountMinor = batchNetMinorOf(operationRows, input.currency);
  const rows = payoutAmountMinor !== 0n && input.open !== true
    ? [...operationRows, payoutRow(payoutReference, payoutAmountMinor, input.currency, bookingDateTime)]
    : operationRows;
  const csv = stringify(rows.map((row) => csvRecord(row, input, bookingDateTime)), {
    header: true,
    columns: [...settlementReportColumns],
  });
  return { csv, payoutReference, payoutAmountMinor, rows, planted };
}

// Programmer errors: the sandbox builds these inputs itself.
function validateBatch(input: SettlementBatchInput): void {
  currencyExponent(input.currency);
  assert.ok(Number.isSafeInteger(input.batchNumber) && input.batchNumber > 0, 'batch number is a positive integer');
  assert.ok(isUtcDay(input.settlementDate), `settlement date is YYYY-MM-DD: ${input.settlementDate}`);
  // A dispute opened and won on one day has two lines of one PSP reference, of two journal types.
  const lines = new Set<string>();
  for (const operation of input.operations) {
    assert.equal(operation.currency, input.currency, `operation ${operation.pspReference} is in the batch currency`);
    assert.ok(operation.amountMinor > 0n, `operation ${operation.pspReference} has a positive amount`);
    const line = `${operation.kind}:${operation.pspReference}`;
    assert.ok(!lines.has(line), `psp reference ${operation.pspReference} is unique among ${operation.kind} lines`);
    lines.add(line);
    assert.ok(creationDate(operation.createdAt).slice(0, 10) <= input.settlementDate,
      `operation ${operation.pspReference} was created before its batch settled`);
  }
}

function isUtcDay(text: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return false;
  const ms = Date.parse(`${text}T00:00:00Z`);
  return Number.isFinite(ms) && new Date(ms).toISOString().slice(0, 10) === text;
}

/** 'YYYY-MM-DD HH:MM:SS' in UTC, the SDR's date format, from an ISO 8601 timestamp. */
function creationDate(createdAt: string): string {
  const ms = Date.parse(createdAt);
  assert.ok(Number.isFinite(ms), `createdAt is an ISO 8601 timestamp: ${createdAt}`);
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

interface FeeColumns {
  readonly commissionMinor: bigint | null;
  readonly markupMinor: bigint | null;
  readonly schemeFeesMinor: bigint | null;
  readonly interchangeMinor: bigint | null;
}

const noFees: FeeColumns = { commissionMinor: null, markupMinor: null, schemeFeesMinor: null, interchangeMinor: null };

/** An operation's line before it is written: the gross amount, its direction, and its fees. */
interface DraftRow {
  readonly type: Exclude<SettlementRowType, 'MerchantPayout' | 'Fee'>;
  readonly operation: SettledOperation;
  readonly currency: string;
  readonly grossMinor: bigint;
  readonly fees: FeeColumns;
}

function draftRow(operation: SettledOperation, priceList: PspPriceList): DraftRow {
  const base = { operation, currency: operation.currency, grossMinor: operation.amountMinor };
  switch (operation.kind) {
    case 'capture':
      return { ...base, type: 'Settled', fees: pspFeeBreakdown(operation.amountMinor, priceList) };
    case 'refund':
      // The sandbox charges no refund fee, so a refund nets exactly its gross.
      return { ...base, type: 'Refunded', fees: noFees };
    case 'chargeback':
      // Like Adyen, the chargeback fee hides in Markup rather than on a row of its own.
      return { ...base, type: 'Chargeback', fees: { ...noFees, markupMinor: operation.feeMinor ?? chargebackFeeMinor } };
    case 'chargeback_reversed':
      // A won dispute returns the amount; the fee stays charged, as Stripe's and Adyen's do.
      return { ...base, type: 'ChargebackReversed', fees: noFees };
    case 'paid_out':
      // The PSP paid a merchant out of the batch: the operator's payout is that much smaller.
      return { ...base, type: 'PaidOut', fees: noFees };
  }
}

function feesTotalMinor(fees: FeeColumns): bigint {
  return (fees.commissionMinor ?? 0n) + (fees.markupMinor ?? 0n) + (fees.schemeFeesMinor ?? 0n)
    + (fees.interchangeMinor ?? 0n);
}

/**
 * Each discrepancy takes its own row, so each has exactly one visible effect: the first row not yet
 * taken whose Merchant Reference is the one named (a charge's capture and chargeback share one), or,
 * when none is named, the first capture not yet taken. Throws when there is no such row.
 */
function plantDiscrepancies(
  drafts: readonly DraftRow[],
  discrepancies: NonNullable<SettlementBatchInput['discrepancies']>,
  batchCurrency: string,
): { written: DraftRow[]; planted: { kind: SettlementDiscrepancy; merchantReference: string }[] } {
  const taken = new Map<number, SettlementDiscrepancy>();
  const planted: { kind: SettlementDiscrepancy; merchantReference: string }[] = [];
  for (const { kind, merchantReference } of discrepancies) {
    assert.ok(settlementDiscrepancies.includes(kind), `unknown discrepancy: ${String(kind)}`);
    if (merchantReference !== undefined) {
      assert.ok(drafts.some((draft) => draft.operation.merchantReference === merchantReference),
        `no operation in the batch has merchant reference ${merchantReference}`);
    }
    const index = drafts.findIndex((draft, i) => !taken.has(i) && (merchantReference === undefined
      ? draft.type === 'Settled'
      : draft.operation.merchantReference === merchantReference));
    const target = drafts[index];
    assert.ok(target !== undefined, `no row left to plant ${kind} on (${merchantReference ?? 'first capture'})`);
    taken.set(index, kind);
    planted.push({ kind, merchantReference: target.operation.merchantReference });
  }
  const written = drafts.flatMap((draft, i) => {
    const kind = taken.get(i);
    return kind === undefined ? [draft] : plantOn(draft, kind, batchCurrency);
  });
  return { written, planted };
}

function plantOn(draft: DraftRow, kind: SettlementDiscrepancy, batchCurrency: string): DraftRow[] {
  switch (kind) {
    case 'missing_line':
      return [];
    case 'duplicate_line':
      return [draft, draft];
    case 'wrong_fee':
      return [{
        ...draft,
        fees: { ...draft.fees, interchangeMinor: (draft.fees.interchangeMinor ?? 0n) + plantedFeeErrorMinor },
      }];
    case 'changed_currency':
      // The minor-unit figure is kept; only the currency code changes (formatted with its own exponent).
      return [{ ...draft, currency: batchCurrency === 'EUR' ? 'USD' : 'EUR' }];
    case 'changed_amount':
      return [{ ...draft, grossMinor: draft.grossMinor + plantedAmountErrorMinor }];
  }
}

/**
 * Credits are Settled and ChargebackReversed; refunds and chargebacks are debits.
 * Net = Gross − fees, signed, then split.
 */
function renderRow(draft: DraftRow): SettlementRow {
  const isCredit = draft.type === 'Settled' || draft.type === 'ChargebackReversed';
  const netSignedMinor = (isCredit ? draft.grossMinor : -draft.grossMinor) - feesTotalMinor(draft.fees);
  const { operation } = draft;
  return {
    type: draft.type,
    pspReference: operation.pspReference,
    merchantReference: operation.merchantReference,
    // The reversal of a dispute is a modification of its own, as Adyen's journal has it.
    modificationReference: draft.type === 'ChargebackReversed' ? `${operation.pspReference}-reversed`
      : operation.pspReference,
    modificationMerchantReference: '',
    paymentMethod: operation.paymentMethod,
    creationDate: creationDate(operation.createdAt),
    grossCurrency: draft.currency,
    netCurrency: draft.currency,
    grossDebitMinor: isCredit ? null : draft.grossMinor,
    grossCreditMinor: isCredit ? draft.grossMinor : null,
    // A capture smaller than its fee nets to a debit.
    netDebitMinor: netSignedMinor < 0n ? -netSignedMinor : null,
    netCreditMinor: netSignedMinor >= 0n ? netSignedMinor : null,
    ...draft.fees,
  };
}

/**
 * The batch's net in its own currency, from the rows as written, as a real PSP's payout matches its
 * file. A row written in another currency (changed_currency) belongs to that currency's payout, not this one.
 */
function batchNetMinorOf(rows: readonly SettlementRow[], batchCurrency: string): bigint {
  return rows
    .filter((row) => row.netCurrency === batchCurrency)
    .reduce((sum, row) => sum + (row.netCreditMinor ?? 0n) - (row.netDebitMinor ?? 0n), 0n);
}

/** Adyen's batch-level `Fee` line: a Net Debit with no PSP reference (the fee is the line itself). */
function feeRow(amountMinor: bigint, currency: string, bookedAt: string, batchNumber: number): SettlementRow {
  return {
    type: 'Fee', pspReference: '', merchantReference: '', modificationReference: `batch-fee-${batchNumber}`,
    modificationMerchantReference: '', paymentMethod: '', creationDate: bookedAt, grossCurrency: currency,
    netCurrency: currency, grossDebitMinor: null, grossCreditMinor: null, netDebitMinor: amountMinor,
    netCreditMinor: null, ...noFees,
  };
}

/**
 * The bank transfer that closes a batch: a Net Debit paid to the operator, or, for a batch that
 * nets negative (its merchant payouts exceed what it took in), a Net Credit the PSP takes from the
 * operator's bank by direct debit, as Adyen does for a negative balance it is allowed to collect
 * (it may instead carry it to the next batch with Balancetransfer lines; the sandbox collects).
 */
function payoutRow(payoutReference: string, amountMinor: bigint, currency: string, bookedAt: string): SettlementRow {
  return {
    type: 'MerchantPayout',
    pspReference: '',
    merchantReference: '',
    modificationReference: payoutReference,
    modificationMerchantReference: payoutReference,
    paymentMethod: '',
    creationDate: bookedAt,
    grossCurrency: currency,
    netCurrency: currency,
    grossDebitMinor: null,
    grossCreditMinor: null,
    netDebitMinor: amountMinor > 0n ? amountMinor : null,
    netCreditMinor: amountMinor < 0n ? -amountMinor : null,
    ...noFees,
  };
}

function csvRecord(row: SettlementRow, input: SettlementBatchInput, bookingDateTime: string): Record<string, string> {
  const gross = (minor: bigint | null): string => (minor === null ? '' : minorToDecimal(minor, row.grossCurrency));
  const net = (minor: bigint | null): string => (minor === null ? '' : minorToDecimal(minor, row.netCurrency));
  return {
    'Company Account': input.companyAccount,
    'Merchant Account': input.merchantAccount,
    'Psp Reference': row.pspReference,
    'Merchant Reference': row.merchantReference,
    'Payment Method': row.paymentMethod,
    'Creation Date': row.creationDate,
    'TimeZone': 'UTC',
    'Type': row.type,
    'Modification Reference': row.modificationReference,
    'Gross Currency': row.grossCurrency,
    'Gross Debit (GC)': gross(row.grossDebitMinor),
    'Gross Credit (GC)': gross(row.grossCreditMinor),
    // Gross and net are always in the same currency: the sandbox does no conversion.
    'Exchange Rate': '1',
    'Net Currency': row.netCurrency,
    'Net Debit (NC)': net(row.netDebitMinor),
    'Net Credit (NC)': net(row.netCreditMinor),
    'Commission (NC)': net(row.commissionMinor),
    'Markup (NC)': net(row.markupMinor),
    'Scheme Fees (NC)': net(row.schemeFeesMinor),
    'Interchange (NC)': net(row.interchangeMinor),
    'Payment Method Variant': row.paymentMethod,
    'Modification Merchant Reference': row.modificationMerchantReference,
    'Batch Number': String(input.batchNumber),
    'Booking Date': bookingDateTime,
    'Booking Date TimeZone': 'UTC',
  };
}
