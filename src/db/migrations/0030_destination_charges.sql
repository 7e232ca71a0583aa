-- Up Migration
-- Purpose: Stripe's destination charges (issue 17). A PaymentIntent may name a connected account
-- to pass the charge's funds to (transfer_data[destination], with transfer_data[amount] or an
-- application_fee_amount the platform keeps); the capture creates the Transfer and the
-- ApplicationFee (fee_), whose refunds (fr_) return it to the connected account. Refunds may
-- reverse the transfer and refund the fee in proportion. Balance transactions that ride on a
-- charge (its transfer and its fee, on either side) become available with the charge's settlement:
-- `settles_with` names that charge. Amounts in ledger minor units, except payment_intents' and
-- charges' own columns, which keep Stripe's units of the currency as the rest of those tables do.
SET LOCAL lock_timeout = '60s';

ALTER TABLE payment_intents
  ADD COLUMN transfer_destination text
    CHECK (transfer_destination ~ '^acct_[A-Za-z0-9]+$' AND length(transfer_destination) BETWEEN 13 AND 69),
  ADD COLUMN transfer_amount bigint CHECK (transfer_amount > 0),
  ADD COLUMN application_fee_amount bigint CHECK (application_fee_amount >= 0),
  ADD COLUMN on_behalf_of text
    CHECK (on_behalf_of ~ '^acct_[A-Za-z0-9]+$' AND length(on_behalf_of) BETWEEN 13 AND 69),
  ADD COLUMN transfer_group text CHECK (length(transfer_group) <= 255),
  ADD CONSTRAINT payment_intents_transfer_needs_destination
    CHECK (transfer_amount IS NULL OR transfer_destination IS NOT NULL);
-- A connected account with a destination charge still on its way cannot be deleted.
CREATE INDEX payment_intents_open_destination ON payment_intents (transfer_destination)
  WHERE transfer_destination IS NOT NULL AND status NOT IN ('succeeded', 'canceled');

-- A charge carries its intent's Connect fields (Stripe's Charge shows them), and its Transfer and
-- ApplicationFee once captured.
ALTER TABLE charges
  ADD COLUMN transfer_destination text,
  ADD COLUMN transfer_amount bigint,
  ADD COLUMN application_fee_amount bigint,
  ADD COLUMN on_behalf_of text,
  ADD COLUMN transfer_group text,
  ADD COLUMN transfer_id text,
  ADD COLUMN application_fee_id text;

ALTER TABLE refunds
  ADD COLUMN reverse_transfer boolean NOT NULL DEFAULT false,
  ADD COLUMN refund_application_fee boolean NOT NULL DEFAULT false,
  ADD COLUMN transfer_reversal_id text,
  ADD COLUMN application_fee_refund_id text;

ALTER TABLE transfers ADD COLUMN destination_payment text
  CHECK (destination_payment ~ '^py_[A-Za-z0-9]+$' AND length(destination_payment) BETWEEN 11 AND 67);
ALTER TABLE transfer_reversals ADD COLUMN source_refund text;

ALTER TABLE balance_transactions ADD COLUMN settles_with text;
CREATE INDEX balance_transactions_settling ON balance_transactions (merchant_id, settles_with)
  WHERE settles_with IS NOT NULL AND status = 'pending';

CREATE TABLE application_fees (
  merchant_id text NOT NULL,
  id text NOT NULL CHECK (id ~ '^fee_[A-Za-z0-9]+$' AND length(id) BETWEEN 12 AND 68),
  -- The connected account the fee was taken from.
  account text NOT NULL CHECK (account ~ '^acct_[A-Za-z0-9]+$' AND length(account) BETWEEN 13 AND 69),
  charge_id text NOT NULL,
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  amount_minor bigint NOT NULL CHECK (amount_minor > 0),
  amount_refunded_minor bigint NOT NULL DEFAULT 0
    CHECK (amount_refunded_minor >= 0 AND amount_refunded_minor <= amount_minor),
  ledger_entry_id text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (merchant_id, id),
  UNIQUE (id),
  UNIQUE (merchant_id, charge_id)
);
CREATE INDEX application_fees_list ON application_fees (merchant_id, created_at DESC, id DESC);

CREATE TABLE application_fee_refunds (
  merchant_id text NOT NULL,
  id text NOT NULL CHECK (id ~ '^fr_[A-Za-z0-9]+$' AND length(id) BETWEEN 11 AND 67),
  fee_id text NOT NULL,
  amount_minor bigint NOT NULL CHECK (amount_minor > 0),
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- The charge refund that returned it (refund_application_fee), if any.
  source_refund text,
  ledger_entry_id text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (merchant_id, id),
  FOREIGN KEY (merchant_id, fee_id) REFERENCES application_fees (merchant_id, id)
);
CREATE INDEX application_fee_refunds_of ON application_fee_refunds (merchant_id, fee_id, created_at);
