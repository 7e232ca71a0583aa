-- Up Migration
-- Purpose: the operator's own ledger accounts, one per role and currency (docs/accounting.md,
-- "Chart of accounts", operator-wide): the operator's bank account, where the PSP pays each settled
-- batch (the report's MerchantPayout line); the PSP's batch-level fees that name no merchant; and the
-- suspense account holding what a PSP payout paid for lines Penny cannot attribute to a merchant
-- (reconciliation's to clear). Operator configuration lives in its own small table (decisions.md,
-- "Growing past one database"); the accounts every payment touches stay per merchant.
SET LOCAL lock_timeout = '60s';

CREATE TABLE operator_ledger_accounts (
  currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  role text NOT NULL CHECK (role IN ('operator_bank', 'psp_batch_fees', 'settlement_suspense')),
  ledger_account_id text NOT NULL UNIQUE REFERENCES ledger_accounts (id),
  PRIMARY KEY (currency, role)
);
