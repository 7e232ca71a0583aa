import { selectPage, type PageRows } from '../db/pages.js';
import { named, type Queryable } from '../db/pool.js';
import type { AccountType, BusinessProfile, PayoutSchedule, Weekday } from './account-commands.js';

/**
 * Every SQL statement of connected accounts, one function per statement. account-service.ts
 * decides; this file never decides anything.
 */
export interface ConnectedAccountRow {
  /** The platform merchant the account belongs to. */
  readonly merchantId: string;
  readonly id: string;
  readonly type: AccountType;
  readonly country: string;
  readonly email: string | null;
  readonly businessProfile: BusinessProfile;
  readonly metadata: Record<string, string>;
  readonly payoutSchedule: PayoutSchedule;
  /** Whether it has a bank account to pay out to (payouts_enabled). */
  readonly hasBankAccount: boolean;
  readonly createdAt: string;
}

/** The fields an insert or an update writes, whole. */
export interface ConnectedAccountFields {
  readonly email: string | null;
  readonly businessProfile: BusinessProfile;
  readonly metadata: Record<string, string>;
  readonly payoutSchedule: PayoutSchedule;
}

const hasBankAccount = `EXISTS (SELECT 1 FROM bank_accounts b WHERE b.merchant_id = a.merchant_id
  AND b.account_id = a.id AND b.deleted_at IS NULL) AS has_bank_account`;

export async function insertConnectedAccount(db: Queryable, account: ConnectedAccountFields & {
  merchantId: string; id: string; type: AccountType; country: string }): Promise<ConnectedAccountRow> {
  const result = await db.query(
    named(`INSERT INTO connected_accounts AS a (merchant_id, id, type, country, email, business_profile, metadata,
       payout_interval, payout_weekly_anchor, payout_monthly_anchor)
     VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9, $10)
     RETURNING a.*, false AS has_bank_account`),
    [account.merchantId, account.id, account.type, account.country, ...fieldValues(account)]);
  return toAccount(result.rows[0]);
}

/**
 * A live (not deleted) account of the platform; with `forUpdate`, locked to the transaction's end;
 * with `forShare`, share-locked so (a transfer landing on it) that no delete runs meanwhile.
 */
export async function selectConnectedAccount(db: Queryable, key: { merchantId: string; id: string },
  options: { forUpdate?: boolean; forShare?: boolean } = {}): Promise<ConnectedAccountRow | undefined> {
  const lock = options.forUpdate === true ? ' FOR UPDATE OF a' : options.forShare === true ? ' FOR SHARE OF a' : '';
  const result = await db.query(
    named(`SELECT a.*, ${hasBankAccount} FROM connected_accounts a
     WHERE a.merchant_id = $1 AND a.id = $2 AND a.deleted_at IS NULL${lock}`),
    [key.merchantId, key.id]);
  return result.rows[0] === undefined ? undefined : toAccount(result.rows[0]);
}

/** Whether the platform has this live account (the Stripe-Account header's check): one index probe. */
export async function connectedAccountExists(db: Queryable, key: { merchantId: string; id: string }):
Promise<boolean> {
  const result = await db.query(
    named(`SELECT 1 FROM connected_accounts WHERE merchant_id = $1 AND id = $2 AND deleted_at IS NULL`),
    [key.merchantId, key.id]);
  return result.rows.length === 1;
}

export async function updateConnectedAccount(db: Queryable, key: { merchantId: string; id: string },
  fields: ConnectedAccountFields): Promise<ConnectedAccountRow> {
  const result = await db.query(
    named(`UPDATE connected_accounts a SET email = $3, business_profile = $4::jsonb, metadata = $5::jsonb,
       payout_interval = $6, payout_weekly_anchor = $7, payout_monthly_anchor = $8
     WHERE a.merchant_id = $1 AND a.id = $2 RETURNING a.*, ${hasBankAccount}`),
    [key.merchantId, key.id, ...fieldValues(fields)]);
  return toAccount(result.rows[0]);
}

export async function markConnectedAccountDeleted(db: Queryable, key: { merchantId: string; id: string }):
Promise<void> {
  await db.query(named(`UPDATE connected_accounts SET deleted_at = clock_timestamp()
     WHERE merchant_id = $1 AND id = $2 AND deleted_at IS NULL`), [key.merchantId, key.id]);
}

/**
 * Whether any ledger account of the connected account holds money (posted or pending, either
 * way): those the payments' accounts table keys by its id (merchant_ledger_accounts, where the
 * balances work books sellers), and any other ledger account it owns; or money is on its way to
 * it: a destination charge naming it that is neither succeeded nor canceled. Reads other folders'
 * tables to answer one question for the delete; writes nothing.
 */
export async function selectHoldsMoney(db: Queryable, accountId: string): Promise<boolean> {
  const result = await db.query<{ holds: boolean }>(
    named(`SELECT EXISTS (
       SELECT 1 FROM ledger_current_balances b
        WHERE b.account_id IN (SELECT ledger_account_id FROM merchant_ledger_accounts WHERE merchant_id = $1
                               UNION ALL
                               SELECT id FROM ledger_accounts WHERE owner = $1)
          AND (b.debits_posted <> b.credits_posted OR b.debits_pending <> b.credits_pending))
       OR EXISTS (SELECT 1 FROM payment_intents WHERE transfer_destination = $1
          AND status NOT IN ('succeeded', 'canceled')) AS holds`),
    [accountId]);
  return result.rows[0]?.holds === true;
}

export async function selectConnectedAccountPage(db: Queryable, query: { merchantId: string; limit: number;
  startingAfter: string | undefined; endingBefore: string | undefined }): Promise<PageRows<ConnectedAccountRow>> {
  const page = await selectPage(db, 'connected_accounts', { ...query, equals: {} }, (row) => row);
  if (page.rows.length === 0) return { rows: [], hasMore: page.hasMore };
  const withBanks = await db.query<{ id: string }>(
    named(`SELECT DISTINCT account_id AS id FROM bank_accounts
     WHERE merchant_id = $1 AND account_id = ANY($2::text[]) AND deleted_at IS NULL`),
    [query.merchantId, page.rows.map((row) => String(row.id))]);
  const banked = new Set(withBanks.rows.map((row) => row.id));
  return { rows: page.rows.map((row) => toAccount({ ...row, has_bank_account: banked.has(String(row.id)) })),
    hasMore: page.hasMore };
}

function fieldValues(fields: ConnectedAccountFields): unknown[] {
  const schedule = fields.payoutSchedule;
  return [fields.email, JSON.stringify(fields.businessProfile), JSON.stringify(fields.metadata), schedule.interval,
    schedule.interval === 'weekly' ? schedule.weeklyAnchor : null,
    schedule.interval === 'monthly' ? schedule.monthlyAnchor : null];
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a pg row
function toAccount(row: any): ConnectedAccountRow {
  const interval = row.payout_interval as PayoutSchedule['interval'];
  const payoutSchedule: PayoutSchedule = interval === 'weekly'
    ? { interval, weeklyAnchor: row.payout_weekly_anchor as Weekday }
    : interval === 'monthly' ? { interval, monthlyAnchor: Number(row.payout_monthly_anchor) } : { interval };
  return {
    merchantId: row.merchant_id, id: row.id, type: row.type, country: row.country, email: row.email,
    businessProfile: row.business_profile, metadata: row.metadata, payoutSchedule,
    hasBankAccount: row.has_bank_account === true, createdAt: row.created_at,
  };
}
