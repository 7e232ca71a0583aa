import { beforeAll, describe, expect, it } from 'vitest';
import { SandboxConnector } from '../../src/connectors/sandbox/sandbox-connector.js';
import type { AuthorizeInput } from '../../src/connectors/connector.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/** The sandbox PSP's own record is the ground truth: a repeated key answers what was done first. */
let database: TestDatabase;
let sandbox: SandboxConnector;

beforeAll(async () => {
  database = await createTestDatabase();
  sandbox = new SandboxConnector(database.pool);
});

function authorization(key: string, paymentMethod: string): AuthorizeInput {
  return {
    reference: `pa_${key}`, idempotencyKey: key, amountMinor: 1000n, currency: 'USD', paymentMethod,
    capture: true, authenticated: false,
  };
}

describe('the sandbox connector', () => {
  it('captures with a test card that succeeds, and declines with one that is declined', async () => {
    expect((await sandbox.authorize(authorization('k-ok', 'pm_card_visa'))).outcome).toBe('captured');
    expect(await sandbox.authorize(authorization('k-no', 'pm_card_chargeDeclinedExpiredCard')))
      .toMatchObject({ outcome: 'declined', code: 'expired_card', declineCode: 'expired_card' });
  });

  it('answers a repeated key with the first outcome and reference, even if asked differently', async () => {
    const first = await sandbox.authorize(authorization('k-repeat', 'pm_card_visa'));
    const again = await sandbox.authorize(authorization('k-repeat', 'pm_card_chargeDeclined'));
    expect(again).toEqual(first);
    const rows = await database.pool.query("SELECT outcome FROM sandbox_psp_operations WHERE idempotency_key = 'k-repeat'");
    expect(rows.rows).toEqual([{ outcome: 'captured' }]);
  });

  it('answers a repeated declined key with the same decline', async () => {
    const first = await sandbox.authorize(authorization('k-declined', 'pm_card_chargeDeclinedInsufficientFunds'));
    const again = await sandbox.authorize(authorization('k-declined', 'pm_card_visa'));
    expect(again).toEqual(first);
    expect(again).toMatchObject({ outcome: 'declined', declineCode: 'insufficient_funds' });
  });
});
