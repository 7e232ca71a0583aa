import { PennyError } from '../errors.js';
import { invalid, missing, readCurrency, readObject, readString } from '../validation.js';

/**
 * The report types of Stripe's Reports API that Penny runs, with their columns as Stripe's report
 * types reference documents them (docs.stripe.com/reports/report-types: the Balance report type
 * and the Payout reconciliation report type; ../shared/reference/reconciliation.md §1). A column
 * Stripe documents that Penny has no data for (invoices, subscriptions, customers' addresses,
 * card details, metadata) may be asked for and is written empty, so a `columns[]` list written
 * for Stripe runs unchanged; a column Stripe does not document for the type is refused.
 */
export const reportTypeIds = ['balance.summary.1', 'balance_change_from_activity.itemized.3', 'payouts.itemized.3',
  'payout_reconciliation.itemized.5'] as const;
export type ReportTypeId = typeof reportTypeIds[number];

export function isReportTypeId(value: string): value is ReportTypeId {
  return (reportTypeIds as readonly string[]).includes(value);
}

/** Stripe's run parameters; which a type takes is in its definition. */
export type ReportParameter = 'interval_start' | 'interval_end' | 'currency' | 'payout' | 'connected_account'
  | 'columns' | 'timezone' | 'reporting_category' | 'decimal_separator';

export interface ReportTypeDefinition {
  readonly id: ReportTypeId;
  readonly name: string;
  readonly version: number;
  readonly parameters: readonly ReportParameter[];
  readonly columns: readonly string[];
  readonly defaultColumns: readonly string[];
  /** Column name patterns taking any key (`payment_metadata[KEY]`): written empty. */
  readonly keyedColumns: readonly string[];
}

const addressParts = ['line1', 'line2', 'city', 'state', 'postal_code', 'country'];

/** A balance transaction's own columns, in Stripe's order. */
const transactionColumns = ['balance_transaction_id', 'created_utc', 'created', 'available_on_utc', 'available_on',
  'currency', 'gross', 'fee', 'net', 'reporting_category', 'source_id', 'description', 'customer_facing_amount',
  'customer_facing_currency', 'regulatory_tag'];

/** The columns that describe what caused a transaction: customer, charge, card, Connect. */
const detailColumns = [
  'customer_id', 'customer_email', 'customer_name', 'customer_description',
  ...addressParts.map((part) => `customer_shipping_address_${part}`),
  ...addressParts.map((part) => `customer_address_${part}`),
  ...addressParts.map((part) => `shipping_address_${part}`),
  ...addressParts.map((part) => `card_address_${part}`),
  'charge_id', 'payment_intent_id', 'charge_created_utc', 'charge_created', 'invoice_id', 'invoice_number',
  'subscription_id', 'order_id', 'payment_method_type', 'is_link', 'card_brand', 'card_funding', 'card_country',
  'statement_descriptor', 'dispute_reason', 'connected_account_id', 'connected_account_name',
  'connected_account_country', 'connected_account_direct_charge_id', 'destination_payment_id',
];

const automaticPayoutColumns = ['automatic_payout_id', 'automatic_payout_effective_at_utc',
  'automatic_payout_effective_at'];

const metadataColumns = ['payment_metadata', 'refund_metadata', 'transfer_metadata'];

const itemizedParameters: readonly ReportParameter[] = ['interval_start', 'interval_end', 'timezone', 'currency',
  'reporting_category', 'decimal_separator', 'columns', 'connected_account'];

const definitions: Readonly<Record<ReportTypeId, ReportTypeDefinition>> = {
  'balance.summary.1': {
    id: 'balance.summary.1', name: 'Balance summary', version: 1,
    parameters: ['interval_start', 'interval_end', 'timezone', 'currency', 'decimal_separator', 'columns',
      'connected_account'],
    columns: ['category', 'description', 'net_amount', 'currency'],
    defaultColumns: ['category', 'description', 'net_amount', 'currency'],
    keyedColumns: [],
  },
  'balance_change_from_activity.itemized.3': {
    id: 'balance_change_from_activity.itemized.3', name: 'Balance change from activity (itemized)', version: 3,
    parameters: itemizedParameters,
    columns: [...transactionColumns, ...automaticPayoutColumns, ...detailColumns],
    defaultColumns: ['balance_transaction_id', 'created_utc', 'created', 'available_on_utc', 'available_on',
      'currency', 'gross', 'fee', 'net', 'reporting_category', 'source_id', 'description',
      'customer_facing_amount', 'customer_facing_currency'],
    keyedColumns: metadataColumns,
  },
  'payouts.itemized.3': {
    id: 'payouts.itemized.3', name: 'Payouts (itemized)', version: 3,
    parameters: [...itemizedParameters, 'payout'],
    columns: ['payout_id', 'effective_at_utc', 'effective_at', 'currency', 'gross', 'fee', 'net', 'reporting_category',
      'balance_transaction_id', 'description', 'payout_expected_arrival_date', 'payout_status', 'payout_reversed_at',
      'payout_type', 'payout_description', 'payout_destination_id'],
    defaultColumns: ['payout_id', 'effective_at', 'currency', 'gross', 'fee', 'net', 'reporting_category',
      'payout_expected_arrival_date', 'payout_status', 'payout_reversed_at', 'payout_type', 'payout_description',
      'payout_destination_id'],
    keyedColumns: [],
  },
  'payout_reconciliation.itemized.5': {
    id: 'payout_reconciliation.itemized.5', name: 'Payout reconciliation (itemized)', version: 5,
    parameters: [...itemizedParameters, 'payout'],
    columns: [...automaticPayoutColumns, ...transactionColumns, ...detailColumns],
    defaultColumns: ['automatic_payout_id', 'automatic_payout_effective_at', 'balance_transaction_id', 'created_utc',
      'created', 'available_on_utc', 'available_on', 'currency', 'gross', 'fee', 'net', 'reporting_category',
      'source_id', 'description', 'customer_facing_amount', 'customer_facing_currency'],
    keyedColumns: metadataColumns,
  },
};

export function reportTypeDefinition(id: ReportTypeId): ReportTypeDefinition {
  return definitions[id];
}

export function reportTypeDefinitions(): ReportTypeDefinition[] {
  return reportTypeIds.map((id) => definitions[id]);
}

/** A report type by the id a request names: 404 `resource_missing` for one Penny does not run. */
export function findReportType(id: string, param = 'id'): ReportTypeDefinition {
  if (!isReportTypeId(id)) {
    throw new PennyError({ code: 'resource_missing', param, message: `No such report type: '${id.slice(0, 100)}'` });
  }
  return definitions[id];
}

/** A run's parameters as read and checked: interval in unix seconds, the rest as Stripe shows them. */
export interface ReportRunParameters {
  readonly interval_start: number;
  readonly interval_end: number;
  readonly columns: readonly string[];
  readonly timezone?: string;
  readonly currency?: string;
  readonly payout?: string;
  readonly connected_account?: string;
  readonly reporting_category?: string;
  readonly decimal_separator?: '.' | ',';
}

/** What a type's data covers, in unix seconds: Penny's balance transactions are current up to now. */
export interface DataAvailability {
  readonly start: number;
  readonly end: number;
}

const columnsMax = 200;

/**
 * Reads `parameters[...]` for a type: each parameter the type does not take is refused naming it
 * (400 `parameter_unknown`), the interval must be whole unix seconds, start before end, both
 * within the data available; `columns[]` names only the type's columns (default: Stripe's
 * default set); `timezone` must be an IANA zone; `currency` an ISO 4217 code.
 */
export function parseReportParameters(type: ReportTypeDefinition, value: unknown, available: DataAvailability):
ReportRunParameters {
  if (value === undefined) throw missing('parameters[interval_start]');
  const raw = readObject(value, 'parameters', type.parameters);
  const intervalStart = readUnixSeconds(raw.interval_start, 'parameters[interval_start]');
  const intervalEnd = readUnixSeconds(raw.interval_end, 'parameters[interval_end]');
  if (intervalEnd <= intervalStart) {
    throw invalid('parameters[interval_end]', 'parameters[interval_end] must be after parameters[interval_start].');
  }
  for (const [name, at] of [['interval_start', intervalStart], ['interval_end', intervalEnd]] as const) {
    if (at < available.start || at > available.end) {
      throw invalid(`parameters[${name}]`, `parameters[${name}] must be between data_available_start ` +
        `(${available.start}) and data_available_end (${available.end}) of ${type.id}; data after ` +
        'data_available_end is not available yet.');
    }
  }
  const parameters: { -readonly [K in keyof ReportRunParameters]: ReportRunParameters[K] } = {
    interval_start: intervalStart, interval_end: intervalEnd, columns: readColumns(type, raw.columns),
  };
  const timezone = readString(raw.timezone, 'parameters[timezone]', { lengthMax: 64 });
  if (timezone !== undefined) parameters.timezone = readTimezone(timezone);
  const currency = readCurrency(raw.currency, 'parameters[currency]');
  if (currency !== undefined) parameters.currency = currency.toLowerCase();
  const payout = readString(raw.payout, 'parameters[payout]', { lengthMax: 255 });
  if (payout !== undefined) parameters.payout = payout;
  const account = readString(raw.connected_account, 'parameters[connected_account]', { lengthMax: 255 });
  if (account !== undefined) parameters.connected_account = account;
  const category = readString(raw.reporting_category, 'parameters[reporting_category]', { lengthMax: 64 });
  if (category !== undefined) parameters.reporting_category = category;
  const separator = readString(raw.decimal_separator, 'parameters[decimal_separator]', { lengthMax: 1 });
  if (separator !== undefined) {
    if (separator !== '.' && separator !== ',') {
      throw invalid('parameters[decimal_separator]', 'parameters[decimal_separator] must be "." or ",".');
    }
    parameters.decimal_separator = separator;
  }
  return parameters;
}

function readUnixSeconds(value: unknown, param: string): number {
  if (value === undefined || value === '') throw missing(param);
  const text = typeof value === 'number' ? String(value) : value;
  if (typeof text !== 'string' || !/^\d{1,11}$/.test(text)) {
    throw invalid(param, `${param} must be a unix timestamp in seconds.`, 'parameter_invalid_integer');
  }
  return Number(text);
}

function readColumns(type: ReportTypeDefinition, value: unknown): string[] {
  if (value === undefined) return [...type.defaultColumns];
  // Stripe's forms send columns[]=a&columns[]=b (an array) or columns[0]=a (an object by index).
  const list = Array.isArray(value) ? value
    : typeof value === 'object' && value !== null ? Object.values(value) : [value];
  if (list.length === 0 || list.length > columnsMax) {
    throw invalid('parameters[columns]', `parameters[columns] must name 1 to ${columnsMax} columns.`);
  }
  const seen = new Set<string>();
  return list.map((item, index) => {
    const param = `parameters[columns][${index}]`;
    if (typeof item !== 'string') throw invalid(param, `${param} must be a column name.`);
    if (!isColumnOf(type, item)) {
      throw invalid(param, `${item.slice(0, 100)} is not a column of ${type.id}.`);
    }
    if (seen.has(item)) throw invalid(param, `${item} is named twice in parameters[columns].`);
    seen.add(item);
    return item;
  });
}

export function isColumnOf(type: ReportTypeDefinition, column: string): boolean {
  if (type.columns.includes(column)) return true;
  const keyed = /^([a-z_]+)\[([^\]]{1,40})\]$/.exec(column);
  return keyed !== null && type.keyedColumns.includes(keyed[1] ?? '');
}

function readTimezone(zone: string): string {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: zone }).resolvedOptions().timeZone;
  } catch {
    throw invalid('parameters[timezone]', `${zone} is not a time zone of the IANA time zone database.`);
  }
}
