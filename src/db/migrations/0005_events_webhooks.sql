-- Up Migration
-- Purpose: Stripe-shaped events written in the same transaction as each state change (a
-- transactional outbox), merchants' webhook endpoints (secrets encrypted, never plain), and the
-- deliveries of each event to each matching endpoint with every attempt recorded.

CREATE TABLE events (
  merchant_id text NOT NULL REFERENCES merchants (id),
  id text NOT NULL CHECK (id ~ '^evt_[A-Za-z0-9]{8,64}$'),
  type text NOT NULL CHECK (type ~ '^[a-z_]+(\.[a-z_]+)+$'),
  api_version text NOT NULL,
  -- {object, previous_attributes?}: the object as it was after the change.
  data jsonb NOT NULL,
  request_id text,
  idempotency_key text,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (merchant_id, id),
  UNIQUE (id)
);
CREATE INDEX events_list ON events (merchant_id, created_at DESC, id DESC);
CREATE INDEX events_type ON events (merchant_id, type, created_at DESC);

-- Events are history: they are never rewritten.
CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'events are append-only' USING ERRCODE = 'PN003';
END $$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
  FOR EACH ROW EXECUTE FUNCTION events_refuse_change();

CREATE TABLE webhook_endpoints (
  merchant_id text NOT NULL REFERENCES merchants (id),
  id text NOT NULL CHECK (id ~ '^we_[A-Za-z0-9]{8,64}$'),
  url text NOT NULL CHECK (url ~ '^https?://'),
  enabled_events text[] NOT NULL CHECK (cardinality(enabled_events) BETWEEN 1 AND 256),
  description text,
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  status text NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled')),
  -- AES-256-GCM under a key derived from PENNY_SECRET_KEY; the plain secret is never stored.
  secret_ciphertext text NOT NULL CHECK (secret_ciphertext LIKE 'v1:%'),
  api_version text NOT NULL,
  -- The start of the current run of failed deliveries; an endpoint failing for days is disabled.
  failing_since timestamptz,
  deleted_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (merchant_id, id),
  UNIQUE (id)
);
CREATE INDEX webhook_endpoints_list ON webhook_endpoints (merchant_id, created_at DESC, id DESC)
  WHERE deleted_at IS NULL;

CREATE TABLE webhook_deliveries (
  merchant_id text NOT NULL,
  id text NOT NULL CHECK (id ~ '^whd_[A-Za-z0-9]{8,64}$'),
  event_id text NOT NULL,
  endpoint_id text NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
  attempt_count integer NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
  -- When the next attempt is due; a claimed delivery moves it forward by the lease, so a worker
  -- that dies mid-delivery leaves it to be tried again (at least once).
  next_attempt_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  completed_at timestamptz,
  PRIMARY KEY (merchant_id, id),
  UNIQUE (id),
  UNIQUE (event_id, endpoint_id),
  FOREIGN KEY (merchant_id, event_id) REFERENCES events (merchant_id, id),
  FOREIGN KEY (merchant_id, endpoint_id) REFERENCES webhook_endpoints (merchant_id, id),
  CHECK ((status = 'pending') = (completed_at IS NULL))
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (merchant_id, event_id);

CREATE TABLE webhook_delivery_attempts (
  merchant_id text NOT NULL,
  delivery_id text NOT NULL,
  attempt_number integer NOT NULL CHECK (attempt_number >= 1),
  started_at timestamptz NOT NULL,
  duration_ms integer NOT NULL CHECK (duration_ms >= 0),
  response_status integer,
  -- A short description of a failure that had no HTTP status (timeout, refused, blocked address).
  error text,
  PRIMARY KEY (merchant_id, delivery_id, attempt_number),
  FOREIGN KEY (merchant_id, delivery_id) REFERENCES webhook_deliveries (merchant_id, id)
);
