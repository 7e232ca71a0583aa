/** A payout as the Stripe edge read it (src/http/payout-params.ts): amounts in ledger minor units. */
export interface CreatePayoutCommand {
  readonly amountMinor: bigint;
  /** ISO 4217, upper case. */
  readonly currency: string;
  /** A bank account (`ba_…`) of the owner; absent: its default bank account for the currency. */
  readonly destination: string | undefined;
  readonly description: string | null;
  readonly statementDescriptor: string | null;
  readonly metadata: Record<string, string>;
}

/** Whose payout: the platform merchant (every row carries it) and the balance that pays. */
export interface PayoutOwner {
  readonly merchantId: string;
  /** The merchant itself, or one of its connected accounts. */
  readonly accountId: string;
}

/** The sandbox bank's test account: where a test-mode platform with no bank account is paid. */
export const sandboxTestBankAccount = 'NL39RABO0300065264';

/** Stripe's messages for its payout failure codes. */
export const payoutFailureMessages: Readonly<Record<string, string>> = {
  no_account: 'The bank account details on file are probably incorrect. No bank account could be located with ' +
    'those details.',
  account_closed: 'The bank account has been closed.',
  insufficient_funds: 'Your account has insufficient funds to cover the payout.',
  debit_not_authorized: 'Debit transactions are not approved on the bank account.',
  invalid_currency: 'The bank was unable to process this payout because of its currency.',
  could_not_process: 'The bank could not process this payout.',
};
