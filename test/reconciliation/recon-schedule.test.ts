import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { advanceClock, configureClock, nowMs } from '../../src/clock.js';
import { ConnectorRegistry } from '../../src/connectors/connector.js';
import { createLogger } from '../../src/logger.js';
import { ReconciliationImports } from '../../src/reconciliation/recon-import.js';
import { ReconciliationRuns } from '../../src/reconciliation/recon-run.js';
import { ReconciliationSchedule } from '../../src/reconciliation/recon-schedule.js';
import { payOutSettlementBatches } from '../../src/sandbox-psp/psp-settlement.js';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/**
 * The daily run (PENNY_RECON_SCHEDULE): once its time has come, the previous day's settlement
 * report through the connector, then the inbox's statements, then a run as of today; once a day.
 */
let penny: ServedLedger;
let inbox: string;
let schedule: ReconciliationSchedule;

beforeAll(async () => {
  configureClock('controlled');
  penny = await serveTestLedger();
  inbox = await fs.mkdtemp(path.join(os.tmpdir(), 'penny-recon-inbox-'));
  const connectors = new ConnectorRegistry();
  connectors.register(penny.sandbox.connector);
  schedule = new ReconciliationSchedule(penny.pool, { connectors, balances: penny.balances,
    imports: new ReconciliationImports(penny.pool), runs: new ReconciliationRuns(penny.pool),
    logger: createLogger('silent'), schedule: { hour: 2, minute: 0 }, inbox });
});

afterAll(() => {
  configureClock('system');
});

function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Moves the clock to `hour`:`minute` UTC of the next day. */
function nextDayAt(hour: number, minute: number): void {
  const ms = nowMs();
  const target = Date.parse(`${utcDay(ms + 86_400_000)}T00:00:00Z`) + (hour * 60 + minute) * 60_000;
  advanceClock(target - ms);
}

describe('the scheduled reconciliation run', () => {
  it('imports yesterday\'s report and the inbox at its time, runs once, and sets the inbox\'s files aside', async () => {
    const created = await penny.merchants.createMerchant('Scheduled Shop');
    const stripe = penny.stripeFor(created.secretKey);
    await stripe.paymentIntents.create({ amount: 4000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true });
    const day = utcDay(nowMs());
    await payOutSettlementBatches(penny.pool, day);
    const statement = await (await fetch(`${penny.sandbox.url}/v1/bank_statements/${day}?currency=USD`)).text();
    await fs.mkdir(path.join(inbox, 'sandbox-bank'));
    await fs.writeFile(path.join(inbox, 'sandbox-bank', 'statement.xml'), statement);
    await fs.writeFile(path.join(inbox, 'garbage.sta'), ':20:NOT A STATEMENT\n');
    await fs.writeFile(path.join(inbox, 'arriving.xml'), '<Document');
    // Copied in a minute ago, and (the last) still being copied in now.
    const minuteAgo = new Date(Date.now() - 60_000);
    for (const file of ['sandbox-bank/statement.xml', 'garbage.sta']) await fs.utimes(path.join(inbox, file), minuteAgo, minuteAgo);
    nextDayAt(1, 59);

    const early = await schedule.runDue();
    advanceClock(120_000);
    const run = await schedule.runDue();
    const again = await schedule.runDue();

    expect(early).toBeUndefined();
    expect(run).toMatchObject({ asOf: utcDay(nowMs()), counts: { matched: { ledger_psp: 1, psp_bank: 1 },
      breaks_opened: {} } });
    expect(again).toBeUndefined();
    const files = await penny.pool.query('SELECT source, format FROM reconciliation_files ORDER BY source');
    expect(files.rows).toEqual([{ source: 'sandbox', format: 'adyen_sdr' }, { source: 'sandbox-bank', format: 'camt053' }]);
    expect((await fs.readdir(path.join(inbox, 'imported'))).sort()).toEqual(['sandbox-bank__statement.xml']);
    expect(await fs.readdir(path.join(inbox, 'refused'))).toEqual(['garbage.sta']);
    expect(await fs.readdir(path.join(inbox, 'sandbox-bank'))).toEqual([]);
    expect(await fs.readdir(inbox)).toContain('arriving.xml');
  });

  it('asks a PSP that cannot be reached once a run, not once per day and currency', async () => {
    const sandbox = penny.sandbox.connector;
    let fetches = 0;
    const connectors = new ConnectorRegistry();
    connectors.register(Object.assign(Object.create(sandbox) as typeof sandbox, {
      fetchSettlementReport: () => {
        fetches += 1;
        return Promise.reject(new Error('connect ECONNREFUSED'));
      } }));
    const unreachable = new ReconciliationSchedule(penny.pool, { connectors, balances: penny.balances,
      imports: new ReconciliationImports(penny.pool), runs: new ReconciliationRuns(penny.pool),
      logger: createLogger('silent'), schedule: { hour: 2, minute: 0 }, inbox: undefined });
    nextDayAt(2, 1);
    expect(await unreachable.runDue()).toBeDefined();
    expect(fetches).toBe(1);
  });

  it('catches up the reports of the days Penny missed, and a day imported already adds nothing', async () => {
    const created = await penny.merchants.createMerchant('Catching-up Shop');
    const stripe = penny.stripeFor(created.secretKey);
    const days: string[] = [];
    for (const amount of [4100, 4200]) {
      advanceClock(86_400_000);
      await stripe.paymentIntents.create({ amount, currency: 'usd', payment_method: 'pm_card_visa', confirm: true });
      days.push(utcDay(nowMs()));
      await payOutSettlementBatches(penny.pool, utcDay(nowMs()));
    }
    // Penny was down for three days: the next run is three days after the last capture's.
    advanceClock(2 * 86_400_000);
    nextDayAt(2, 1);
    expect(await schedule.runDue()).toBeDefined();
    nextDayAt(2, 1);
    expect(await schedule.runDue()).toBeDefined();

    const files = await penny.pool.query<{ filename: string; count: number }>(`SELECT filename, count(*)::int AS count
       FROM reconciliation_files WHERE source = 'sandbox' AND filename = ANY($1) GROUP BY filename ORDER BY filename`,
    [days.map((day) => `sandbox-settlement-${day}-USD.csv`)]);
    expect(files.rows).toEqual(days.map((day) => ({ filename: `sandbox-settlement-${day}-USD.csv`, count: 1 })));
  });
});
