-- Up Migration
-- Purpose: a transfer writes less, so the ledger keeps up with plain inserts (bench:ledger). Three
-- costs paid per row become costs paid per statement:
--   1. Balance deltas: each posting statement appends ONE row to ledger_balance_changes (the
--      accounts it touches and each one's four sums, as parallel arrays) instead of one
--      ledger_balance_deltas row, with two index entries, per account. A batch of 100 transfers
--      wrote about 200 rows and 400 index entries; it now writes one row.
--   2. The seal queue: ONE ledger_unsealed_statements row per posting statement (the entry ids)
--      instead of one ledger_unsealed_entries row per entry.
--   3. Presence: an entry must have its postings by the end of the statement that inserts it,
--      checked by one statement-level trigger over the statement's new entries, instead of a
--      deferred per-row constraint trigger queued for every entry and run at commit. Penny always
--      writes an entry and its postings in one statement (ledger-store insertEntries); the rule is
--      stricter than before (an entry inserted alone is refused at once, not at commit). The rules
--      of hold resolutions and reversals move to the posting trigger, which runs them after every
--      statement that adds postings to such an entry (so a later statement of the same
--      transaction cannot add postings that break them).
-- A balance is read through a GIN index on the change rows' accounts (one look-up per account).
--
-- Upgrades are stop-then-start; as a belt, the migration first takes every table it changes
-- exclusively, so no old writer, compactor or sealer runs while deltas and queue rows move (an
-- old compactor holding deltas is waited for, never skipped), and waits at most a minute.
SET LOCAL lock_timeout = '60s';
LOCK TABLE ledger_entries, ledger_postings, ledger_balance_deltas, ledger_unsealed_entries,
  ledger_account_balances IN ACCESS EXCLUSIVE MODE;

-- 1. Balance changes, one row per posting statement.
CREATE TABLE ledger_balance_changes (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_ids text[] NOT NULL,
  debits_posted bigint[] NOT NULL,
  credits_posted bigint[] NOT NULL,
  debits_pending bigint[] NOT NULL,
  credits_pending bigint[] NOT NULL,
  CHECK (cardinality(account_ids) >= 1
         AND cardinality(debits_posted) = cardinality(account_ids)
         AND cardinality(credits_posted) = cardinality(account_ids)
         AND cardinality(debits_pending) = cardinality(account_ids)
         AND cardinality(credits_pending) = cardinality(account_ids))
);
-- A balance read finds the change rows of one account through this index.
CREATE INDEX ledger_balance_changes_accounts ON ledger_balance_changes USING gin (account_ids);
CREATE TRIGGER ledger_balance_changes_guard BEFORE INSERT OR UPDATE OR DELETE ON ledger_balance_changes
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_balance_write();
CREATE TRIGGER ledger_balance_changes_no_truncate BEFORE TRUNCATE ON ledger_balance_changes
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_balance_write();

-- Fold every old delta into the balance rows (the lock above means none is skipped), check that
-- none is left, then retire the old table and its readers.
SELECT ledger_compact_balances(2147483647);
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM ledger_balance_deltas) THEN
    RAISE EXCEPTION 'ledger_balance_deltas still holds rows after folding; refusing to drop them';
  END IF;
END $$;
DROP VIEW ledger_current_balances;
DROP FUNCTION ledger_compact_balances(integer);
DROP TABLE ledger_balance_deltas;

-- The balance of an account now: its row plus its sums in the unfolded change rows, found per
-- account through the GIN index (LATERAL: one index look-up per account read, not a pass over
-- every unfolded row).
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

-- Folds the oldest change rows into the balance rows: up to `changes_max` rows, and only as many
-- as name at most `account_changes_max` accounts in all (but always the oldest row, whatever its
-- size), so a round's work and the balance rows it locks stay bounded. Locks
-- the accounts in id order (as guarded writers do), so the two never deadlock. Returns the rows
-- folded.
CREATE FUNCTION ledger_compact_balances(changes_max integer, account_changes_max integer DEFAULT 20000)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  taken bigint[];
  accounts text[];
  debits_posted_sums numeric[];
  credits_posted_sums numeric[];
  debits_pending_sums numeric[];
  credits_pending_sums numeric[];
BEGIN
  SELECT array_agg(id) INTO taken FROM (
    SELECT id, row_number() OVER (ORDER BY id) AS position,
           sum(cardinality(account_ids)) OVER (ORDER BY id) AS through
    FROM (
      SELECT id, account_ids FROM ledger_balance_changes ORDER BY id LIMIT changes_max
      FOR UPDATE SKIP LOCKED
    ) oldest
  ) counted
  WHERE position = 1 OR through <= account_changes_max;
  IF taken IS NULL THEN
    RETURN 0;
  END IF;
  SELECT array_agg(account_id ORDER BY account_id), array_agg(dp ORDER BY account_id),
         array_agg(cp ORDER BY account_id), array_agg(dq ORDER BY account_id),
         array_agg(cq ORDER BY account_id)
    INTO accounts, debits_posted_sums, credits_posted_sums, debits_pending_sums, credits_pending_sums
  FROM (
    SELECT u.account_id, sum(u.debits_posted) AS dp, sum(u.credits_posted) AS cp,
           sum(u.debits_pending) AS dq, sum(u.credits_pending) AS cq
    FROM ledger_balance_changes c,
      unnest(c.account_ids, c.debits_posted, c.credits_posted, c.debits_pending, c.credits_pending)
        AS u(account_id, debits_posted, credits_posted, debits_pending, credits_pending)
    WHERE c.id = ANY(taken)
    GROUP BY u.account_id
  ) per_account;
  PERFORM set_config('penny.ledger_balance_writer', 'on', true);
  PERFORM 1 FROM ledger_account_balances WHERE account_id = ANY(accounts)
    ORDER BY account_id FOR NO KEY UPDATE;
  UPDATE ledger_account_balances b SET
    debits_posted = b.debits_posted + s.debits_posted,
    credits_posted = b.credits_posted + s.credits_posted,
    debits_pending = b.debits_pending + s.debits_pending,
    credits_pending = b.credits_pending + s.credits_pending
  FROM unnest(accounts, debits_posted_sums, credits_posted_sums, debits_pending_sums, credits_pending_sums)
    AS s(account_id, debits_posted, credits_posted, debits_pending, credits_pending)
  WHERE b.account_id = s.account_id;
  DELETE FROM ledger_balance_changes WHERE id = ANY(taken);
  PERFORM set_config('penny.ledger_balance_writer', 'off', true);
  RETURN cardinality(taken);
END $$;

-- 2. The seal queue, one row per posting statement; old rows move over in chunks of 1,000 entries.
CREATE TABLE ledger_unsealed_statements (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  entry_ids text[] NOT NULL CHECK (cardinality(entry_ids) >= 1)
);
INSERT INTO ledger_unsealed_statements (entry_ids)
SELECT array_agg(entry_id ORDER BY sequence) FROM (
  SELECT u.entry_id, e.sequence, (row_number() OVER (ORDER BY e.sequence) - 1) / 1000 AS chunk
  FROM ledger_unsealed_entries u JOIN ledger_entries e ON e.id = u.entry_id
) waiting
GROUP BY chunk ORDER BY chunk;
DROP TABLE ledger_unsealed_entries;

-- 3. Presence, per statement: every entry a statement inserts has postings when it ends (the
-- postings of the same statement included: AFTER triggers run once the whole statement is done).
-- The rules of hold resolutions and reversals run in ledger_apply_postings, after every statement
-- that adds postings to such an entry.
DROP TRIGGER ledger_entries_balanced ON ledger_entries;
DROP FUNCTION ledger_check_entry();

CREATE FUNCTION ledger_check_new_entries() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  bare text;
BEGIN
  -- LATERAL ... LIMIT 1 keeps the look-up per entry (a NOT EXISTS the planner turns into a
  -- hashed subplan would read every posting).
  SELECT n.id INTO bare FROM new_entries n
  LEFT JOIN LATERAL (
    SELECT true AS found FROM ledger_postings p WHERE p.entry_id = n.id LIMIT 1
  ) posting ON true
  WHERE posting.found IS NULL
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'PN001', MESSAGE = 'unbalanced_entry',
      DETAIL = format('entry %s has no postings; an entry needs at least two, written in the '
                      'statement that inserts it', bare);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER ledger_entries_complete AFTER INSERT ON ledger_entries
  REFERENCING NEW TABLE AS new_entries
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_check_new_entries();

-- The posting trigger of 0012, writing one change row and one queue row per statement, and
-- checking hold resolutions and reversals after every statement that adds postings to one.
CREATE OR REPLACE FUNCTION ledger_apply_postings() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  summary record;
  violation record;
  entry ledger_entries;
BEGIN
  -- Every check that reads the statement's postings, in one query (each query a trigger runs
  -- has a fixed cost, which a single transfer pays in full).
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
         bool_or(p.phase = 'release') AS releases_hold,
         bool_or(e.kind IN ('hold_post', 'hold_void', 'hold_expiry', 'reversal')) AS resolves_or_reverses,
         count(*) AS posting_count,
         -- Invariant 1, per statement: the postings a statement adds to an entry balance on their
         -- own, per currency and phase. (A single posting never balances: amounts are positive.)
         (SELECT entry_id FROM new_postings
          GROUP BY entry_id, currency, phase
          HAVING sum(CASE direction WHEN 'debit' THEN amount_minor ELSE -amount_minor END) <> 0
          LIMIT 1) AS unbalanced_entry
    INTO summary
  FROM new_postings p
  LEFT JOIN LATERAL (
    SELECT id, created_transaction_id, effective_at, kind, expires_at FROM ledger_entries
    WHERE id = p.entry_id LIMIT 1
  ) e ON true
  LEFT JOIN LATERAL (
    SELECT id, currency, balance_limit FROM ledger_accounts WHERE id = p.account_id LIMIT 1
  ) a ON true;

  -- A statement whose entries were all replays (ON CONFLICT skipped them) inserts no postings.
  IF summary.posting_count = 0 THEN
    RETURN NULL;
  END IF;
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

  IF summary.unbalanced_entry IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'PN001', MESSAGE = 'unbalanced_entry',
      DETAIL = format('entry %s: debits and credits differ in some currency', summary.unbalanced_entry);
  END IF;

  -- Hold resolutions and reversals: their rules over all their postings so far, after every
  -- statement that adds postings to one, so that a later statement of the same transaction
  -- cannot add postings that break what the first one had right (PN005, PN006).
  IF summary.resolves_or_reverses THEN
    FOR entry IN
      SELECT e.* FROM (SELECT DISTINCT entry_id FROM new_postings) n
      JOIN LATERAL (SELECT * FROM ledger_entries WHERE id = n.entry_id LIMIT 1) e ON true
      WHERE e.hold_entry_id IS NOT NULL OR e.reverses_entry_id IS NOT NULL
    LOOP
      IF entry.hold_entry_id IS NOT NULL THEN
        PERFORM ledger_check_hold_resolution(entry);
      END IF;
      IF entry.reverses_entry_id IS NOT NULL THEN
        PERFORM ledger_check_reversal(entry);
      END IF;
    END LOOP;
  END IF;

  -- One row each for the whole statement, in one query: the accounts it touches with each one's
  -- four sums, and the entries it wrote postings for (the seal queue).
  WITH queued AS (
    INSERT INTO ledger_unsealed_statements (entry_ids)
    SELECT array_agg(DISTINCT entry_id) FROM new_postings
  )
  INSERT INTO ledger_balance_changes
    (account_ids, debits_posted, credits_posted, debits_pending, credits_pending)
  SELECT array_agg(account_id), array_agg(debits_posted), array_agg(credits_posted),
         array_agg(debits_pending), array_agg(credits_pending)
  FROM (
    SELECT account_id,
      coalesce(sum(amount_minor) FILTER (WHERE direction = 'debit' AND phase = 'posted'), 0)
        AS debits_posted,
      coalesce(sum(amount_minor) FILTER (WHERE direction = 'credit' AND phase = 'posted'), 0)
        AS credits_posted,
      coalesce(sum(amount_minor) FILTER (WHERE direction = 'debit' AND phase = 'pending'), 0)
        - coalesce(sum(amount_minor) FILTER (WHERE direction = 'debit' AND phase = 'release'), 0)
        AS debits_pending,
      coalesce(sum(amount_minor) FILTER (WHERE direction = 'credit' AND phase = 'pending'), 0)
        - coalesce(sum(amount_minor) FILTER (WHERE direction = 'credit' AND phase = 'release'), 0)
        AS credits_pending
    FROM new_postings GROUP BY account_id
  ) per_account;

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
