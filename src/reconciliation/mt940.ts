import type { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import { readSwiftDay, readSwiftEntryDay } from './recon-dates.js';
import { decimalToMinor, readCurrencyCode } from './decimal-minor.js';
import { at, fileProblem } from './recon-problem.js';
import {
  checkBalance, type ParsedItem, type ReconRecord, type ReconStatement, type StatementBalance,
} from './recon-records.js';

/**
 * SWIFT MT940 customer statements (reconciliation.md §3, §6), read line by line from a stream.
 * The few tags a statement needs are read by hand: the npm parsers (mt940js, mt940-js) return
 * amounts as floats or drop the references, and none says on which line a field is wrong.
 *
 * What real files do and this reader takes: bank header lines before `:20:` (`ABNANL2A`, `940`,
 * `:940:`, `0000 01INGBNL2AXXXX00001`), SWIFT FIN blocks `{1:…}{2:…}{4:` … `-}{5:}`, SOH/ETX bytes,
 * `-` and `-XXX` terminators or none, CRLF, blank lines, several statements and messages in a
 * file, a currency glued to the account number, a funds-code letter after the mark (`CR`, `DN`),
 * reversals (`RC`: a debit that reverses a credit; `RD`: a credit that reverses a debit),
 * references longer than SWIFT's 16 characters, several `:86:` fields for one entry, and a
 * statement-level `:86:` after the closing balance. What it refuses, naming the line: a field it
 * cannot read (a date such as 160230, 30 February; an amount or currency that is not one), an
 * entry outside a statement, a statement with no `:25:` account or no opening balance, text that
 * belongs to no field.
 *
 * External id of an entry: `account|:20:|:28C:|opening date|n`, n its position in the statement.
 */
interface Field {
  readonly tag: string;
  readonly line: number;
  readonly lines: string[];
}

interface StatementDraft {
  readonly position: number;
  readonly line: number;
  readonly reference: string;
  account: string | null;
  number: string | null;
  opening: (StatementBalance & { final: boolean }) | null;
  closing: (StatementBalance & { final: boolean }) | null;
  closed: boolean;
  entryCount: number;
  bookedSumMinor: bigint;
  information: string[];
  available: string | null;
  pending: PendingEntry | null;
}

interface PendingEntry {
  readonly field: Field;
  readonly information: string[];
}

/** SOH and ETX, which wrap some banks' messages. */
// eslint-disable-next-line no-control-regex -- these control bytes are what the pattern is for
const controlBytes = /[\u0001\u0003]/g;
/** A message's end (`-`, `-XXX`, `-}{5:…}`) or a FIN block header's start (`{1:…}{2:…}{4:`). */
const messageBoundary = /^(-(XXX|\}.*)?|\{1:.*)$/;
const tagPattern = /^:(\d{2}[A-Z]?):(.*)$/;
const entryPattern = /^(\d{6})(\d{4})?(RC|RD|C|D)([A-Z])?(\d+,\d*)([SNF][A-Z0-9]{3})(.*)$/;
const balancePattern = /^([CD])(\d{6})([A-Z]{3})(\d+,\d*)$/;

export async function* readMt940(input: Readable, file: string): AsyncGenerator<ParsedItem> {
  const lines = createInterface({ input, crlfDelay: Infinity });
  let lineNumber = 0;
  let field: Field | undefined;
  let statement: StatementDraft | undefined;
  let statementCount = 0;
  const out: ParsedItem[] = [];

  const finishField = () => {
    if (field === undefined) return;
    const done = field;
    field = undefined;
    if (done.tag === '20') {
      if (statement !== undefined) out.push(...finishStatement(statement, file));
      statement = newStatement(statementCount, done);
      statementCount += 1;
      return;
    }
    if (statement === undefined) {
      throw fileProblem({ file, line: done.line, field: `:${done.tag}:` }, 'the field comes before any :20: (a statement starts with :20:)');
    }
    out.push(...applyField(statement, done, file));
  };

  for await (const rawLine of lines) {
    if (out.length > 0) yield* out.splice(0);
    lineNumber += 1;
    // SOH and ETX wrap some messages; trailing spaces pad others.
    const line = rawLine.replace(controlBytes, '').trimEnd();
    if (line === '') continue;
    const tag = tagPattern.exec(line);
    if (tag !== null) {
      finishField();
      field = { tag: tag[1] ?? '', line: lineNumber, lines: [tag[2] ?? ''] };
      continue;
    }
    if (messageBoundary.test(line)) {
      // A message ends (`-`, `-XXX`, `-}{5:…}`) or a FIN block header begins (`{1:…}{2:…}{4:`).
      finishField();
      if (statement !== undefined) {
        out.push(...finishStatement(statement, file));
        statement = undefined;
      }
      continue;
    }
    if (field !== undefined && (field.tag === '86' || field.tag === '61')) {
      field.lines.push(line);
      continue;
    }
    if (statement === undefined || statement.closed) {
      // A bank's header lines between messages (`ABNANL2A`, `940`, `:940:`).
      finishField();
      continue;
    }
    throw fileProblem({ file, line: lineNumber, field: field === undefined ? 'line' : `:${field.tag}:` },
      `"${line.slice(0, 40)}" belongs to no field`);
  }
  finishField();
  if (statement !== undefined) out.push(...finishStatement(statement, file));
  yield* out.splice(0);
  if (statementCount === 0) throw fileProblem({ file, line: 0, field: ':20:' }, 'the file holds no MT940 statement');
}

function newStatement(position: number, field: Field): StatementDraft {
  return { position, line: field.line, reference: (field.lines[0] ?? '').trim(), account: null, number: null,
    opening: null, closing: null, closed: false, entryCount: 0, bookedSumMinor: 0n,
    information: [], available: null, pending: null };
}

function applyField(statement: StatementDraft, field: Field, file: string): ParsedItem[] {
  const out: ParsedItem[] = [];
  const where = { file, line: field.line, field: `:${field.tag}:` };
  const first = (field.lines[0] ?? '').trim();
  switch (field.tag) {
    case '25':
      statement.account = first;
      break;
    case '28':
    case '28C':
      statement.number = first;
      break;
    case '60F':
    case '60M':
      statement.opening = { ...readBalance(first, where), final: field.tag === '60F' };
      break;
    case '61':
      out.push(...flushEntry(statement, file));
      if (statement.opening === null) throw fileProblem(where, 'an entry comes before the opening balance (:60F:)');
      if (statement.closed) throw fileProblem(where, 'an entry comes after the closing balance');
      statement.pending = { field, information: [] };
      break;
    case '86':
      if (statement.pending !== null) statement.pending.information.push(field.lines.join('\n'));
      else statement.information.push(field.lines.join('\n'));
      break;
    case '62F':
    case '62M':
      out.push(...flushEntry(statement, file));
      statement.closing = { ...readBalance(first, where), final: field.tag === '62F' };
      statement.closed = true;
      break;
    case '64':
      out.push(...flushEntry(statement, file));
      statement.available = first;
      break;
    default:
      // :13D:, :21:, :34F:, :65:, :90C:… are not needed to reconcile.
      out.push(...flushEntry(statement, file));
  }
  return out;
}

function readBalance(text: string, where: { file: string; line: number; field: string }): StatementBalance {
  const match = balancePattern.exec(text);
  if (match === null) throw fileProblem(where, `"${text.slice(0, 40)}" is not a balance (C|D, YYMMDD, currency, amount)`);
  const [, mark = '', day = '', code = '', amount = ''] = match;
  const date = at(where, () => readSwiftDay(day));
  const currency = at(where, () => readCurrencyCode(code));
  const magnitude = at(where, () => decimalToMinor(amount, currency, { separator: ',', signed: false }));
  return { amountMinor: mark === 'D' ? -magnitude : magnitude, currency, date };
}

function flushEntry(statement: StatementDraft, file: string): ParsedItem[] {
  const pending = statement.pending;
  if (pending === null) return [];
  statement.pending = null;
  return [{ kind: 'record', record: entryRecord(statement, pending, file) }];
}

function entryRecord(statement: StatementDraft, pending: PendingEntry, file: string): ReconRecord {
  const { field } = pending;
  const where = { file, line: field.line, field: ':61:' };
  const text = (field.lines[0] ?? '').trim();
  const match = entryPattern.exec(text);
  if (match === null) {
    throw fileProblem(where, `"${text.slice(0, 40)}" is not a statement line (date, C|D|RC|RD, amount, type)`);
  }
  const [, valueText = '', entryText, mark = '', fundsCode, amountText = '', typeCode = '', rest = ''] = match;
  const valueDate = at(where, () => readSwiftDay(valueText));
  const bookingDate = entryText === undefined ? valueDate : at(where, () => readSwiftEntryDay(entryText, valueDate));
  const currency = statement.opening?.currency ?? '';
  const magnitude = at(where, () => decimalToMinor(amountText, currency, { separator: ',', signed: false }));
  // C and RD credit the account; D and RC debit it.
  const credit = mark === 'C' || mark === 'RD';
  const amountMinor = credit ? magnitude : -magnitude;
  const [ownerPart = '', ...bankParts] = rest.split('//');
  const bankReference = bankParts.join('//').trim();
  const ownerReference = ownerPart.trim();
  statement.entryCount += 1;
  statement.bookedSumMinor += amountMinor;
  const information = pending.information.join('\n');
  const references: Record<string, string> = {};
  if (ownerReference !== '') references.owner_reference = ownerReference;
  if (bankReference !== '') references.bank_reference = bankReference;
  if (fundsCode !== undefined) references.funds_code = fundsCode;
  const supplementary = field.lines.slice(1).join('\n').trim();
  if (supplementary !== '') references.supplementary_details = supplementary;
  return {
    kind: 'bank_entry',
    line: field.line,
    externalId: [statement.account ?? '', statement.reference, statement.number ?? '', statement.opening?.date ?? '',
      statement.entryCount].join('|'),
    type: typeCode,
    currency,
    amountMinor,
    grossMinor: null,
    grossCurrency: null,
    feeMinor: null,
    bookingDate,
    valueDate,
    pspReference: null,
    merchantReference: null,
    batchKey: null,
    remittanceText: information === '' ? null : information,
    counterpartyName: null,
    counterpartyAccount: null,
    status: 'BOOK',
    reversal: mark === 'RC' || mark === 'RD',
    statementPosition: statement.position,
    references,
    raw: { ':61:': field.lines.join('\n'), ':86:': pending.information },
  };
}

function finishStatement(statement: StatementDraft, file: string): ParsedItem[] {
  const out = flushEntry(statement, file);
  const where = { file, line: statement.line, field: ':20:' };
  if (statement.account === null) throw fileProblem({ ...where, field: ':25:' }, `statement ${statement.reference} has no account (:25:)`);
  if (statement.opening === null) {
    throw fileProblem({ ...where, field: ':60F:' }, `statement ${statement.reference} has no opening balance (:60F: or :60M:)`);
  }
  const { opening, closing } = statement;
  const currency = opening.currency;
  const plain = (balance: (StatementBalance & { final: boolean }) | null): StatementBalance | null =>
    (balance === null ? null : { amountMinor: balance.amountMinor, currency: balance.currency, date: balance.date });
  const result: ReconStatement = {
    position: statement.position,
    line: statement.line,
    statementRef: statement.number === null ? statement.reference : `${statement.reference}/${statement.number}`,
    account: statement.account,
    currency,
    opening: plain(opening),
    closing: plain(closing),
    entryCount: statement.entryCount,
    bookedSumMinor: statement.bookedSumMinor,
    balanceCheck: checkBalance({ currency, opening: plain(opening), closing: plain(closing),
      bookedSumMinor: statement.bookedSumMinor, entriesInOtherCurrencies: 0 }),
    raw: { opening_final: opening.final, closing_final: closing?.final ?? null, available: statement.available,
      information: statement.information },
  };
  out.push({ kind: 'statement', statement: result });
  return out;
}
