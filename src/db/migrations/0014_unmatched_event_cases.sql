-- Up Migration
-- Purpose: a PSP event that stays unmatched after its last retry (for example a capture the PSP
-- reports that Penny never booked) opens a case for the payment it names, as contradictions do,
-- instead of only an alert in the log.
ALTER TABLE payment_cases DROP CONSTRAINT payment_cases_kind_check;
ALTER TABLE payment_cases ADD CONSTRAINT payment_cases_kind_check
  CHECK (kind IN ('unresolved_outcome', 'contradicting_event', 'unmatched_event'));
