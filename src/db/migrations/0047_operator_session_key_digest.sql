-- Up Migration
-- Purpose: an operator's dashboard session ends when the operator key that opened it is no longer
-- the operator key (PENNY_OPERATOR_KEY changed, say because it leaked, and Penny restarted).
--
-- An operator session keeps the HMAC-SHA-256, under PENNY_SECRET_KEY, of the operator key it was
-- opened with (never the key itself); Penny accepts it only while that digest is the current
-- key's. A merchant's session keeps none (it ends with the revocation of its own key). Operator
-- sessions opened before this migration have no digest and are treated as signed out.
SET LOCAL lock_timeout = '60s';

ALTER TABLE dashboard_sessions ADD COLUMN operator_key_digest bytea
  CONSTRAINT dashboard_sessions_operator_key_digest_check
  CHECK (operator_key_digest IS NULL OR (merchant_id IS NULL AND length(operator_key_digest) = 32));
