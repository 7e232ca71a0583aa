-- Up Migration
-- Purpose: a CSV report's records made cheaper to import (issue 18's benchmark: the content hash
-- and the raw fields' JSON were a third of Node's time per line, the 1 kB raw object per row the
-- largest part of PostgreSQL's).
--
-- 1. A CSV file's header is kept once, with the file (csv_header, a JSON array of its column
--    names); each of its records keeps its raw fields as a JSON array of its values in the file's
--    column order, not an object repeating every column name. Reading a record's raw fields by
--    name zips the two (recon-store.ts, selectRecordRaw). camt.053 and MT940 entries, and CSV
--    records imported before this migration, keep a JSON object.
-- 2. A CSV record's content hash (version 2, recon-import.ts, recordJson) is the SHA-256 of its
--    values by column name: the hex SHA-256 of the column names sorted by code point (the "C"
--    collation), NUL-separated, then a newline, then the values in that order, NUL-separated. So
--    a re-export with its columns in another order is the same content, as it was. The hashes of
--    the CSV records already stored (version 1: the SHA-256 of the whole record's JSON) are
--    recomputed from their raw fields here, so a re-import of a file imported before finds its
--    records known. Where two stored versions of one key have the same values (versions that
--    differed only in what an older parser read from them), the first version (then the oldest)
--    takes the new hash and the others keep theirs: the unique indexes hold, and that content is
--    known once.
-- 3. A run's record matches are no longer indexed by item: no query reads them so (an item's
--    match is its row in reconciliation_item_matches), and a run over N lines wrote N entries
--    (measured: 0.15 to 0.25 s of PostgreSQL's CPU for a run of 200,000 lines, 4 to 6 %).
SET LOCAL lock_timeout = '60s';

DROP INDEX reconciliation_record_matches_item;

ALTER TABLE reconciliation_files ADD COLUMN csv_header json
  CHECK (csv_header IS NULL OR json_typeof(csv_header) = 'array');

WITH recomputed AS (
  SELECT r.id, h.sha256,
    row_number() OVER (PARTITION BY r.source, r.external_id, r.occurrence, h.sha256
      ORDER BY r.conflicts_with_record_id IS NOT NULL, r.id) AS rank_in_content
  FROM reconciliation_records r
  JOIN reconciliation_files f ON f.id = r.file_id AND f.format IN ('adyen_sdr', 'stripe_payout_reconciliation')
  CROSS JOIN LATERAL (
    SELECT encode(sha256(convert_to(encode(sha256(
          string_agg(convert_to(c.key, 'UTF8'), '\x00'::bytea ORDER BY c.key COLLATE "C")), 'hex') || E'\n', 'UTF8')
        || string_agg(convert_to(c.value, 'UTF8'), '\x00'::bytea ORDER BY c.key COLLATE "C")), 'hex') AS sha256
    FROM json_each_text(r.raw) AS c(key, value)
  ) h
  WHERE json_typeof(r.raw) = 'object' AND h.sha256 IS NOT NULL
)
UPDATE reconciliation_records r SET content_sha256 = c.sha256
FROM recomputed c
WHERE r.id = c.id AND c.rank_in_content = 1 AND r.content_sha256 <> c.sha256;
