-- Up Migration
-- Purpose: a capture or cancel that the PSP took and reports later (Adyen's `received`) is settled
-- only by the report of that very request. Its claim keeps the PSP reference the `received` answer
-- gave; a capture's or void's report naming another PSP reference (an earlier request's failure, or
-- a step Penny never took) neither applies nor gives back this claim. Claims answered at once, and
-- those made before this migration, have none and are matched as before.
ALTER TABLE payment_intent_finalizations ADD COLUMN psp_reference text;
