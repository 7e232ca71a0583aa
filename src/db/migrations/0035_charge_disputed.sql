-- Up Migration
-- Purpose: Stripe's Charge.disputed. A charge the PSP disputed says so, and is refunded no more
-- (Stripe's charge_disputed): the dispute already took its money back. Set when Penny opens the
-- dispute, in the same transaction; charges disputed before this migration are marked from their disputes.
SET LOCAL lock_timeout = '60s';

ALTER TABLE charges ADD COLUMN disputed boolean NOT NULL DEFAULT false;
UPDATE charges c SET disputed = true
  WHERE EXISTS (SELECT 1 FROM disputes d WHERE d.merchant_id = c.merchant_id AND d.charge_id = c.id);
