import type pg from 'pg';
import { limits } from '../config.js';
import { currencyExponent } from '../money/currency.js';
import { minorToDecimal } from '../money/decimal-amount.js';
import { inSnapshot } from './ledger-reports.js';
import * as reportStore from './ledger-report-store.js';
import type { AccountType } from './ledger-types.js';

/**
 * The journal as a plain-text accounting file, for hledger or beancount (issue 18, "Plain-text
 * accounting export"). Every entry with posted postings becomes one transaction dated by the UTC
 * day of its effective instant; debits are positive amounts, credits negative, each written as
 * the currency's exact decimal. A hold, its void and its expiry have no posted postings and are
 * left out (they move no posted balance); a hold's post contributes its posted postings only.
 * The file streams: accounts and entries are read in pages, in one snapshot.
 */
export type JournalFormat = 'hledger' | 'beancount';
export const journalFormats: readonly JournalFormat[] = ['hledger', 'beancount'];

const rootByType: Record<AccountType, string> = {
  asset: 'Assets', liability: 'Liabilities', equity: 'Equity', revenue: 'Income', expense: 'Expenses',
};

const codeComponentLengthMax = 48;

/**
 * An account's name in both tools: `<Root>:<Code>:<Id>`, e.g.
 * `Assets:Psp-Receivable:Lacc-4fZq…`. The root is beancount's (revenue is `Income`); the code's
 * words (runs of ASCII letters and digits) are capitalized and joined by `-` (`Uncoded` without a
 * code; a leading digit gets a `C`); the id keeps the account unique (`lacc_x` → `Lacc-x`). Every
 * component starts with a capital letter and holds only letters, digits and `-`.
 */
export function journalAccountName(account: { id: string; type: AccountType; code: string | null }): string {
  const words = (account.code ?? '').split(/[^A-Za-z0-9]+/).filter((word) => word !== '');
  let code = words.map((word) => word.charAt(0).toUpperCase() + word.slice(1)).join('-').slice(0, codeComponentLengthMax)
    .replace(/-+$/, '');
  if (code === '') code = 'Uncoded';
  if (/^[0-9]/.test(code)) code = `C${code}`;
  const id = account.id.replace(/^lacc_/, 'Lacc-');
  return `${rootByType[account.type]}:${code}:${id}`;
}

/** One line of text: control characters (newlines among them) become spaces. */
function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is removed
  return text.replace(/[\u0000-\u001f\u007f]/g, ' ');
}

/** A beancount string literal. */
function quoted(text: string): string {
  return `"${oneLine(text).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function day(instant: string): string {
  return instant.slice(0, 10);
}

/** The journal as text chunks (a few lines each), for a writer to stream. */
export async function* exportJournal(pool: pg.Pool, options: { format: JournalFormat; from?: string; to?: string }):
  AsyncGenerator<string> {
  const { format } = options;
  const accountsMax = limits.ledgerReportRowsPerQueryMax;
  const entriesMax = limits.ledgerJournalEntriesPerQueryMax;
  yield* inSnapshot(pool, async function* (db) {
    // ';' opens a comment line in both tools.
    yield `; Penny ledger journal (${format}). Entries effective in `
      + `[${options.from ?? 'the beginning'}, ${options.to ?? 'the end'}).\n`
      + '; Only posted postings: holds, voids and expiries move no posted balance and are left out.\n'
      + '; Account names: <Assets|Liabilities|Equity|Income|Expenses>:<code>:<Penny account id>.\n\n';
    const currencies = await reportStore.selectCurrenciesInUse(db);
    if (format === 'hledger') {
      yield 'decimal-mark .\n\n';
      // The display style: no thousands separator, the currency's exponent in decimals (hledger
      // wants the decimal mark even with none: `1.` for JPY).
      for (const currency of currencies) yield `commodity 1.${'0'.repeat(currencyExponent(currency))} ${currency}\n`;
    } else {
      yield 'option "title" "Penny ledger"\n';
      for (const currency of currencies) yield `1970-01-01 commodity ${currency}\n`;
    }
    yield '\n';

    let afterId: string | undefined;
    for (;;) {
      const accounts = await reportStore.selectJournalAccounts(db, afterId, accountsMax);
      let text = '';
      for (const account of accounts) {
        const name = journalAccountName(account);
        text += format === 'hledger'
          ? `account ${name}  ; type: ${hledgerType(account.type)}, penny_account: ${account.id}\n`
          : `${day(account.openedAt)} open ${name} ${account.currency}\n  penny_account: ${quoted(account.id)}\n`;
      }
      if (text !== '') yield text;
      const last = accounts[accounts.length - 1];
      if (accounts.length < accountsMax || last === undefined) break;
      afterId = last.id;
    }
    yield '\n';

    let after: reportStore.EntryKey | undefined;
    for (;;) {
      const entries = await reportStore.selectJournalEntries(db,
        { from: options.from, to: options.to, after, limit: entriesMax });
      let text = '';
      for (const entry of entries) {
        if (entry.postings.length === 0) continue;
        text += format === 'hledger' ? hledgerTransaction(entry) : beancountTransaction(entry);
      }
      if (text !== '') yield text;
      const last = entries[entries.length - 1];
      if (entries.length < entriesMax || last === undefined) break;
      after = { effectiveAt: last.effectiveAt, sequence: last.sequence };
    }
  });
}

/** hledger's account types: Asset, Liability, Equity, Revenue, Expense. */
function hledgerType(type: AccountType): string {
  return { asset: 'A', liability: 'L', equity: 'E', revenue: 'R', expense: 'X' }[type];
}

function postingAccountName(posting: reportStore.JournalPostingRow): string {
  return journalAccountName({ id: posting.accountId, type: posting.type, code: posting.code });
}

function signedAmount(posting: reportStore.JournalPostingRow): string {
  const amount = posting.direction === 'debit' ? posting.amountMinor : -posting.amountMinor;
  return `${minorToDecimal(amount, posting.currency)} ${posting.currency}`;
}

/**
 * `DATE * (ENTRY ID) DESCRIPTION` (a `;` would open a comment in hledger, so it becomes `,`), a
 * comment line of tags, then the postings; the account and the amount are two spaces apart.
 */
function hledgerTransaction(entry: reportStore.JournalEntryRow): string {
  const description = oneLine(entry.description ?? entry.externalReference).replace(/;/g, ',');
  let text = `${day(entry.effectiveAt)} * (${entry.id}) ${description}\n`
    + `    ; kind: ${entry.kind}, effective_at: ${entry.effectiveAt}, reference: ${oneLine(entry.externalReference)}\n`;
  for (const posting of entry.postings) text += `    ${postingAccountName(posting)}  ${signedAmount(posting)}\n`;
  return `${text}\n`;
}

function beancountTransaction(entry: reportStore.JournalEntryRow): string {
  let text = `${day(entry.effectiveAt)} * ${quoted(entry.description ?? entry.externalReference)}\n`
    + `  penny_entry: ${quoted(entry.id)}\n  kind: ${quoted(entry.kind)}\n`
    + `  effective_at: ${quoted(entry.effectiveAt)}\n  reference: ${quoted(entry.externalReference)}\n`;
  for (const posting of entry.postings) text += `  ${postingAccountName(posting)}  ${signedAmount(posting)}\n`;
  return `${text}\n`;
}
