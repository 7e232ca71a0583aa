import type { Violation } from './simulation-checker.js';
import * as store from './simulation-store.js';
import type { SimulationClients } from './simulation-workload.js';
import type { SimulationWorld } from './simulation-world.js';

/**
 * After the faults: the settling time. Clients retry, under the same keys, every operation whose
 * outcome they do not know; Penny's workers finish what is under way (pending authorizations,
 * webhooks, payouts, recovery), with the controlled clock moved on so that their schedules come
 * due. Bounded by `settleMs`: what is still unsettled then is the checker's `unresolved`.
 */
const retryPauseMs = 250;
const pollMs = 500;
/** Each poll that finds work under way moves the clock this far on, so retry schedules come due. */
const clockStepWhileSettling = '10m';

export async function settleRun(world: SimulationWorld, clients: SimulationClients,
  options: { settleMs: number }): Promise<void> {
  const deadline = Date.now() + options.settleMs;
  for (;;) {
    const open = clients.records.filter((record) => record.outcome === 'indefinite');
    if (open.length === 0 || Date.now() > deadline) break;
    for (const record of open) {
      if (Date.now() > deadline) break;
      await clients.retry(record);
    }
    await sleep(retryPauseMs);
  }
  while (Date.now() < deadline) {
    const work = await store.selectUnsettledWork(world.pool);
    const webhooks = await store.selectUndeliveredPspWebhooks(world.sandboxPool);
    if (work.processing + work.inbox + work.payouts + work.keys + work.recoveries + work.refunds + webhooks === 0n) {
      return;
    }
    await world.advanceClock(clockStepWhileSettling);
    await sleep(pollMs);
  }
}

/**
 * Every day of the run is closed at the sandbox (one more day on the clock, so the last is over),
 * Penny's settlement worker pulls them, and each day's settlement report and bank statement are
 * imported and reconciled. The sandbox's settlement must reconcile with zero breaks.
 */
export async function reconcileRun(world: SimulationWorld, firstDay: string):
Promise<{ count: number; violations: Violation[] }> {
  const { day: lastDay } = await world.advanceDayAndCloseYesterday('required');
  const days = daysBetween(firstDay, lastDay);
  for (const day of days) {
    await world.closeDay(day);
    await world.pullSettlement(day, 'required');
  }
  for (const day of days) {
    const report = await world.sandboxRequest('GET', `/v1/settlement_reports/${day}?currency=USD`);
    if (report.text.length > 0) await importFile(world, report.text, 'sandbox', `sdr-${day}.csv`);
    const statement = await world.sandboxRequest('GET', `/v1/bank_statements/${day}?currency=USD`);
    if (statement.text.length > 0) await importFile(world, statement.text, 'sandbox-bank', `camt-${day}.xml`);
  }
  const run = await world.operator('POST', '/v1/reconciliation/runs', { as_of: lastDay });
  if (run.status !== 201) throw new Error(`the reconciliation run failed: ${JSON.stringify(run.body)}`);
  const breaks = await world.operator('GET', '/v1/reconciliation/breaks?status=open&limit=100');
  const open = (breaks.body as { data?: { id: string; type: string; external_ref: string | null;
    internal_ref: string | null; difference_minor: number }[] }).data ?? [];
  const violations: Violation[] = [];
  for (const item of open) {
    const state = item.internal_ref === null ? 'no internal reference'
      : await store.selectObjectState(world.pool, item.internal_ref);
    violations.push({ check: 'reconciliation_break', message: `${item.type}, difference ${item.difference_minor}; ${state}`,
      objects: [item.id, item.external_ref ?? '', item.internal_ref ?? ''].filter((ref) => ref !== '') });
  }
  return { count: await store.selectOpenBreakCount(world.pool), violations };
}

async function importFile(world: SimulationWorld, text: string, source: string, filename: string): Promise<void> {
  const answer = await world.operator('POST',
    `/v1/reconciliation/files?source=${source}&filename=${encodeURIComponent(filename)}`, text);
  if (answer.status !== 200 && answer.status !== 201) {
    throw new Error(`the import of ${filename} failed: ${JSON.stringify(answer.body)}`);
  }
}

/** The UTC days from `first` to `last`, both included (at most a year). */
function daysBetween(first: string, last: string): string[] {
  const days: string[] = [];
  for (let ms = Date.parse(`${first}T00:00:00Z`); ms <= Date.parse(`${last}T00:00:00Z`) && days.length < 366;
    ms += 86_400_000) {
    days.push(new Date(ms).toISOString().slice(0, 10));
  }
  return days;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
