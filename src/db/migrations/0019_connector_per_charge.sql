-- Up Migration
-- Purpose: one connector per charge (decisions.md, "Connectors beyond the sandbox"). A charge, its
-- refunds and the recovery jobs of its operations record the connector that handled them, so a
-- capture, void, refund, look-up or recovery goes to that connector, whatever new payments are
-- routed to later. An attempt has recorded its connector since 0004; the others take it from
-- there. Every row written before this migration was the sandbox's, the one connector there was.
SET LOCAL lock_timeout = '60s';

ALTER TABLE charges ADD COLUMN connector text;
UPDATE charges c SET connector = a.connector
  FROM payment_attempts a WHERE a.merchant_id = c.merchant_id AND a.id = c.attempt_id;
ALTER TABLE charges ALTER COLUMN connector SET NOT NULL;

ALTER TABLE refunds ADD COLUMN connector text;
UPDATE refunds r SET connector = c.connector
  FROM charges c WHERE c.merchant_id = r.merchant_id AND c.id = r.charge_id;
ALTER TABLE refunds ALTER COLUMN connector SET NOT NULL;

-- A job's subject: an attempt (authorize), an intent's latest charge (capture, cancel), a refund.
ALTER TABLE recovery_jobs ADD COLUMN connector text;
UPDATE recovery_jobs j SET connector = a.connector
  FROM payment_attempts a WHERE j.kind = 'authorize' AND a.merchant_id = j.merchant_id AND a.id = j.subject_id;
UPDATE recovery_jobs j SET connector = c.connector
  FROM payment_intents i JOIN charges c ON c.merchant_id = i.merchant_id AND c.id = i.latest_charge
  WHERE j.kind IN ('capture', 'cancel') AND i.merchant_id = j.merchant_id AND i.id = j.subject_id;
UPDATE recovery_jobs j SET connector = r.connector
  FROM refunds r WHERE j.kind = 'refund' AND r.merchant_id = j.merchant_id AND r.id = j.subject_id;
-- A job whose subject is gone cannot be run by anyone; it names the connector there was.
UPDATE recovery_jobs SET connector = 'sandbox' WHERE connector IS NULL;
ALTER TABLE recovery_jobs ALTER COLUMN connector SET NOT NULL;
