-- Up Migration
-- Purpose: a connected account's money is held in ledger accounts of its own roles
-- (merchant_ledger_accounts keyed by its acct id, as src/balances/balance-accounts.ts keeps them),
-- but the table's owner column referred to merchants, which a connected account is not. The owner
-- is a merchant or one of its connected accounts; src/balances checks which when it creates them.
SET LOCAL lock_timeout = '60s';
ALTER TABLE merchant_ledger_accounts DROP CONSTRAINT merchant_ledger_accounts_merchant_id_fkey;
