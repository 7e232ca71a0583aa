-- Up Migration
-- Purpose: three indexes of migration 0033 that no query reads, dropped, because each costs every
-- imported record an index entry (measured: the six secondary indexes took 4.4 of 11.5 s to
-- insert 200,000 records). Matching (migration 0036, recon-match-store.ts) joins a run's open
-- lines to the items by hash, never through these; a record is read by id, by file, and by batch,
-- whose indexes stay.
SET LOCAL lock_timeout = '60s';

DROP INDEX reconciliation_records_psp_reference;
DROP INDEX reconciliation_records_merchant_reference;
DROP INDEX reconciliation_records_amount;
