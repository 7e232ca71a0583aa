import type { TrialBalanceRow } from './ledger-store.js';
import {
  normalBalance, type Account, type Balances, type Entry, type HoldStatus, type Posting,
} from './ledger-types.js';

/**
 * The ledger API's JSON shapes. Amounts are bigint here; the HTTP serializer writes them as JSON
 * integers (sums can exceed 2^53, so they are never passed through a float).
 */
export function presentAccount(account: Account) {
  return {
    object: 'ledger.account',
    id: account.id,
    currency: account.currency,
    type: account.type,
    normal_balance: normalBalance(account.type),
    code: account.code,
    owner: account.owner,
    limit: account.limit,
    metadata: account.metadata,
    balances: presentBalances(account, account.balances),
    created_at: account.createdAt,
  };
}

/**
 * posted: the posted balance on the account's normal side. pending: holds, net, on that side.
 * available: posted less the holds that would take money out (incoming holds do not count).
 */
export function presentBalances(account: Pick<Account, 'type'>, balances: Balances) {
  const debitNormal = normalBalance(account.type) === 'debit';
  const posted = debitNormal
    ? balances.debitsPosted - balances.creditsPosted
    : balances.creditsPosted - balances.debitsPosted;
  const pending = debitNormal
    ? balances.debitsPending - balances.creditsPending
    : balances.creditsPending - balances.debitsPending;
  const outgoingPending = debitNormal ? balances.creditsPending : balances.debitsPending;
  return {
    posted,
    pending,
    available: posted - outgoingPending,
    debits_posted: balances.debitsPosted,
    credits_posted: balances.creditsPosted,
    debits_pending: balances.debitsPending,
    credits_pending: balances.creditsPending,
  };
}

export function presentEntry(entry: Entry) {
  return {
    object: 'ledger.entry',
    id: entry.id,
    external_reference: entry.externalReference,
    kind: entry.kind,
    status: entryStatus(entry),
    description: entry.description,
    metadata: entry.metadata,
    effective_at: entry.effectiveAt,
    created_at: entry.createdAt,
    expires_at: entry.expiresAt,
    hold: entry.holdEntryId,
    reverses: entry.reversesEntryId,
    resolved_by: entry.resolution?.entryId ?? null,
    postings: entry.postings.map(presentPosting),
  };
}

export function presentPosting(posting: Posting) {
  return {
    object: 'ledger.posting',
    id: posting.id,
    entry: posting.entryId,
    account: posting.accountId,
    currency: posting.currency,
    direction: posting.direction,
    phase: posting.phase,
    amount: posting.amountMinor,
    must_not_overdraw: posting.mustNotOverdraw,
    effective_at: posting.effectiveAt,
  };
}

function entryStatus(entry: Entry): HoldStatus {
  if (entry.kind !== 'hold') return 'posted';
  switch (entry.resolution?.kind) {
    case undefined:
      return 'pending';
    case 'hold_post':
      return 'posted';
    case 'hold_void':
      return 'voided';
    case 'hold_expiry':
      return 'expired';
    default:
      throw new Error(`hold ${entry.id} resolved by an entry of kind ${entry.resolution?.kind}`);
  }
}

/** Per currency: debits and credits over all accounts, and their difference, which must be 0. */
export function presentTrialBalance(rows: readonly TrialBalanceRow[], asOf: string | undefined) {
  const currencies = new Map<string, TrialBalanceRow[]>();
  for (const row of rows) currencies.set(row.currency, [...(currencies.get(row.currency) ?? []), row]);
  return {
    object: 'ledger.trial_balance',
    as_of: asOf ?? null,
    currencies: [...currencies.entries()].map(([currency, group]) => {
      const sum = (pick: (balances: Balances) => bigint) =>
        group.reduce((total, row) => total + pick(row.balances), 0n);
      const debitsPosted = sum((balances) => balances.debitsPosted);
      const creditsPosted = sum((balances) => balances.creditsPosted);
      return {
        currency,
        debits_posted: debitsPosted,
        credits_posted: creditsPosted,
        difference: debitsPosted - creditsPosted,
        debits_pending: sum((balances) => balances.debitsPending),
        credits_pending: sum((balances) => balances.creditsPending),
        by_type: group.map((row) => ({
          type: row.type,
          accounts: row.accountCount,
          debits_posted: row.balances.debitsPosted,
          credits_posted: row.balances.creditsPosted,
        })),
      };
    }),
  };
}
