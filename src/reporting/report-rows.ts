import {
  selectTransactionsCreatedBetween, selectTransactionsOfPayout, sumNetByCurrency, type BalanceTransactionRow,
  type CreatedCursor,
} from '../balances/balance-store.js';
import { limits } from '../config.js';
import type { Queryable } from '../db/pool.js';
import { PennyError } from '../errors.js';
import { minorToDecimal } from '../money/decimal-amount.js';
import { selectAutomaticPayoutsArrivingBetween, selectPayoutsByIds, type PayoutRow } from '../payouts/payout-store.js';
import type { ReportRunParameters, ReportTypeId } from './report-types.js';

/**
 * The rows of each report type, page by page: every query reads at most
 * `limits.reportRowsPerQueryMax` balance transactions (or `limits.reportPayoutsPerQueryMax`
 * payouts), oldest first, and continues after the last row read (a keyset cursor), so a report of
 * any length is read in bounded steps. Amounts are written from the ledger's minor units as
 * major-unit decimals with the currency's ISO 4217 exponent (`minorToDecimal`), never through
 * a float; times as `YYYY-MM-DD HH:MM:SS`, in UTC for the `_utc` columns and in the run's
 * `timezone` (UTC without one) for the others. The interval is on `created` for transactions and
 * on the payout's arrival for payout reconciliation, `interval_start` inclusive and `interval_end`
 * exclusive, as Stripe's.
 */
export interface ReportSubject {
  readonly merchantId: string;
  /** Whose data: the platform or a connected account. */
  readonly accountId: string;
  readonly reportType: ReportTypeId;
  readonly parameters: ReportRunParameters;
}

/** Named values of one row; a column the row lacks is written empty. */
type Values = Record<string, string>;

const payoutTypes = new Set(['payout', 'payout_cancel', 'payout_failure']);

export async function* reportRows(db: Queryable, subject: ReportSubject): AsyncGenerator<string[][]> {
  const format = new Formatter(subject.parameters);
  const columns = subject.parameters.columns;
  const pick = (values: Values) => columns.map((column) => values[column] ?? '');
  let written = 0;
  const pages = subject.reportType === 'balance.summary.1' ? balanceSummary(db, subject, format)
    : subject.reportType === 'balance_change_from_activity.itemized.3' ? balanceChanges(db, subject, format)
      : subject.reportType === 'payouts.itemized.3' ? payoutsItemized(db, subject, format)
        : payoutReconciliation(db, subject, format);
  for await (const page of pages) {
    const kept = subject.parameters.reporting_category === undefined ? page
      : page.filter((values) => values.reporting_category === subject.parameters.reporting_category);
    written += kept.length;
    if (written > limits.reportRowsMax) {
      throw new PennyError({ code: 'parameter_invalid', param: 'parameters[interval_end]',
        message: `This report has more than ${limits.reportRowsMax} rows; run it for a shorter interval.` });
    }
    if (kept.length > 0) yield kept.map(pick);
  }
}

function intervalOf(parameters: ReportRunParameters): { from: string; to: string } {
  return { from: new Date(parameters.interval_start * 1000).toISOString(),
    to: new Date(parameters.interval_end * 1000).toISOString() };
}

function currencyOf(parameters: ReportRunParameters): string | undefined {
  return parameters.currency?.toUpperCase();
}

/** balance.summary.1: per currency, the balance at the start, the activity, the payouts, the balance at the end. */
async function* balanceSummary(db: Queryable, subject: ReportSubject, format: Formatter): AsyncGenerator<Values[]> {
  const { from, to } = intervalOf(subject.parameters);
  const key = { merchantId: subject.merchantId, accountId: subject.accountId,
    currency: currencyOf(subject.parameters) };
  const before = await sumNetByCurrency(db, { ...key, from: undefined, to: from });
  const during = await sumNetByCurrency(db, { ...key, from, to });
  const currencies = [...new Set([...before, ...during].map((row) => row.currency))].sort();
  const sum = (rows: typeof before, currency: string, payouts?: boolean) => rows
    .filter((row) => row.currency === currency && (payouts === undefined || row.payouts === payouts))
    .reduce((total, row) => total + row.netMinor, 0n);
  const rows: Values[] = [];
  for (const currency of currencies) {
    const starting = sum(before, currency);
    const activity = sum(during, currency, false);
    const payouts = sum(during, currency, true);
    const line = (category: string, description: string, minor: bigint) => ({ category, description,
      net_amount: format.amount(currency, minor), currency: currency.toLowerCase() });
    rows.push(line('starting_balance', 'Starting balance', starting), line('activity', 'Activity', activity),
      line('payouts', 'Less payouts', payouts), line('ending_balance', 'Ending balance', starting + activity + payouts));
  }
  yield rows;
}

/** balance_change_from_activity.itemized.3: every transaction created in the interval except payouts' own. */
async function* balanceChanges(db: Queryable, subject: ReportSubject, format: Formatter): AsyncGenerator<Values[]> {
  const { from, to } = intervalOf(subject.parameters);
  let after: CreatedCursor | undefined;
  for (;;) {
    const page = await selectTransactionsCreatedBetween(db, { merchantId: subject.merchantId,
      accountId: subject.accountId, from, to, currency: currencyOf(subject.parameters), payouts: false, after,
      limit: limits.reportRowsPerQueryMax });
    const payouts = await payoutsById(db, subject.merchantId, page.map((row) => row.payoutId));
    yield page.map((row) => transactionValues(row, format, row.payoutId === null ? undefined
      : payouts.get(row.payoutId)));
    const last = page.at(-1);
    if (last === undefined || page.length < limits.reportRowsPerQueryMax) return;
    after = { createdAt: last.createdAt, id: last.id };
  }
}

/** payouts.itemized.3: each payout's own transactions (the payout, and its return if it failed or was canceled). */
async function* payoutsItemized(db: Queryable, subject: ReportSubject, format: Formatter): AsyncGenerator<Values[]> {
  const { from, to } = intervalOf(subject.parameters);
  let after: CreatedCursor | undefined;
  for (;;) {
    const page = await selectTransactionsCreatedBetween(db, { merchantId: subject.merchantId,
      accountId: subject.accountId, from, to, currency: currencyOf(subject.parameters), payouts: true, after,
      limit: limits.reportRowsPerQueryMax });
    const kept = subject.parameters.payout === undefined ? page
      : page.filter((row) => row.sourceId === subject.parameters.payout);
    const payouts = await payoutsById(db, subject.merchantId, kept.map((row) => row.sourceId));
    yield kept.map((row) => {
      const payout = payouts.get(row.sourceId);
      return {
        payout_id: row.sourceId,
        effective_at_utc: format.utc(row.createdAt),
        effective_at: format.local(row.createdAt),
        currency: row.currency.toLowerCase(),
        gross: format.amount(row.currency, row.amountMinor),
        fee: format.amount(row.currency, row.feeMinor),
        net: format.amount(row.currency, row.netMinor),
        reporting_category: row.reportingCategory,
        balance_transaction_id: row.id,
        description: row.description ?? '',
        payout_expected_arrival_date: payout === undefined ? '' : format.localDay(payout.arrivalDate),
        payout_status: payout?.status ?? '',
        payout_reversed_at: row.type === 'payout' ? '' : format.local(row.createdAt),
        payout_type: payout === undefined ? '' : 'bank_account',
        payout_description: payout?.description ?? '',
        payout_destination_id: payout?.destination ?? '',
      };
    });
    const last = page.at(-1);
    if (last === undefined || page.length < limits.reportRowsPerQueryMax) return;
    after = { createdAt: last.createdAt, id: last.id };
  }
}

/**
 * payout_reconciliation.itemized.5: for each automatic payout arriving in the interval (or the
 * one `payout` names), not failed or canceled, every transaction it paid out, except the payout's
 * own: their nets sum to the payout's amount.
 */
async function* payoutReconciliation(db: Queryable, subject: ReportSubject, format: Formatter):
AsyncGenerator<Values[]> {
  const { from, to } = intervalOf(subject.parameters);
  let after: { arrivalDate: string; id: string } | undefined;
  for (;;) {
    const payouts = subject.parameters.payout === undefined
      ? await selectAutomaticPayoutsArrivingBetween(db, { merchantId: subject.merchantId,
        accountId: subject.accountId, from, to, currency: currencyOf(subject.parameters), after,
        limit: limits.reportPayoutsPerQueryMax })
      : (await selectPayoutsByIds(db, { merchantId: subject.merchantId, ids: [subject.parameters.payout] }))
        .filter((payout) => payout.accountId === subject.accountId && payout.automatic);
    for (const payout of payouts) {
      let cursor: CreatedCursor | undefined;
      for (;;) {
        const page = await selectTransactionsOfPayout(db, { merchantId: subject.merchantId, payoutId: payout.id,
          after: cursor, limit: limits.reportRowsPerQueryMax });
        yield page.filter((row) => !(payoutTypes.has(row.type) && row.sourceId === payout.id))
          .map((row) => transactionValues(row, format, payout));
        const last = page.at(-1);
        if (last === undefined || page.length < limits.reportRowsPerQueryMax) break;
        cursor = { createdAt: last.createdAt, id: last.id };
      }
    }
    const last = payouts.at(-1);
    if (subject.parameters.payout !== undefined || last === undefined
      || payouts.length < limits.reportPayoutsPerQueryMax) return;
    after = { arrivalDate: last.arrivalDate, id: last.id };
  }
}

/** The payouts a page of transactions names (one query for the page). */
async function payoutsById(db: Queryable, merchantId: string, ids: readonly (string | null)[]):
Promise<Map<string, PayoutRow>> {
  const wanted = [...new Set(ids.filter((id): id is string => id !== null && id.startsWith('po_')))];
  return new Map((await selectPayoutsByIds(db, { merchantId, ids: wanted })).map((payout) => [payout.id, payout]));
}

/** A balance transaction's columns (and, when an automatic payout paid it out, that payout's). */
function transactionValues(row: BalanceTransactionRow, format: Formatter, payout: PayoutRow | undefined): Values {
  const customerFacing = row.type === 'charge' || row.type === 'refund' || row.type === 'payment'
    || row.type === 'payment_refund';
  return {
    balance_transaction_id: row.id,
    created_utc: format.utc(row.createdAt),
    created: format.local(row.createdAt),
    available_on_utc: format.utc(row.availableOn),
    available_on: format.local(row.availableOn),
    currency: row.currency.toLowerCase(),
    gross: format.amount(row.currency, row.amountMinor),
    fee: format.amount(row.currency, row.feeMinor),
    net: format.amount(row.currency, row.netMinor),
    reporting_category: row.reportingCategory,
    source_id: row.sourceId,
    description: row.description ?? '',
    customer_facing_amount: customerFacing ? format.amount(row.currency, row.amountMinor) : '',
    customer_facing_currency: customerFacing ? row.currency.toLowerCase() : '',
    charge_id: row.sourceId.startsWith('ch_') ? row.sourceId : '',
    automatic_payout_id: payout?.id ?? '',
    automatic_payout_effective_at_utc: payout === undefined ? '' : format.utc(payout.arrivalDate),
    automatic_payout_effective_at: payout === undefined ? '' : format.local(payout.arrivalDate),
  };
}

/** Amounts and times as the run's parameters ask. */
class Formatter {
  private readonly zone: Intl.DateTimeFormat;
  private readonly separator: '.' | ',';

  constructor(parameters: ReportRunParameters) {
    this.separator = parameters.decimal_separator ?? '.';
    this.zone = new Intl.DateTimeFormat('en-US', { timeZone: parameters.timezone ?? 'UTC', hourCycle: 'h23',
      year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  amount(currency: string, minor: bigint): string {
    return minorToDecimal(minor, currency.toUpperCase(), this.separator);
  }

  utc(iso: string): string {
    return new Date(Date.parse(iso)).toISOString().slice(0, 19).replace('T', ' ');
  }

  local(iso: string): string {
    const parts = Object.fromEntries(this.zone.formatToParts(new Date(Date.parse(iso)))
      .map((part) => [part.type, part.value]));
    return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}`;
  }

  localDay(iso: string): string {
    return this.local(iso).slice(0, 10);
  }
}
