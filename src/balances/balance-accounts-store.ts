import { named, type Queryable } from '../db/pool.js';
/** The SQL of a merchant's ledger accounts by role and currency, one function per statement. */
export type AccountRole = 'psp_receivable' | 'merchant_pending' | 'merchant_available' | 'penny_revenue' | 'psp_fees';

export async function selectMerchantAccountRoles(db: Queryable, merchantId: string, currency: string):
Promise<Map<AccountRole, string>> {
  const result = await db.query<{ role: AccountRole; ledger_account_id: string }>(
    named('SELECT role, ledger_account_id FROM merchant_ledger_accounts WHERE merchant_id = $1 AND currency = $2'),
    [merchantId, currency]);
  return new Map(result.rows.map((row) => [row.role, row.ledger_account_id]));
}

/** The owner's accounts of one role, in every currency it has one. */
export async function selectOwnerAccountsOfRoles(db: Queryable, ownerId: string, roles: readonly AccountRole[]):
Promise<{ currency: string; role: AccountRole; ledgerAccountId: string }[]> {
  const result = await db.query<{ currency: string; role: AccountRole; ledger_account_id: string }>(
    named(`SELECT currency, role, ledger_account_id FROM merchant_ledger_accounts
       WHERE merchant_id = $1 AND role = ANY($2::text[]) ORDER BY currency, role`), [ownerId, roles]);
  return result.rows.map((row) => ({ currency: row.currency, role: row.role, ledgerAccountId: row.ledger_account_id }));
}

/** Serializes, to the caller's transaction's end, the creation of a merchant's accounts in a currency. */
export async function lockMerchantAccountCreation(db: Queryable, merchantId: string, currency: string):
Promise<void> {
  await db.query(named('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))'),
    [`ledger-accounts:${merchantId}:${currency}`]);
}

export async function insertMerchantAccountRole(db: Queryable, role: { merchantId: string; currency: string;
  role: AccountRole; ledgerAccountId: string }): Promise<void> {
  await db.query(
    named('INSERT INTO merchant_ledger_accounts (merchant_id, currency, role, ledger_account_id) VALUES ($1, $2, $3, $4)'),
    [role.merchantId, role.currency, role.role, role.ledgerAccountId]);
}

/** The operator's own accounts (operator_ledger_accounts), one per role and currency. */
export type OperatorAccountRole = 'operator_bank' | 'psp_batch_fees' | 'settlement_suspense';

export async function selectOperatorAccountRoles(db: Queryable, currency: string):
Promise<Map<OperatorAccountRole, string>> {
  const result = await db.query<{ role: OperatorAccountRole; ledger_account_id: string }>(
    named('SELECT role, ledger_account_id FROM operator_ledger_accounts WHERE currency = $1'), [currency]);
  return new Map(result.rows.map((row) => [row.role, row.ledger_account_id]));
}

export async function insertOperatorAccountRole(db: Queryable, role: { currency: string; role: OperatorAccountRole;
  ledgerAccountId: string }): Promise<void> {
  await db.query(named('INSERT INTO operator_ledger_accounts (currency, role, ledger_account_id) VALUES ($1, $2, $3)'),
    [role.currency, role.role, role.ledgerAccountId]);
}

/** Every currency in which some merchant has a PSP receivable: the currencies a PSP may settle. */
export async function selectReceivableCurrencies(db: Queryable): Promise<string[]> {
  const result = await db.query<{ currency: string }>(named(`SELECT DISTINCT currency FROM merchant_ledger_accounts
     WHERE role = 'psp_receivable' ORDER BY currency`));
  return result.rows.map((row) => row.currency.trim());
}
