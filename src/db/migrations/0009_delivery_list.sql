-- Up Migration
-- Purpose: GET /v1/webhook_deliveries pages a merchant's deliveries newest first with Stripe's
-- cursors; this index serves that order without sorting every delivery of the merchant.
CREATE INDEX webhook_deliveries_list ON webhook_deliveries (merchant_id, created_at DESC, id DESC);
