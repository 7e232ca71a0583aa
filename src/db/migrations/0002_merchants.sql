-- Up Migration
-- Purpose: merchants and their API keys. Keys are stored only as HMAC-SHA-256 digests under a
-- server-side pepper (PENNY_SECRET_KEY), plus the prefix and last four characters for display.

CREATE TABLE merchants (
  id text PRIMARY KEY CHECK (id ~ '^acct_[A-Za-z0-9]{8,64}$'),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX merchants_list ON merchants (created_at DESC, id DESC);

CREATE TABLE merchant_api_keys (
  merchant_id text NOT NULL REFERENCES merchants (id),
  id text NOT NULL CHECK (id ~ '^key_[A-Za-z0-9]{8,64}$'),
  key_digest bytea NOT NULL UNIQUE CHECK (length(key_digest) = 32),
  prefix text NOT NULL CHECK (prefix IN ('sk_test_', 'sk_live_')),
  last4 text NOT NULL CHECK (length(last4) = 4),
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  revoked_at timestamptz,
  PRIMARY KEY (merchant_id, id),
  UNIQUE (id)
);

-- A key is revoked once and stays revoked; nothing else about it ever changes.
CREATE FUNCTION merchant_api_keys_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' OR (NEW.merchant_id, NEW.id, NEW.key_digest, NEW.prefix, NEW.last4, NEW.created_at)
     IS DISTINCT FROM (OLD.merchant_id, OLD.id, OLD.key_digest, OLD.prefix, OLD.last4, OLD.created_at)
     OR (OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at) THEN
    RAISE EXCEPTION USING ERRCODE = 'PN003', MESSAGE = 'history_is_append_only',
      DETAIL = 'an API key can only be revoked';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER merchant_api_keys_revoke_only BEFORE UPDATE OR DELETE ON merchant_api_keys
  FOR EACH ROW EXECUTE FUNCTION merchant_api_keys_refuse_change();
