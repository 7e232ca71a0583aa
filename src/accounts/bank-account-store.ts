import { selectPage, type PageRows } from '../db/pages.js';
import { named, type Queryable } from '../db/pool.js';
import type { AccountHolderType } from './account-commands.js';

/**
 * Every SQL statement of bank accounts (a connected account's external accounts, and a platform
 * merchant's own bank account, whose `accountId` is the merchant's id). bank-accounts.ts decides;
 * this file never decides anything. The account number is only ever stored sealed.
 */
export interface BankAccountRow {
  readonly merchantId: string;
  readonly accountId: string;
  readonly id: string;
  readonly country: string;
  readonly currency: string;
  readonly accountHolderName: string | null;
  readonly accountHolderType: AccountHolderType | null;
  readonly accountNumberCiphertext: string;
  readonly last4: string;
  readonly fingerprint: string;
  readonly routingNumber: string | null;
  readonly bankName: string | null;
  readonly defaultForCurrency: boolean;
  readonly metadata: Record<string, string>;
  readonly status: string;
  readonly createdAt: string;
}

export type NewBankAccount = Omit<BankAccountRow, 'status' | 'createdAt'>;

/** The owner of bank accounts: a platform merchant and one of its accounts (or itself). */
export interface BankAccountOwner {
  readonly merchantId: string;
  readonly accountId: string;
}

export async function insertBankAccount(db: Queryable, bank: NewBankAccount): Promise<BankAccountRow> {
  const result = await db.query(
    named(`INSERT INTO bank_accounts (merchant_id, account_id, id, country, currency, account_holder_name,
       account_holder_type, account_number_ciphertext, last4, fingerprint, routing_number, bank_name,
       default_for_currency, metadata)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb) RETURNING *`),
    [bank.merchantId, bank.accountId, bank.id, bank.country, bank.currency, bank.accountHolderName,
      bank.accountHolderType, bank.accountNumberCiphertext, bank.last4, bank.fingerprint, bank.routingNumber,
      bank.bankName, bank.defaultForCurrency, JSON.stringify(bank.metadata)]);
  return toBankAccount(result.rows[0]);
}

/** A live bank account of the owner; with `forUpdate`, locked to the transaction's end. */
export async function selectBankAccount(db: Queryable, owner: BankAccountOwner, id: string,
  options: { forUpdate: boolean } = { forUpdate: false }): Promise<BankAccountRow | undefined> {
  const result = await db.query(
    named(`SELECT * FROM bank_accounts WHERE merchant_id = $1 AND account_id = $2 AND id = $3
       AND deleted_at IS NULL${options.forUpdate ? ' FOR UPDATE' : ''}`),
    [owner.merchantId, owner.accountId, id]);
  return result.rows[0] === undefined ? undefined : toBankAccount(result.rows[0]);
}

/** The owner's live bank accounts in a currency, oldest first. */
export async function selectBankAccountsInCurrency(db: Queryable, owner: BankAccountOwner, currency: string):
Promise<BankAccountRow[]> {
  const result = await db.query(
    named(`SELECT * FROM bank_accounts WHERE merchant_id = $1 AND account_id = $2 AND currency = $3
       AND deleted_at IS NULL ORDER BY created_at, id`),
    [owner.merchantId, owner.accountId, currency]);
  return result.rows.map(toBankAccount);
}

/** Every live bank account of the owner, newest first (a platform's own, for the CLI). */
export async function selectBankAccounts(db: Queryable, owner: BankAccountOwner): Promise<BankAccountRow[]> {
  const result = await db.query(
    named(`SELECT * FROM bank_accounts WHERE merchant_id = $1 AND account_id = $2 AND deleted_at IS NULL
       ORDER BY created_at DESC, id DESC`),
    [owner.merchantId, owner.accountId]);
  return result.rows.map(toBankAccount);
}

/** Takes the default for the currency away from whichever live bank account of the owner has it. */
export async function clearDefaultForCurrency(db: Queryable, owner: BankAccountOwner, currency: string):
Promise<void> {
  await db.query(
    named(`UPDATE bank_accounts SET default_for_currency = false WHERE merchant_id = $1 AND account_id = $2
       AND currency = $3 AND default_for_currency AND deleted_at IS NULL`),
    [owner.merchantId, owner.accountId, currency]);
}

export async function updateBankAccount(db: Queryable, owner: BankAccountOwner, id: string, fields: {
  accountHolderName: string | null; accountHolderType: AccountHolderType | null; defaultForCurrency: boolean;
  metadata: Record<string, string> }): Promise<BankAccountRow> {
  const result = await db.query(
    named(`UPDATE bank_accounts SET account_holder_name = $4, account_holder_type = $5, default_for_currency = $6,
       metadata = $7::jsonb WHERE merchant_id = $1 AND account_id = $2 AND id = $3 RETURNING *`),
    [owner.merchantId, owner.accountId, id, fields.accountHolderName, fields.accountHolderType,
      fields.defaultForCurrency, JSON.stringify(fields.metadata)]);
  return toBankAccount(result.rows[0]);
}

/** Deletes (hides) a bank account; it is no longer anyone's default. */
export async function markBankAccountDeleted(db: Queryable, owner: BankAccountOwner, id: string): Promise<void> {
  await db.query(
    named(`UPDATE bank_accounts SET deleted_at = clock_timestamp(), default_for_currency = false
     WHERE merchant_id = $1 AND account_id = $2 AND id = $3 AND deleted_at IS NULL`),
    [owner.merchantId, owner.accountId, id]);
}

export async function selectBankAccountPage(db: Queryable, query: BankAccountOwner & { limit: number;
  startingAfter: string | undefined; endingBefore: string | undefined }): Promise<PageRows<BankAccountRow>> {
  return selectPage(db, 'bank_accounts', { ...query, equals: { account_id: query.accountId } }, toBankAccount);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
function toBankAccount(row: any): BankAccountRow {
  return {
    merchantId: row.merchant_id, accountId: row.account_id, id: row.id, country: row.country, currency: row.currency,
    accountHolderName: row.account_holder_name, accountHolderType: row.account_holder_type,
    accountNumberCiphertext: row.account_number_ciphertext, last4: row.last4, fingerprint: row.fingerprint,
    routingNumber: row.routing_number, bankName: row.bank_name, defaultForCurrency: row.default_for_currency,
    metadata: row.metadata, status: row.status, createdAt: row.created_at,
  };
}
