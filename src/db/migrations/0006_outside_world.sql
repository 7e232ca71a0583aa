-- Up Migration
-- Purpose: the outside world. The networked sandbox PSP's own records (operations that can go
-- pending, payouts, its outbox of signed webhooks); on Penny's side, attempts whose outcome is
-- unknown, durable recovery jobs, the inbox of PSP webhooks, and cases opened for a human.

-- The sandbox PSP (a separate service; Penny's code never reads these tables).
ALTER TABLE sandbox_psp_operations DROP CONSTRAINT sandbox_psp_operations_kind_check;
ALTER TABLE sandbox_psp_operations ADD CONSTRAINT sandbox_psp_operations_kind_check
  CHECK (kind IN ('authorize', 'capture', 'void', 'refund', 'payout', 'chargeback'));
ALTER TABLE sandbox_psp_operations ADD COLUMN request_fingerprint text;
ALTER TABLE sandbox_psp_operations ADD COLUMN payment_method text;
-- An authorization that went pending resolves at this time (to its decided outcome).
ALTER TABLE sandbox_psp_operations ADD COLUMN resolves_at timestamptz;
ALTER TABLE sandbox_psp_operations ADD COLUMN resolved_outcome text;
ALTER TABLE sandbox_psp_operations ADD COLUMN updated_at timestamptz NOT NULL DEFAULT clock_timestamp();
CREATE INDEX sandbox_psp_operations_pending ON sandbox_psp_operations (resolves_at) WHERE resolves_at IS NOT NULL;
CREATE INDEX sandbox_psp_operations_day ON sandbox_psp_operations (created_at);

CREATE TABLE sandbox_psp_webhooks (
  id text NOT NULL,
  copy integer NOT NULL DEFAULT 1,
  type text NOT NULL,
  payload jsonb NOT NULL,
  deliver_at timestamptz NOT NULL,
  delivered_at timestamptz,
  attempt_count integer NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (id, copy)
);
CREATE INDEX sandbox_psp_webhooks_due ON sandbox_psp_webhooks (deliver_at) WHERE delivered_at IS NULL;

-- Penny: an attempt whose PSP outcome is not known yet. PSP webhooks name the attempt by its id.
ALTER TABLE payment_attempts DROP CONSTRAINT payment_attempts_status_check;
ALTER TABLE payment_attempts ADD CONSTRAINT payment_attempts_status_check
  CHECK (status IN ('started', 'unknown', 'authorized', 'captured', 'requires_action', 'declined', 'failed',
                    'manual_review'));
CREATE UNIQUE INDEX payment_attempts_id ON payment_attempts (id);
-- The customer completed the authentication the PSP asked for: a re-send must say so again.
ALTER TABLE payment_attempts ADD COLUMN authenticated boolean NOT NULL DEFAULT false;
-- Uncaptured authorizations, oldest first, for their expiry.
CREATE INDEX payment_intents_requires_capture ON payment_intents (updated_at) WHERE status = 'requires_capture';

-- Durable jobs that resolve unknown outcomes, claimed with FOR UPDATE SKIP LOCKED.
CREATE TABLE recovery_jobs (
  merchant_id text NOT NULL,
  id text NOT NULL CHECK (id ~ '^rcv_[A-Za-z0-9]{8,64}$'),
  -- authorize: an attempt; capture: an intent's claimed capture; refund: a reserved refund.
  kind text NOT NULL CHECK (kind IN ('authorize', 'capture', 'refund')),
  subject_id text NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'resolved', 'manual_review')),
  run_count integer NOT NULL DEFAULT 0 CHECK (run_count >= 0),
  next_run_at timestamptz NOT NULL,
  last_error text,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  resolved_at timestamptz,
  PRIMARY KEY (merchant_id, id),
  UNIQUE (kind, subject_id)
);
CREATE INDEX recovery_jobs_due ON recovery_jobs (next_run_at) WHERE status = 'pending';

-- PSP webhooks, stored once per (connector, event id) before they are processed.
CREATE TABLE connector_webhook_inbox (
  connector text NOT NULL,
  event_id text NOT NULL,
  event_type text NOT NULL,
  payload jsonb NOT NULL,
  status text NOT NULL DEFAULT 'received' CHECK (status IN ('received', 'parked', 'processed', 'ignored')),
  -- What processing concluded: applied, already applied, late, contradiction, parked for what.
  note text,
  process_count integer NOT NULL DEFAULT 0,
  next_process_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  processed_at timestamptz,
  PRIMARY KEY (connector, event_id)
);
CREATE INDEX connector_webhook_inbox_due ON connector_webhook_inbox (next_process_at)
  WHERE status IN ('received', 'parked');

-- Cases for a human: an outcome Penny could not resolve, or a PSP event contradicting the ledger.
CREATE TABLE payment_cases (
  merchant_id text NOT NULL,
  id text NOT NULL CHECK (id ~ '^case_[A-Za-z0-9]{8,64}$'),
  kind text NOT NULL CHECK (kind IN ('unresolved_outcome', 'contradicting_event')),
  payment_intent_id text NOT NULL,
  subject_id text NOT NULL,
  detail jsonb NOT NULL,
  status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (merchant_id, id),
  UNIQUE (kind, subject_id)
);
