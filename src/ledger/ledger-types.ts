/** The ledger's vocabulary. Amounts are bigint minor units of the account's currency. */
export const accountTypes = ['asset', 'liability', 'equity', 'revenue', 'expense'] as const;
export type AccountType = (typeof accountTypes)[number];

export const balanceLimits = ['debits_must_not_exceed_credits', 'credits_must_not_exceed_debits'] as const;
export type BalanceLimit = (typeof balanceLimits)[number];

export const directions = ['debit', 'credit'] as const;
export type Direction = (typeof directions)[number];

/** posted: moves the posted balance; pending: a hold's amount; release: takes a hold's amount back. */
export type PostingPhase = 'posted' | 'pending' | 'release';
export type EntryKind = 'standard' | 'hold' | 'hold_post' | 'hold_void' | 'hold_expiry' | 'reversal';
export type HoldStatus = 'pending' | 'posted' | 'voided' | 'expired';

export function normalBalance(type: AccountType): Direction {
  return type === 'asset' || type === 'expense' ? 'debit' : 'credit';
}

export interface CreateAccountCommand {
  readonly currency: string;
  readonly type: AccountType;
  readonly code: string | undefined;
  readonly owner: string | undefined;
  readonly metadata: Record<string, string>;
  readonly limit: BalanceLimit | undefined;
}

export interface PostingInput {
  readonly account: string;
  readonly direction: Direction;
  readonly amountMinor: bigint;
  readonly currency: string | undefined;
  readonly mustNotOverdraw: boolean;
}

export interface CreateEntryCommand {
  readonly externalReference: string;
  /** SHA-256 of the request as sent (RFC 8785), before defaults: the idempotency comparison. */
  readonly requestFingerprint: string;
  readonly description: string | undefined;
  readonly metadata: Record<string, string>;
  readonly effectiveAt: string | undefined;
  readonly pending: boolean;
  readonly expiresAt: string | undefined;
  readonly postings: readonly PostingInput[];
}

export interface Balances {
  readonly debitsPosted: bigint;
  readonly creditsPosted: bigint;
  readonly debitsPending: bigint;
  readonly creditsPending: bigint;
}

export interface Account {
  readonly id: string;
  readonly currency: string;
  readonly type: AccountType;
  readonly code: string | null;
  readonly owner: string | null;
  readonly metadata: Record<string, string>;
  readonly limit: BalanceLimit | null;
  readonly createdAt: string;
  readonly balances: Balances;
}

export interface Posting {
  readonly id: bigint;
  readonly entryId: string;
  readonly accountId: string;
  readonly currency: string;
  readonly direction: Direction;
  readonly phase: PostingPhase;
  readonly amountMinor: bigint;
  readonly mustNotOverdraw: boolean;
  readonly effectiveAt: string;
}

export interface Entry {
  readonly id: string;
  readonly sequence: bigint;
  readonly externalReference: string;
  readonly kind: EntryKind;
  readonly holdEntryId: string | null;
  readonly reversesEntryId: string | null;
  readonly description: string | null;
  readonly metadata: Record<string, string>;
  readonly effectiveAt: string;
  readonly expiresAt: string | null;
  readonly createdAt: string;
  /** For holds: what became of it (the kind of its resolution entry), else null. */
  readonly resolution: { readonly entryId: string; readonly kind: EntryKind } | null;
  readonly postings: readonly Posting[];
}
