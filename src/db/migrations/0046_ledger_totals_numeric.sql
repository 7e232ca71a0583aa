-- Up Migration
-- Purpose: an account's totals (its debits and credits, posted and pending, since it was opened)
-- can no longer overflow, so balance compaction can no longer wedge on one account.
--
-- Before: the stored totals of ledger_account_balances were BIGINT. Postings are at most 2^53-1
-- each, so about 1,025 maximal postings on one side of one account (22 requests of 50) took its
-- total past 2^63-1; the view ledger_current_balances still read it exactly (it sums in NUMERIC),
-- but ledger_compact_balances failed with "bigint out of range" on that oldest batch, every run,
-- and nothing in the whole ledger was compacted any more. A single statement (a batch of entries)
-- could likewise overflow its own BIGINT change row, and failed with a raw database error.
--
-- Why a wider type rather than refusing such a posting: the refusal would have to read the
-- account's total under its lock, and only guarded accounts are locked when posted (a hot account
-- is deliberately not a queue); without that lock, two concurrent postings could each pass the
-- check and together overflow, wedging compaction as before. NUMERIC has no such edge (131,072
-- digits), costs the same reads (the view already summed in NUMERIC), and keeps every total exact;
-- the values stay whole numbers (checked below, and by the driver, which reads NUMERIC as bigint).
--
-- Upgrades are stop-then-start; as a belt, the tables are taken exclusively first (as 0016 does),
-- so no writer or compactor runs while the types change, and we wait at most a minute. The view
-- depends on the columns, so it is dropped and recreated unchanged.
SET LOCAL lock_timeout = '60s';
LOCK TABLE ledger_account_balances, ledger_balance_changes IN ACCESS EXCLUSIVE MODE;

DROP VIEW ledger_current_balances;

ALTER TABLE ledger_account_balances
  ALTER COLUMN debits_posted TYPE numeric,
  ALTER COLUMN credits_posted TYPE numeric,
  ALTER COLUMN debits_pending TYPE numeric,
  ALTER COLUMN credits_pending TYPE numeric,
  ADD CONSTRAINT ledger_account_balances_whole CHECK (scale(debits_posted) = 0 AND scale(credits_posted) = 0
    AND scale(debits_pending) = 0 AND scale(credits_pending) = 0);

-- One statement's sums per account (ledger_apply_postings writes them as NUMERIC sums already).
ALTER TABLE ledger_balance_changes
  ALTER COLUMN debits_posted TYPE numeric[],
  ALTER COLUMN credits_posted TYPE numeric[],
  ALTER COLUMN debits_pending TYPE numeric[],
  ALTER COLUMN credits_pending TYPE numeric[];

-- As in 0016.
CREATE VIEW ledger_current_balances AS
SELECT b.account_id,
  b.debits_posted + coalesce(d.debits_posted, 0) AS debits_posted,
  b.credits_posted + coalesce(d.credits_posted, 0) AS credits_posted,
  b.debits_pending + coalesce(d.debits_pending, 0) AS debits_pending,
  b.credits_pending + coalesce(d.credits_pending, 0) AS credits_pending
FROM ledger_account_balances b
LEFT JOIN LATERAL (
  SELECT sum(u.debits_posted) AS debits_posted, sum(u.credits_posted) AS credits_posted,
         sum(u.debits_pending) AS debits_pending, sum(u.credits_pending) AS credits_pending
  FROM ledger_balance_changes c,
    unnest(c.account_ids, c.debits_posted, c.credits_posted, c.debits_pending, c.credits_pending)
      AS u(account_id, debits_posted, credits_posted, debits_pending, credits_pending)
  WHERE c.account_ids @> ARRAY[b.account_id] AND u.account_id = b.account_id
) d ON true;
