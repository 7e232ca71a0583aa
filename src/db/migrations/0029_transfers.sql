-- Up Migration
-- Purpose: Stripe's separate charges and transfers (issue 17): a platform moves funds from its
-- available balance to one of its connected accounts' (a Transfer, tr_), and takes them back in
-- whole or in part (TransferReversals, trr_). Amounts in ledger minor units; the reversed total
-- never passes the transfer's amount.
SET LOCAL lock_timeout = '60s';

CREATE TABLE transfers (
  merchant_id text NOT NULL,
  id text NOT NULL CHECK (id ~ '^tr_[A-Za-z0-9]+$' AND length(id) BETWEEN 11 AND 67),
  destination text NOT NULL CHECK (destination ~ '^acct_[A-Za-z0-9]+$' AND length(destination) BETWEEN 13 AND 69),
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  amount_minor bigint NOT NULL CHECK (amount_minor > 0),
  amount_reversed_minor bigint NOT NULL DEFAULT 0
    CHECK (amount_reversed_minor >= 0 AND amount_reversed_minor <= amount_minor),
  -- The charge whose funds it passes on (Stripe's source_transaction), if one was named.
  source_transaction text,
  transfer_group text,
  description text,
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  ledger_entry_id text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (merchant_id, id),
  UNIQUE (id)
);
CREATE INDEX transfers_list ON transfers (merchant_id, created_at DESC, id DESC);
CREATE INDEX transfers_source ON transfers (merchant_id, source_transaction) WHERE source_transaction IS NOT NULL;

CREATE TABLE transfer_reversals (
  merchant_id text NOT NULL,
  id text NOT NULL CHECK (id ~ '^trr_[A-Za-z0-9]+$' AND length(id) BETWEEN 12 AND 68),
  transfer_id text NOT NULL,
  amount_minor bigint NOT NULL CHECK (amount_minor > 0),
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  ledger_entry_id text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (merchant_id, id),
  FOREIGN KEY (merchant_id, transfer_id) REFERENCES transfers (merchant_id, id)
);
CREATE INDEX transfer_reversals_of ON transfer_reversals (merchant_id, transfer_id, created_at);
