import type { LedgerService } from '../../src/ledger/ledger-service.js';

/** An account's posted balance on its normal side (debit-normal for assets and expenses). */
export async function postedOnNormalSide(ledger: Pick<LedgerService, 'getAccounts'>, accountId: string):
Promise<bigint> {
  const [account] = await ledger.getAccounts([accountId]);
  if (account === undefined) throw new Error(`no account ${accountId}`);
  const { debitsPosted, creditsPosted } = account.balances;
  return account.type === 'asset' || account.type === 'expense' ? debitsPosted - creditsPosted
    : creditsPosted - debitsPosted;
}
