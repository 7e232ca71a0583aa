import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { fixtures } from './parse-support.js';
import { runNodeCli, type CliRun } from '../support/cli.js';

/** `penny recon import` as an operator runs it: the built bin, straight on the database. */
const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'src', 'cli', 'penny.js');

let database: TestDatabase;
let environment: NodeJS.ProcessEnv;

beforeAll(async () => {
  database = await createTestDatabase(2);
  environment = { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: database.url,
    PENNY_DATA_DIR: await fs.mkdtemp(path.join('/var/tmp', 'penny-recon-cli-')) };
});

function penny(args: string[]): Promise<CliRun> {
  return runNodeCli(bin, args, environment);
}

describe('penny recon import', () => {
  it('prints one JSON summary: id, format and version, statements, line counts, already_known', async () => {
    const file = path.join(fixtures, 'camt053-genkgo/camt053.v8.xml');
    const first = await penny(['recon', 'import', file, '--source', 'bank-eur', '--json']);
    expect(first.code).toBe(0);
    const summary = JSON.parse(first.stdout);
    expect(summary).toMatchObject({ object: 'reconciliation.file', format: 'camt053', version: '001.08', source: 'bank-eur',
      filename: 'camt053.v8.xml', already_known: false, records: { total: 1, new: 1 }, statement_count: 1,
      statements: [expect.objectContaining({ balance_check: 'not_checkable', entries: 1 })] });
    expect(summary.lines).toBeGreaterThan(100);
    const second = await penny(['recon', 'import', file, '--json']);
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ id: summary.id, already_known: true });
  });

  it('says in words what it imported without --json', async () => {
    const run = await penny(['recon', 'import', path.join(fixtures, 'mt940-wolph/jejik/rabobank.sta')]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/rabobank\.sta: mt940, \d+ lines, 5 records \(5 new, 0 known, 0 conflicting\)/);
    expect(run.stdout).toContain('statement 940A110615/00000/00 (1291.99.348EUR): 1 entries, mismatch by 113593 minor units');
  });

  it('exits 1 on a malformed file, naming the file, line and field, and imports nothing', async () => {
    const file = path.join(fixtures, 'mt940-wolph/self-provided/february_30.sta');
    const run = await penny(['recon', 'import', file, '--json']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('february_30.sta, line 6 (:61:): "160230" is not a date');
    expect(JSON.parse(run.stdout).error).toMatchObject({ code: 'reconciliation_file_invalid' });
    const files = await database.pool.query(`SELECT count(*)::int AS n FROM reconciliation_files WHERE filename = 'february_30.sta'`);
    expect(files.rows[0]).toEqual({ n: 0 });
  });

  it('exits 1 on a --format it does not know, and on a file that is not there', async () => {
    const run = await penny(['recon', 'import', path.join(fixtures, 'mt940-wolph/jejik/ing.sta'), '--format', 'pdf']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/--format must be one of/);
    const missing = await penny(['recon', 'import', path.join(fixtures, 'no-such-file.sta')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no-such-file\.sta/);
  });
});
