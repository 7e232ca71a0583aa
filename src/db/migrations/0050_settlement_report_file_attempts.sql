-- Up Migration
-- Purpose: an imported settlement report (format adyen_sdr) that settlement failed to read. Each
-- failed attempt is counted, with its error and when it is due again (a bounded exponential backoff),
-- so a file that keeps failing waits its turn instead of being taken first on every tick: before,
-- twenty such files (the worker's per-tick limit, oldest first) kept every newer report from being
-- settled. After the last attempt, or at once for a batch whose payout cannot be read (the file's
-- lines cannot change), the file is `held` for an operator (alerted, counted in penny_waiting);
-- deleting its row has it read again on the next tick. A file read since has no row here.
CREATE TABLE settlement_report_file_attempts (
  file_id text PRIMARY KEY REFERENCES reconciliation_files (id),
  status text NOT NULL CONSTRAINT settlement_report_file_attempts_status_check CHECK (status IN ('retrying', 'held')),
  attempt_count integer NOT NULL CONSTRAINT settlement_report_file_attempts_attempt_count_check CHECK (attempt_count >= 1),
  last_error text NOT NULL,
  next_attempt_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT settlement_report_file_attempts_due_check CHECK ((status = 'retrying') = (next_attempt_at IS NOT NULL))
);
