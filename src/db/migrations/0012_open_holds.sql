-- Up Migration
-- Purpose: the hold-expiry worker reads only holds that are still open. It used to scan every
-- hold whose expiry had passed, resolved ones included (entries are immutable, so no partial index
-- can drop a hold once it is resolved), a cost that grew with every authorization ever held.
-- ledger_open_holds lists open holds that have an expiry; ledger_apply_postings adds a hold when
-- its pending postings are written and removes it when a resolution releases them. It is an index
-- for the worker, not a record: a row missing from it only delays an automatic expiry, since a
-- post or void still refuses a hold whose time has passed.
--
-- Postings are locked against writers until this migration commits: a hold written meanwhile by
-- a process still running the old function would be missed by the backfill and never listed.
LOCK TABLE ledger_postings IN SHARE MODE;

CREATE TABLE ledger_open_holds (
  entry_id text PRIMARY KEY,
  expires_at timestamptz NOT NULL
);
CREATE INDEX ledger_open_holds_due ON ledger_open_holds (expires_at);

INSERT INTO ledger_open_holds (entry_id, expires_at)
SELECT h.id, h.expires_at FROM ledger_entries h
WHERE h.kind = 'hold' AND h.expires_at IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM ledger_entries r WHERE r.hold_entry_id = h.id);

-- As in 0001, with the two steps that keep ledger_open_holds (and expires_at read with the entry).
CREATE OR REPLACE FUNCTION ledger_apply_postings() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  summary record;
  violation record;
BEGIN
  -- LATERAL ... LIMIT 1 keeps these index lookups per new row: the planner cannot estimate a
  -- transition table and would otherwise hash-join the whole entries and accounts tables.
  SELECT bool_or(e.id IS NULL OR e.created_transaction_id <> pg_current_xact_id()) AS foreign_entry,
         (array_agg(p.account_id) FILTER (WHERE a.id IS NULL))[1] AS missing_account,
         (array_agg(p.account_id) FILTER (WHERE a.currency <> p.currency))[1] AS wrong_currency,
         (array_agg(p.entry_id) FILTER (WHERE p.effective_at <> e.effective_at OR NOT (
            (e.kind IN ('standard', 'reversal') AND p.phase = 'posted')
            OR (e.kind = 'hold' AND p.phase = 'pending')
            OR (e.kind = 'hold_post' AND p.phase IN ('posted', 'release'))
            OR (e.kind IN ('hold_void', 'hold_expiry') AND p.phase = 'release'))))[1] AS misfit_entry,
         bool_or(p.must_not_overdraw OR a.balance_limit IS NOT NULL) AS guarded,
         bool_or(p.phase = 'pending' AND e.expires_at IS NOT NULL) AS opens_expiring_hold,
         bool_or(p.phase = 'release') AS releases_hold
    INTO summary
  FROM new_postings p
  LEFT JOIN LATERAL (
    SELECT id, created_transaction_id, effective_at, kind, expires_at FROM ledger_entries
    WHERE id = p.entry_id LIMIT 1
  ) e ON true
  LEFT JOIN LATERAL (
    SELECT id, currency, balance_limit FROM ledger_accounts WHERE id = p.account_id LIMIT 1
  ) a ON true;

  IF summary.foreign_entry THEN
    RAISE EXCEPTION USING ERRCODE = 'PN004', MESSAGE = 'entry_postings_closed',
      DETAIL = 'postings can only be added in the transaction that creates their entry';
  END IF;
  IF summary.missing_account IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'PN010', MESSAGE = 'account_not_found',
      DETAIL = summary.missing_account;
  END IF;
  IF summary.wrong_currency IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'PN009', MESSAGE = 'currency_mismatch',
      DETAIL = summary.wrong_currency;
  END IF;
  IF summary.misfit_entry IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'PN008', MESSAGE = 'invalid_entry_phases',
      DETAIL = format('entry %s: postings must share the entry''s effective_at and fit its kind',
                      summary.misfit_entry);
  END IF;

  -- Invariant 1, per statement: the postings a statement adds to an entry balance on their own,
  -- per currency and phase. (A single posting never balances, since amounts are positive.)
  SELECT entry_id INTO violation FROM new_postings
  GROUP BY entry_id, currency, phase
  HAVING sum(CASE direction WHEN 'debit' THEN amount_minor ELSE -amount_minor END) <> 0
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'PN001', MESSAGE = 'unbalanced_entry',
      DETAIL = format('entry %s: debits and credits differ in some currency', violation.entry_id);
  END IF;

  INSERT INTO ledger_balance_deltas
    (account_id, debits_posted, credits_posted, debits_pending, credits_pending)
  SELECT account_id,
    coalesce(sum(amount_minor) FILTER (WHERE direction = 'debit' AND phase = 'posted'), 0),
    coalesce(sum(amount_minor) FILTER (WHERE direction = 'credit' AND phase = 'posted'), 0),
    coalesce(sum(amount_minor) FILTER (WHERE direction = 'debit' AND phase = 'pending'), 0)
      - coalesce(sum(amount_minor) FILTER (WHERE direction = 'debit' AND phase = 'release'), 0),
    coalesce(sum(amount_minor) FILTER (WHERE direction = 'credit' AND phase = 'pending'), 0)
      - coalesce(sum(amount_minor) FILTER (WHERE direction = 'credit' AND phase = 'release'), 0)
  FROM new_postings GROUP BY account_id;

  INSERT INTO ledger_unsealed_entries (entry_id)
    SELECT DISTINCT entry_id FROM new_postings
    ON CONFLICT DO NOTHING;

  -- The open holds with an expiry, for the expiry worker (only statements that write a hold or
  -- a resolution do anything here; a transfer skips both).
  IF summary.opens_expiring_hold THEN
    INSERT INTO ledger_open_holds (entry_id, expires_at)
      SELECT DISTINCT e.id, e.expires_at FROM new_postings p JOIN ledger_entries e ON e.id = p.entry_id
      WHERE p.phase = 'pending' AND e.expires_at IS NOT NULL
      ON CONFLICT DO NOTHING;
  END IF;
  IF summary.releases_hold THEN
    DELETE FROM ledger_open_holds WHERE entry_id IN (
      SELECT e.hold_entry_id FROM new_postings p JOIN ledger_entries e ON e.id = p.entry_id
      WHERE p.phase = 'release');
  END IF;

  IF NOT summary.guarded THEN
    RETURN NULL;
  END IF;

  PERFORM 1 FROM ledger_account_balances
  WHERE account_id IN (
    SELECT p.account_id FROM new_postings p JOIN ledger_accounts a ON a.id = p.account_id
    WHERE p.must_not_overdraw OR a.balance_limit IS NOT NULL)
  ORDER BY account_id FOR NO KEY UPDATE;

  -- Read after the lock: in READ COMMITTED this statement sees every writer that held it before.
  SELECT g.account_id INTO violation
  FROM (
    SELECT p.account_id, bool_or(p.must_not_overdraw) AS must_not_overdraw
    FROM new_postings p GROUP BY p.account_id
  ) g
  JOIN ledger_accounts a ON a.id = g.account_id
  JOIN ledger_current_balances t ON t.account_id = g.account_id
  WHERE (a.balance_limit = 'debits_must_not_exceed_credits'
         AND t.debits_posted + t.debits_pending > t.credits_posted)
     OR (a.balance_limit = 'credits_must_not_exceed_debits'
         AND t.credits_posted + t.credits_pending > t.debits_posted)
     OR (g.must_not_overdraw AND a.type IN ('asset', 'expense')
         AND t.credits_posted + t.credits_pending > t.debits_posted)
     OR (g.must_not_overdraw AND a.type IN ('liability', 'equity', 'revenue')
         AND t.debits_posted + t.debits_pending > t.credits_posted)
  ORDER BY g.account_id LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'PN002', MESSAGE = 'insufficient_funds',
      DETAIL = violation.account_id;
  END IF;
  RETURN NULL;
END $$;
