-- Up Migration
-- Purpose: Stripe's Reports API for merchants (issue 18, "Reporting"): a report run (`frr_…`) is
-- asked for by a merchant (or, with Stripe-Account, one of its connected accounts: `account_id`),
-- about one owner's data (`data_account_id`: the same account, or the connected account named by
-- `parameters[connected_account]`), and executed in the background by the `report-runs` worker,
-- which claims pending runs with FOR UPDATE SKIP LOCKED under a lease (`claimed_until`). Its result
-- is a File (`file_…`, purpose `finance_report_run`) whose CSV is kept in parts of bounded size
-- (`file_parts`), so neither writing nor serving it holds a whole report in memory. Rows are led by
-- the platform's `merchant_id` (decisions.md, "Growing past one database").
SET LOCAL lock_timeout = '60s';

CREATE TABLE report_runs (
  merchant_id text NOT NULL,
  account_id text NOT NULL CHECK (account_id ~ '^acct_[A-Za-z0-9]+$'),
  data_account_id text NOT NULL CHECK (data_account_id ~ '^acct_[A-Za-z0-9]+$'),
  id text NOT NULL CHECK (id ~ '^frr_[A-Za-z0-9]+$' AND length(id) BETWEEN 12 AND 68),
  report_type text NOT NULL,
  -- The run's parameters as Stripe shows them (interval_start and interval_end in unix seconds).
  parameters jsonb NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
  error text,
  result_file_id text,
  attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  -- A claimed run is another worker's until then; the file its attempt writes, to clear on a retry.
  claimed_until timestamptz,
  attempt_file_id text,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  succeeded_at timestamptz,
  PRIMARY KEY (merchant_id, id),
  UNIQUE (id),
  CHECK ((status = 'succeeded') = (result_file_id IS NOT NULL)),
  CHECK ((status = 'succeeded') = (succeeded_at IS NOT NULL)),
  CHECK ((status = 'failed') = (error IS NOT NULL))
);
CREATE INDEX report_runs_list ON report_runs (merchant_id, account_id, created_at DESC, id DESC);
CREATE INDEX report_runs_pending ON report_runs (created_at) WHERE status = 'pending';

CREATE TABLE files (
  merchant_id text NOT NULL,
  account_id text NOT NULL CHECK (account_id ~ '^acct_[A-Za-z0-9]+$'),
  id text NOT NULL CHECK (id ~ '^file_[A-Za-z0-9]+$' AND length(id) BETWEEN 13 AND 69),
  purpose text NOT NULL CHECK (purpose = 'finance_report_run'),
  type text NOT NULL CHECK (type = 'csv'),
  filename text NOT NULL,
  size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
  parts integer NOT NULL CHECK (parts >= 0),
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (merchant_id, id),
  UNIQUE (id)
);

-- A file's bytes in order; written before the file row, so a part without a file is an attempt
-- that did not finish (its next attempt deletes it).
CREATE TABLE file_parts (
  merchant_id text NOT NULL,
  file_id text NOT NULL,
  position integer NOT NULL CHECK (position >= 0),
  data bytea NOT NULL,
  PRIMARY KEY (merchant_id, file_id, position)
);

-- The transactions an automatic payout paid out (the report's and Stripe's `payout` filter), and
-- the available ones no automatic payout has taken yet, which the next one takes.
CREATE INDEX balance_transactions_payout ON balance_transactions (merchant_id, payout_id, created_at, id)
  WHERE payout_id IS NOT NULL;
CREATE INDEX balance_transactions_unpaid ON balance_transactions (merchant_id, account_id, currency, created_at, id)
  WHERE payout_id IS NULL AND status = 'available';
-- Payouts by when they take effect, for the payout reports.
CREATE INDEX payouts_effective ON payouts (merchant_id, account_id, arrival_date, id);
