import type pg from 'pg';
import type { Logger } from 'pino';
import { nowMs } from '../clock.js';
import { limits } from '../config.js';
import type { ConnectorRegistry } from '../connectors/connector.js';
import { withTransaction } from '../db/pool.js';
import type { BalanceService } from '../balances/balance-service.js';
import { chargeOfReference } from '../payments/payment-service.js';
import { parseSettlementReport, type SettledLine } from './settlement-report.js';
import * as store from './settlement-store.js';

/**
 * Settlement: the seed's "settled". Penny learns from the PSP's settlement report (pulled by the
 * worker once a day has closed, or by `penny settlement pull --date D`) that captured funds have
 * settled; each settled capture's funds move from pending to available (one ledger entry, its
 * balance transaction `available` as of the report's day) and each merchant whose funds moved gets
 * `balance.available`. Idempotent: a report read twice moves nothing twice. A capture the report
 * does not name stays pending; reconciliation reports it once its window passes.
 */
export interface SettlementSummary {
  readonly connector: string;
  readonly day: string;
  /** Captures whose funds this pull made available. */
  readonly settled: number;
  /** Captures the report names whose funds were available already (a second pull, bypassPending). */
  readonly alreadyAvailable: number;
  /** Settled lines naming nothing Penny booked on this connector (reconciliation's to report). */
  readonly unmatched: number;
}

export interface SettlementDependencies {
  readonly connectors: ConnectorRegistry;
  readonly balances: BalanceService;
  readonly logger: Logger;
}

export class SettlementService {
  constructor(private readonly pool: pg.Pool, private readonly dependencies: SettlementDependencies) {}

  /** Reads the connector's report of `day` (every currency with pending funds) and settles what it names. */
  async pull(request: { connectorId: string; day: string }): Promise<SettlementSummary> {
    const connector = this.dependencies.connectors.get(request.connectorId);
    const lines: SettledLine[] = [];
    for (const currency of await this.dependencies.balances.pendingChargeCurrencies()) {
      const report = await connector.fetchSettlementReport({ day: request.day, currency });
      const name = `${request.connectorId} settlement report ${request.day} ${currency}`;
      lines.push(...(await parseSettlementReport(report, name)).filter((line) => line.type === 'Settled'));
    }
    const summary = { connector: request.connectorId, day: request.day, settled: 0, alreadyAvailable: 0, unmatched: 0 };
    const merchants = new Set<string>();
    for (const line of lines) {
      const outcome = await this.settle(request.connectorId, line);
      summary[outcome.result] += 1;
      if (outcome.result === 'settled') merchants.add(outcome.merchantId);
    }
    for (const merchantId of merchants) await this.dependencies.balances.announceAvailable(merchantId);
    // Only a closed day is marked pulled: the PSP may still add to today's report.
    if (request.day < utcDay(nowMs())) {
      await store.insertSettlementPull(this.pool, { connector: request.connectorId, day: request.day,
        settledCount: summary.settled });
    }
    return summary;
  }

  /**
   * Pulls each closed day of the last `limits.settlementLookbackDays` not pulled yet, from every
   * connector that publishes reports: what the `settlement-pull` worker runs.
   */
  async pullClosedDays(): Promise<number> {
    let pulled = 0;
    for (const connectorId of this.dependencies.connectors.ids()) {
      if (!this.dependencies.connectors.get(connectorId).capabilities.settlementReports) continue;
      for (let back = limits.settlementLookbackDays; back >= 1; back -= 1) {
        const day = utcDay(nowMs() - back * 86_400_000);
        if (await store.selectSettlementPulled(this.pool, { connector: connectorId, day })) continue;
        const summary = await this.pull({ connectorId, day });
        if (summary.settled > 0) this.dependencies.logger.info(summary, 'settled captures made available');
        pulled += 1;
      }
    }
    return pulled;
  }

  private async settle(connectorId: string, line: SettledLine):
  Promise<{ result: 'settled' | 'alreadyAvailable' | 'unmatched'; merchantId: string }> {
    const charge = await chargeOfReference(this.pool, line.merchantReference);
    if (charge === undefined || charge.connector !== connectorId) return { result: 'unmatched', merchantId: '' };
    const availableOn = `${line.bookingDay || new Date(nowMs()).toISOString().slice(0, 10)}T00:00:00.000Z`;
    const made = await withTransaction(this.pool, (client) => this.dependencies.balances.makeChargeAvailable(client,
      { merchantId: charge.merchantId, chargeId: charge.id, availableOn }));
    return { result: made === undefined ? 'alreadyAvailable' : 'settled', merchantId: charge.merchantId };
  }
}

function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}
