-- Up Migration
-- Purpose: PSP events name a charge or a refund by Penny's id alone (the merchant is not in the
-- event), so the inbox looks them up by id; without these indexes each look-up scanned the table.
-- Ids are random and globally unique, so the indexes are unique.
CREATE UNIQUE INDEX charges_id ON charges (id);
CREATE UNIQUE INDEX refunds_id ON refunds (id);
