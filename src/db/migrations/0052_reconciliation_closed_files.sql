-- Up Migration
-- Purpose: a reconciliation run reads the records still open in the files still open, not every
-- record ever imported. Before, each run found its open PSP lines and bank entries by an anti-join
-- of every record with the match table, so its cost grew with the history (`npm run
-- bench:recon-history`). A file is closed by the first run after which none of its records a run
-- could match is unmatched (first versions; a bank entry only when booked). Closing is final:
-- records are never added to an imported file, and matches are never deleted. A file with a line
-- that stays a break stays open, and is read again by each run: one report, not the history.
-- Nothing is written per record, so an import costs what it did.
CREATE TABLE reconciliation_closed_files (
  file_id text PRIMARY KEY REFERENCES reconciliation_files (id),
  run_id text NOT NULL REFERENCES reconciliation_runs (id),
  closed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TRIGGER reconciliation_closed_files_kept BEFORE DELETE OR UPDATE ON reconciliation_closed_files
  FOR EACH STATEMENT EXECUTE FUNCTION reconciliation_kept();

-- A closed file's records must stay as the run that closed it read them: what decides whether a
-- record is open (its file, kind, status, days and version) cannot change after its import.
CREATE FUNCTION reconciliation_record_openness_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'a reconciliation record''s file, kind, status, days and version are kept as imported';
END $$;
CREATE TRIGGER reconciliation_records_openness_kept
  BEFORE UPDATE OF file_id, kind, status, booking_date, value_date, conflicts_with_record_id ON reconciliation_records
  FOR EACH STATEMENT EXECUTE FUNCTION reconciliation_record_openness_kept();
