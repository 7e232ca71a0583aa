import assert from 'node:assert/strict';
import { XMLBuilder } from 'fast-xml-parser';
import { currencyExponent } from '../money/currency.js';
import { minorToDecimal } from '../money/decimal-amount.js';

/**
 * The sandbox bank's account statement: ISO 20022 camt.053.001.08, the version decisions.md
 * ("Sandbox PSP") fixes, shaped like the genkgo v8 sample. It books each payout (the PSP's
 * settlement payout to the operator, or a merchant payout to its bank account) as one credit
 * whose unstructured remittance text carries `SANDBOX PAYOUT <reference>`, which is how Penny
 * matches a bank credit to its payout.
 */

export const camt053Namespace = 'urn:iso:std:iso:20022:tech:xsd:camt.053.001.08';

export interface StatementCredit {
  readonly reference: string;
  readonly amountMinor: bigint;
  readonly currency: string;
  /** 'YYYY-MM-DD'. */
  readonly bookingDate: string;
}

export interface BankStatementInput {
  readonly statementId: string;
  /** The account's IBAN (`Acct/Id/IBAN`), or the number of an account without one (`Acct/Id/Othr/Id`). */
  readonly accountIban: string;
  readonly currency: string;
  /** Signed: negative means the account was overdrawn. */
  readonly openingBalanceMinor: bigint;
  /** ISO 8601 timestamp, written as given. */
  readonly createdAt: string;
  /** 'YYYY-MM-DD', the first day of the statement period. */
  readonly fromDate: string;
  /** 'YYYY-MM-DD', the last day of the statement period. */
  readonly toDate: string;
  readonly credits: readonly StatementCredit[];
}

/** The remittance text of a payout credit. */
export function sandboxPayoutRemittance(reference: string): string {
  return `SANDBOX PAYOUT ${reference}`;
}

/** A camt.053.001.08 statement (XML text) whose closing balance is the opening plus its credits. */
export function camt053Statement(input: BankStatementInput): string {
  validateStatement(input);
  const creditsMinor = input.credits.reduce((sum, credit) => sum + credit.amountMinor, 0n);
  const closingBalanceMinor = input.openingBalanceMinor + creditsMinor;
  const document = {
    '?xml': { '@_version': '1.0', '@_encoding': 'UTF-8' },
    Document: {
      '@_xmlns': camt053Namespace,
      BkToCstmrStmt: {
        GrpHdr: { MsgId: input.statementId, CreDtTm: input.createdAt },
        Stmt: {
          Id: input.statementId,
          CreDtTm: input.createdAt,
          FrToDt: { FrDtTm: `${input.fromDate}T00:00:00Z`, ToDtTm: `${input.toDate}T23:59:59Z` },
          Acct: { Id: /^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(input.accountIban) ? { IBAN: input.accountIban }
            : { Othr: { Id: input.accountIban } }, Ccy: input.currency },
          Bal: [
            balance('OPBD', input.openingBalanceMinor, input.currency, input.fromDate),
            balance('CLBD', closingBalanceMinor, input.currency, input.toDate),
          ],
          Ntry: input.credits.map(creditEntry),
        },
      },
    },
  };
  const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_', format: true, indentBy: '  ' });
  return builder.build(document) as string;
}

// Programmer errors: the sandbox builds these inputs itself.
function validateStatement(input: BankStatementInput): void {
  currencyExponent(input.currency);
  assert.ok(Number.isFinite(Date.parse(input.createdAt)), `createdAt is an ISO 8601 timestamp: ${input.createdAt}`);
  assert.ok(isDay(input.fromDate) && isDay(input.toDate), 'statement dates are YYYY-MM-DD');
  assert.ok(input.fromDate <= input.toDate, 'the statement period does not end before it starts');
  for (const credit of input.credits) {
    assert.equal(credit.currency, input.currency, `credit ${credit.reference} is in the account currency`);
    // A PSP's direct debit of a negative batch is a debit: the only entry with a negative amount.
    assert.ok(credit.amountMinor !== 0n, `entry ${credit.reference} moves money`);
    assert.ok(isDay(credit.bookingDate), `credit ${credit.reference} has a YYYY-MM-DD booking date`);
  }
}

function isDay(text: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return false;
  const ms = Date.parse(`${text}T00:00:00Z`);
  return Number.isFinite(ms) && new Date(ms).toISOString().slice(0, 10) === text;
}

/** camt amounts are unsigned; the sign goes in CdtDbtInd (a zero balance is a credit). */
function signedAmount(amountMinor: bigint, currency: string): { Amt: object; CdtDbtInd: 'CRDT' | 'DBIT' } {
  const magnitude = amountMinor < 0n ? -amountMinor : amountMinor;
  return {
    Amt: { '#text': minorToDecimal(magnitude, currency), '@_Ccy': currency },
    CdtDbtInd: amountMinor < 0n ? 'DBIT' : 'CRDT',
  };
}

function balance(code: 'OPBD' | 'CLBD', amountMinor: bigint, currency: string, day: string): object {
  return { Tp: { CdOrPrtry: { Cd: code } }, ...signedAmount(amountMinor, currency), Dt: { Dt: day } };
}

/** One booked SEPA credit transfer received (PMNT/RCDT/ESCT) per payout. */
function creditEntry(credit: StatementCredit): object {
  return {
    ...signedAmount(credit.amountMinor, credit.currency),
    Sts: { Cd: 'BOOK' },
    BookgDt: { Dt: credit.bookingDate },
    ValDt: { Dt: credit.bookingDate },
    // A credit transfer received, or (a negative amount) a SEPA direct debit collected.
    BkTxCd: { Domn: { Cd: 'PMNT', Fmly: credit.amountMinor > 0n ? { Cd: 'RCDT', SubFmlyCd: 'ESCT' }
      : { Cd: 'IDDT', SubFmlyCd: 'ESDD' } } },
    NtryDtls: { TxDtls: { RmtInf: { Ustrd: sandboxPayoutRemittance(credit.reference) } } },
  };
}
