-- Up Migration
-- Purpose: Stripe-compatible idempotency keys (scoped per merchant, with recovery points) and
-- PaymentIntents. Rows are the merchant's own: merchant_id leads every key and index.

CREATE TABLE idempotency_keys (
  merchant_id text NOT NULL REFERENCES merchants (id),
  key text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
  request_method text NOT NULL,
  request_path text NOT NULL,
  request_fingerprint text NOT NULL,
  -- The parameters as sent, so a mismatch can name the first parameter that differs.
  request_params jsonb NOT NULL,
  -- Where a request that died part-way resumes: 'started', then the endpoint's own points, then
  -- 'finished' once the response is stored.
  recovery_point text NOT NULL DEFAULT 'started',
  recovery_data jsonb NOT NULL DEFAULT '{}'::jsonb,
  response_status integer CHECK (response_status BETWEEN 200 AND 599),
  -- The response exactly as sent, replayed byte for byte.
  response_body text,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  last_run_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  completed_at timestamptz,
  PRIMARY KEY (merchant_id, key),
  CHECK ((response_status IS NULL) = (completed_at IS NULL)),
  CHECK ((response_status IS NULL) = (response_body IS NULL)),
  CHECK (completed_at IS NULL OR recovery_point = 'finished')
);
-- For the reaper: only finished keys older than the retention are ever deleted.
CREATE INDEX idempotency_keys_finished ON idempotency_keys (completed_at) WHERE completed_at IS NOT NULL;

CREATE TABLE payment_intents (
  merchant_id text NOT NULL REFERENCES merchants (id),
  id text NOT NULL CHECK (id ~ '^pi_[A-Za-z0-9]{8,64}$'),
  amount bigint NOT NULL CHECK (amount > 0),
  currency text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
  status text NOT NULL CHECK (status IN ('requires_payment_method', 'requires_confirmation',
    'requires_action', 'processing', 'requires_capture', 'succeeded', 'canceled')),
  capture_method text NOT NULL CHECK (capture_method IN ('automatic', 'automatic_async', 'manual')),
  payment_method text,
  customer text,
  description text,
  receipt_email text,
  statement_descriptor text,
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  amount_capturable bigint NOT NULL DEFAULT 0 CHECK (amount_capturable >= 0),
  amount_received bigint NOT NULL DEFAULT 0 CHECK (amount_received >= 0),
  latest_charge text,
  last_payment_error jsonb,
  next_action jsonb,
  canceled_at timestamptz,
  cancellation_reason text,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (merchant_id, id),
  UNIQUE (id),
  CHECK (amount_capturable <= amount AND amount_received <= amount),
  CHECK ((status = 'canceled') = (canceled_at IS NOT NULL))
);
CREATE INDEX payment_intents_list ON payment_intents (merchant_id, created_at DESC, id DESC);
CREATE INDEX payment_intents_customer ON payment_intents (merchant_id, customer, created_at DESC)
  WHERE customer IS NOT NULL;
