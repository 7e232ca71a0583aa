import { describe, expect, it } from 'vitest';
import { checkRun, type CheckResult } from '../../src/simulate/simulation-checker.js';
import { faultKinds } from '../../src/simulate/simulation-faults.js';
import { runSimulation, simulationFailed, type SimulationOptions } from '../../src/simulate/simulation.js';

/**
 * `penny simulate` in `npm test`: short fixed seeds under every fault must end with every figure
 * 0 and no violation; and the checker, given a run it has passed, must fail it once its state is
 * tampered with the way a bug would (a test that cannot fail is a defect). The soak (`npm run
 * soak`) runs long random seeds.
 */
const shortRun: SimulationOptions = {
  seed: 0, payments: 30, durationMs: 12_000, faults: new Set(faultKinds), clients: 6, sellers: 2,
  settleMs: 60_000, replaysMax: 20, keep: false,
};
const runTimeoutMs = 240_000;

function describeFailure(result: Awaited<ReturnType<typeof runSimulation>>): string {
  return `seed ${result.seed}: ${JSON.stringify({ ...result, violations: result.violations.slice(0, 3) })}`;
}

describe('penny simulate', () => {
  // Seed 7 starts ten minutes before midnight on the controlled clock, so its days turn while it
  // settles: the late settlements of a payout dated by the database's day showed only then.
  for (const [seed, startBeforeMidnightMs] of [[20261207, undefined], [7, 600_000]] as const) {
    it(`seed ${seed} under every fault acknowledges nothing it loses, applies nothing it refuses, and doubles nothing`
      + (startBeforeMidnightMs === undefined ? '' : ', with its days turning while it settles'), async () => {
        const result = await runSimulation({ ...shortRun, seed, startBeforeMidnightMs });
        expect(simulationFailed(result), describeFailure(result)).toBe(false);
        expect(result.operations.ok).toBeGreaterThan(0);
        expect(Object.keys(result.faults_injected).length).toBeGreaterThan(1);
      }, runTimeoutMs);
  }

  it('fails a passed run once its state is tampered with: lost, applied, doubled, stored', async () => {
    let tampered: CheckResult | undefined;
    const result = await runSimulation({ ...shortRun, seed: 99, payments: 24, faults: new Set(), durationMs: 6_000 }, {
      inspect: async ({ world, clients, input }) => {
        const told = clients.records.find((record) => record.kind === 'create_payment' && record.outcome === 'ok'
          && (JSON.parse(record.body ?? '{}') as { status?: string }).status === 'succeeded');
        const refused = clients.records.find((record) => record.kind === 'create_payment'
          && record.outcome === 'failed' && record.objectId !== undefined);
        expect(told, 'a succeeded payment').toBeDefined();
        expect(refused, 'a declined payment').toBeDefined();
        await world.pool.query('UPDATE payment_intents SET amount_received = amount_received - 1 WHERE id = $1',
          [told?.objectId]);
        await world.pool.query(
          "UPDATE payment_intents SET status = 'succeeded', amount_received = amount WHERE id = $1", [refused?.objectId]);
        await world.sandboxPool.query(
          `INSERT INTO sandbox_psp_operations (idempotency_key, merchant_reference, kind, psp_reference, amount_minor,
                                               currency, outcome)
           SELECT idempotency_key || ':again', merchant_reference, kind, psp_reference || 'x', amount_minor, currency,
                  outcome
             FROM sandbox_psp_operations WHERE kind = 'authorize' LIMIT 1`);
        await world.pool.query('UPDATE payment_intents SET description = $1 WHERE id = $2',
          ['4242424242424242', told?.objectId]);
        tampered = await checkRun(input);
      },
    });
    expect(simulationFailed(result), describeFailure(result)).toBe(false);
    expect(tampered).toMatchObject({ acknowledgedLost: 1, refusedApplied: 1, duplicateEffects: 1 });
    expect(tampered?.violations.map((violation) => violation.check)).toContain('card_or_secret_stored');
  }, runTimeoutMs);
});
