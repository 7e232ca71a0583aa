import type pg from 'pg';
import { nowMs } from '../clock.js';
import {
  selectPaymentsPerHour, selectWaiting, selectWindowFigures, type WindowFigures,
} from './operations-summary-store.js';

const hourMs = 3_600_000;
const dayMs = 24 * hourMs;

export interface OperationsSummary {
  readonly today: WindowFigures;
  readonly week: WindowFigures;
  readonly openCases: bigint;
  readonly openBreaks: bigint;
  readonly pendingPayouts: readonly { currency: string; amount: bigint; count: bigint }[];
  /** The last 7 days hour by hour (168 hours, oldest first; unix seconds), every hour present. */
  readonly hours: readonly { hourStart: number; payments: number; succeeded: number }[];
}

/**
 * The dashboard's home page figures (issue 19): today's and the last 7 days' volume (succeeded
 * PaymentIntents' received amounts, per currency in Stripe's units), succeeded and failed counts,
 * refunds; open cases and reconciliation breaks; payouts not yet paid; payments per hour over the
 * last 7 days. "Today" starts at midnight UTC on Penny's clock. For a merchant, its own only.
 */
export class OperationsSummaries {
  constructor(private readonly pool: pg.Pool) {}

  async summary(merchantId: string | null): Promise<OperationsSummary> {
    const now = nowMs();
    const todayStart = new Date(Math.floor(now / dayMs) * dayMs).toISOString();
    const firstHour = Math.floor(now / hourMs) * hourMs - 167 * hourMs;
    const weekStart = new Date(firstHour).toISOString();
    const [today, week, waiting, perHour] = await Promise.all([
      selectWindowFigures(this.pool, { from: todayStart, merchantId }),
      selectWindowFigures(this.pool, { from: weekStart, merchantId }),
      selectWaiting(this.pool, merchantId),
      selectPaymentsPerHour(this.pool, { from: weekStart, merchantId }),
    ]);
    const byHour = new Map(perHour.map((row) => [Date.parse(row.hour), row]));
    const hours = Array.from({ length: 168 }, (_, index) => {
      const start = firstHour + index * hourMs;
      const row = byHour.get(start);
      return { hourStart: start / 1000, payments: Number(row?.payments ?? 0n),
        succeeded: Number(row?.succeeded ?? 0n) };
    });
    return { today, week, ...waiting, hours };
  }
}
