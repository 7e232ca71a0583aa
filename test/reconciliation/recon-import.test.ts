import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { stringifyJson } from '../../src/json.js';
import { readAdyenSdr } from '../../src/reconciliation/adyen-sdr.js';
import { readCamt053 } from '../../src/reconciliation/camt053.js';
import { readMt940 } from '../../src/reconciliation/mt940.js';
import { ReconciliationImports, recordJson, SeenExternalIds } from '../../src/reconciliation/recon-import.js';
import { readStripePayoutReconciliation } from '../../src/reconciliation/stripe-payout-reconciliation.js';
import { lockImports, selectRecordRaw, selectRecordWithoutStatement } from '../../src/reconciliation/recon-store.js';
import { rawObject, type ReconFormat } from '../../src/reconciliation/recon-records.js';
import { CsvRow } from '../../src/reconciliation/csv-rows.js';
import { parse as parseCsv } from 'csv-parse/sync';
import { stringify as stringifyCsv } from 'csv-stringify/sync';
import { settlementDetailsReport, type SettledOperation } from '../../src/sandbox-psp/settlement-report.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { fixtures, parseFixture, parseText } from './parse-support.js';

let database: TestDatabase;
let imports: ReconciliationImports;

beforeAll(async () => {
  database = await createTestDatabase(4);
  imports = new ReconciliationImports(database.pool);
});

beforeEach(async () => {
  await database.pool.query(`TRUNCATE reconciliation_files, reconciliation_statements, reconciliation_records,
    reconciliation_record_matches, reconciliation_item_matches, reconciliation_breaks, reconciliation_items,
    reconciliation_runs, reconciliation_closed_files, settlement_report_files, settlement_report_file_attempts`);
});

function fixture(relative: string): string {
  return fs.readFileSync(path.join(fixtures, relative), 'utf8');
}

function importText(text: string, options: { filename?: string; source?: string; format?: ReconFormat } = {}) {
  return imports.importFile({ body: Readable.from([Buffer.from(text, 'utf8')]), filename: options.filename ?? 'file',
    source: options.source, format: options.format });
}

async function tableCounts(): Promise<{ files: number; statements: number; records: number }> {
  const result = await database.pool.query(`SELECT (SELECT count(*)::int FROM reconciliation_files) AS files,
    (SELECT count(*)::int FROM reconciliation_statements) AS statements,
    (SELECT count(*)::int FROM reconciliation_records) AS records`);
  return result.rows[0] as { files: number; statements: number; records: number };
}

/** More records than one chunk of COPY text holds (256 KiB). */
const pastOneChunk = 3000;

const sdrHeader = 'Merchant Account,Psp Reference,Merchant Reference,Type,Modification Reference,Gross Currency,'
  + 'Gross Debit (GC),Gross Credit (GC),Net Currency,Net Debit (NC),Net Credit (NC),Batch Number,Creation Date';

/** An SDR of `rows` Settled lines, more than one write batch, the last line's net amount replaced when asked. */
function largeSdr(rows: number, lastNet = '9.70'): string {
  const lines = [sdrHeader];
  for (let index = 1; index <= rows; index += 1) {
    const net = index === rows ? lastNet : '9.70';
    lines.push(`Shop,psp${index},ch_${index},Settled,psp${index},EUR,,10.00,EUR,,${net},9,2026-03-02 10:00:00`);
  }
  return `${lines.join('\n')}\n`;
}

describe('importing a file', () => {
  it('stores a camt.053 file\'s statements and entries and answers their summary', async () => {
    const summary = await importText(fixture('camt053-genkgo/camt053.v2.multi.statement.xml'), { filename: 'multi.xml' });
    expect(summary).toMatchObject({ object: 'reconciliation.file', format: 'camt053', version: '001.02', source: 'camt053',
      filename: 'multi.xml', already_known: false, records: { total: 2, new: 2, known: 0, conflicting: 0 },
      conflicting_external_records: [], statement_count: 2 });
    expect(summary.id).toMatch(/^rfile_/);
    expect(summary.statements.map((statement) => [statement.statement_ref, statement.entries, statement.balance_check]))
      .toEqual([['253EURNL26VAYB8060476890', 1, 'adds_up'], ['254EURNL26VAYB8060476890', 1, 'adds_up']]);
    const records = await database.pool.query(`SELECT kind, amount_minor, currency, booking_date::text, statement_position,
      refs->>'TxDtls.EndToEndId' AS end_to_end FROM reconciliation_records ORDER BY line`);
    expect(records.rows).toEqual([
      { kind: 'bank_entry', amount_minor: 885n, currency: 'EUR', booking_date: '2014-12-31', statement_position: 0, end_to_end: '000000001' },
      { kind: 'bank_entry', amount_minor: -700n, currency: 'EUR', booking_date: '2014-12-31', statement_position: 1, end_to_end: '000000002' },
    ]);
  });

  it('detects each format from the file\'s first bytes', async () => {
    const cases: [string, string][] = [['camt053-genkgo/camt053.v8.xml', 'camt053'], ['mt940-wolph/jejik/ing.sta', 'mt940'],
      ['mt940-wolph/ASNB/0708271685_09022020_164516.940.txt', 'mt940'], ['mt940-wolph/mBank/mt940.sta', 'mt940'],
      ['psp/adyen-sdr-batch-17.csv', 'adyen_sdr'], ['psp/stripe-payout-reconciliation.csv', 'stripe_payout_reconciliation']];
    for (const [file, format] of cases) {
      expect((await importText(fixture(file), { filename: file })).format, file).toBe(format);
    }
  });

  it('refuses a file of no format it reads, and one that is not the format it was told', async () => {
    await expect(importText('hello,world\n1,2\n', { filename: 'other.csv' })).rejects.toMatchObject({
      code: 'reconciliation_file_invalid', details: { file: 'other.csv', field: 'format' } });
    await expect(importText(fixture('psp/adyen-sdr-batch-17.csv'), { format: 'stripe_payout_reconciliation' }))
      .rejects.toThrow(/lacks the columns/);
    expect(await tableCounts()).toEqual({ files: 0, statements: 0, records: 0 });
  });

  it('writes the statements of a file with more than a hundred, between the COPYs of their entries', async () => {
    const text = fixture('mt940-wolph/betterplace/sepa_mt9401.sta');
    const summary = await importText(Array.from({ length: 5 }, () => text).join('\n'), { filename: 'five.sta' });
    expect(summary).toMatchObject({ statement_count: 130,
      records: { total: 485, new: 485, known: 0, conflicting: 0 } });
    expect(await tableCounts()).toEqual({ files: 1, statements: 130, records: 485 });
    const positions = await database.pool.query(`SELECT count(DISTINCT statement_position)::int AS n,
      max(statement_position) AS last FROM reconciliation_records`);
    expect(positions.rows[0]).toEqual({ n: 130, last: 129 });
  });

  it('imports a statement that does not add up and reports both balances and the difference', async () => {
    const summary = await importText(fixture('mt940-wolph/jejik/abnamro.sta'), { filename: 'abnamro.sta' });
    expect(summary.records.total).toBe(10);
    expect(summary.statements.map((statement) => ({ ref: statement.statement_ref, check: statement.balance_check,
      opening: statement.opening_balance?.amount_minor, closing: statement.closing_balance?.amount_minor,
      expected: statement.expected_closing_minor, difference: statement.difference_minor }))).toEqual([
      { ref: 'ABN AMRO BANK NV/19321/1', check: 'mismatch', opening: 323628n, closing: 87684n, expected: 291484n, difference: -203800n },
      { ref: 'ABN AMRO BANK NV/19322/1', check: 'mismatch', opening: 287684n, closing: 184975n, expected: 285235n, difference: -100260n },
    ]);
    const stored = await database.pool.query(`SELECT account, currency, balance_check, opening_balance_minor,
      closing_balance_minor, expected_closing_minor FROM reconciliation_statements ORDER BY position`);
    expect(stored.rows[0]).toEqual({ account: '517852257', currency: 'EUR', balance_check: 'mismatch',
      opening_balance_minor: 323628n, closing_balance_minor: 87684n, expected_closing_minor: 291484n });
  });

  it('marks a statement whose balances cannot be checked, with the reason, and imports it', async () => {
    const summary = await importText(fixture('camt053-genkgo/camt053.v2.minimal.xml'));
    expect(summary.statements[0]).toMatchObject({ balance_check: 'not_checkable', expected_closing_minor: null,
      reason: 'the closing booked balance is in SEK, not the account\'s EUR' });
  });
});

describe('idempotency', () => {
  it('adds nothing when the same file is imported twice, and answers the first import', async () => {
    const text = fixture('mt940-wolph/betterplace/sepa_mt9401.sta');
    const first = await importText(text, { filename: 'sepa.sta' });
    const before = await tableCounts();
    expect(before).toEqual({ files: 1, statements: 26, records: 97 });
    const second = await importText(text, { filename: 'again.sta', source: 'other-bank' });
    expect(second).toMatchObject({ id: first.id, already_known: true, filename: 'sepa.sta', records: first.records });
    expect(await tableCounts()).toEqual(before);
  });

  it('counts the records of another file it knows already, and adds none of them', async () => {
    const text = fixture('psp/adyen-sdr-batch-17.csv');
    await importText(text, { source: 'adyen-eur' });
    const reexport = `${text}\n`;
    const summary = await importText(reexport, { source: 'adyen-eur' });
    expect(summary).toMatchObject({ already_known: false, records: { total: 10, new: 0, known: 10, conflicting: 0 } });
    expect((await tableCounts()).records).toBe(10);
  });

  it('keeps a known record with other content as a conflicting version, beside the first, and reports it', async () => {
    const text = fixture('psp/adyen-sdr-batch-17.csv');
    await importText(text, { source: 'adyen-eur' });
    const changed = text.replace(',97.60,', ',97.50,');
    const summary = await importText(changed, { source: 'adyen-eur', filename: 'changed.csv' });
    expect(summary.records).toEqual({ total: 10, new: 0, known: 9, conflicting: 1 });
    expect(summary.conflicting_external_records).toEqual([expect.objectContaining({
      external_id: 'PennyShopEUR|17|Settled|8815000000000001|8815000000000001', occurrence: 1, line: 2 })]);
    const versions = await database.pool.query(`SELECT amount_minor, conflicts_with_record_id IS NULL AS first
      FROM reconciliation_records WHERE external_id = $1 ORDER BY id`, [summary.conflicting_external_records[0]?.external_id]);
    expect(versions.rows).toEqual([{ amount_minor: 9760n, first: true }, { amount_minor: 9750n, first: false }]);
    expect(summary.conflicting_external_records[0]?.conflicts_with).toBe(
      (await database.pool.query('SELECT min(id) AS id FROM reconciliation_records')).rows[0].id);
    // The same conflicting file again is known, and the changed record once more adds no third version.
    expect((await importText(changed, { source: 'adyen-eur' })).already_known).toBe(true);
    expect((await importText(`${changed}\n`, { source: 'adyen-eur' })).records).toEqual(
      { total: 10, new: 0, known: 10, conflicting: 0 });
  });

  it('scopes external ids by source: the same report under another source is new', async () => {
    const text = fixture('psp/adyen-sdr-batch-17.csv');
    await importText(text, { source: 'adyen-eur' });
    const summary = await importText(`${text}\n`, { source: 'adyen-eur-2' });
    expect(summary.records.new).toBe(10);
  });

  it('keeps both lines of a duplicated report line, as occurrences 1 and 2 of one external id', async () => {
    const operation: SettledOperation = { pspReference: 'psp_1', merchantReference: 'ch_1', kind: 'capture',
      amountMinor: 1000n, currency: 'EUR', paymentMethod: 'visa', createdAt: '2026-03-02T10:00:00Z' };
    const batch = settlementDetailsReport({ companyAccount: 'Sandbox', merchantAccount: 'SandboxMerchant', batchNumber: 3,
      settlementDate: '2026-03-02', currency: 'EUR', priceList: { basisPoints: 290, fixedMinor: 30n },
      operations: [operation], discrepancies: [{ kind: 'duplicate_line' }] });
    const summary = await importText(batch.csv, { source: 'sandbox' });
    expect(summary.records).toEqual({ total: 3, new: 3, known: 0, conflicting: 0 });
    const rows = await database.pool.query(`SELECT occurrence FROM reconciliation_records WHERE type = 'Settled' ORDER BY line`);
    expect(rows.rows).toEqual([{ occurrence: 1 }, { occurrence: 2 }]);
  });

  it('numbers the occurrences of a line repeated past one chunk of COPY text, in file order', async () => {
    const lines = largeSdr(3).split('\n');
    const repeated = [lines[0], lines[2], ...Array.from({ length: pastOneChunk }, () => lines[1]), lines[3], ''].join('\n');
    const summary = await importText(repeated);
    expect(summary.records.new).toBe(pastOneChunk + 2);
    const range = await database.pool.query(`SELECT min(occurrence), max(occurrence), count(DISTINCT occurrence)::int AS n,
        bool_and(occurrence = line - 2) AS in_order
      FROM reconciliation_records WHERE psp_reference = 'psp1'`);
    expect(range.rows[0]).toEqual({ min: 1, max: pastOneChunk, n: pastOneChunk, in_order: true });
    const others = await database.pool.query(`SELECT psp_reference, occurrence FROM reconciliation_records
      WHERE psp_reference <> 'psp1' ORDER BY line`);
    expect(others.rows).toEqual([{ psp_reference: 'psp2', occurrence: 1 }, { psp_reference: 'psp3', occurrence: 1 }]);
  });

  it('classifies a large file whose only known record, with other content, comes after thousands of new ones', async () => {
    await importText(largeSdr(pastOneChunk), { filename: 'first.csv' });
    const fresh = largeSdr(pastOneChunk).replaceAll('psp', 'qsp').replaceAll('ch_', 'cq_');
    const changedLast = `Shop,psp${pastOneChunk},ch_${pastOneChunk},Settled,psp${pastOneChunk},EUR,,10.00,EUR,,9.60,9,`
      + '2026-03-02 10:00:00\n';
    const summary = await importText(fresh + changedLast, { filename: 'second.csv' });
    expect(summary.records).toEqual({ total: pastOneChunk + 1, new: pastOneChunk, known: 0, conflicting: 1 });
    expect(summary.conflicting_external_records).toEqual([expect.objectContaining({ line: pastOneChunk + 2 })]);
    expect((await tableCounts()).records).toBe(2 * pastOneChunk + 1);
  });

  it('adds nothing for a re-export whose lines repeat, and records a changed repeat as conflicting', async () => {
    const lines = largeSdr(3).split('\n');
    const text = [lines[0], lines[1], lines[1], lines[2], ''].join('\n');
    await importText(text);
    expect((await importText(`${text}\n`)).records).toEqual({ total: 3, new: 0, known: 3, conflicting: 0 });
    const changed = [lines[0], lines[1], lines[1]?.replace(',9.70,', ',9.60,'), lines[2], ''].join('\n');
    const summary = await importText(changed);
    expect(summary.records).toEqual({ total: 3, new: 0, known: 2, conflicting: 1 });
    expect(summary.conflicting_external_records).toEqual([expect.objectContaining({ occurrence: 2, line: 3 })]);
    expect((await tableCounts()).records).toBe(4);
  });
});

describe('the upload', () => {
  it('holds no pool connection and no import lock while the body is still arriving', async () => {
    const text = largeSdr(400);
    const firstPart = Buffer.from(text.slice(0, 20_000));
    const body = new PassThrough();
    let bytesRead = 0;
    const importing = imports.importFile({ body, filename: 'slow.csv', onProgress: (bytes) => { bytesRead = bytes; } });
    try {
      body.write(firstPart);
      while (bytesRead < firstPart.length) await sleep(10);
      // Time enough for an import that would read the body inside its transaction to have begun it.
      await sleep(300);
      expect(database.pool.totalCount - database.pool.idleCount).toBe(0);
      const locks = await database.pool.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'");
      expect(locks.rows[0]).toEqual({ n: 0 });
    } finally {
      body.end(Buffer.from(text.slice(20_000)));
    }
    expect((await importing).records.new).toBe(400);
  });

  it('answers a known file with the first import, without parsing or writing it, even while another import runs', async () => {
    const text = fixture('psp/adyen-sdr-batch-17.csv');
    const first = await importText(text, { filename: 'first.csv', source: 'adyen-eur' });
    const before = await tableCounts();
    const other = await database.pool.connect();
    try {
      await other.query('BEGIN');
      await lockImports(other);
      const again = await Promise.race([importText(text, { filename: 'again.csv' }),
        sleep(5000).then(() => 'waited for the running import')]);
      expect(again).toEqual({ ...first, already_known: true });
      expect(await tableCounts()).toEqual(before);
    } finally {
      await other.query('ROLLBACK');
      other.release();
    }
  });
});

describe('all or nothing', () => {
  const cases: [string, () => string, RegExp][] = [
    ['broken XML after whole statements', () => fixture('camt053-genkgo/camt053.v2.multi.statement.xml')
      .replace('</Document>', ''), /not well-formed XML/],
    ['a missing column', () => largeSdr(3).replace(',Net Currency', ''), /lacks the column Net Currency/],
    ['a bad amount after a chunk of COPY text sent', () => largeSdr(pastOneChunk, '9.7O'),
      new RegExp(`line ${pastOneChunk + 1} \\(Net Credit \\(NC\\)\\)`)],
    ['30 February after good statements', () => `${fixture('mt940-wolph/jejik/abnamro.sta')}\n`
      + fixture('mt940-wolph/self-provided/february_30.sta'), /"160230" is not a date/],
  ];
  for (const [name, text, message] of cases) {
    it(`refuses a file with ${name} whole, and writes nothing`, async () => {
      await expect(importText(text(), { filename: 'bad-file' })).rejects.toMatchObject({
        code: 'reconciliation_file_invalid', message: expect.stringMatching(message) });
      expect(await tableCounts()).toEqual({ files: 0, statements: 0, records: 0 });
    });
  }

  it('refuses the 30 February sample, naming the file, line and field', async () => {
    await expect(importText(fixture('mt940-wolph/self-provided/february_30.sta'), { filename: 'february_30.sta' }))
      .rejects.toMatchObject({ details: { file: 'february_30.sta', line: 6, field: ':61:' } });
  });

  it('refuses a file over the size bound, and writes nothing', async () => {
    const small = new ReconciliationImports(database.pool, { fileBytesMax: 4096 });
    const text = largeSdr(100);
    await expect(small.importFile({ body: Readable.from([Buffer.from(text)]), filename: 'big.csv' }))
      .rejects.toMatchObject({ code: 'request_too_large' });
    expect(await tableCounts()).toEqual({ files: 0, statements: 0, records: 0 });
    const fits = await small.importFile({ body: Readable.from([Buffer.from(largeSdr(10))]), filename: 'small.csv' });
    expect(fits.records.new).toBe(10);
  });

  it('refuses a source that is not a name', async () => {
    await expect(importText('x', { source: 'Not A Name' })).rejects.toMatchObject({ code: 'parameter_invalid', param: 'source' });
  });
});

describe('a record\'s statement', () => {
  it('is found missing when a record names a position its file has no statement at', async () => {
    const summary = await importText(fixture('camt053-genkgo/camt053.v8.xml'), { filename: 'camt.xml' });
    expect(await selectRecordWithoutStatement(database.pool, summary.id)).toBeUndefined();
    const placed = await database.pool.query(`UPDATE reconciliation_records SET statement_position = 99
      WHERE id = (SELECT min(id) FROM reconciliation_records WHERE file_id = $1) RETURNING line`, [summary.id]);
    expect(await selectRecordWithoutStatement(database.pool, summary.id)).toBe(placed.rows[0].line);
  });
});

/** A CSV row's content hash as migration 0042 defines it, from its values by column name. */
function csvContentSha256(values: Readonly<Record<string, unknown>>): string {
  const names = Object.keys(values).sort((left, right) => Buffer.compare(Buffer.from(left), Buffer.from(right)));
  const namesSha256 = createHash('sha256').update(names.join('\u0000')).digest('hex');
  return createHash('sha256').update(`${namesSha256}\n${names.map((name) => values[name]).join('\u0000')}`).digest('hex');
}

describe('a record\'s content hash', () => {
  it('is, for a CSV row, the SHA-256 of its values by column name, and its raw fields the values in file order', async () => {
    const samples = [
      await parseFixture(readAdyenSdr, 'psp/adyen-sdr-batch-17.csv'),
      await parseFixture(readStripePayoutReconciliation, 'psp/stripe-payout-reconciliation.csv'),
    ];
    const records = samples.flatMap((sample) => sample.records);
    expect(records.length).toBeGreaterThan(10);
    for (const record of records) {
      const values = rawObject(record.raw);
      expect(recordJson(record, 'file')).toMatchObject({ contentSha256: csvContentSha256(values),
        raw: JSON.stringify(Object.values(values)) });
    }
  });

  it('is the same for a re-export with its columns in another order and quoted otherwise', async () => {
    const text = fixture('psp/adyen-sdr-batch-17.csv');
    const rows = parseCsv(text, { bom: true, skip_empty_lines: true }) as string[][];
    const order = (rows[0] as string[]).map((_, index) => index).reverse();
    const reexport = stringifyCsv(rows.map((row) => order.map((index) => row[index])), { quoted: true });
    const hashes = async (csv: string) => (await parseText(readAdyenSdr, csv)).records
      .map((record) => recordJson(record, 'file').contentSha256);
    expect(await hashes(reexport)).toEqual(await hashes(text));
    expect(reexport).not.toBe(text);
  });

  it('differs for a CSV row whose value moves to another column, and keeps values JSON escapes', async () => {
    const [record] = (await parseFixture(readAdyenSdr, 'psp/adyen-sdr-batch-17.csv')).records;
    const row = record!.raw as CsvRow;
    const hashOf = (values: string[]) => recordJson({ ...record!, raw: new CsvRow(row.line, row.header, values) }, 'f');
    const swapped = [...row.values];
    [swapped[0], swapped[1]] = [`${row.values[0]}${row.values[1]}`, ''];
    expect(hashOf(swapped).contentSha256).not.toBe(hashOf([...row.values]).contentSha256);
    for (const odd of ['say "hi"', 'C:\\temp', 'two\nlines\ttab', 'ctl \u0001', 'lone \ud800 half', 'ok \u2028 é 😀']) {
      const values = [odd, ...row.values.slice(1)];
      const byName = Object.fromEntries(row.header.names.map((name, index) => [name, values[index]]));
      expect(hashOf(values)).toMatchObject({ raw: JSON.stringify(values), contentSha256: csvContentSha256(byName) });
    }
    expect(() => hashOf(['nul \u0000 here', ...row.values.slice(1)])).toThrow(/NUL/);
  });

  it('is, for a bank entry, the SHA-256 of the record\'s JSON without line and statement position', async () => {
    const samples = [
      await parseFixture(readCamt053, 'camt053-genkgo/camt053.v8.xml'),
      await parseFixture(readMt940, 'mt940-wolph/betterplace/sepa_mt9401.sta'),
    ];
    const records = samples.flatMap((sample) => sample.records);
    expect(records.length).toBeGreaterThan(20);
    for (const record of records) {
      const stored = createHash('sha256')
        .update(stringifyJson({ ...record, line: undefined, statementPosition: undefined })).digest('hex');
      expect(recordJson(record, 'file').contentSha256).toBe(stored);
    }
  });

  it('is, for a bank entry, the same for values JSON escapes: quotes, backslashes, controls, lone surrogates', async () => {
    const [record] = (await parseFixture(readCamt053, 'camt053-genkgo/camt053.v8.xml')).records;
    const raw = rawObject(record!.raw);
    for (const odd of ['say "hi"', 'C:\\temp', 'two\nlines\ttab', 'nul-free \u0001', 'lone \ud800 half', 'ok \u2028 é 😀']) {
      const changed = { ...record!, type: odd, merchantReference: odd, raw: { ...raw, Type: odd },
        references: { ...record!.references, [odd]: odd } };
      const stored = createHash('sha256')
        .update(stringifyJson({ ...changed, line: undefined, statementPosition: undefined })).digest('hex');
      expect(recordJson(changed, 'file').contentSha256).toBe(stored);
    }
  });
});

describe('a CSV record\'s raw fields', () => {
  it('read back as the object by column name the file had, in its column order', async () => {
    const text = fixture('psp/adyen-sdr-batch-17.csv');
    const summary = await importText(text, { filename: 'sdr.csv' });
    const expected = parseCsv(text, { bom: true, skip_empty_lines: true, columns: true, trim: true }) as
      Record<string, string>[];
    const ids = await database.pool.query<{ id: bigint }>(
      'SELECT id FROM reconciliation_records WHERE file_id = $1 ORDER BY line', [summary.id]);
    const raws = await Promise.all(ids.rows.map((row) => selectRecordRaw(database.pool, row.id)));
    expect(raws).toEqual(expected);
    expect(Object.keys(raws[0]!)).toEqual(Object.keys(expected[0]!));
  });
});

describe('the external ids an import has seen', () => {
  it('answers certainly new for an id not added, maybe seen for one added, and maybe for all once full', () => {
    const seen = new SeenExternalIds(1 << 16);
    const ids = Array.from({ length: 30_000 }, (_, index) => `Shop|${index}|Settled|psp${index}|`);
    expect(ids.filter((id) => seen.add(id)).length).toBeLessThan(30);
    expect(ids.every((id) => seen.add(id))).toBe(true);
    for (let index = 30_000; index < 40_000; index += 1) seen.add(`Shop|${index}`);
    expect(seen.add('never added')).toBe(true);
  });
});
