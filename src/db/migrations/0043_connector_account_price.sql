-- Up Migration
-- 0043: the merchant's Adyen price on its Adyen account's routing.
-- Adyen prices by contract; a connector account carries the merchant's price (basis points of each
-- captured amount plus a fixed fee in minor units of the charge's currency), used as the
-- connector's price list: the PSP fee Penny expects at capture and matches against the
-- Settlement details report. 0 and 0 (the default, and every existing account): no fee expected.
ALTER TABLE connector_accounts
  ADD COLUMN fee_basis_points integer NOT NULL DEFAULT 0,
  ADD COLUMN fee_fixed_minor bigint NOT NULL DEFAULT 0,
  ADD CONSTRAINT connector_accounts_fee_basis_points_check CHECK (fee_basis_points BETWEEN 0 AND 10000),
  ADD CONSTRAINT connector_accounts_fee_fixed_minor_check CHECK (fee_fixed_minor BETWEEN 0 AND 100000000);
