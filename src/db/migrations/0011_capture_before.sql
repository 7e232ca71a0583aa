-- Up Migration
-- Purpose: when an uncaptured authorization expires, by Penny's clock, written at authorization
-- (Stripe's `capture_before`). The expiry worker reads it; older charges have none, and their
-- authorization hold's expiry, written then without a grace, is the same instant.
ALTER TABLE charges ADD COLUMN capture_before timestamptz;
