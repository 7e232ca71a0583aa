-- Up Migration
-- Purpose: the operator dashboard (issue 19, "Dashboard" in decisions.md).
--
-- Its sign-in sessions: a session is named by a random token that lives only in the browser's
-- HttpOnly cookie; Penny keeps its SHA-256 digest, so a leaked table signs nobody in. The
-- operator's session has no merchant; a merchant's keeps the id of the secret key it was opened
-- with, so revoking that key ends it. Sign-out deletes the row; an expired row is refused, and
-- swept at the next sign-in.
--
-- A payment's page shows its events (the intent's, its charges', refunds' and disputes'), found
-- by the PaymentIntent they are about: the object's `payment_intent`, or its own id for the intent.
SET LOCAL lock_timeout = '60s';

CREATE TABLE dashboard_sessions (
  token_digest bytea PRIMARY KEY CHECK (length(token_digest) = 32),
  merchant_id text REFERENCES merchants (id),
  key_id text,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  expires_at timestamptz NOT NULL,
  CHECK (expires_at > created_at),
  CHECK ((merchant_id IS NULL) = (key_id IS NULL)),
  FOREIGN KEY (merchant_id, key_id) REFERENCES merchant_api_keys (merchant_id, id)
);
CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);

CREATE INDEX events_payment_intent ON events
  (merchant_id, (coalesce(data -> 'object' ->> 'payment_intent', data -> 'object' ->> 'id')), created_at);

-- The operator's payments list (every merchant's, newest first) and the home page's payments per
-- hour and refunds of the day and week read intents and refunds by creation time alone.
CREATE INDEX payment_intents_created ON payment_intents (created_at DESC, id DESC);
CREATE INDEX refunds_created ON refunds (created_at);
