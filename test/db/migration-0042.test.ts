import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { parse as parseCsv } from 'csv-parse/sync';
import { stringify as stringifyCsv } from 'csv-stringify/sync';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { listMigrationFiles, migrate } from '../../src/db/migrate.js';
import { createPool, ensureDatabase, withDatabase } from '../../src/db/pool.js';
import { readAdyenSdr } from '../../src/reconciliation/adyen-sdr.js';
import { ReconciliationImports } from '../../src/reconciliation/recon-import.js';
import { rawObject } from '../../src/reconciliation/recon-records.js';
import { fixtures, parseFixture } from '../reconciliation/parse-support.js';

/**
 * Upgrading reconciliation records that exist: 0042 gives a CSV record's content hash its second
 * version (its values by column name), recomputed for the records stored with the first (the
 * whole record's JSON), so a report imported before is still known when imported again.
 */
describe('migration 0042 on CSV records imported under 0039', () => {
  const name = `penny_test_${inject('templateDatabase').split('_').at(-1)}_upgrade42_${randomBytes(6).toString('hex')}`;
  const url = withDatabase(inject('serverUrl'), name);
  const pool = createPool({ connectionString: url, sizeMax: 2 });
  afterAll(async () => {
    await pool.end();
  });

  it('recomputes their content hashes, so a re-export of the report adds nothing and conflicts with nothing', async () => {
    // The migrations before 0042, however many land before it.
    const migrationsBefore0042 = (await listMigrationFiles()).findIndex((file) => file.startsWith('0042_'));
    expect(migrationsBefore0042).toBeGreaterThan(30);
    await ensureDatabase(inject('serverUrl'), name);
    await migrate(url, undefined, { count: migrationsBefore0042 });
    const relative = 'psp/adyen-sdr-batch-17.csv';
    const { records } = await parseFixture(readAdyenSdr, relative);
    await pool.query(`INSERT INTO reconciliation_files (id, source, format, filename, content_sha256, size_bytes,
        line_count, record_count, new_record_count, known_record_count, conflicting_record_count)
      VALUES ('rfile_before0042', 'adyen', 'adyen_sdr', 'sdr.csv', $1, 1, $2, $2, $2, 0, 0)`,
    ['a'.repeat(64), records.length]);
    for (const record of records) {
      // A first-version hash: the SHA-256 of the whole record's JSON, which the migration replaces.
      await pool.query(`INSERT INTO reconciliation_records (file_id, source, kind, line, external_id, occurrence,
          content_sha256, type, currency, amount_minor, raw)
        VALUES ('rfile_before0042', 'adyen', 'psp_line', $1, $2, 1, $3, $4, $5, $6, $7::json)`,
      [record.line, record.externalId, randomBytes(32).toString('hex'), record.type, record.currency,
        record.amountMinor, JSON.stringify(rawObject(record.raw))]);
    }

    await migrate(url);

    const text = fs.readFileSync(path.join(fixtures, relative), 'utf8');
    const rows = parseCsv(text, { bom: true, skip_empty_lines: true }) as string[][];
    const order = (rows[0] as string[]).map((_, index) => index).reverse();
    const reexport = stringifyCsv(rows.map((row) => order.map((index) => row[index])), { quoted: true });
    const summary = await new ReconciliationImports(pool).importFile({ body: Readable.from([Buffer.from(reexport)]),
      filename: 'sdr-again.csv', source: 'adyen' });
    expect(summary.already_known).toBe(false);
    expect(summary.records).toMatchObject({ total: records.length, new: 0, known: records.length, conflicting: 0 });
  });
});
