-- Up Migration
-- Purpose: a report's Settled line a settlement pull could not apply because Penny had not booked
-- the capture it names yet (its answer was lost: recovery books it later), and, once the day's PSP
-- payout is posted, what that payout left in settlement suspense for it. The capture's booking reads
-- it: the funds become available at once, as of the line's day, and the suspense is moved to the
-- merchant's PSP receivable (docs/accounting.md, "A capture booked after its settlement").
CREATE TABLE settlement_unbooked_lines (
  connector text NOT NULL,
  merchant_reference text NOT NULL,
  available_on timestamptz NOT NULL,
  suspense_currency text,
  suspense_minor bigint,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (connector, merchant_reference),
  CONSTRAINT settlement_unbooked_lines_suspense_check CHECK ((suspense_currency IS NULL) = (suspense_minor IS NULL))
);

-- Purpose: an automatic payout is linked to exactly the balance transactions it pays. A remainder
-- below the currency's payout step (whole forints in HUF) is held back as Stripe does: a
-- `payout_minimum_balance_hold` (−r) linked to the payout and a `payout_minimum_balance_release`
-- (+r) left for the next, together leaving the balance as it is (docs/accounting.md).
ALTER TABLE balance_transactions DROP CONSTRAINT balance_transactions_type_check;
ALTER TABLE balance_transactions ADD CONSTRAINT balance_transactions_type_check CHECK (type IN ('charge', 'refund',
  'adjustment', 'application_fee', 'application_fee_refund', 'payout', 'payout_cancel', 'payout_failure',
  'payout_minimum_balance_hold', 'payout_minimum_balance_release', 'transfer', 'transfer_refund', 'payment',
  'payment_refund')) NOT VALID;
ALTER TABLE balance_transactions VALIDATE CONSTRAINT balance_transactions_type_check;
