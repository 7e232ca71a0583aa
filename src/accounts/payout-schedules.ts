import type { Queryable } from '../db/pool.js';
import { PennyError } from '../errors.js';
import { weekdays, type PayoutSchedule, type Weekday } from './account-commands.js';
import {
  selectAccountsDue, selectPlatformPayoutSchedule, upsertPlatformPayoutSchedule, type DueAccount,
} from './payout-schedule-store.js';

export type { DueAccount };

/**
 * Payout schedules (`settings[payouts][schedule]`): a connected account's is kept on its row
 * (account-service.ts); a platform merchant's own is set by the operator and is `manual` until
 * set. A schedule is due on a UTC day when it is daily, weekly on that weekday, or monthly on that
 * day of the month, an anchor past the month's last day counting on its last day (31 pays out on
 * 30 April and on 28 or 29 February).
 */
export async function platformPayoutSchedule(db: Queryable, merchantId: string): Promise<PayoutSchedule> {
  return await selectPlatformPayoutSchedule(db, merchantId) ?? { interval: 'manual' };
}

export async function setPlatformPayoutSchedule(db: Queryable, merchantId: string, schedule: PayoutSchedule):
Promise<PayoutSchedule> {
  if (schedule.interval === 'monthly' && !(Number.isInteger(schedule.monthlyAnchor)
    && schedule.monthlyAnchor >= 1 && schedule.monthlyAnchor <= 31)) {
    throw new PennyError({ code: 'parameter_invalid_integer', param: 'monthly_anchor',
      message: 'monthly_anchor is a day of the month, from 1 to 31.' });
  }
  return upsertPlatformPayoutSchedule(db, merchantId, schedule);
}

/** A UTC day as the schedules read it. */
export interface PayoutDay {
  /** `YYYY-MM-DD`. */
  readonly day: string;
  readonly weekday: Weekday;
  /** The monthly anchors due on the day: the day of the month, and on its last day every later anchor too. */
  readonly monthDays: readonly number[];
}

export function payoutDayOf(timeMs: number): PayoutDay {
  const date = new Date(timeMs);
  const dayOfMonth = date.getUTCDate();
  const lastDay = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 0)).getUTCDate();
  const monthDays = dayOfMonth === lastDay
    ? Array.from({ length: 32 - dayOfMonth }, (_, index) => dayOfMonth + index) : [dayOfMonth];
  // getUTCDay: 0 is Sunday; weekdays start on Monday.
  const weekday = weekdays[(date.getUTCDay() + 6) % 7] ?? 'monday';
  return { day: date.toISOString().slice(0, 10), weekday, monthDays };
}

/** The accounts, platforms and connected, whose schedule is due on the day, after `after`, at most `limit`. */
export function accountsDueOn(db: Queryable, day: PayoutDay, page: { after: DueAccount | undefined; limit: number }):
Promise<DueAccount[]> {
  return selectAccountsDue(db, { weekday: day.weekday, monthDays: day.monthDays, ...page });
}
