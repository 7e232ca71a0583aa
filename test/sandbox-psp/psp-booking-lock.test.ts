import { beforeAll, describe, expect, it } from 'vitest';
import { advanceClock, configureClock, nowIso } from '../../src/clock.js';
import { createPool } from '../../src/db/pool.js';
import { lockBookings, selectOperationsOfDay } from '../../src/sandbox-psp/psp-store.js';
import { createTestDatabase } from '../support/database.js';
import { startTestSandboxPsp, type TestSandboxPsp } from '../support/sandbox-psp.js';
import { capturedCharge } from './psp-test-helpers.js';

/**
 * Closing a day reads it under the bookings' exclusive lock: a booking that waits for the close
 * is dated after it, so the day read is the day paid, whatever arrives while it is read.
 */
let sandbox: TestSandboxPsp;
let databaseUrl: string;

beforeAll(async () => {
  configureClock('controlled');
  databaseUrl = (await createTestDatabase()).url;
  sandbox = await startTestSandboxPsp(databaseUrl);
});

describe('a booking that waits for a day\'s close', () => {
  it('is dated after the close, never in the day already read', async () => {
    const pool = createPool({ connectionString: databaseUrl, sizeMax: 2, applicationName: 'penny-test-close' });
    const holder = await pool.connect();
    try {
      const day = nowIso().slice(0, 10);
      await holder.query('BEGIN');
      await lockBookings(holder);
      const booking = capturedCharge(sandbox);
      // The booking is under way: it waits for the bookings' shared lock the close holds.
      for (let look = 0; look < 200; look += 1) {
        const waiting = await pool.query(`SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`);
        if (waiting.rowCount !== 0) break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      advanceClock(86_400_000);
      const read = await selectOperationsOfDay(holder, day);
      await holder.query('COMMIT');
      const booked = await booking;
      const after = await selectOperationsOfDay(pool, day);
      expect(after.map((operation) => operation.pspReference)).toEqual(read.map((operation) => operation.pspReference));
      expect(after.map((operation) => operation.pspReference)).not.toContain(booked.pspReference);
    } finally {
      holder.release();
      await pool.end();
    }
  });
});
