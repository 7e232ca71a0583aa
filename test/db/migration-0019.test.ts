import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { listMigrationFiles, migrate } from '../../src/db/migrate.js';
import { createPool, ensureDatabase, withDatabase } from '../../src/db/pool.js';

/**
 * Upgrading payments that exist: 0019 records on charges, refunds and recovery jobs the connector
 * their attempt recorded, so follow-ups of a payment made before it stay with that connector.
 */
const migrationsBefore0019 = 18;

describe('migration 0019 on payments written under 0018', () => {
  const name = `penny_test_${inject('templateDatabase').split('_').at(-1)}_upgrade19_${randomBytes(6).toString('hex')}`;
  const url = withDatabase(inject('serverUrl'), name);
  const pool = createPool({ connectionString: url, sizeMax: 2 });
  afterAll(async () => {
    await pool.end();
  });

  it('gives each charge, refund and recovery job its attempt\'s connector', async () => {
    expect((await listMigrationFiles())[migrationsBefore0019]).toMatch(/^0019_/);
    await ensureDatabase(inject('serverUrl'), name);
    await migrate(url, undefined, { count: migrationsBefore0019 });
    await pool.query(`INSERT INTO payment_intents (merchant_id, id, amount, currency, status, capture_method,
        latest_charge) VALUES ('acct_upgrade', 'pi_upgrade0001', 5000, 'usd', 'requires_capture', 'manual',
        'ch_upgrade0001')`);
    await pool.query(`INSERT INTO payment_attempts (merchant_id, id, payment_intent_id, attempt_number, connector,
        psp_idempotency_key, payment_method, status) VALUES ('acct_upgrade', 'pa_upgrade0001', 'pi_upgrade0001', 1,
        'psp_of_old', 'penny:pi_upgrade0001:attempt:1', 'pm_card_visa', 'authorized')`);
    await pool.query(`INSERT INTO charges (merchant_id, id, payment_intent_id, attempt_id, amount, currency, status,
        payment_method, outcome) VALUES ('acct_upgrade', 'ch_upgrade0001', 'pi_upgrade0001', 'pa_upgrade0001', 5000,
        'usd', 'succeeded', 'pm_card_visa', '{}')`);
    await pool.query(`INSERT INTO refunds (merchant_id, id, charge_id, payment_intent_id, amount, currency, status)
        VALUES ('acct_upgrade', 're_upgrade0001', 'ch_upgrade0001', 'pi_upgrade0001', 100, 'usd', 'pending')`);
    const job = (id: string, kind: string, subject: string) => pool.query(`INSERT INTO recovery_jobs (merchant_id, id,
        kind, subject_id, next_run_at) VALUES ('acct_upgrade', $1, $2, $3, now())`, [id, kind, subject]);
    await job('rcv_upgrade0001', 'authorize', 'pa_upgrade0001');
    await job('rcv_upgrade0002', 'capture', 'pi_upgrade0001');
    await job('rcv_upgrade0003', 'refund', 're_upgrade0001');
    await job('rcv_upgrade0004', 'refund', 're_missing0001');

    await migrate(url);

    const connectors = await pool.query<{ id: string; connector: string }>(`
      SELECT id, connector FROM charges UNION ALL SELECT id, connector FROM refunds
      UNION ALL SELECT id, connector FROM recovery_jobs ORDER BY id`);
    expect(connectors.rows).toEqual([
      { id: 'ch_upgrade0001', connector: 'psp_of_old' },
      { id: 'rcv_upgrade0001', connector: 'psp_of_old' },
      { id: 'rcv_upgrade0002', connector: 'psp_of_old' },
      { id: 'rcv_upgrade0003', connector: 'psp_of_old' },
      // Its subject is gone; it names the one connector there was.
      { id: 'rcv_upgrade0004', connector: 'sandbox' },
      { id: 're_upgrade0001', connector: 'psp_of_old' },
    ]);
    await expect(pool.query(`INSERT INTO charges (merchant_id, id, payment_intent_id, attempt_id, amount, currency,
        status, payment_method, outcome) VALUES ('acct_upgrade', 'ch_upgrade0002', 'pi_upgrade0001', 'pa_upgrade0002',
        5000, 'usd', 'failed', 'pm_card_visa', '{}')`)).rejects.toThrow(/connector/);
  });
});
