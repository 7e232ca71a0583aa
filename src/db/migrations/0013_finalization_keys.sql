-- Up Migration
-- Purpose: each claim of a capture or cancel records the PSP idempotency key its call uses. The
-- key was derived from the charge alone, so after a claim was refused or given back, the next
-- capture (or cancel) of the same charge went out under the same key, and a PSP that keeps its
-- answers by key (Stripe keeps errors too) would have answered it with the old refusal. Claims
-- made before this column have none and keep the charge-derived key, so a call in flight across
-- the upgrade is re-sent under the key it was first sent with.
ALTER TABLE payment_intent_finalizations ADD COLUMN psp_idempotency_key text;
