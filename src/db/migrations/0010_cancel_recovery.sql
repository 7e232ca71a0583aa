-- Up Migration
-- Purpose: a cancel whose void has an unknown outcome gets a recovery job of its own, as captures
-- and refunds have; the reason the merchant gave is kept with the claim, so recovery cancels
-- with that reason rather than `automatic`.
ALTER TABLE recovery_jobs DROP CONSTRAINT recovery_jobs_kind_check;
ALTER TABLE recovery_jobs ADD CONSTRAINT recovery_jobs_kind_check
  CHECK (kind IN ('authorize', 'capture', 'cancel', 'refund'));
ALTER TABLE payment_intent_finalizations ADD COLUMN cancellation_reason text
  CHECK (cancellation_reason IS NULL OR kind = 'cancel');
