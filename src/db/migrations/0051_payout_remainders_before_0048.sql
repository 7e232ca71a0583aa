-- Up Migration
-- Purpose: an automatic payout made before the payout was linked to exactly what it pays (the change
-- that came with migration 0048) was linked to every available balance transaction not paid out yet,
-- its own among them, but paid the balance the scheduler had read, rounded down to the payout step.
-- What it is linked to nets to r, not 0: a remainder below the step (HUF, TWD), or money made
-- available between the scheduler's read and the payout. r stayed in the available balance with no
-- unlinked transaction carrying it, so no automatic payout ever paid it. Each such payout gets what a
-- payout now records for what it does not pay: a payout_minimum_balance_hold (−r, linked to it) and a
-- payout_minimum_balance_release (+r, available, left for the next automatic payout), sourced by the
-- payout, with no ledger entry: together they leave the balance, and the ledger, as they are
-- (docs/accounting.md). A payout made since is linked to transactions netting to exactly 0 and gets
-- nothing; the unique key on (merchant, source, type, category) makes a rerun write nothing twice.
WITH linked AS (
  SELECT merchant_id, payout_id, sum(net_minor)::bigint AS net_minor
  FROM balance_transactions
  WHERE payout_id IS NOT NULL
  GROUP BY merchant_id, payout_id
), remainders AS (
  SELECT p.merchant_id, p.account_id, p.id AS payout_id, p.currency, linked.net_minor
  FROM payouts p
  JOIN linked ON linked.merchant_id = p.merchant_id AND linked.payout_id = p.id
  WHERE p.automatic AND linked.net_minor <> 0
)
INSERT INTO balance_transactions (merchant_id, account_id, id, type, reporting_category, source_id, currency,
  amount_minor, fee_minor, net_minor, fee_details, status, available_on, description, payout_id)
SELECT merchant_id, account_id, 'txn_' || substr(md5('penny:payout_remainder:hold:' || payout_id), 1, 24),
  'payout_minimum_balance_hold', 'payout_minimum_balance_hold', payout_id, currency, -net_minor, 0, -net_minor,
  '[]'::jsonb, 'available', now(), 'Payout remainder held for the next payout', payout_id
FROM remainders
UNION ALL
SELECT merchant_id, account_id, 'txn_' || substr(md5('penny:payout_remainder:release:' || payout_id), 1, 24),
  'payout_minimum_balance_release', 'payout_minimum_balance_release', payout_id, currency, net_minor, 0, net_minor,
  '[]'::jsonb, 'available', now(), 'Payout remainder held for the next payout', NULL
FROM remainders
ON CONFLICT DO NOTHING;
