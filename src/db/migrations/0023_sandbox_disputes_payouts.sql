-- Up Migration
-- Purpose: the sandbox PSP's disputes and asynchronous payouts (issue 17). An operation can now
-- change state later, on the sandbox's clock: a payout goes pending → in_transit → paid | failed,
-- a dispute (a `chargeback` operation) goes needs_response → won | lost. The existing
-- `resolves_at` / `resolved_outcome` pair schedules the next change; these columns say what a
-- change needs to say. The sandbox's tables only: Penny's code never reads them.
ALTER TABLE sandbox_psp_operations
  -- A payout's bank account (IBAN or account number): the test accounts decide its result.
  ADD COLUMN destination text,
  -- A failed payout's reason, one of Stripe's payout failure codes.
  ADD COLUMN failure_code text,
  -- A dispute's reason, one of Stripe's dispute reasons.
  ADD COLUMN reason text,
  -- What the PSP charges for this operation apart from its price list's percentage: a dispute's fee.
  ADD COLUMN fee_minor bigint CHECK (fee_minor >= 0),
  -- pm_card_bypassPending: the charge's funds are available at once, with no wait for settlement.
  ADD COLUMN available_immediately boolean NOT NULL DEFAULT false,
  -- pm_card_createDispute: when the sandbox opens a dispute on this captured charge.
  ADD COLUMN dispute_at timestamptz,
  -- When a payout or a dispute reached its final outcome: the day it shows in reports and statements.
  ADD COLUMN decided_at timestamptz;

CREATE INDEX sandbox_psp_operations_dispute_due ON sandbox_psp_operations (dispute_at) WHERE dispute_at IS NOT NULL;
CREATE INDEX sandbox_psp_operations_decided ON sandbox_psp_operations (decided_at) WHERE decided_at IS NOT NULL;
