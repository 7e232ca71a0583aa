import { named, type Queryable } from '../db/pool.js';

/** The SQL of merchants' connector routing and the PSP accounts it names, one function per statement. */
export interface ConnectorAccountRow {
  readonly connector: string;
  readonly kind: 'adyen';
  readonly merchantAccount: string;
  readonly endpoint: string;
  readonly livePrefix: string | null;
  readonly apiKeySealed: string;
  readonly hmacKeySealed: string;
  /** The merchant's price at this PSP account: basis points of a captured amount, plus a fixed fee. */
  readonly feeBasisPoints: number;
  readonly feeFixedMinor: bigint;
  readonly updatedAt: string;
}

const accountColumns = `connector, kind, merchant_account AS "merchantAccount", endpoint, live_prefix AS "livePrefix",
  api_key_sealed AS "apiKeySealed", hmac_key_sealed AS "hmacKeySealed", fee_basis_points AS "feeBasisPoints",
  fee_fixed_minor AS "feeFixedMinor", updated_at::text AS "updatedAt"`;

/**
 * Creates the account's row, or replaces its credentials and endpoint; a price part left undefined
 * keeps the row's (0 for a new row).
 */
export async function upsertConnectorAccount(db: Queryable, account: Omit<ConnectorAccountRow,
  'updatedAt' | 'feeBasisPoints' | 'feeFixedMinor'> & { feeBasisPoints?: number | undefined;
  feeFixedMinor?: bigint | undefined }): Promise<ConnectorAccountRow> {
  const result = await db.query<ConnectorAccountRow>(named(`INSERT INTO connector_accounts (connector, kind,
       merchant_account, endpoint, live_prefix, api_key_sealed, hmac_key_sealed, fee_basis_points, fee_fixed_minor)
     VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8::integer, 0), coalesce($9::bigint, 0))
     ON CONFLICT (connector) DO UPDATE SET endpoint = EXCLUDED.endpoint, live_prefix = EXCLUDED.live_prefix,
       api_key_sealed = EXCLUDED.api_key_sealed, hmac_key_sealed = EXCLUDED.hmac_key_sealed,
       fee_basis_points = coalesce($8::integer, connector_accounts.fee_basis_points),
       fee_fixed_minor = coalesce($9::bigint, connector_accounts.fee_fixed_minor),
       updated_at = clock_timestamp()
     RETURNING ${accountColumns}`),
  [account.connector, account.kind, account.merchantAccount, account.endpoint, account.livePrefix,
    account.apiKeySealed, account.hmacKeySealed, account.feeBasisPoints ?? null,
    account.feeFixedMinor?.toString() ?? null]);
  const row = result.rows[0];
  if (row === undefined) throw new Error(`connector account ${account.connector} was not written`);
  return row;
}

export async function selectConnectorAccount(db: Queryable, connector: string):
Promise<ConnectorAccountRow | undefined> {
  const result = await db.query<ConnectorAccountRow>(named(`SELECT ${accountColumns} FROM connector_accounts
     WHERE connector = $1`), [connector]);
  return result.rows[0];
}

export async function selectConnectorAccounts(db: Queryable): Promise<ConnectorAccountRow[]> {
  const result = await db.query<ConnectorAccountRow>(named(`SELECT ${accountColumns} FROM connector_accounts
     ORDER BY connector`));
  return result.rows;
}

/** The ids of up to `limit` PSP accounts of one kind, by name (no credentials read). */
export async function selectConnectorIds(db: Queryable, query: { kind: 'adyen'; limit: number }): Promise<string[]> {
  const result = await db.query<{ connector: string }>(named(`SELECT connector FROM connector_accounts
     WHERE kind = $1 ORDER BY connector LIMIT $2`), [query.kind, query.limit]);
  return result.rows.map((row) => row.connector);
}

export async function upsertMerchantConnector(db: Queryable, route: { merchantId: string; connector: string }):
Promise<void> {
  await db.query(named(`INSERT INTO merchant_connectors (merchant_id, connector) VALUES ($1, $2)
     ON CONFLICT (merchant_id) DO UPDATE SET connector = EXCLUDED.connector, updated_at = clock_timestamp()`),
  [route.merchantId, route.connector]);
}

/** The operator's default connector, for merchants with no route of their own. */
export async function upsertOperatorConnector(db: Queryable, connector: string): Promise<void> {
  await db.query(named(`INSERT INTO operator_connector (singleton, connector) VALUES (true, $1)
     ON CONFLICT (singleton) DO UPDATE SET connector = EXCLUDED.connector, updated_at = clock_timestamp()`),
  [connector]);
}

export async function selectOperatorConnector(db: Queryable): Promise<string | undefined> {
  const result = await db.query<{ connector: string }>(named('SELECT connector FROM operator_connector'));
  return result.rows[0]?.connector;
}

/** The merchant's own route, else the operator's default, in one statement (read at every confirmation). */
export async function selectRoutedConnector(db: Queryable, merchantId: string): Promise<string | undefined> {
  const result = await db.query<{ connector: string | null }>(named(`SELECT coalesce(
       (SELECT connector FROM merchant_connectors WHERE merchant_id = $1),
       (SELECT connector FROM operator_connector)) AS connector`), [merchantId]);
  return result.rows[0]?.connector ?? undefined;
}
