import { beforeAll, describe, expect, it } from 'vitest';
import { ReconciliationRuns } from '../../src/reconciliation/recon-run.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * A run closes the files it has left nothing open in, and later runs read only the files still
 * open (migration 0052): a run costs the reports still open, not the history. A line dated after
 * a run's day, or one that stays a break, keeps its file open.
 */
let database: TestDatabase;
let runs: ReconciliationRuns;

beforeAll(async () => {
  database = await createTestDatabase(4);
  runs = new ReconciliationRuns(database.pool);
});

async function file(id: string): Promise<void> {
  await database.pool.query(`INSERT INTO reconciliation_files (id, source, format, filename, content_sha256,
      size_bytes, line_count, record_count, new_record_count, known_record_count, conflicting_record_count)
    VALUES ($1, 'sandbox', 'adyen_sdr', $1 || '.csv', encode(sha256($1::bytea), 'hex'), 1, 1, 1, 1, 0, 0)`, [id]);
}

/** A Settled line of `fileId` for charge `reference`, booked on `day`; with its item when `booked`. */
async function settled(fileId: string, line: number, reference: string, day: string, booked: boolean): Promise<void> {
  await database.pool.query(`INSERT INTO reconciliation_records (file_id, source, kind, line, external_id, occurrence,
      content_sha256, type, currency, amount_minor, gross_minor, gross_currency, fee_minor, booking_date,
      psp_reference, merchant_reference)
    VALUES ($1, 'sandbox', 'psp_line', $2, 'M|' || $3, 1, repeat('e', 64), 'Settled', 'EUR', 980, 1000, 'EUR', 20,
      $4, 'psp_' || $3, $3)`, [fileId, line, reference, day]);
  if (!booked) return;
  await database.pool.query(`INSERT INTO reconciliation_items (kind, reference, merchant_id, owner_id, connector,
      psp_reference, currency, gross_minor, fee_minor, day, due_by)
    VALUES ('capture', $1, 'acct_closed', 'acct_closed', 'sandbox', 'psp_' || $1, 'EUR', 1000, 20, $2,
      ($2::date + 3))`, [reference, day]);
}

async function closed(): Promise<string[]> {
  const result = await database.pool.query<{ file_id: string }>(
    'SELECT file_id FROM reconciliation_closed_files ORDER BY file_id');
  return result.rows.map((row) => row.file_id);
}

describe('a reconciliation run', () => {
  it('closes a file once every line is matched, one dated after its day only when a later run matches it', async () => {
    await file('rfile_closedaaaa1');
    await settled('rfile_closedaaaa1', 1, 'ch_closed_now', '2026-03-02', true);
    await settled('rfile_closedaaaa1', 2, 'ch_closed_later', '2026-03-09', true);
    await file('rfile_closedbbbb1');
    await settled('rfile_closedbbbb1', 1, 'ch_closed_unbooked', '2026-03-02', false);

    const first = await runs.run({ asOf: '2026-03-03' });
    expect(first.counts.lines_considered).toBe(2);
    expect(await closed()).toEqual([]);

    const second = await runs.run({ asOf: '2026-03-10' });
    expect(second.counts.matched.ledger_psp).toBe(1);
    // The unbooked line is a break by now, and keeps its file open.
    expect(await closed()).toEqual(['rfile_closedaaaa1']);

    const third = await runs.run({ asOf: '2026-03-11' });
    // Only the open file's line is open; the closed file is not read (bench:recon-history measures the saving).
    expect(third.counts.lines_considered).toBe(1);
  });

  it('can rely on what made a record open staying as imported: an update of its day or version is refused', async () => {
    await file('rfile_closedcccc1');
    await settled('rfile_closedcccc1', 1, 'ch_closed_kept', '2026-03-02', false);
    for (const change of ["booking_date = '2026-04-01'", "kind = 'bank_entry'", "file_id = 'rfile_closedaaaa1'",
      'conflicts_with_record_id = id']) {
      await expect(database.pool.query(`UPDATE reconciliation_records SET ${change}
        WHERE file_id = 'rfile_closedcccc1'`)).rejects.toThrow(/kept as imported/);
    }
  });
});
