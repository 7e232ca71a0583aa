-- Up Migration
-- Purpose: confirming, capturing, canceling and refunding PaymentIntents through a PSP connector:
-- payment attempts (with Penny's own PSP idempotency keys), charges, refunds, the one-way
-- finalization of an intent (capture or cancel, never both), each merchant's ledger accounts and
-- pricing, and the in-process sandbox PSP's own record of what it did.

-- The ledger accounts of each merchant and currency (docs/accounting.md, chart of accounts).
CREATE TABLE merchant_ledger_accounts (
  merchant_id text NOT NULL REFERENCES merchants (id),
  currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  role text NOT NULL CHECK (role IN ('psp_receivable', 'merchant_pending', 'merchant_available',
                                     'penny_revenue', 'psp_fees')),
  ledger_account_id text NOT NULL UNIQUE,
  PRIMARY KEY (merchant_id, currency, role)
);

-- Penny's processing fee per merchant (default 2.9% + 30 minor units when no row exists).
CREATE TABLE merchant_pricing (
  merchant_id text PRIMARY KEY REFERENCES merchants (id),
  fee_basis_points integer NOT NULL CHECK (fee_basis_points BETWEEN 0 AND 10000),
  fee_fixed_minor bigint NOT NULL CHECK (fee_fixed_minor >= 0)
);

CREATE TABLE payment_attempts (
  merchant_id text NOT NULL,
  id text NOT NULL CHECK (id ~ '^pa_[A-Za-z0-9]{8,64}$'),
  payment_intent_id text NOT NULL,
  attempt_number integer NOT NULL CHECK (attempt_number >= 1),
  connector text NOT NULL,
  -- Derived from the attempt, sent on every call for it, across retries and restarts.
  psp_idempotency_key text NOT NULL UNIQUE,
  payment_method text NOT NULL,
  status text NOT NULL CHECK (status IN ('started', 'authorized', 'captured', 'requires_action',
                                         'declined')),
  psp_reference text,
  decline_code text,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (merchant_id, id),
  UNIQUE (payment_intent_id, attempt_number),
  FOREIGN KEY (merchant_id, payment_intent_id) REFERENCES payment_intents (merchant_id, id)
);

CREATE TABLE charges (
  merchant_id text NOT NULL,
  id text NOT NULL CHECK (id ~ '^ch_[A-Za-z0-9]{8,64}$'),
  payment_intent_id text NOT NULL,
  attempt_id text NOT NULL UNIQUE,
  amount bigint NOT NULL CHECK (amount > 0),
  currency text NOT NULL,
  amount_captured bigint NOT NULL DEFAULT 0 CHECK (amount_captured >= 0),
  amount_refunded bigint NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0),
  captured boolean NOT NULL DEFAULT false,
  status text NOT NULL CHECK (status IN ('succeeded', 'pending', 'failed')),
  payment_method text NOT NULL,
  failure_code text,
  failure_message text,
  outcome jsonb NOT NULL,
  psp_reference text,
  authorization_entry_id text,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (merchant_id, id),
  UNIQUE (id),
  FOREIGN KEY (merchant_id, payment_intent_id) REFERENCES payment_intents (merchant_id, id),
  -- Money invariants of a charge, held by the database whatever the code does.
  CHECK (amount_captured <= amount),
  CHECK (amount_refunded <= amount_captured),
  CHECK (captured = (amount_captured > 0))
);
CREATE INDEX charges_list ON charges (merchant_id, created_at DESC, id DESC);
CREATE INDEX charges_intent ON charges (merchant_id, payment_intent_id);

-- An authorized intent ends once: captured or canceled. The primary key lets exactly one win.
CREATE TABLE payment_intent_finalizations (
  merchant_id text NOT NULL,
  payment_intent_id text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('capture', 'cancel')),
  amount bigint CHECK (amount > 0),
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (merchant_id, payment_intent_id),
  FOREIGN KEY (merchant_id, payment_intent_id) REFERENCES payment_intents (merchant_id, id)
);

CREATE TABLE refunds (
  merchant_id text NOT NULL,
  id text NOT NULL CHECK (id ~ '^re_[A-Za-z0-9]{8,64}$'),
  charge_id text NOT NULL,
  payment_intent_id text NOT NULL,
  amount bigint NOT NULL CHECK (amount > 0),
  currency text NOT NULL,
  reason text CHECK (reason IN ('duplicate', 'fraudulent', 'requested_by_customer')),
  status text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  psp_reference text,
  ledger_entry_id text,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (merchant_id, id),
  UNIQUE (id),
  FOREIGN KEY (merchant_id, charge_id) REFERENCES charges (merchant_id, id)
);
CREATE INDEX refunds_list ON refunds (merchant_id, created_at DESC, id DESC);

-- The sandbox PSP's own durable record: the ground truth of "was the customer charged?".
-- Keyed by Penny's idempotency key, so a repeated call returns what was done the first time.
CREATE TABLE sandbox_psp_operations (
  idempotency_key text PRIMARY KEY,
  merchant_reference text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('authorize', 'capture', 'void', 'refund')),
  psp_reference text NOT NULL UNIQUE,
  parent_psp_reference text,
  amount_minor bigint,
  currency char(3),
  outcome text NOT NULL,
  decline_code text,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX sandbox_psp_operations_reference ON sandbox_psp_operations (merchant_reference);
