-- Up Migration
-- Purpose: reconciliation's matching (issue 18): what Penny booked that a PSP report should show
-- (items, collected from the payment tables at each run), the runs, which records and items each
-- run reconciled, and the breaks it found, with their lifecycle (open, then resolved by a repair
-- entry or by a later match, or ignored with a reason). Operator data: no merchant_id leads these
-- tables (decisions.md, "Growing past one database"); an item or break names its merchant.
-- Checks avoid counted repetitions (slow in PostgreSQL's regular expressions; see 0017).
SET LOCAL lock_timeout = '60s';

-- The n-th business day (Monday to Friday, no holidays) after a day (decisions.md, "Time"): a
-- weekend day counts from the Friday before it. Closed form, so a run over a million items
-- calls no loop.
CREATE FUNCTION penny_business_days_after(day date, days integer) RETURNS date
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT friday_or_weekday + days + 2 * ((extract(isodow FROM friday_or_weekday)::integer - 1 + days) / 5)
  FROM (SELECT CASE WHEN extract(isodow FROM day) > 5 THEN day - (extract(isodow FROM day)::integer - 5)
                    ELSE day END AS friday_or_weekday) AS adjusted
$$;

CREATE TABLE reconciliation_runs (
  id text PRIMARY KEY CHECK (id ~ '^rrun_[A-Za-z0-9]+$' AND length(id) BETWEEN 14 AND 70),
  as_of date NOT NULL,
  started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at timestamptz,
  -- The imported files whose records were open when the run began: its inputs.
  input_file_ids text[] NOT NULL DEFAULT '{}',
  -- The day of a scheduled daily run (PENNY_RECON_SCHEDULE): one per day, whichever process makes it.
  scheduled_for date UNIQUE,
  counts jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(counts) = 'object')
);
CREATE INDEX reconciliation_runs_started ON reconciliation_runs (started_at DESC, id DESC);

-- What Penny booked that a PSP's report should show, signed as the PSP's line would be (a capture
-- positive, a refund, chargeback or payout negative), with the PSP fee Penny expected.
CREATE TABLE reconciliation_items (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('capture', 'refund', 'chargeback', 'chargeback_reversed', 'payout')),
  reference text NOT NULL,
  -- A capture made at authorization: the attempt's id (pa_…), which is what the PSP echoes.
  alternate_reference text,
  merchant_id text NOT NULL,
  -- Whose ledger accounts the movement touched: the merchant, or its connected account (payouts).
  owner_id text NOT NULL,
  connector text NOT NULL,
  psp_reference text,
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  gross_minor bigint NOT NULL,
  fee_minor bigint NOT NULL CHECK (fee_minor >= 0),
  day date NOT NULL,
  -- The last day it is pending: the 3rd business day after its day (decisions.md, "Time"),
  -- penny_business_days_after(day, 3), written once when the item is collected.
  due_by date NOT NULL CHECK (due_by > day),
  collected_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  UNIQUE (kind, reference)
);
CREATE INDEX reconciliation_items_reference ON reconciliation_items (reference);
CREATE INDEX reconciliation_items_alternate ON reconciliation_items (alternate_reference) WHERE alternate_reference IS NOT NULL;
CREATE INDEX reconciliation_items_psp_reference ON reconciliation_items (psp_reference) WHERE psp_reference IS NOT NULL;

-- A record a run dealt with for good: matched to an item (ledger↔PSP), to a bank entry or a
-- payout (PSP↔bank), taken as a batch-level line, or a duplicate of a matched one. A record not
-- here is open: a later run looks at it again.
-- The two match tables carry no foreign keys: a run writes a row per line (a million for a
-- million-line report), and checking each reference row by row took three quarters of the run
-- (measured: 10 of 14 s for 200,000 lines). The run writes them in the transaction that read
-- the records, items and run they name, and none of those is ever deleted (the triggers below).
CREATE TABLE reconciliation_record_matches (
  record_id bigint PRIMARY KEY,
  run_id text NOT NULL,
  -- 'repaired': a bank entry or payout whose break an approved repair answered; it pairs with
  -- nothing later (a late counterpart is a break of its own, whose repair undoes the first).
  pass text NOT NULL CHECK (pass IN ('reference', 'batch_line', 'remittance', 'fallback', 'duplicate', 'repaired')),
  item_id bigint,
  counterpart_record_id bigint
);
CREATE INDEX reconciliation_record_matches_item ON reconciliation_record_matches (item_id) WHERE item_id IS NOT NULL;
CREATE INDEX reconciliation_record_matches_counterpart ON reconciliation_record_matches (counterpart_record_id)
  WHERE counterpart_record_id IS NOT NULL;

-- An item a run matched (or found booked twice): it is reconciled and never missing.
CREATE TABLE reconciliation_item_matches (
  item_id bigint PRIMARY KEY,
  run_id text NOT NULL,
  record_id bigint NOT NULL
);

-- What matches name is kept: imported records, collected items and runs are never deleted, and
-- a match, once written, stands.
CREATE FUNCTION reconciliation_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% rows are kept: reconciliation history is never deleted or rewritten', TG_TABLE_NAME;
END $$;
CREATE TRIGGER reconciliation_records_kept BEFORE DELETE ON reconciliation_records
  FOR EACH STATEMENT EXECUTE FUNCTION reconciliation_kept();
CREATE TRIGGER reconciliation_items_kept BEFORE DELETE ON reconciliation_items
  FOR EACH STATEMENT EXECUTE FUNCTION reconciliation_kept();
CREATE TRIGGER reconciliation_runs_kept BEFORE DELETE ON reconciliation_runs
  FOR EACH STATEMENT EXECUTE FUNCTION reconciliation_kept();
CREATE TRIGGER reconciliation_record_matches_kept BEFORE UPDATE OR DELETE ON reconciliation_record_matches
  FOR EACH STATEMENT EXECUTE FUNCTION reconciliation_kept();
CREATE TRIGGER reconciliation_item_matches_kept BEFORE UPDATE OR DELETE ON reconciliation_item_matches
  FOR EACH STATEMENT EXECUTE FUNCTION reconciliation_kept();

-- A difference, reported once: the fingerprint names what it is about (its type and the records,
-- items, batch or statement), so a run that finds it again adds nothing, and a break resolved or
-- ignored never opens again. difference = actual − expected (decisions.md).
CREATE TABLE reconciliation_breaks (
  id text PRIMARY KEY CHECK (id ~ '^rbrk_[A-Za-z0-9]+$' AND length(id) BETWEEN 14 AND 70),
  fingerprint text NOT NULL UNIQUE CHECK (length(fingerprint) BETWEEN 1 AND 2000),
  run_id text NOT NULL REFERENCES reconciliation_runs (id),
  type text NOT NULL CHECK (type IN ('missing_in_ledger', 'missing_in_psp_report', 'missing_in_bank',
    'unexpected_bank_entry', 'amount_mismatch', 'fee_mismatch', 'currency_mismatch', 'payout_total_mismatch',
    'statement_balance_mismatch', 'duplicate_in_ledger', 'duplicate_external', 'conflicting_external_record',
    'late_settlement', 'ambiguous_match')),
  leg text NOT NULL CHECK (leg IN ('ledger_psp', 'psp_bank')),
  status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved', 'ignored')),
  external_ref text,
  internal_ref text,
  currency text CHECK (currency ~ '^[A-Z]{3}$'),
  expected_minor bigint NOT NULL,
  actual_minor bigint NOT NULL,
  difference_minor bigint NOT NULL,
  CHECK (difference_minor = actual_minor - expected_minor),
  -- The merchant whose money it concerns (its event goes to that merchant), and whose accounts a
  -- repair posts to; null for the operator's own (a bank entry, a batch, a statement).
  merchant_id text,
  owner_id text,
  record_id bigint REFERENCES reconciliation_records (id),
  item_id bigint REFERENCES reconciliation_items (id),
  detail text NOT NULL CHECK (length(detail) BETWEEN 1 AND 2000),
  opened_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  resolution text CHECK (resolution IN ('repaired', 'matched')),
  repair_entry_id text REFERENCES ledger_entries (id),
  resolved_at timestamptz,
  resolved_by_run_id text REFERENCES reconciliation_runs (id),
  ignored_reason text CHECK (length(ignored_reason) BETWEEN 1 AND 1000),
  ignored_at timestamptz,
  CHECK ((status = 'resolved') = (resolution IS NOT NULL AND resolved_at IS NOT NULL)),
  CHECK ((resolution = 'repaired') = (repair_entry_id IS NOT NULL)),
  CHECK ((resolution = 'matched') = (resolved_by_run_id IS NOT NULL)),
  CHECK ((status = 'ignored') = (ignored_reason IS NOT NULL AND ignored_at IS NOT NULL))
);
CREATE INDEX reconciliation_breaks_run ON reconciliation_breaks (run_id, opened_at, id);
CREATE INDEX reconciliation_breaks_status ON reconciliation_breaks (status, opened_at, id);
CREATE INDEX reconciliation_breaks_open_item ON reconciliation_breaks (item_id) WHERE status = 'open' AND item_id IS NOT NULL;
CREATE INDEX reconciliation_breaks_open_record ON reconciliation_breaks (record_id)
  WHERE status = 'open' AND record_id IS NOT NULL;
CREATE UNIQUE INDEX reconciliation_breaks_repair ON reconciliation_breaks (repair_entry_id) WHERE repair_entry_id IS NOT NULL;

-- A break's lifecycle runs forward only: an open break is resolved or ignored once, and then
-- stays as it is; its facts never change.
CREATE FUNCTION reconciliation_breaks_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status <> 'open' THEN
    RAISE EXCEPTION 'reconciliation break % is % and cannot change', OLD.id, OLD.status;
  END IF;
  IF (NEW.fingerprint, NEW.run_id, NEW.type, NEW.leg, NEW.external_ref, NEW.internal_ref, NEW.currency,
      NEW.expected_minor, NEW.actual_minor, NEW.record_id, NEW.item_id, NEW.opened_at)
     IS DISTINCT FROM (OLD.fingerprint, OLD.run_id, OLD.type, OLD.leg, OLD.external_ref, OLD.internal_ref,
      OLD.currency, OLD.expected_minor, OLD.actual_minor, OLD.record_id, OLD.item_id, OLD.opened_at) THEN
    RAISE EXCEPTION 'reconciliation break % keeps its facts', OLD.id;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER reconciliation_breaks_forward_only BEFORE UPDATE ON reconciliation_breaks
  FOR EACH ROW EXECUTE FUNCTION reconciliation_breaks_forward_only();
CREATE FUNCTION reconciliation_breaks_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'reconciliation break % is kept: it is resolved or ignored, never deleted', OLD.id;
END $$;
CREATE TRIGGER reconciliation_breaks_no_delete BEFORE DELETE ON reconciliation_breaks
  FOR EACH ROW EXECUTE FUNCTION reconciliation_breaks_kept();
