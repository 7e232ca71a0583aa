-- Up Migration
-- Purpose: reconciliation's inputs (issue 18, first slice): the PSP settlement reports and bank
-- statements an operator imports, their statements and their records (lines and entries), in
-- integer minor units. Operator data: a report or statement covers many merchants, so these
-- tables carry no merchant_id (decisions.md, "Growing past one database": operator-wide data in
-- tables of its own). Idempotent imports: a file is known by the SHA-256 of its bytes; a record
-- by (source, external_id, occurrence), and a record known with other content is kept beside
-- the first as a conflicting version, never over it.
-- Checks avoid counted repetitions (slow in PostgreSQL's regular expressions; see 0017).
SET LOCAL lock_timeout = '60s';

CREATE TABLE reconciliation_files (
  id text PRIMARY KEY CHECK (id ~ '^rfile_[A-Za-z0-9]+$' AND length(id) BETWEEN 14 AND 70),
  source text NOT NULL CHECK (source ~ '^[a-z0-9][a-z0-9_.:-]*$' AND length(source) <= 64),
  format text NOT NULL CHECK (format IN ('adyen_sdr', 'stripe_payout_reconciliation', 'camt053', 'mt940')),
  format_version text,
  filename text NOT NULL CHECK (length(filename) BETWEEN 1 AND 255),
  content_sha256 text NOT NULL UNIQUE CHECK (content_sha256 ~ '^[0-9a-f]+$' AND length(content_sha256) = 64),
  size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
  line_count integer NOT NULL CHECK (line_count >= 0),
  record_count integer NOT NULL CHECK (record_count >= 0),
  new_record_count integer NOT NULL CHECK (new_record_count >= 0),
  known_record_count integer NOT NULL CHECK (known_record_count >= 0),
  conflicting_record_count integer NOT NULL CHECK (conflicting_record_count >= 0),
  CHECK (record_count = new_record_count + known_record_count + conflicting_record_count),
  imported_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX reconciliation_files_imported ON reconciliation_files (imported_at DESC, id DESC);

-- A bank statement in a file, with what a statement_balance_mismatch break will need: both
-- balances, the booked sum, and the result of opening + entries = closing.
-- The file's row is written last, once its hash is known to be new: the references to it wait for the commit.
CREATE TABLE reconciliation_statements (
  file_id text NOT NULL REFERENCES reconciliation_files (id) DEFERRABLE INITIALLY DEFERRED,
  position integer NOT NULL CHECK (position >= 0),
  line integer NOT NULL CHECK (line >= 0),
  statement_ref text NOT NULL,
  account text NOT NULL,
  currency text CHECK (currency ~ '^[A-Z]{3}$'),
  opening_balance_minor bigint,
  opening_currency text CHECK (opening_currency ~ '^[A-Z]{3}$'),
  opening_date date,
  closing_balance_minor bigint,
  closing_currency text CHECK (closing_currency ~ '^[A-Z]{3}$'),
  closing_date date,
  entry_count integer NOT NULL CHECK (entry_count >= 0),
  booked_sum_minor bigint NOT NULL,
  balance_check text NOT NULL CHECK (balance_check IN ('adds_up', 'mismatch', 'not_checkable')),
  expected_closing_minor bigint,
  balance_check_reason text,
  CHECK ((balance_check = 'not_checkable') = (expected_closing_minor IS NULL)),
  CHECK ((balance_check = 'not_checkable') = (balance_check_reason IS NOT NULL)),
  raw jsonb NOT NULL DEFAULT '{}'::jsonb,
  PRIMARY KEY (file_id, position)
);
CREATE INDEX reconciliation_statements_account ON reconciliation_statements (account, closing_date);
CREATE INDEX reconciliation_statements_mismatch ON reconciliation_statements (file_id)
  WHERE balance_check = 'mismatch';

-- A PSP report's line or a bank statement's entry. amount_minor is signed, in `currency`: what the
-- line or entry moved (a PSP line's net). occurrence tells apart rows of one file that share an
-- external id (a duplicated line), so a matcher still sees each one.
CREATE TABLE reconciliation_records (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  file_id text NOT NULL REFERENCES reconciliation_files (id) DEFERRABLE INITIALLY DEFERRED,
  source text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('psp_line', 'bank_entry')),
  line integer NOT NULL CHECK (line >= 0),
  external_id text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 1000),
  occurrence integer NOT NULL CHECK (occurrence >= 1),
  content_sha256 text NOT NULL CHECK (content_sha256 ~ '^[0-9a-f]+$' AND length(content_sha256) = 64),
  -- A version whose content differs from the first one known: a conflicting_external_record.
  conflicts_with_record_id bigint REFERENCES reconciliation_records (id),
  type text NOT NULL,
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  amount_minor bigint NOT NULL,
  gross_minor bigint,
  gross_currency text CHECK (gross_currency ~ '^[A-Z]{3}$'),
  fee_minor bigint,
  booking_date date,
  value_date date,
  psp_reference text,
  merchant_reference text,
  batch_key text,
  remittance_text text,
  counterparty_name text,
  counterparty_account text,
  status text,
  reversal boolean NOT NULL DEFAULT false,
  statement_position integer,
  refs jsonb NOT NULL DEFAULT '{}'::jsonb,
  raw jsonb NOT NULL DEFAULT '{}'::jsonb,
  CHECK ((kind = 'bank_entry') = (statement_position IS NOT NULL)),
  FOREIGN KEY (file_id, statement_position) REFERENCES reconciliation_statements (file_id, position)
    DEFERRABLE INITIALLY DEFERRED,
  UNIQUE (source, external_id, occurrence, content_sha256)
);
CREATE UNIQUE INDEX reconciliation_records_first_version ON reconciliation_records (source, external_id, occurrence)
  WHERE conflicts_with_record_id IS NULL;
CREATE INDEX reconciliation_records_file ON reconciliation_records (file_id, line);
CREATE INDEX reconciliation_records_psp_reference ON reconciliation_records (psp_reference) WHERE psp_reference IS NOT NULL;
CREATE INDEX reconciliation_records_merchant_reference ON reconciliation_records (merchant_reference)
  WHERE merchant_reference IS NOT NULL;
CREATE INDEX reconciliation_records_batch ON reconciliation_records (source, batch_key) WHERE batch_key IS NOT NULL;
CREATE INDEX reconciliation_records_amount ON reconciliation_records (currency, amount_minor, value_date);
CREATE INDEX reconciliation_records_conflicts ON reconciliation_records (conflicts_with_record_id)
  WHERE conflicts_with_record_id IS NOT NULL;
