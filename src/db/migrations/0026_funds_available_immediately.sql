-- Up Migration
-- Purpose: a charge whose PSP makes its funds available at once (Stripe's pm_card_bypassPending;
-- the sandbox says so on the authorization) skips the wait for settlement: its capture's balance
-- transaction is made available in the capture's own transaction. The charge keeps what the
-- authorization said, since a manual capture comes later.
SET LOCAL lock_timeout = '60s';
ALTER TABLE charges ADD COLUMN funds_available_immediately boolean NOT NULL DEFAULT false;
