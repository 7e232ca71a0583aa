-- Up Migration
-- Purpose: operators list and close payment cases through the API and the CLI. A closed case
-- keeps when it was closed and what the operator did about it; cases are found by id alone.
ALTER TABLE payment_cases ADD COLUMN closed_at timestamptz;
ALTER TABLE payment_cases ADD COLUMN resolution text CHECK (length(resolution) BETWEEN 1 AND 1000);
ALTER TABLE payment_cases ADD CONSTRAINT payment_cases_closed_with_resolution
  CHECK ((status = 'closed') = (closed_at IS NOT NULL AND resolution IS NOT NULL));
CREATE UNIQUE INDEX payment_cases_id ON payment_cases (id);
CREATE INDEX payment_cases_open ON payment_cases (created_at DESC, id DESC) WHERE status = 'open';
