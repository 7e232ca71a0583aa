import type pg from 'pg';
import type { Logger } from 'pino';
import { accountsDueOn, payoutDayOf, type DueAccount } from '../accounts/payout-schedules.js';
import type { BalanceService } from '../balances/balance-service.js';
import { nowMs } from '../clock.js';
import { limits } from '../config.js';
import { raiseAlert } from '../metrics/metrics.js';
import type { PayoutService } from './payout-service.js';

/**
 * Automatic payouts: the `payout-schedule` worker. On each UTC day (Penny's clock, so a controlled
 * clock's advance counts) it walks the accounts whose schedule is due that day (platforms and
 * connected accounts, `src/accounts/payout-schedules.ts`), `limits.automaticPayoutBatchMax` a run
 * in key order, and pays out each one's whole available balance in every currency where it is
 * positive (`PayoutService.payOutAutomatically`). The walk is one pass a day per process; the
 * database, not the walk, keeps a payout to one per account, currency and day, so two processes,
 * or a pass repeated after a restart, pay nothing twice. An account with nothing available or no
 * destination is passed over quietly; one that failed is tried again on the next ticks, at most
 * `limits.automaticPayoutTriesMax` times a day.
 */
export interface PayoutSchedulerDependencies {
  readonly payouts: PayoutService;
  readonly balances: BalanceService;
  readonly logger: Logger;
}

interface DayPass {
  readonly day: string;
  after: DueAccount | undefined;
  done: boolean;
  /** Accounts that failed this day, with the tries they have had. */
  readonly failed: Map<string, { account: DueAccount; tries: number }>;
}

export class PayoutScheduler {
  private pass: DayPass | undefined;

  constructor(private readonly pool: pg.Pool, private readonly dependencies: PayoutSchedulerDependencies) {}

  /** One run: failed accounts again, then the next batch of the day's pass. Answers the payouts made. */
  async runDue(): Promise<number> {
    const day = payoutDayOf(nowMs());
    if (this.pass?.day !== day.day) this.pass = { day: day.day, after: undefined, done: false, failed: new Map() };
    const pass = this.pass;
    let made = 0;
    for (const [key, failure] of [...pass.failed]) {
      pass.failed.delete(key);
      made += await this.payOutAccount(pass, failure.account, failure.tries);
    }
    if (pass.done) return made;
    const due = await accountsDueOn(this.pool, day, { after: pass.after, limit: limits.automaticPayoutBatchMax });
    for (const account of due) made += await this.payOutAccount(pass, account, 0);
    pass.after = due.at(-1) ?? pass.after;
    if (due.length < limits.automaticPayoutBatchMax) pass.done = true;
    return made;
  }

  private async payOutAccount(pass: DayPass, account: DueAccount, earlierTries: number): Promise<number> {
    try {
      let made = 0;
      const balance = await this.dependencies.balances.balance(account);
      for (const currency of balance.filter((item) => item.availableMinor > 0n)) {
        const payout = await this.dependencies.payouts.payOutAutomatically({ owner: account, day: pass.day,
          currency: currency.currency, availableMinor: currency.availableMinor });
        if (payout !== undefined) made += 1;
      }
      return made;
    } catch (error) {
      const tries = earlierTries + 1;
      const fields = { err: error, merchant: account.merchantId, account: account.accountId, tries };
      if (tries < limits.automaticPayoutTriesMax) {
        this.dependencies.logger.warn(fields, 'an automatic payout failed; it is tried again');
        pass.failed.set(`${account.merchantId}/${account.accountId}`, { account, tries });
      } else {
        raiseAlert(this.dependencies.logger, 'automatic_payout_failed', fields,
          'an automatic payout failed and is not tried again today');
      }
      return 0;
    }
  }
}
