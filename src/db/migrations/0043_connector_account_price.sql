-- Up Migration
-- 0043: the merchant's Adyen price on its Adyen account's routing, and its settlement reports announced.
-- Adyen prices by contract; a connector account carries the merchant's price (basis points of each
-- captured amount plus a fixed fee in minor units of the charge's currency), used as the
-- connector's price list: the PSP fee Penny expects at capture and matches against the
-- Settlement details report. 0 and 0 (the default, and every existing account): no fee expected.
ALTER TABLE connector_accounts
  ADD COLUMN fee_basis_points integer NOT NULL DEFAULT 0,
  ADD COLUMN fee_fixed_minor bigint NOT NULL DEFAULT 0,
  ADD CONSTRAINT connector_accounts_fee_basis_points_check CHECK (fee_basis_points BETWEEN 0 AND 10000),
  ADD CONSTRAINT connector_accounts_fee_fixed_minor_check CHECK (fee_fixed_minor BETWEEN 0 AND 100000000);

-- Adyen's Settlement details reports announced by a verified REPORT_AVAILABLE notification, its
-- `reason` the download URL: one row per (account, URL), downloaded with the account's API key by
-- the report-downloads worker (only from Adyen's hosts or the account's endpoint) and imported into
-- reconciliation. pending → imported (its file), or failed after its bounded retries or a refusal.
CREATE TABLE connector_report_downloads (
  connector text NOT NULL,
  url text NOT NULL,
  status text NOT NULL DEFAULT 'pending',
  attempt_count integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  last_error text,
  file_id text,
  received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at timestamptz,
  CONSTRAINT connector_report_downloads_pkey PRIMARY KEY (connector, url),
  CONSTRAINT connector_report_downloads_status_check CHECK (status IN ('pending', 'imported', 'failed')),
  CONSTRAINT connector_report_downloads_url_check CHECK (url ~ '^https?://' AND length(url) <= 2000)
);
CREATE INDEX connector_report_downloads_due ON connector_report_downloads (next_attempt_at)
  WHERE status = 'pending';
