-- Up Migration
-- Purpose: settlement from a PSP's Settlement details report that reaches Penny as a file (Adyen's,
-- downloaded on its REPORT_AVAILABLE notification or imported with `penny recon import`) rather
-- than pulled by day (the sandbox's, settlement_pulls). The settlement-pull worker reads each
-- imported report once: its Settled lines make their charges available, its MerchantPayout is
-- posted to the operator's bank; this row says the file was read (the postings themselves are
-- idempotent by their references, so a file read twice moves nothing twice). Files imported before
-- this migration have no row: the worker reads them too, which is the settlement they never had.
CREATE TABLE settlement_report_files (
  file_id text PRIMARY KEY REFERENCES reconciliation_files (id),
  settled_count integer NOT NULL CONSTRAINT settlement_report_files_settled_count_check CHECK (settled_count >= 0),
  payout_count integer NOT NULL CONSTRAINT settlement_report_files_payout_count_check CHECK (payout_count >= 0),
  settled_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
