import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { SaxesParser, type SaxesTagNS } from 'saxes';
import { readDay } from './recon-dates.js';
import { decimalToMinor, readCurrencyCode } from './decimal-minor.js';
import { at, fileProblem } from './recon-problem.js';
import {
  checkBalance, type ParsedItem, type ReconRecord, type ReconStatement, type StatementBalance,
} from './recon-records.js';

/**
 * ISO 20022 camt.053 bank-to-customer statements, versions .001.02 through .001.08
 * (reconciliation.md §3), read with saxes, a streaming parser, so a file of any size is read in
 * bounded memory: each `Ntry` becomes a record when it closes, each `Stmt` a statement when it
 * closes. The version comes from the namespace (not `schemaLocation`, which one sample gets
 * wrong); elements are read by local name, so prefixes do not matter. `Sts` is read as text
 * (up to .04) or as `Sts/Cd` (.08); dates as `Dt` or `DtTm`. A batch booking (`Btch/NbOfTxs`) is
 * one entry whose count of transactions is kept. External entities are never expanded.
 *
 * External id of an entry: `account|Stmt/Id|n`, n its position in the statement (1-based).
 */
export const camt053Versions: readonly string[] = ['001.02', '001.03', '001.04', '001.05', '001.06', '001.07', '001.08'];

const namespacePattern = /^urn:iso:std:iso:20022:tech:xsd:camt\.053\.(\d{3}\.\d{2})$/;

/** Leaves kept per entry: a batch booking with thousands of transaction details keeps its first ones. */
const entryLeavesMax = 2_000;

interface Leaf {
  readonly path: string;
  readonly text: string;
  readonly currency: string | undefined;
  readonly line: number;
}

interface StatementDraft {
  readonly position: number;
  readonly line: number;
  readonly leaves: Leaf[];
  readonly balances: { line: number; leaves: Leaf[] }[];
  entryCount: number;
  bookedSumMinor: bigint;
  bookedOtherCurrency: number;
  account: string;
  currency: string | null;
  statementRef: string;
}

/** The version of a camt.053 document from its root namespace, or undefined for another document. */
export function camt053Version(namespace: string): string | undefined {
  return namespacePattern.exec(namespace)?.[1];
}

export async function* readCamt053(input: Readable, file: string, onVersion: (version: string) => void = () => {}):
AsyncGenerator<ParsedItem> {
  const parser = new SaxesParser({ xmlns: true, position: true });
  const out: ParsedItem[] = [];
  const stack: string[] = [];
  let text = '';
  let rootSeen = false;
  let statementCount = 0;
  let statement: StatementDraft | undefined;
  let balance: { line: number; leaves: Leaf[] } | undefined;
  let entry: { line: number; leaves: Leaf[]; truncated: boolean } | undefined;
  let amountCurrency: string | undefined;
  let failure: Error | undefined;
  // Where a path starts: the Stmt, Bal or Ntry element's depth.
  let statementDepth = -1;
  let balanceDepth = -1;
  let entryDepth = -1;

  const relative = (from: number) => stack.slice(from + 1).join('/');

  parser.on('error', (error) => {
    failure ??= fileProblem({ file, line: parser.line, field: 'XML' }, `not well-formed XML: ${error.message}`);
    throw failure;
  });
  parser.on('opentag', (tag: SaxesTagNS) => {
    if (!rootSeen) {
      rootSeen = true;
      const version = camt053Version(tag.uri);
      if (tag.local !== 'Document' || version === undefined) {
        throw fileProblem({ file, line: parser.line, field: 'Document' },
          `not a camt.053 document (root ${tag.local} in namespace "${tag.uri}")`);
      }
      if (!camt053Versions.includes(version)) {
        throw fileProblem({ file, line: parser.line, field: 'Document' },
          `camt.053.${version} is not read: Penny reads camt.053.001.02 through .001.08`);
      }
      onVersion(version);
    }
    stack.push(tag.local);
    text = '';
    const depth = stack.length - 1;
    const attribute = tag.attributes.Ccy;
    amountCurrency = tag.local.endsWith('Amt') || tag.local === 'Amt' ? attribute?.value : undefined;
    if (tag.local === 'Stmt' && stack[depth - 1] === 'BkToCstmrStmt') {
      statement = { position: statementCount, line: parser.line, leaves: [], balances: [], entryCount: 0,
        bookedSumMinor: 0n, bookedOtherCurrency: 0, account: '', currency: null, statementRef: '' };
      statementCount += 1;
      statementDepth = depth;
    } else if (statement !== undefined && entry === undefined && balance === undefined
      && depth === statementDepth + 1) {
      if (tag.local === 'Bal') {
        balance = { line: parser.line, leaves: [] };
        balanceDepth = depth;
      } else if (tag.local === 'Ntry') {
        if (statement.entryCount === 0) settleStatementHeader(statement, file);
        entry = { line: parser.line, leaves: [], truncated: false };
        entryDepth = depth;
      }
    }
  });
  parser.on('text', (chunk) => { text += chunk; });
  parser.on('cdata', (chunk) => { text += chunk; });
  parser.on('closetag', (tag) => {
    const depth = stack.length - 1;
    const value = text.trim();
    const leafOf = (from: number): Leaf =>
      ({ path: relative(from), text: value, currency: amountCurrency, line: parser.line });
    const isLeaf = value !== '' || amountCurrency !== undefined;
    if (entry !== undefined && depth > entryDepth && isLeaf) {
      if (entry.leaves.length < entryLeavesMax) entry.leaves.push(leafOf(entryDepth));
      else entry.truncated = true;
    } else if (balance !== undefined && depth > balanceDepth && isLeaf) {
      balance.leaves.push(leafOf(balanceDepth));
    } else if (statement !== undefined && entry === undefined && balance === undefined && depth > statementDepth
      && isLeaf && statement.leaves.length < entryLeavesMax) {
      statement.leaves.push(leafOf(statementDepth));
    }
    text = '';
    amountCurrency = undefined;
    if (entry !== undefined && depth === entryDepth) {
      if (statement === undefined) throw new Error('an entry outside a statement');
      out.push({ kind: 'record', record: entryRecord(statement, entry, file) });
      entry = undefined;
    } else if (balance !== undefined && depth === balanceDepth) {
      statement?.balances.push(balance);
      balance = undefined;
    } else if (statement !== undefined && depth === statementDepth && tag.local === 'Stmt') {
      if (statement.entryCount === 0) settleStatementHeader(statement, file);
      out.push({ kind: 'statement', statement: finishStatement(statement, file) });
      statement = undefined;
    }
    stack.pop();
  });

  const decoder = new StringDecoder('utf8');
  const write = (chunk: string) => {
    try {
      parser.write(chunk);
    } catch (error) {
      throw failure ?? error;
    }
  };
  for await (const chunk of input as AsyncIterable<Buffer>) {
    write(decoder.write(chunk));
    yield* out.splice(0);
  }
  write(decoder.end());
  try {
    parser.close();
  } catch (error) {
    throw failure ?? error;
  }
  yield* out.splice(0);
  if (!rootSeen) throw fileProblem({ file, line: 0, field: 'Document' }, 'the file holds no XML document');
  if (statementCount === 0) {
    throw fileProblem({ file, line: 0, field: 'Stmt' }, 'a camt.053 statement message holds at least one Stmt; this one has none');
  }
}

function first(leaves: readonly Leaf[], ...paths: string[]): Leaf | undefined {
  for (const path of paths) {
    const found = leaves.find((leaf) => leaf.path === path);
    if (found !== undefined) return found;
  }
  return undefined;
}

function valueOf(leaves: readonly Leaf[], ...paths: string[]): string | null {
  const found = first(leaves, ...paths);
  return found === undefined || found.text === '' ? null : found.text;
}

/** Id, account and currency: all come before the first entry (the schema's order). */
function settleStatementHeader(statement: StatementDraft, file: string): void {
  const id = first(statement.leaves, 'Id');
  if (id === undefined || id.text === '') {
    throw fileProblem({ file, line: statement.line, field: 'Stmt/Id' }, 'the statement has no Id');
  }
  statement.statementRef = id.text;
  const account = first(statement.leaves, 'Acct/Id/IBAN', 'Acct/Id/Othr/Id');
  if (account === undefined || account.text === '') {
    throw fileProblem({ file, line: statement.line, field: 'Stmt/Acct/Id' }, 'the statement names no account');
  }
  statement.account = account.text;
  const currency = first(statement.leaves, 'Acct/Ccy');
  const opening = statement.balances.map((item) => readBalance(item, file)).find((item) => item.code === 'OPBD');
  statement.currency = currency !== undefined
    ? at({ file, line: currency.line, field: 'Acct/Ccy' }, () => readCurrencyCode(currency.text))
    : opening?.balance.currency ?? null;
}

function readAmount(leaf: Leaf | undefined, file: string, field: string, line: number):
{ amountMinor: bigint; currency: string } {
  if (leaf === undefined || leaf.text === '') throw fileProblem({ file, line, field }, 'is missing');
  const where = { file, line: leaf.line, field };
  if (leaf.currency === undefined) throw fileProblem(where, 'has no Ccy attribute');
  const currency = at({ ...where, field: `${field}/@Ccy` }, () => readCurrencyCode(leaf.currency ?? ''));
  return { amountMinor: at(where, () => decimalToMinor(leaf.text, currency, { separator: '.', signed: false })), currency };
}

function readSign(leaves: readonly Leaf[], file: string, field: string, line: number): 1n | -1n {
  const leaf = first(leaves, 'CdtDbtInd');
  if (leaf === undefined) throw fileProblem({ file, line, field }, 'is missing');
  if (leaf.text === 'CRDT') return 1n;
  if (leaf.text === 'DBIT') return -1n;
  throw fileProblem({ file, line: leaf.line, field }, `"${leaf.text.slice(0, 20)}" is neither CRDT nor DBIT`);
}

function readDate(leaves: readonly Leaf[], prefix: string, file: string, field: string): string | null {
  const leaf = first(leaves, `${prefix}/Dt`, `${prefix}/DtTm`);
  if (leaf === undefined) return null;
  return at({ file, line: leaf.line, field }, () => readDay(leaf.text));
}

function readBalance(item: { line: number; leaves: Leaf[] }, file: string):
{ code: string; balance: StatementBalance } {
  const code = valueOf(item.leaves, 'Tp/CdOrPrtry/Cd', 'Tp/CdOrPrtry/Prtry');
  if (code === null) throw fileProblem({ file, line: item.line, field: 'Bal/Tp/CdOrPrtry' }, 'the balance has no type');
  const amount = readAmount(first(item.leaves, 'Amt'), file, 'Bal/Amt', item.line);
  const sign = readSign(item.leaves, file, 'Bal/CdtDbtInd', item.line);
  return { code, balance: { amountMinor: sign * amount.amountMinor, currency: amount.currency,
    date: readDate(item.leaves, 'Dt', file, 'Bal/Dt') } };
}

function entryRecord(statement: StatementDraft, entry: { line: number; leaves: Leaf[]; truncated: boolean },
  file: string): ReconRecord {
  const { leaves, line } = entry;
  const amount = readAmount(first(leaves, 'Amt'), file, 'Ntry/Amt', line);
  const sign = readSign(leaves, file, 'Ntry/CdtDbtInd', line);
  const status = valueOf(leaves, 'Sts/Cd', 'Sts', 'Sts/Prtry');
  if (status === null) throw fileProblem({ file, line, field: 'Ntry/Sts' }, 'the entry has no status');
  const reversalText = valueOf(leaves, 'RvslInd');
  if (reversalText !== null && !['true', 'false', '1', '0'].includes(reversalText)) {
    throw fileProblem({ file, line, field: 'Ntry/RvslInd' }, `"${reversalText.slice(0, 20)}" is not a boolean`);
  }
  statement.entryCount += 1;
  const amountMinor = sign * amount.amountMinor;
  if (status === 'BOOK') {
    if (amount.currency === statement.currency) statement.bookedSumMinor += amountMinor;
    else statement.bookedOtherCurrency += 1;
  }
  const credit = sign === 1n;
  const party = credit ? 'Dbtr' : 'Cdtr';
  const tx = 'NtryDtls/TxDtls';
  const references: Record<string, string> = {};
  const keep = (name: string, ...paths: string[]) => {
    const value = valueOf(leaves, ...paths);
    if (value !== null) references[name] = value;
  };
  keep('NtryRef', 'NtryRef');
  keep('AcctSvcrRef', 'AcctSvcrRef');
  for (const ref of ['MsgId', 'AcctSvcrRef', 'PmtInfId', 'InstrId', 'EndToEndId', 'TxId', 'MndtId', 'UETR']) {
    keep(`TxDtls.${ref}`, `${tx}/Refs/${ref}`);
  }
  keep('CdtrRef', `${tx}/RmtInf/Strd/CdtrRefInf/Ref`);
  keep('BkTxCd', 'BkTxCd/Domn/Cd');
  keep('BkTxCd.Fmly', 'BkTxCd/Domn/Fmly/Cd');
  keep('BkTxCd.SubFmly', 'BkTxCd/Domn/Fmly/SubFmlyCd');
  keep('BkTxCd.Prtry', 'BkTxCd/Prtry/Cd');
  keep('Btch.MsgId', 'NtryDtls/Btch/MsgId');
  keep('Btch.PmtInfId', 'NtryDtls/Btch/PmtInfId');
  keep('Btch.NbOfTxs', 'NtryDtls/Btch/NbOfTxs');
  keep('AddtlNtryInf', 'AddtlNtryInf');
  const remittance = leaves.filter((leaf) => leaf.path === `${tx}/RmtInf/Ustrd` || leaf.path === `${tx}/AddtlTxInf`)
    .map((leaf) => leaf.text);
  const family = [references['BkTxCd'], references['BkTxCd.Fmly'], references['BkTxCd.SubFmly']]
    .filter((part) => part !== undefined).join('/');
  const transactionCount = references['Btch.NbOfTxs'] ?? String(leaves.filter((leaf) => leaf.path === `${tx}/Amt`).length || '');
  return {
    kind: 'bank_entry',
    line,
    externalId: `${statement.account}|${statement.statementRef}|${statement.entryCount}`,
    type: family !== '' ? family : references['BkTxCd.Prtry'] ?? (credit ? 'credit' : 'debit'),
    currency: amount.currency,
    amountMinor,
    grossMinor: null,
    grossCurrency: null,
    feeMinor: null,
    bookingDate: readDate(leaves, 'BookgDt', file, 'Ntry/BookgDt'),
    valueDate: readDate(leaves, 'ValDt', file, 'Ntry/ValDt'),
    pspReference: null,
    merchantReference: null,
    batchKey: null,
    remittanceText: remittance.length > 0 ? remittance.join('\n')
      : valueOf(leaves, 'AddtlNtryInf'),
    counterpartyName: valueOf(leaves, `${tx}/RltdPties/${party}/Nm`, `${tx}/RltdPties/${party}/Pty/Nm`),
    counterpartyAccount: valueOf(leaves, `${tx}/RltdPties/${party}Acct/Id/IBAN`, `${tx}/RltdPties/${party}Acct/Id/Othr/Id`),
    status,
    reversal: reversalText === 'true' || reversalText === '1',
    statementPosition: statement.position,
    references,
    raw: { transactions: transactionCount === '' ? null : transactionCount, leaves_truncated: entry.truncated,
      leaves: Object.fromEntries(leaves.slice(0, 200).map((leaf) => [leaf.path, leaf.currency === undefined
        ? leaf.text : `${leaf.text} ${leaf.currency}`])) },
  };
}

function finishStatement(statement: StatementDraft, file: string): ReconStatement {
  const balances = statement.balances.map((item) => readBalance(item, file));
  const opening = balances.find((item) => item.code === 'OPBD')?.balance ?? null;
  const closing = balances.find((item) => item.code === 'CLBD')?.balance ?? null;
  return {
    position: statement.position,
    line: statement.line,
    statementRef: statement.statementRef,
    account: statement.account,
    currency: statement.currency,
    opening,
    closing,
    entryCount: statement.entryCount,
    bookedSumMinor: statement.bookedSumMinor,
    balanceCheck: checkBalance({ currency: statement.currency, opening, closing,
      bookedSumMinor: statement.bookedSumMinor,
      entriesInOtherCurrencies: statement.bookedOtherCurrency }),
    raw: {
      balances: balances.map(({ code, balance: item }) => ({ code, amount_minor: item.amountMinor,
        currency: item.currency, date: item.date })),
      electronic_sequence: valueOf(statement.leaves, 'ElctrncSeqNb'),
      created_at: valueOf(statement.leaves, 'CreDtTm'),
      account_name: valueOf(statement.leaves, 'Acct/Nm'),
    },
  };
}
