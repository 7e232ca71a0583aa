-- Up Migration
-- Purpose: Stripe's BalanceTransactions (issue 17, "Balances" and "Settlement"): each movement of
-- an account's balance (a charge's capture, a refund; later payouts, transfers, fees, disputes) is
-- one row, in minor units of the ledger, with its fee, its net and whether its funds are `pending`
-- or `available`. The ledger stays the source of truth for the amounts (the Balance API reads the
-- ledger); these rows explain them. `account_id` is the balance's owner: the platform merchant
-- itself, or one of its connected accounts; `merchant_id` is always the platform (decisions.md,
-- "Growing past one database").
SET LOCAL lock_timeout = '60s';

CREATE TABLE balance_transactions (
  merchant_id text NOT NULL,
  account_id text NOT NULL CHECK (account_id ~ '^acct_[A-Za-z0-9]+$' AND length(account_id) BETWEEN 13 AND 69),
  id text NOT NULL CHECK (id ~ '^txn_[A-Za-z0-9]+$' AND length(id) BETWEEN 12 AND 68),
  type text NOT NULL CHECK (type IN ('charge', 'refund', 'adjustment', 'application_fee', 'application_fee_refund',
    'payout', 'payout_cancel', 'payout_failure', 'transfer', 'transfer_refund', 'payment', 'payment_refund')),
  reporting_category text NOT NULL,
  -- The object that caused it: a charge (ch_), refund (re_), payout (po_), transfer (tr_), dispute (du_), …
  source_id text NOT NULL,
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  amount_minor bigint NOT NULL,
  fee_minor bigint NOT NULL CHECK (fee_minor >= 0),
  net_minor bigint NOT NULL,
  fee_details jsonb NOT NULL DEFAULT '[]'::jsonb,
  status text NOT NULL CHECK (status IN ('pending', 'available')),
  -- When the funds became, or are expected to become, available.
  available_on timestamptz NOT NULL,
  description text,
  -- The ledger entry that made the funds available (settlement), once they are.
  availability_entry_id text,
  -- The automatic payout that paid these funds out (Stripe's `payout` filter), once one has.
  payout_id text,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (merchant_id, id),
  UNIQUE (id),
  -- One transaction of a kind per source (a dispute has two adjustments: withdrawal and
  -- reversal): a retried booking is a replay, never a second row.
  UNIQUE (merchant_id, source_id, type, reporting_category),
  CHECK (net_minor = amount_minor - fee_minor),
  -- A charge's funds become available only through the ledger entry that moves them (none for a net of 0).
  CHECK (status = 'pending' OR type <> 'charge' OR availability_entry_id IS NOT NULL OR net_minor = 0)
);
CREATE INDEX balance_transactions_list ON balance_transactions (merchant_id, account_id, created_at DESC, id DESC);
-- Pending charges by source, for settlement; and due ones, for the fixed-delay mode.
CREATE INDEX balance_transactions_pending ON balance_transactions (available_on) WHERE status = 'pending';

-- The settlement days Penny has pulled from each connector's reports (a pull is idempotent; this
-- only spares the worker pulling a closed day again).
CREATE TABLE settlement_pulls (
  connector text NOT NULL,
  day date NOT NULL,
  settled_count integer NOT NULL CHECK (settled_count >= 0),
  pulled_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (connector, day)
);
