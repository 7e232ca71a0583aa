-- Up Migration
-- Purpose: the test 3-D Secure page offers "Fail" as Stripe's does. An attempt whose challenge the
-- customer failed is recorded as `authentication_failed`: the PSP never authorized it (its record
-- stays requires_action) and no money was held, which neither `declined` nor `failed` says.
-- The check is validated on the rows already there; wait at most a minute for the lock, as 0017 does.
SET LOCAL lock_timeout = '60s';
ALTER TABLE payment_attempts DROP CONSTRAINT payment_attempts_status_check,
  ADD CONSTRAINT payment_attempts_status_check
    CHECK (status IN ('started', 'unknown', 'authorized', 'captured', 'requires_action', 'declined', 'failed',
                      'manual_review', 'authentication_failed'));
