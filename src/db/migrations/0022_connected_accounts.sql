-- Up Migration
-- Purpose: Stripe Connect's connected accounts (the sellers of a platform merchant) and bank
-- accounts (external accounts), and idempotency keys scoped per acting account (Stripe-Account).
--
-- As decisions.md ("Growing past one database") asks, every row carries `merchant_id` = the
-- platform merchant, leads its indexes with it and includes it in its unique keys, so a platform
-- and all its sellers stay on one shard.

CREATE TABLE connected_accounts (
  merchant_id text NOT NULL REFERENCES merchants (id),
  id text NOT NULL CHECK (id ~ '^acct_[A-Za-z0-9]+$' AND length(id) BETWEEN 13 AND 69),
  type text NOT NULL CHECK (type IN ('custom', 'express', 'standard')),
  country text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
  email text CHECK (length(email) <= 800),
  business_profile jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(business_profile) = 'object'),
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
  -- settings[payouts][schedule]: manual until set (issue 17); an anchor exactly when its interval needs one.
  payout_interval text NOT NULL DEFAULT 'manual'
    CHECK (payout_interval IN ('daily', 'weekly', 'monthly', 'manual')),
  payout_weekly_anchor text
    CHECK (payout_weekly_anchor IN ('monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday')),
  payout_monthly_anchor smallint CHECK (payout_monthly_anchor BETWEEN 1 AND 31),
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  -- Soft delete: a deleted account is answered as missing, but what referred to it stays explainable.
  deleted_at timestamptz,
  PRIMARY KEY (merchant_id, id),
  CHECK ((payout_interval = 'weekly') = (payout_weekly_anchor IS NOT NULL)),
  CHECK ((payout_interval = 'monthly') = (payout_monthly_anchor IS NOT NULL))
);
CREATE INDEX connected_accounts_list ON connected_accounts (merchant_id, created_at DESC, id DESC)
  WHERE deleted_at IS NULL;

-- Bank accounts a payout can go to. `account_id` is the account that owns one: a connected
-- account of the platform, or the platform merchant itself (its own bank account, set by the
-- operator with `penny merchants bank-account`); both are `acct_` ids, as on Stripe. So there is
-- no foreign key on it; the service checks it.
CREATE TABLE bank_accounts (
  merchant_id text NOT NULL REFERENCES merchants (id),
  account_id text NOT NULL CHECK (account_id ~ '^acct_[A-Za-z0-9]+$' AND length(account_id) BETWEEN 13 AND 69),
  id text NOT NULL CHECK (id ~ '^ba_[A-Za-z0-9]+$' AND length(id) BETWEEN 11 AND 67),
  country text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
  currency text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
  account_holder_name text CHECK (length(account_holder_name) <= 5000),
  account_holder_type text CHECK (account_holder_type IN ('individual', 'company')),
  -- The account number (or IBAN) sealed with AES-256-GCM under a key derived from
  -- PENNY_SECRET_KEY; the plain number is never stored. Shown only as last4, compared by fingerprint.
  account_number_ciphertext text NOT NULL CHECK (account_number_ciphertext LIKE 'v1:%'),
  -- No counted repetitions in checks (0017: PostgreSQL's regular expressions make them slow).
  last4 text NOT NULL CHECK (last4 ~ '^[0-9A-Z]+$' AND length(last4) = 4),
  -- HMAC-SHA-256 of the normalized number under a key derived from PENNY_SECRET_KEY (never a plain hash).
  fingerprint text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]+$' AND length(fingerprint) = 16),
  routing_number text CHECK (routing_number ~ '^[0-9]+$' AND length(routing_number) = 9),
  bank_name text,
  default_for_currency boolean NOT NULL DEFAULT false,
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
  status text NOT NULL DEFAULT 'new'
    CHECK (status IN ('new', 'validated', 'verified', 'verification_failed', 'errored')),
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  deleted_at timestamptz,
  PRIMARY KEY (merchant_id, id)
);
CREATE INDEX bank_accounts_list ON bank_accounts (merchant_id, account_id, created_at DESC, id DESC)
  WHERE deleted_at IS NULL;
-- At most one default bank account per account and currency.
CREATE UNIQUE INDEX bank_accounts_one_default ON bank_accounts (merchant_id, account_id, currency)
  WHERE default_for_currency AND deleted_at IS NULL;

-- Stripe scopes idempotency keys per account: the same key sent as the platform and as one of its
-- connected accounts (Stripe-Account) names two requests. '' is the platform itself, so the keys
-- stored so far keep their meaning without a rewrite of the table.
SET LOCAL lock_timeout = '60s';
ALTER TABLE idempotency_keys ADD COLUMN account_id text NOT NULL DEFAULT ''
  CHECK (account_id = '' OR (account_id ~ '^acct_[A-Za-z0-9]+$' AND length(account_id) BETWEEN 13 AND 69));
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey,
  ADD CONSTRAINT idempotency_keys_pkey PRIMARY KEY (merchant_id, account_id, key);
