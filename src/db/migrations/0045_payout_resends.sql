-- Up Migration
-- Purpose: a payout's PSP call sent again by the payouts worker (same PSP key) while the request
-- that created it may still wait on its own first call. The worker counts its sends under the
-- payout's row lock before it calls; a first call's refusal recorded after such a send proves
-- nothing (the worker's call may still take the payout), so the call stays unknown and the payout
-- cannot be canceled. Payouts from before this migration count no resend.
ALTER TABLE payouts ADD COLUMN psp_resend_count integer NOT NULL DEFAULT 0
  CONSTRAINT payouts_psp_resend_count_check CHECK (psp_resend_count >= 0);
