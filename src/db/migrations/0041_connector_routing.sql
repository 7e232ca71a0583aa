-- Up Migration
-- Purpose: a merchant's payments routed to a connector of its own (issue 20: Adyen), with the PSP
-- account's credentials sealed like webhook secrets.
--
-- 1. connector_accounts: one row per PSP account Penny speaks to beyond the sandbox, named by its
--    connector id (`adyen:<merchant account>`), the id payments, charges, refunds and recovery jobs
--    record. Its API key and HMAC key are sealed (AES-256-GCM, src/security/secret-box.ts); a
--    change of credentials updates the row, so the account's existing payments use the new ones.
-- 2. merchant_connectors: where a merchant's new payments go. No row: the operator's default
--    (operator_connector's one row; none: the sandbox). Changing either moves no existing payment:
--    each keeps the connector it recorded.
-- 3. The inbox is read by reference: a connector without a look-up API (Adyen's Checkout) answers
--    a look-up from the verified notifications its PSP sent for Penny's reference.
CREATE TABLE connector_accounts (
  connector text NOT NULL,
  kind text NOT NULL,
  merchant_account text NOT NULL,
  endpoint text NOT NULL,
  live_prefix text,
  api_key_sealed text NOT NULL,
  hmac_key_sealed text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT connector_accounts_pkey PRIMARY KEY (connector),
  CONSTRAINT connector_accounts_kind_check CHECK (kind = 'adyen'),
  CONSTRAINT connector_accounts_connector_check CHECK (connector = kind || ':' || merchant_account),
  CONSTRAINT connector_accounts_merchant_account_check
    CHECK (merchant_account ~ '^[A-Za-z0-9_.-]+$' AND length(merchant_account) <= 80),
  CONSTRAINT connector_accounts_endpoint_check CHECK (endpoint ~ '^https?://' AND length(endpoint) <= 500),
  CONSTRAINT connector_accounts_live_prefix_check
    CHECK (live_prefix IS NULL OR (live_prefix ~ '^[A-Za-z0-9-]+$' AND length(live_prefix) <= 100))
);

CREATE TABLE merchant_connectors (
  merchant_id text NOT NULL,
  connector text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT merchant_connectors_pkey PRIMARY KEY (merchant_id),
  CONSTRAINT merchant_connectors_merchant_fkey FOREIGN KEY (merchant_id) REFERENCES merchants (id),
  CONSTRAINT merchant_connectors_connector_check CHECK (connector = 'sandbox' OR connector ~ '^adyen:')
);

CREATE TABLE operator_connector (
  singleton boolean NOT NULL DEFAULT true,
  connector text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT operator_connector_pkey PRIMARY KEY (singleton),
  CONSTRAINT operator_connector_singleton_check CHECK (singleton),
  CONSTRAINT operator_connector_connector_check CHECK (connector = 'sandbox' OR connector ~ '^adyen:')
);

CREATE INDEX connector_webhook_inbox_reference ON connector_webhook_inbox (connector, (payload->>'reference'));
