import type { Queryable } from './pool.js';

/**
 * Stripe's list pagination over one merchant's objects, newest first: `starting_after` pages
 * towards older objects, `ending_before` towards newer ones (the page is still returned newest
 * first). Table and column names come from this module's callers, never from a request.
 */
export type PageTable = 'payment_intents' | 'charges' | 'refunds' | 'events' | 'webhook_endpoints'
  | 'webhook_deliveries' | 'balance_transactions' | 'connected_accounts' | 'bank_accounts' | 'disputes'
  | 'payouts' | 'transfers' | 'application_fees' | 'report_runs';

export interface PageQuery {
  readonly merchantId: string;
  readonly limit: number;
  readonly startingAfter: string | undefined;
  readonly endingBefore: string | undefined;
  /** Equality filters, column → value; undefined values are ignored. */
  readonly equals: Readonly<Record<string, string | undefined>>;
  /** One column → the values it may take (Stripe's `types[]`); undefined is ignored. */
  readonly anyOf?: Readonly<Record<string, readonly string[] | undefined>>;
  readonly createdGte?: string | undefined;
  readonly createdLte?: string | undefined;
}

export interface PageRows<Row> {
  readonly rows: Row[];
  readonly hasMore: boolean;
}

const filterable: Readonly<Record<PageTable, readonly string[]>> = {
  payment_intents: ['customer'],
  charges: ['payment_intent_id'],
  refunds: ['charge_id', 'payment_intent_id'],
  events: ['type', 'account_id'],
  webhook_endpoints: [],
  webhook_deliveries: ['event_id', 'endpoint_id'],
  balance_transactions: ['account_id', 'type', 'source_id', 'currency', 'payout_id'],
  disputes: ['charge_id', 'payment_intent_id'],
  transfers: ['destination', 'transfer_group'],
  application_fees: ['charge_id'],
  connected_accounts: [],
  bank_accounts: ['account_id'],
  payouts: ['account_id', 'status', 'destination'],
  report_runs: ['account_id'],
};

/** Rows a table keeps but lists never show. */
const hidden: Readonly<Record<PageTable, string | undefined>> = {
  payment_intents: undefined, charges: undefined, refunds: undefined, events: undefined,
  webhook_endpoints: 't.deleted_at IS NULL', webhook_deliveries: undefined, balance_transactions: undefined,
  connected_accounts: 't.deleted_at IS NULL', bank_accounts: 't.deleted_at IS NULL', disputes: undefined,
  payouts: undefined, transfers: undefined, application_fees: undefined, report_runs: undefined,
};

export async function selectPage<Row>(
  db: Queryable,
  table: PageTable,
  query: PageQuery,
  toRow: (row: Record<string, unknown>) => Row,
): Promise<PageRows<Row>> {
  const values: unknown[] = [query.merchantId, query.limit + 1];
  const conditions = ['t.merchant_id = $1'];
  for (const [column, value] of Object.entries(query.equals)) {
    if (!filterable[table].includes(column)) throw new Error(`${table} cannot be filtered by ${column}`);
    if (value === undefined) continue;
    values.push(value);
    conditions.push(`t.${column} = $${values.length}`);
  }
  for (const [column, list] of Object.entries(query.anyOf ?? {})) {
    if (!filterable[table].includes(column)) throw new Error(`${table} cannot be filtered by ${column}`);
    if (list !== undefined) conditions.push(`t.${column} = ANY($${values.push(list)}::text[])`);
  }
  const hiddenCondition = hidden[table];
  if (hiddenCondition !== undefined) conditions.push(hiddenCondition);
  if (query.createdGte !== undefined) conditions.push(`t.created_at >= $${values.push(query.createdGte)}`);
  if (query.createdLte !== undefined) conditions.push(`t.created_at <= $${values.push(query.createdLte)}`);
  const backwards = query.endingBefore !== undefined;
  const cursor = query.startingAfter ?? query.endingBefore;
  if (cursor !== undefined) {
    const position = values.push(cursor);
    conditions.push(`(t.created_at, t.id) ${backwards ? '>' : '<'}
      (SELECT created_at, id FROM ${table} WHERE merchant_id = $1 AND id = $${position})`);
  }
  const order = backwards ? 't.created_at ASC, t.id ASC' : 't.created_at DESC, t.id DESC';
  const result = await db.query(
    `SELECT * FROM (SELECT t.* FROM ${table} t WHERE ${conditions.join(' AND ')} ORDER BY ${order} LIMIT $2) page
     ORDER BY created_at DESC, id DESC`,
    values,
  );
  const hasMore = result.rows.length > query.limit;
  const rows = backwards ? result.rows.slice(hasMore ? 1 : 0) : result.rows.slice(0, query.limit);
  return { rows: rows.map(toRow), hasMore };
}
