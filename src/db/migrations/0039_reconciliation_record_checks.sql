-- Up Migration
-- Purpose: fewer checks per imported record (issue 18's benchmark: an import COPYs a million
-- records straight into reconciliation_records, recon-import.ts). Measured on 200,000 records in
-- a rolled-back transaction: the per-row foreign-key triggers queued 0.5 s during the COPY and
-- checked for 1.4 s at commit (each a look-up and a share lock on the file's row), and the
-- four-column unique constraint is a second wide index entry for every record.
--
-- 1. The foreign keys of a record to its file, its statement and its first version are dropped,
--    as the match tables' were (0036): a record is written only by the import, in the transaction
--    that writes its file's row and its statements' rows, with the file id it made and the
--    statement positions its parser numbered (the import checks them, set-based, for a file with
--    statements); a first version it names is a row the import read. None of them is deleted:
--    files and statements are kept like the records (the triggers below), so no reference dangles.
-- 2. Unique content per (source, external id, occurrence): a first version is unique by its key
--    (reconciliation_records_first_version); a conflicting version is unique by key and content
--    among the conflicting ones. That the import never writes a conflicting version with its first
--    version's content is the import's rule (it inserts only content it does not know), no longer
--    an index entry of every record.
-- 3. No planner statistics of a record's raw fields and references (jsonb): no plan reads them
--    (the run reads a reference through ->>, which the column's statistics do not inform), and
--    computing them took most of the ANALYZE an import of 50,000 records or more makes (measured
--    on 200,000 records: 1.1 to 2.3 s with them, 0.4 to 0.5 s without).
-- 4. A record's raw fields (the row as the file had it, by header; half of an Adyen line's 33
--    columns are empty) are kept as json, the text as written, not jsonb: no query reads them, and
--    jsonb's parse into its binary form was a tenth of the insert (measured, COPY of 200,000
--    records with the changes above: 6.2 and 6.4 s as jsonb, 5.4 and 4.9 s as json).
SET LOCAL lock_timeout = '60s';

ALTER TABLE reconciliation_records DROP CONSTRAINT reconciliation_records_file_id_fkey;
ALTER TABLE reconciliation_records DROP CONSTRAINT reconciliation_records_file_id_statement_position_fkey;
ALTER TABLE reconciliation_records DROP CONSTRAINT reconciliation_records_conflicts_with_record_id_fkey;

CREATE UNIQUE INDEX reconciliation_records_conflicting_version
  ON reconciliation_records (source, external_id, occurrence, content_sha256)
  WHERE conflicts_with_record_id IS NOT NULL;
ALTER TABLE reconciliation_records DROP CONSTRAINT reconciliation_records_source_external_id_occurrence_conten_key;

CREATE TRIGGER reconciliation_files_kept BEFORE UPDATE OR DELETE ON reconciliation_files
  FOR EACH STATEMENT EXECUTE FUNCTION reconciliation_kept();
CREATE TRIGGER reconciliation_statements_kept BEFORE UPDATE OR DELETE ON reconciliation_statements
  FOR EACH STATEMENT EXECUTE FUNCTION reconciliation_kept();

ALTER TABLE reconciliation_records ALTER COLUMN raw DROP DEFAULT, ALTER COLUMN raw TYPE json USING raw::json,
  ALTER COLUMN raw SET DEFAULT '{}'::json;
ALTER TABLE reconciliation_records ALTER COLUMN raw SET STATISTICS 0, ALTER COLUMN refs SET STATISTICS 0;
