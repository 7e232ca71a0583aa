-- Up Migration
-- Purpose: Stripe's Disputes (issue 17, "Disputes"). A PSP's chargeback opens a Dispute (du_) on
-- the charge; its amount and the PSP's dispute fee leave the merchant's available balance (an
-- `adjustment` balance transaction of reporting category `dispute`); a won dispute returns the
-- amount (`dispute_reversal`); the fee is kept either way, as Stripe keeps its $15.
SET LOCAL lock_timeout = '60s';

CREATE TABLE disputes (
  merchant_id text NOT NULL,
  id text NOT NULL CHECK (id ~ '^du_[A-Za-z0-9]+$' AND length(id) BETWEEN 11 AND 67),
  charge_id text NOT NULL,
  payment_intent_id text NOT NULL,
  connector text NOT NULL,
  -- The PSP's own reference of the dispute: one dispute per PSP chargeback.
  psp_reference text NOT NULL,
  amount_minor bigint NOT NULL CHECK (amount_minor > 0),
  fee_minor bigint NOT NULL CHECK (fee_minor >= 0),
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  reason text NOT NULL,
  status text NOT NULL CHECK (status IN ('needs_response', 'under_review', 'won', 'lost')),
  evidence jsonb NOT NULL DEFAULT '{}'::jsonb,
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (merchant_id, id),
  UNIQUE (id),
  UNIQUE (connector, psp_reference),
  FOREIGN KEY (merchant_id, charge_id) REFERENCES charges (merchant_id, id)
);
CREATE INDEX disputes_list ON disputes (merchant_id, created_at DESC, id DESC);
