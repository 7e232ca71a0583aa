-- Up Migration
-- Purpose: the double-entry ledger (accounts, entries, postings, balances, the seal chain) and
-- the triggers that make the database itself refuse what must never happen. See docs/accounting.md.
--
-- Error codes raised here are custom SQLSTATEs of class PN; src/ledger/ledger-errors.ts maps them:
--   PN001 unbalanced_entry        PN002 insufficient_funds     PN003 history_is_append_only
--   PN004 entry_postings_closed   PN005 invalid_hold_resolution PN006 invalid_reversal
--   PN007 balance_write_refused   PN008 invalid_entry_phases    PN009 currency_mismatch
--   PN010 account_not_found

CREATE TABLE ledger_accounts (
  id text PRIMARY KEY CHECK (id ~ '^lacc_[A-Za-z0-9]{8,64}$'),
  owner text CHECK (length(owner) BETWEEN 1 AND 255),
  currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  type text NOT NULL CHECK (type IN ('asset', 'liability', 'equity', 'revenue', 'expense')),
  code text CHECK (length(code) BETWEEN 1 AND 255),
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
  balance_limit text CHECK (balance_limit IN ('debits_must_not_exceed_credits',
                                              'credits_must_not_exceed_debits')),
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  UNIQUE (id, currency)
);
-- A code names one account per owner and currency (an owner has a 'bank' in USD and in EUR).
CREATE UNIQUE INDEX ledger_accounts_owner_code ON ledger_accounts (coalesce(owner, ''), code, currency)
  WHERE code IS NOT NULL;
CREATE INDEX ledger_accounts_list ON ledger_accounts (created_at DESC, id DESC);

-- Stored balances, folded from ledger_balance_deltas by the compactor. An account's balance is
-- always this row plus the sum of its pending deltas, which always equals the sum of its postings.
CREATE TABLE ledger_account_balances (
  account_id text PRIMARY KEY REFERENCES ledger_accounts (id),
  debits_posted bigint NOT NULL DEFAULT 0,
  credits_posted bigint NOT NULL DEFAULT 0,
  debits_pending bigint NOT NULL DEFAULT 0,
  credits_pending bigint NOT NULL DEFAULT 0,
  CHECK (debits_posted >= 0 AND credits_posted >= 0 AND debits_pending >= 0 AND credits_pending >= 0)
);

-- One row per account per posting statement. Writers append here without locking anything, so a
-- hot account (a platform fee account) is not a lock every transfer waits on.
CREATE TABLE ledger_balance_deltas (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  account_id text NOT NULL,
  debits_posted bigint NOT NULL,
  credits_posted bigint NOT NULL,
  debits_pending bigint NOT NULL,
  credits_pending bigint NOT NULL
);
CREATE INDEX ledger_balance_deltas_account ON ledger_balance_deltas (account_id);

CREATE TABLE ledger_entries (
  id text PRIMARY KEY CHECK (id ~ '^lent_[A-Za-z0-9]{8,64}$'),
  -- Commit order is not id order; `sequence` gives lists and the sealer a deterministic order.
  sequence bigint GENERATED ALWAYS AS IDENTITY,
  external_reference text NOT NULL UNIQUE CHECK (length(external_reference) BETWEEN 1 AND 255),
  request_fingerprint text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('standard', 'hold', 'hold_post', 'hold_void', 'hold_expiry',
                                     'reversal')),
  -- Both links are checked at commit by ledger_check_entry (the hold must be a hold, a reversal
  -- must mirror its original), which also proves the row they point at exists.
  hold_entry_id text,
  reverses_entry_id text,
  description text CHECK (length(description) <= 1000),
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
  effective_at timestamptz NOT NULL,
  expires_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  -- Postings may join an entry only in the transaction that created it (checked per statement).
  created_transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
  CHECK ((kind IN ('hold_post', 'hold_void', 'hold_expiry')) = (hold_entry_id IS NOT NULL)),
  CHECK ((kind = 'reversal') = (reverses_entry_id IS NOT NULL)),
  CHECK (expires_at IS NULL OR kind = 'hold')
);
-- Post, void and expiry are entries linked to the hold; only one of them can ever exist.
CREATE UNIQUE INDEX ledger_entries_one_resolution_per_hold ON ledger_entries (hold_entry_id)
  WHERE hold_entry_id IS NOT NULL;
CREATE UNIQUE INDEX ledger_entries_one_reversal_per_entry ON ledger_entries (reverses_entry_id)
  WHERE reverses_entry_id IS NOT NULL;
CREATE INDEX ledger_entries_open_holds ON ledger_entries (expires_at)
  WHERE kind = 'hold' AND expires_at IS NOT NULL;
CREATE INDEX ledger_entries_effective ON ledger_entries (effective_at, sequence);

-- phase: 'posted' moves the posted balance; 'pending' is a hold's amount; 'release' takes a
-- hold's pending amount back out (when it is posted, voided or expires).
CREATE TABLE ledger_postings (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- entry_id and (account_id, currency) are checked once per statement by ledger_apply_postings
  -- rather than by foreign keys, whose per-row share lock on a hot account row would make every
  -- transfer through it contend (accounts and entries are never deleted, which keys would guard).
  entry_id text NOT NULL,
  account_id text NOT NULL,
  currency char(3) NOT NULL,
  direction text NOT NULL CHECK (direction IN ('debit', 'credit')),
  phase text NOT NULL CHECK (phase IN ('posted', 'pending', 'release')),
  amount_minor bigint NOT NULL CHECK (amount_minor > 0),
  must_not_overdraw boolean NOT NULL DEFAULT false,
  effective_at timestamptz NOT NULL
);
CREATE INDEX ledger_postings_account ON ledger_postings (account_id, effective_at, id);
CREATE INDEX ledger_postings_entry ON ledger_postings (entry_id);

-- Entries waiting for the sealer; a queue, so the sealer never scans the whole ledger. The
-- queue, unlike a horizon on transaction ids, does not stall behind a long transaction.
CREATE TABLE ledger_unsealed_entries (
  entry_id text PRIMARY KEY
);

-- The hash chain, written only by the sealer. Entries and postings are never updated to seal them.
CREATE TABLE ledger_entry_seals (
  position bigint PRIMARY KEY CHECK (position >= 1),
  entry_id text NOT NULL UNIQUE REFERENCES ledger_entries (id),
  previous_hash text NOT NULL CHECK (previous_hash ~ '^[0-9a-f]{64}$'),
  hash text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
  sealed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Invariant 2: history is append-only.
CREATE FUNCTION ledger_refuse_history_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'PN003', MESSAGE = 'history_is_append_only',
    DETAIL = format('%s on %s is refused; correct history with a reversing entry',
                    TG_OP, TG_TABLE_NAME);
END $$;

CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
  FOR EACH ROW EXECUTE FUNCTION ledger_refuse_history_change();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_history_change();
CREATE TRIGGER ledger_postings_append_only BEFORE UPDATE OR DELETE ON ledger_postings
  FOR EACH ROW EXECUTE FUNCTION ledger_refuse_history_change();
CREATE TRIGGER ledger_postings_no_truncate BEFORE TRUNCATE ON ledger_postings
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_history_change();
CREATE TRIGGER ledger_entry_seals_append_only BEFORE UPDATE OR DELETE ON ledger_entry_seals
  FOR EACH ROW EXECUTE FUNCTION ledger_refuse_history_change();
CREATE TRIGGER ledger_entry_seals_no_truncate BEFORE TRUNCATE ON ledger_entry_seals
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_history_change();
CREATE TRIGGER ledger_accounts_no_delete BEFORE DELETE ON ledger_accounts
  FOR EACH ROW EXECUTE FUNCTION ledger_refuse_history_change();
CREATE TRIGGER ledger_accounts_no_truncate BEFORE TRUNCATE ON ledger_accounts
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_history_change();

-- An account's identity (currency, type, limit, owner) never changes; its metadata may.
CREATE FUNCTION ledger_refuse_account_identity_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (NEW.id, NEW.currency, NEW.type, NEW.balance_limit, NEW.owner, NEW.created_at)
     IS DISTINCT FROM (OLD.id, OLD.currency, OLD.type, OLD.balance_limit, OLD.owner, OLD.created_at)
  THEN
    RAISE EXCEPTION USING ERRCODE = 'PN003', MESSAGE = 'history_is_append_only',
      DETAIL = 'an account''s id, currency, type, owner and limit never change';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER ledger_accounts_identity_fixed BEFORE UPDATE ON ledger_accounts
  FOR EACH ROW EXECUTE FUNCTION ledger_refuse_account_identity_change();

-- Invariant 5: balance rows and deltas are written only by the ledger's own trigger and the
-- compactor. Anything else (a stray UPDATE) is refused.
CREATE FUNCTION ledger_refuse_balance_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Allowed: the ledger's own trigger (trigger depth 2: this guard inside it) or the compactor,
  -- which sets a transaction-local flag.
  IF pg_trigger_depth() < 2
     AND coalesce(current_setting('penny.ledger_balance_writer', true), '') <> 'on' THEN
    RAISE EXCEPTION USING ERRCODE = 'PN007', MESSAGE = 'balance_write_refused',
      DETAIL = format('%s on %s: balances change only through postings', TG_OP, TG_TABLE_NAME);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER ledger_account_balances_guard BEFORE UPDATE OR DELETE ON ledger_account_balances
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_balance_write();
CREATE TRIGGER ledger_account_balances_no_truncate BEFORE TRUNCATE ON ledger_account_balances
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_balance_write();
CREATE TRIGGER ledger_balance_deltas_guard BEFORE INSERT OR UPDATE OR DELETE ON ledger_balance_deltas
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_balance_write();
CREATE TRIGGER ledger_balance_deltas_no_truncate BEFORE TRUNCATE ON ledger_balance_deltas
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_balance_write();

-- A new account starts with a zero balance row (inserts into balances are allowed: a zero row).
CREATE FUNCTION ledger_create_balance_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO ledger_account_balances (account_id)
    SELECT id FROM new_accounts;
  RETURN NULL;
END $$;
CREATE TRIGGER ledger_accounts_balance_row AFTER INSERT ON ledger_accounts
  REFERENCING NEW TABLE AS new_accounts
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_create_balance_row();

CREATE FUNCTION ledger_refuse_balance_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.debits_posted <> 0 OR NEW.credits_posted <> 0
     OR NEW.debits_pending <> 0 OR NEW.credits_pending <> 0 THEN
    RAISE EXCEPTION USING ERRCODE = 'PN007', MESSAGE = 'balance_write_refused',
      DETAIL = 'a balance row starts at zero';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER ledger_account_balances_start_at_zero BEFORE INSERT ON ledger_account_balances
  FOR EACH ROW EXECUTE FUNCTION ledger_refuse_balance_insert();

-- Invariants 3 and 4, and the bookkeeping of balances. After each statement that inserts
-- postings, in one pass over the new rows: (a) every posting joins an entry created in this
-- transaction, names an account that exists, and carries that account's currency; (b) one delta
-- per account is appended; (c) every account that has a limit or receives a guarded posting is
-- locked, in id order, and checked with the statement's deltas included. Other accounts take no
-- lock at all, so a hot account is not a queue.
CREATE FUNCTION ledger_apply_postings() RETURNS trigger LANGUAGE plpgsql AS $$
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
         bool_or(p.must_not_overdraw OR a.balance_limit IS NOT NULL) AS guarded
    INTO summary
  FROM new_postings p
  LEFT JOIN LATERAL (
    SELECT id, created_transaction_id, effective_at, kind FROM ledger_entries
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

CREATE TRIGGER ledger_postings_apply AFTER INSERT ON ledger_postings
  REFERENCING NEW TABLE AS new_postings
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_apply_postings();

-- Invariant 1, at commit: every entry has postings (each statement that added them balanced on
-- its own, so it has at least two). Hold resolutions release exactly the hold's postings;
-- reversals mirror exactly what they reverse.
CREATE FUNCTION ledger_check_entry() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM ledger_postings WHERE entry_id = NEW.id) THEN
    RAISE EXCEPTION USING ERRCODE = 'PN001', MESSAGE = 'unbalanced_entry',
      DETAIL = format('entry %s has no postings; an entry needs at least two', NEW.id);
  END IF;
  IF NEW.hold_entry_id IS NOT NULL THEN
    PERFORM ledger_check_hold_resolution(NEW);
  END IF;
  IF NEW.reverses_entry_id IS NOT NULL THEN
    PERFORM ledger_check_reversal(NEW);
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION ledger_check_hold_resolution(resolution ledger_entries) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM ledger_entries WHERE id = resolution.hold_entry_id AND kind = 'hold')
  THEN
    RAISE EXCEPTION USING ERRCODE = 'PN005', MESSAGE = 'invalid_hold_resolution',
      DETAIL = format('entry %s is not a hold', resolution.hold_entry_id);
  END IF;
  -- The released postings must be exactly the hold's pending postings (as multisets).
  IF EXISTS (
    (SELECT account_id, direction, amount_minor FROM ledger_postings
      WHERE entry_id = resolution.hold_entry_id
     EXCEPT ALL
     SELECT account_id, direction, amount_minor FROM ledger_postings
      WHERE entry_id = resolution.id AND phase = 'release')
    UNION ALL
    (SELECT account_id, direction, amount_minor FROM ledger_postings
      WHERE entry_id = resolution.id AND phase = 'release'
     EXCEPT ALL
     SELECT account_id, direction, amount_minor FROM ledger_postings
      WHERE entry_id = resolution.hold_entry_id)
  ) THEN
    RAISE EXCEPTION USING ERRCODE = 'PN005', MESSAGE = 'invalid_hold_resolution',
      DETAIL = format('entry %s must release exactly the postings of hold %s',
                      resolution.id, resolution.hold_entry_id);
  END IF;
  -- What is posted goes between the hold's accounts, in the hold's directions, and no more.
  IF EXISTS (
    SELECT 1 FROM ledger_postings p
    WHERE p.entry_id = resolution.id AND p.phase = 'posted'
      AND p.amount_minor > coalesce((
        SELECT sum(h.amount_minor) FROM ledger_postings h
        WHERE h.entry_id = resolution.hold_entry_id
          AND h.account_id = p.account_id AND h.direction = p.direction), 0)
  ) THEN
    RAISE EXCEPTION USING ERRCODE = 'PN005', MESSAGE = 'invalid_hold_resolution',
      DETAIL = format('entry %s posts more than hold %s holds', resolution.id,
                      resolution.hold_entry_id);
  END IF;
END $$;

CREATE FUNCTION ledger_check_reversal(reversal ledger_entries) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (
    (SELECT account_id, CASE direction WHEN 'debit' THEN 'credit' ELSE 'debit' END, amount_minor
       FROM ledger_postings WHERE entry_id = reversal.reverses_entry_id AND phase = 'posted'
     EXCEPT ALL
     SELECT account_id, direction, amount_minor FROM ledger_postings WHERE entry_id = reversal.id)
    UNION ALL
    (SELECT account_id, direction, amount_minor FROM ledger_postings WHERE entry_id = reversal.id
     EXCEPT ALL
     SELECT account_id, CASE direction WHEN 'debit' THEN 'credit' ELSE 'debit' END, amount_minor
       FROM ledger_postings WHERE entry_id = reversal.reverses_entry_id AND phase = 'posted')
  ) THEN
    RAISE EXCEPTION USING ERRCODE = 'PN006', MESSAGE = 'invalid_reversal',
      DETAIL = format('entry %s must mirror the posted postings of %s', reversal.id,
                      reversal.reverses_entry_id);
  END IF;
END $$;

CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION ledger_check_entry();

-- Folds deltas into balance rows, locking accounts in id order (as guarded writers do), so the
-- two never deadlock. Bounded by `deltas_max` per call.
CREATE FUNCTION ledger_compact_balances(deltas_max integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  folded integer;
BEGIN
  PERFORM set_config('penny.ledger_balance_writer', 'on', true);
  CREATE TEMP TABLE IF NOT EXISTS ledger_compaction_batch (
    id bigint, account_id text, debits_posted bigint, credits_posted bigint,
    debits_pending bigint, credits_pending bigint
  ) ON COMMIT DROP;
  DELETE FROM ledger_compaction_batch;
  INSERT INTO ledger_compaction_batch
    SELECT id, account_id, debits_posted, credits_posted, debits_pending, credits_pending
    FROM ledger_balance_deltas ORDER BY id LIMIT deltas_max FOR UPDATE SKIP LOCKED;
  PERFORM 1 FROM ledger_account_balances
    WHERE account_id IN (SELECT account_id FROM ledger_compaction_batch)
    ORDER BY account_id FOR NO KEY UPDATE;
  UPDATE ledger_account_balances b SET
    debits_posted = b.debits_posted + s.debits_posted,
    credits_posted = b.credits_posted + s.credits_posted,
    debits_pending = b.debits_pending + s.debits_pending,
    credits_pending = b.credits_pending + s.credits_pending
  FROM (
    SELECT account_id, sum(debits_posted) AS debits_posted, sum(credits_posted) AS credits_posted,
           sum(debits_pending) AS debits_pending, sum(credits_pending) AS credits_pending
    FROM ledger_compaction_batch GROUP BY account_id
  ) s
  WHERE b.account_id = s.account_id;
  DELETE FROM ledger_balance_deltas WHERE id IN (SELECT id FROM ledger_compaction_batch);
  GET DIAGNOSTICS folded = ROW_COUNT;
  PERFORM set_config('penny.ledger_balance_writer', 'off', true);
  RETURN folded;
END $$;

-- The balance of one account now: its row plus its unfolded deltas.
CREATE VIEW ledger_current_balances AS
SELECT b.account_id,
  b.debits_posted + coalesce(d.debits_posted, 0) AS debits_posted,
  b.credits_posted + coalesce(d.credits_posted, 0) AS credits_posted,
  b.debits_pending + coalesce(d.debits_pending, 0) AS debits_pending,
  b.credits_pending + coalesce(d.credits_pending, 0) AS credits_pending
FROM ledger_account_balances b
LEFT JOIN LATERAL (
  SELECT sum(debits_posted) AS debits_posted, sum(credits_posted) AS credits_posted,
         sum(debits_pending) AS debits_pending, sum(credits_pending) AS credits_pending
  FROM ledger_balance_deltas WHERE account_id = b.account_id
) d ON true;
