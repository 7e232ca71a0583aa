-- Up Migration
-- Purpose: automatic payouts on each account's schedule (issue 17, "Payouts"), and connected
-- accounts' events naming their account (Stripe Connect's `account` on an event).
--
-- 1. A platform merchant's own payout schedule (`settings[payouts][schedule]` of its Account),
--    set by the operator (`penny merchants payout-schedule`): no row means `manual`, as a new
--    merchant's schedule is until set. Connected accounts keep theirs on connected_accounts (0022).
-- 2. An automatic payout names the UTC day it pays out for, and the database allows one per
--    account, currency and day: two workers racing, or a crash and a rerun, never pay twice.
-- 3. An event about a connected account names it (`account_id`); the platform's own events do not.
SET LOCAL lock_timeout = '60s';

CREATE TABLE merchant_payout_schedules (
  merchant_id text PRIMARY KEY REFERENCES merchants (id),
  payout_interval text NOT NULL CHECK (payout_interval IN ('daily', 'weekly', 'monthly', 'manual')),
  payout_weekly_anchor text
    CHECK (payout_weekly_anchor IN ('monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday')),
  payout_monthly_anchor smallint CHECK (payout_monthly_anchor BETWEEN 1 AND 31),
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  CHECK ((payout_interval = 'weekly') = (payout_weekly_anchor IS NOT NULL)),
  CHECK ((payout_interval = 'monthly') = (payout_monthly_anchor IS NOT NULL))
);

-- The scheduler's scan: accounts on an automatic schedule, in key order.
CREATE INDEX connected_accounts_payout_schedule ON connected_accounts (merchant_id, id)
  WHERE payout_interval <> 'manual' AND deleted_at IS NULL;

ALTER TABLE payouts ADD COLUMN automatic_day date;
ALTER TABLE payouts ADD CONSTRAINT payouts_automatic_day CHECK (automatic = (automatic_day IS NOT NULL));
CREATE UNIQUE INDEX payouts_automatic_once ON payouts (merchant_id, account_id, currency, automatic_day)
  WHERE automatic;

ALTER TABLE events ADD COLUMN account_id text
  CHECK (account_id ~ '^acct_[A-Za-z0-9]+$' AND length(account_id) BETWEEN 13 AND 69);
