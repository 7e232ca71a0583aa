import { clockOffsetMs } from '../clock.js';

/**
 * A time read as a day (a balance transaction, a refund, a dispute, a paid payout: reconciliation
 * dates its items by them; a PaymentIntent's creation: the dashboard's home counts by it) is
 * Penny's clock, not the database's alone: the
 * database's `clock_timestamp()` plus the controlled clock's offset (0 for the system clock), passed
 * as the statement's parameter `$n` (the value of `clockOffsetParameter()`). Under a controlled
 * clock the PSP dates its lines by the same clock, so both sides name the same day.
 */
export function clockNowSql(parameter: number): string {
  return `(clock_timestamp() + $${parameter}::bigint * interval '1 millisecond')`;
}

export function clockOffsetParameter(): string {
  return clockOffsetMs().toString();
}
