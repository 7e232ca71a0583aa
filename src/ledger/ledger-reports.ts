import { pipeline, Readable } from 'node:stream';
import { stringify } from 'csv-stringify';
import type pg from 'pg';
import { limits } from '../config.js';
import type { Queryable } from '../db/pool.js';
import { minorToDecimal } from '../money/decimal-amount.js';
import { invalid } from '../validation.js';
import { accountNotFound } from './ledger-errors.js';
import { presentBalances } from './ledger-presenter.js';
import * as reportStore from './ledger-report-store.js';
import * as store from './ledger-store.js';
import { normalBalance, type Account, type AccountType } from './ledger-types.js';

/**
 * The ledger's reports for accountants (issue 18, "Reporting"): the trial balance by account, an
 * account's statement for a period, and the balance as of an instant, as JSON and CSV. Amounts are
 * bigint minor units; CSV writes each amount twice, as the minor-unit integer (`…_minor`) and as
 * the currency's exact decimal. Long reports are async generators over pages of
 * `limits.ledgerReportRowsPerQueryMax` rows, read in one REPEATABLE READ snapshot, so memory is
 * bounded and the pages agree with each other. Only posted postings count: a hold's pending and
 * release phases move no posted balance.
 */
export type ReportFormat = 'json' | 'csv';
export const reportFormats: readonly ReportFormat[] = ['json', 'csv'];

/** Runs a paged read in one read-only snapshot on one connection, released when the reader stops. */
export async function* inSnapshot<T>(pool: pg.Pool, read: (db: Queryable) => AsyncGenerator<T>): AsyncGenerator<T> {
  const client = await pool.connect();
  let failed = false;
  try {
    await reportStore.beginSnapshot(client);
    yield* read(client);
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    try {
      await reportStore.endSnapshot(client);
    } catch {
      failed = true;
    }
    client.release(failed ? true : undefined);
  }
}

/** Runs `work` in one read-only snapshot on one connection. */
export async function withSnapshot<T>(pool: pg.Pool, work: (db: Queryable) => Promise<T>): Promise<T> {
  for await (const result of inSnapshot(pool, async function* (db) { yield await work(db); })) return result;
  throw new Error('a snapshot yields its work\'s result');
}

// ---- Trial balance by account -------------------------------------------------------------

export interface TrialBalanceAccountLine {
  readonly line: 'account';
  readonly currency: string;
  readonly account: string;
  readonly type: AccountType;
  readonly code: string | null;
  readonly owner: string | null;
  readonly debitsPosted: bigint;
  readonly creditsPosted: bigint;
}

/** A currency's totals: debits equal credits, and the debit balances equal the credit balances. */
export interface TrialBalanceTotalLine {
  readonly line: 'total';
  readonly currency: string;
  readonly accounts: number;
  readonly debitsPosted: bigint;
  readonly creditsPosted: bigint;
  readonly debitBalance: bigint;
  readonly creditBalance: bigint;
}

export type TrialBalanceLine = TrialBalanceAccountLine | TrialBalanceTotalLine;

/** An account's posted balance in the debit or the credit column, as a trial balance shows it. */
export function sideBalances(debits: bigint, credits: bigint): { debitBalance: bigint; creditBalance: bigint } {
  return debits >= credits ? { debitBalance: debits - credits, creditBalance: 0n }
    : { debitBalance: 0n, creditBalance: credits - debits };
}

export interface Period {
  readonly from: string;
  readonly to: string;
}

/** `from` and `to` are both required, `from` before `to` ([from, to)). */
export function checkPeriod(from: string | undefined, to: string | undefined, names = { from: 'from', to: 'to' }): Period {
  if (from === undefined) throw invalid(names.from, `${names.from} is required: the period is [from, to).`, 'parameter_missing');
  if (to === undefined) throw invalid(names.to, `${names.to} is required: the period is [from, to).`, 'parameter_missing');
  if (Date.parse(from) >= Date.parse(to)) throw invalid(names.to, `${names.to} must be after ${names.from}.`);
  return { from, to };
}

export class LedgerReports {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Every account that has posted anything, by currency then id, each currency followed by its
   * total line when `totals` is set. `startingAfter` (an account id) resumes after that account.
   */
  async *trialBalanceLines(options: { asOf: string | undefined; totals: boolean; startingAfter?: string }):
    AsyncGenerator<TrialBalanceLine> {
    let resumeCurrency: string | undefined;
    if (options.startingAfter !== undefined) {
      const [account] = await store.selectAccounts(this.pool, [options.startingAfter]);
      if (account === undefined) throw accountNotFound(options.startingAfter, 'starting_after');
      resumeCurrency = account.currency;
    }
    const rowsMax = limits.ledgerReportRowsPerQueryMax;
    yield* inSnapshot(this.pool, async function* (db) {
      for (const currency of await reportStore.selectCurrenciesInUse(db)) {
        if (resumeCurrency !== undefined && currency < resumeCurrency) continue;
        let afterId = currency === resumeCurrency ? options.startingAfter : undefined;
        let debits = 0n; let credits = 0n; let debitBalance = 0n; let creditBalance = 0n; let accounts = 0;
        for (;;) {
          const page = await reportStore.selectAccountTotalsPage(db,
            { currency, asOf: options.asOf, afterId, limit: rowsMax });
          for (const row of page) {
            debits += row.debitsPosted;
            credits += row.creditsPosted;
            const sides = sideBalances(row.debitsPosted, row.creditsPosted);
            debitBalance += sides.debitBalance;
            creditBalance += sides.creditBalance;
            accounts += 1;
            yield { line: 'account', currency, account: row.id, type: row.type, code: row.code, owner: row.owner,
              debitsPosted: row.debitsPosted, creditsPosted: row.creditsPosted } satisfies TrialBalanceAccountLine;
          }
          if (page.length < rowsMax) break;
          afterId = page[page.length - 1]?.id;
        }
        if (options.totals && accounts > 0) {
          yield { line: 'total', currency, accounts, debitsPosted: debits, creditsPosted: credits, debitBalance,
            creditBalance } satisfies TrialBalanceTotalLine;
        }
      }
    });
  }

  /** A page of the trial balance's account lines (the JSON list), after an account id. */
  async trialBalancePage(query: { asOf: string | undefined; limit: number; startingAfter: string | undefined }):
    Promise<{ data: TrialBalanceAccountLine[]; hasMore: boolean }> {
    const data: TrialBalanceAccountLine[] = [];
    const lines = this.trialBalanceLines({ asOf: query.asOf, totals: false, startingAfter: query.startingAfter });
    for await (const line of lines) {
      if (line.line !== 'account') continue;
      if (data.length === query.limit) return { data, hasMore: true };
      data.push(line);
    }
    return { data, hasMore: false };
  }

  // ---- Statements ---------------------------------------------------------------------------

  async account(id: string, param = 'account'): Promise<Account> {
    const [account] = await store.selectAccounts(this.pool, [id]);
    if (account === undefined) throw accountNotFound(id, param);
    return account;
  }

  /**
   * One page of a statement (oldest first), each posting with the running balance after it.
   * `startingAfter` is a posting id of the account, the previous page's last.
   */
  async statementPage(accountId: string, period: Period, page: { limit: number; startingAfter: bigint | undefined }):
    Promise<{ summary: StatementSummary; postings: StatementPosting[]; hasMore: boolean }> {
    const account = await this.account(accountId, 'id');
    return withSnapshot(this.pool, async (db) => {
      const sums = await reportStore.selectPeriodSums(db, accountId, period.from, period.to);
      const summary = summarize(account, period, sums);
      let after: reportStore.PostingKey | undefined;
      let balance = summary.openingBalance;
      if (page.startingAfter !== undefined) {
        after = await reportStore.selectPostingKey(db, accountId, page.startingAfter);
        if (after === undefined) {
          throw invalid('starting_after', `starting_after must be a posting of account ${accountId}.`);
        }
        const through = await reportStore.selectSumsThrough(db, accountId, period.from, after);
        balance += summary.sign * (through.debits - through.credits);
      }
      const rows = await reportStore.selectStatementPostings(db, {
        accountId, from: period.from, to: period.to, after, limit: page.limit + 1,
      });
      const postings: StatementPosting[] = [];
      for (const row of rows.slice(0, page.limit)) {
        balance += summary.sign * (row.direction === 'debit' ? row.amountMinor : -row.amountMinor);
        postings.push({ ...row, runningBalance: balance });
      }
      return { summary, postings, hasMore: rows.length > page.limit };
    });
  }

  /** The whole statement, read in pages in one snapshot: the summary first, then every posting. */
  async *statement(accountId: string, period: Period): AsyncGenerator<StatementSummary | StatementPosting> {
    const account = await this.account(accountId, 'id');
    const rowsMax = limits.ledgerReportRowsPerQueryMax;
    yield* inSnapshot(this.pool, async function* (db) {
      const sums = await reportStore.selectPeriodSums(db, accountId, period.from, period.to);
      const summary = summarize(account, period, sums);
      yield summary;
      let balance = summary.openingBalance;
      let after: reportStore.PostingKey | undefined;
      for (;;) {
        const rows = await reportStore.selectStatementPostings(db, { accountId, ...period, after, limit: rowsMax });
        for (const row of rows) {
          balance += summary.sign * (row.direction === 'debit' ? row.amountMinor : -row.amountMinor);
          yield { ...row, runningBalance: balance } satisfies StatementPosting;
        }
        const last = rows[rows.length - 1];
        if (rows.length < rowsMax || last === undefined) break;
        after = { effectiveAt: last.effectiveAt, id: last.id };
      }
    });
  }

  /** The balance as of an instant (inclusive), or now. */
  async balance(accountId: string, asOf: string | undefined) {
    const account = await this.account(accountId, 'id');
    const balances = asOf === undefined ? account.balances : await store.selectBalanceAsOf(this.pool, accountId, asOf);
    return { object: 'ledger.balance', account: account.id, currency: account.currency, as_of: asOf ?? null,
      ...presentBalances(account, balances) };
  }
}

export interface StatementSummary {
  readonly kind: 'summary';
  readonly account: Account;
  readonly period: Period;
  /** +1 for a debit-normal account (asset, expense), −1 for a credit-normal one. */
  readonly sign: 1n | -1n;
  readonly openingBalance: bigint;
  readonly debitsPosted: bigint;
  readonly creditsPosted: bigint;
  readonly closingBalance: bigint;
}

export interface StatementPosting extends reportStore.StatementPostingRow {
  /** The account's posted balance on its normal side after this posting. */
  readonly runningBalance: bigint;
}

function summarize(account: Account, period: Period, sums: reportStore.PeriodSums): StatementSummary {
  const sign = normalBalance(account.type) === 'debit' ? 1n : -1n;
  const openingBalance = sign * (sums.openingDebits - sums.openingCredits);
  return {
    kind: 'summary', account, period, sign, openingBalance,
    debitsPosted: sums.periodDebits, creditsPosted: sums.periodCredits,
    closingBalance: openingBalance + sign * (sums.periodDebits - sums.periodCredits),
  };
}

// ---- JSON shapes --------------------------------------------------------------------------

export function presentTrialBalanceLine(line: TrialBalanceAccountLine) {
  const sides = sideBalances(line.debitsPosted, line.creditsPosted);
  return {
    object: 'ledger.trial_balance_line', account: line.account, currency: line.currency, type: line.type,
    normal_balance: normalBalance(line.type), code: line.code, owner: line.owner,
    debits_posted: line.debitsPosted, credits_posted: line.creditsPosted,
    debit_balance: sides.debitBalance, credit_balance: sides.creditBalance,
  };
}

export function presentTrialBalanceTotal(line: TrialBalanceTotalLine) {
  return {
    currency: line.currency, accounts: line.accounts, debits_posted: line.debitsPosted,
    credits_posted: line.creditsPosted, difference: line.debitsPosted - line.creditsPosted,
    debit_balance: line.debitBalance, credit_balance: line.creditBalance,
  };
}

export function presentStatementSummary(summary: StatementSummary) {
  return {
    object: 'ledger.statement',
    account: summary.account.id,
    currency: summary.account.currency,
    type: summary.account.type,
    normal_balance: normalBalance(summary.account.type),
    from: summary.period.from,
    to: summary.period.to,
    opening_balance: summary.openingBalance,
    debits_posted: summary.debitsPosted,
    credits_posted: summary.creditsPosted,
    closing_balance: summary.closingBalance,
  };
}

export function presentStatementPosting(posting: StatementPosting) {
  return {
    object: 'ledger.statement_line',
    posting: posting.id,
    entry: posting.entryId,
    external_reference: posting.externalReference,
    description: posting.description,
    effective_at: posting.effectiveAt,
    direction: posting.direction,
    amount: posting.amountMinor,
    running_balance: posting.runningBalance,
  };
}

// ---- CSV ----------------------------------------------------------------------------------

/** Rows (objects of strings) through csv-stringify, with a header line; errors reach the stream. */
export function csvStream(columns: readonly string[], rows: AsyncIterable<Record<string, string>>): Readable {
  const stringifier = stringify({ header: true, columns: [...columns], eof: true });
  // pipeline, not pipe: a reader that goes away (a closed response) destroys the source too, which
  // ends the generator, so its snapshot's connection goes back to the pool. An error reaches the
  // stringifier, hence the reader; the callback has nothing to add.
  pipeline(Readable.from(rows), stringifier, () => undefined);
  return stringifier;
}

/** An amount as two columns: `<name>_minor` (integer) and `<name>` (the exact decimal). */
function money(name: string, amountMinor: bigint, currency: string): Record<string, string> {
  return { [`${name}_minor`]: amountMinor.toString(), [name]: minorToDecimal(amountMinor, currency) };
}

function moneyColumns(...names: string[]): string[] {
  return names.flatMap((name) => [`${name}_minor`, name]);
}

export const trialBalanceCsvColumns = ['line', 'currency', 'account', 'type', 'code', 'owner', 'accounts',
  ...moneyColumns('debits_posted', 'credits_posted', 'debit_balance', 'credit_balance')];

export async function* trialBalanceCsvRows(lines: AsyncIterable<TrialBalanceLine>):
  AsyncGenerator<Record<string, string>> {
  for await (const line of lines) {
    const sides = line.line === 'account' ? sideBalances(line.debitsPosted, line.creditsPosted)
      : { debitBalance: line.debitBalance, creditBalance: line.creditBalance };
    const accountLine = line.line === 'account' ? line : undefined;
    yield {
      line: line.line, currency: line.currency,
      account: accountLine?.account ?? '',
      type: accountLine?.type ?? '',
      code: accountLine?.code ?? '',
      owner: accountLine?.owner ?? '',
      accounts: line.line === 'total' ? String(line.accounts) : '',
      ...money('debits_posted', line.debitsPosted, line.currency),
      ...money('credits_posted', line.creditsPosted, line.currency),
      ...money('debit_balance', sides.debitBalance, line.currency),
      ...money('credit_balance', sides.creditBalance, line.currency),
    };
  }
}

export const statementCsvColumns = ['line', 'account', 'currency', 'effective_at', 'posting', 'entry',
  'external_reference', 'description', 'direction', ...moneyColumns('amount', 'balance')];

/** An opening line (at `from`), one line per posting, and a closing line (at `to`). */
export async function* statementCsvRows(items: AsyncIterable<StatementSummary | StatementPosting>):
  AsyncGenerator<Record<string, string>> {
  let summary: StatementSummary | undefined;
  const blank = { posting: '', entry: '', external_reference: '', description: '', direction: '', amount_minor: '', amount: '' };
  for await (const item of items) {
    if ('kind' in item) {
      summary = item;
      yield { line: 'opening', account: item.account.id, currency: item.account.currency, effective_at: item.period.from,
        ...blank, ...money('balance', item.openingBalance, item.account.currency) };
      continue;
    }
    if (summary === undefined) throw new Error('a statement starts with its summary');
    const currency = summary.account.currency;
    yield { line: 'posting', account: summary.account.id, currency, effective_at: item.effectiveAt,
      posting: item.id.toString(), entry: item.entryId, external_reference: item.externalReference,
      description: item.description ?? '', direction: item.direction,
      ...money('amount', item.amountMinor, currency), ...money('balance', item.runningBalance, currency) };
  }
  if (summary === undefined) return;
  yield { line: 'closing', account: summary.account.id, currency: summary.account.currency, effective_at: summary.period.to,
    ...blank, ...money('balance', summary.closingBalance, summary.account.currency) };
}

export const balanceCsvColumns = ['account', 'currency', 'as_of',
  ...moneyColumns('posted', 'pending', 'available', 'debits_posted', 'credits_posted', 'debits_pending', 'credits_pending')];

export async function* balanceCsvRows(balance: Awaited<ReturnType<LedgerReports['balance']>>):
  AsyncGenerator<Record<string, string>> {
  const currency = balance.currency;
  yield {
    account: balance.account, currency, as_of: balance.as_of ?? '',
    ...money('posted', balance.posted, currency), ...money('pending', balance.pending, currency),
    ...money('available', balance.available, currency),
    ...money('debits_posted', balance.debits_posted, currency), ...money('credits_posted', balance.credits_posted, currency),
    ...money('debits_pending', balance.debits_pending, currency), ...money('credits_pending', balance.credits_pending, currency),
  };
}
