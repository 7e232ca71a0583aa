import { CsvRow } from './csv-rows.js';

/**
 * What an imported file holds, in one shape for every format, so that a matcher reads a bank
 * entry, an Adyen line and a Stripe line alike: a signed amount in integer minor units with its
 * currency, the UTC days it was booked and valued, the references it carries, and its
 * counterparty. Everything is operator data: a PSP report or a bank statement covers many
 * merchants, so none of it carries a merchant id (decisions.md, "Growing past one database").
 */
export type ReconFormat = 'adyen_sdr' | 'stripe_payout_reconciliation' | 'camt053' | 'mt940';

export const reconFormats: readonly ReconFormat[] = ['adyen_sdr', 'stripe_payout_reconciliation', 'camt053', 'mt940'];

export type ReconRecordKind = 'psp_line' | 'bank_entry';

export interface ReconRecord {
  readonly kind: ReconRecordKind;
  /** The line of the file where the record starts (1-based). */
  readonly line: number;
  /**
   * The record's identity in its source: what makes a re-import of it known (the same content) or
   * a `conflicting_external_record` (other content). See each parser for how it is made.
   */
  readonly externalId: string;
  /** Adyen's journal type, Stripe's reporting_category, the bank's transaction code (or 'credit'/'debit'). */
  readonly type: string;
  readonly currency: string;
  /** Signed, in minor units of `currency`: what the line or entry moved in the account (net for PSP lines). */
  readonly amountMinor: bigint;
  /** PSP lines: the gross amount, signed like the amount, in `grossCurrency`. */
  readonly grossMinor: bigint | null;
  readonly grossCurrency: string | null;
  /** PSP lines: the fees the PSP took (positive when paid), in `currency`. */
  readonly feeMinor: bigint | null;
  /** 'YYYY-MM-DD', the UTC day it was booked (created, for a Stripe line). */
  readonly bookingDate: string | null;
  /** 'YYYY-MM-DD', the value date (Stripe's available_on). */
  readonly valueDate: string | null;
  /** The PSP's reference of the payment (Adyen's Psp Reference, Stripe's source_id). */
  readonly pspReference: string | null;
  /** Penny's reference as the PSP echoes it (Adyen's Merchant Reference, Stripe's charge_id). */
  readonly merchantReference: string | null;
  /** The PSP's grouping key: Adyen's Batch Number, Stripe's automatic_payout_id. */
  readonly batchKey: string | null;
  /** Free text a payout reference lands in: camt `Ustrd`, MT940 `:86:`, Adyen's Modification Reference. */
  readonly remittanceText: string | null;
  readonly counterpartyName: string | null;
  readonly counterpartyAccount: string | null;
  /** Bank entries: BOOK, PDNG or INFO (MT940 entries are all BOOK). */
  readonly status: string | null;
  readonly reversal: boolean;
  /** Bank entries: the position of their statement in the file (0-based). */
  readonly statementPosition: number | null;
  /** Every other reference the record carries, by name (EndToEndId, AcctSvcrRef, payment_intent_id, …). */
  readonly references: Readonly<Record<string, string>>;
  /**
   * The record as the file had it: a CSV row (its values, read by name through its file's header;
   * `rawObject` gives it by column name), the raw MT940 fields, camt's parsed fields.
   */
  readonly raw: Readonly<Record<string, unknown>> | CsvRow;
}

/** A record's raw fields as an object by name: a CSV row's values by column name, in the file's column order. */
export function rawObject(raw: ReconRecord['raw']): Readonly<Record<string, unknown>> {
  return raw instanceof CsvRow ? raw.toObject() : raw;
}

export interface StatementBalance {
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly date: string | null;
}

/**
 * Whether a statement adds up (decisions.md, "Formats and libraries"): checkable only with an
 * opening and a closing booked balance in the account's currency; the reason says why not.
 */
export type BalanceCheck =
  | { readonly result: 'adds_up'; readonly expectedClosingMinor: bigint }
  | { readonly result: 'mismatch'; readonly expectedClosingMinor: bigint; readonly differenceMinor: bigint }
  | { readonly result: 'not_checkable'; readonly reason: string };

export interface ReconStatement {
  readonly position: number;
  readonly line: number;
  /** camt `Stmt/Id`; MT940 `:20:` and `:28C:` as `20/28C`. */
  readonly statementRef: string;
  readonly account: string;
  /** The account's currency: camt `Acct/Ccy`, or that of its opening balance. */
  readonly currency: string | null;
  readonly opening: StatementBalance | null;
  readonly closing: StatementBalance | null;
  readonly entryCount: number;
  /** Σ of the booked entries in the account's currency. */
  readonly bookedSumMinor: bigint;
  readonly balanceCheck: BalanceCheck;
  readonly raw: Readonly<Record<string, unknown>>;
}

export type ParsedItem =
  | { readonly kind: 'record'; readonly record: ReconRecord }
  | { readonly kind: 'statement'; readonly statement: ReconStatement };

/** Sums a statement's booked entries and says whether opening + Σ = closing. */
export function checkBalance(input: {
  readonly currency: string | null;
  readonly opening: StatementBalance | null;
  readonly closing: StatementBalance | null;
  readonly bookedSumMinor: bigint;
  readonly entriesInOtherCurrencies: number;
}): BalanceCheck {
  const { currency, opening, closing } = input;
  if (opening === null) return { result: 'not_checkable', reason: 'the statement has no opening booked balance' };
  if (closing === null) return { result: 'not_checkable', reason: 'the statement has no closing booked balance' };
  if (opening.currency !== currency) {
    return { result: 'not_checkable', reason: `the opening booked balance is in ${opening.currency}, not the account's ${currency ?? 'currency'}` };
  }
  if (closing.currency !== currency) {
    return { result: 'not_checkable', reason: `the closing booked balance is in ${closing.currency}, not the account's ${currency}` };
  }
  if (input.entriesInOtherCurrencies > 0) {
    return { result: 'not_checkable', reason: `${input.entriesInOtherCurrencies} booked entries are not in ${currency}` };
  }
  const expectedClosingMinor = opening.amountMinor + input.bookedSumMinor;
  if (expectedClosingMinor === closing.amountMinor) return { result: 'adds_up', expectedClosingMinor };
  return { result: 'mismatch', expectedClosingMinor, differenceMinor: closing.amountMinor - expectedClosingMinor };
}
