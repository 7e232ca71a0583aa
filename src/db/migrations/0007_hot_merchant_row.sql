-- Up Migration
-- Purpose: a merchant's row is no longer a lock every write of that merchant takes.
--
-- A foreign key checks its parent with SELECT ... FOR KEY SHARE. Every payment inserts an intent,
-- an idempotency key and four or five events, all naming the same merchant row, so concurrent
-- payments of one merchant share-locked that row about ten times each: a multixact per overlap,
-- written to the WAL (measured: 15,000 WAL records for 17,000 checks in 1,735 payments), and a
-- queue on one row for a large merchant. As with ledger postings (0001), the keys on the
-- high-volume tables go; what they guarded is kept another way: a merchant is never deleted
-- (refused below, so every merchant_id once valid stays valid), and merchant_id is written only
-- from the authenticated merchant. The low-volume tables (keys, ledger accounts, pricing,
-- webhook endpoints) keep their keys.
ALTER TABLE payment_intents DROP CONSTRAINT payment_intents_merchant_id_fkey;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_merchant_id_fkey;
ALTER TABLE events DROP CONSTRAINT events_merchant_id_fkey;

CREATE FUNCTION merchants_refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'PN003', MESSAGE = 'history_is_append_only',
    DETAIL = 'merchants are never deleted: payments, events and keys name them';
END $$;

CREATE TRIGGER merchants_no_delete BEFORE DELETE ON merchants
  FOR EACH ROW EXECUTE FUNCTION merchants_refuse_delete();
CREATE TRIGGER merchants_no_truncate BEFORE TRUNCATE ON merchants
  FOR EACH STATEMENT EXECUTE FUNCTION merchants_refuse_delete();
