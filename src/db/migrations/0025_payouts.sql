-- Up Migration
-- Purpose: Stripe's Payouts (issue 17, "Payouts"): money a platform merchant or one of its
-- connected accounts takes out of its available balance to a bank account. Each row is led by the
-- platform's `merchant_id`; `account_id` is whose balance pays (the platform itself or a connected
-- account). Amounts are ledger minor units. `psp_call` says where the call to the PSP stands:
-- `unknown` (recorded so before the call goes out, and kept when its answer is lost: only a look-up
-- can tell), `sent` (the PSP took it), `refused` (the PSP definitely did nothing). A payout may be
-- canceled only while the PSP has not taken it: `pending` and `refused`.
SET LOCAL lock_timeout = '60s';

CREATE TABLE payouts (
  merchant_id text NOT NULL,
  account_id text NOT NULL CHECK (account_id ~ '^acct_[A-Za-z0-9]+$' AND length(account_id) BETWEEN 13 AND 69),
  id text NOT NULL CHECK (id ~ '^po_[A-Za-z0-9]+$' AND length(id) BETWEEN 11 AND 67),
  amount_minor bigint NOT NULL CHECK (amount_minor > 0),
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  status text NOT NULL CHECK (status IN ('pending', 'in_transit', 'paid', 'failed', 'canceled')),
  -- A bank account (ba_) of the owner, or, for a test-mode platform with none, the sandbox bank's test account.
  destination text NOT NULL,
  method text NOT NULL DEFAULT 'standard' CHECK (method = 'standard'),
  description text,
  statement_descriptor text,
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  automatic boolean NOT NULL DEFAULT false,
  failure_code text,
  failure_message text,
  connector text NOT NULL,
  psp_call text NOT NULL DEFAULT 'unknown' CHECK (psp_call IN ('sent', 'unknown', 'refused')),
  psp_reference text,
  arrival_date timestamptz NOT NULL,
  -- The ledger entry that took the money out of the available balance, and the one that returned it.
  entry_id text NOT NULL,
  return_entry_id text,
  balance_transaction_id text NOT NULL,
  failure_balance_transaction_id text,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (merchant_id, id),
  UNIQUE (id),
  -- A failed or canceled payout has returned its money; no other has.
  CHECK ((status IN ('failed', 'canceled')) = (return_entry_id IS NOT NULL)),
  CHECK ((status IN ('failed', 'canceled')) = (failure_balance_transaction_id IS NOT NULL)),
  CHECK (status <> 'failed' OR failure_code IS NOT NULL)
);
CREATE INDEX payouts_list ON payouts (merchant_id, account_id, created_at DESC, id DESC);
-- Payouts whose PSP answer was lost, for the look-up worker.
CREATE INDEX payouts_unknown ON payouts (updated_at) WHERE psp_call = 'unknown';
