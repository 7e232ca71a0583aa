import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ReconciliationImports } from '../../src/reconciliation/recon-import.js';
import { ReconciliationRuns } from '../../src/reconciliation/recon-run.js';
import { createTestDatabase } from '../support/database.js';
import { seedScenarioLedger, type ScenarioItem } from './scenario-ledger.js';

/**
 * The reconciliation scenarios of issue 18 ("Tests and benchmark"): one folder each under
 * scenarios/ (see its README.md), played on a fresh database: the ledger side seeded, the files
 * imported in order through ReconciliationImports, then each run compared with the breaks it must
 * open, exactly: a break too many, one missing, or one of another type, leg, reference, currency or
 * amount fails.
 */
const scenariosDirectory = path.join(path.dirname(fileURLToPath(import.meta.url)), 'scenarios');

interface ExpectedBreak {
  readonly type: string;
  readonly leg: 'ledger_psp' | 'psp_bank';
  readonly external_ref: string | null;
  readonly internal_ref: string | null;
  readonly currency: string | null;
  readonly expected_minor: number;
  readonly actual_minor: number;
  readonly difference_minor: number;
}

type Step =
  | { readonly import: string; readonly source: string; readonly already_known?: boolean;
    readonly conflicting?: number }
  | { readonly run: string; readonly breaks: readonly ExpectedBreak[]; readonly counts?: Record<string, unknown>;
    /** The breaks of earlier runs this run resolves by a match (their types). */
    readonly resolves?: readonly string[] };

interface Scenario {
  readonly title: string;
  readonly steps: readonly Step[];
}

interface BreakRow {
  type: string; leg: string; external_ref: string | null; internal_ref: string | null; currency: string | null;
  expected_minor: bigint; actual_minor: bigint; difference_minor: bigint;
}

function readJson<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

function asRow(expected: ExpectedBreak): BreakRow {
  return { type: expected.type, leg: expected.leg, external_ref: expected.external_ref,
    internal_ref: expected.internal_ref, currency: expected.currency, expected_minor: BigInt(expected.expected_minor),
    actual_minor: BigInt(expected.actual_minor), difference_minor: BigInt(expected.difference_minor) };
}

/** Order-independent: both sides sorted by every field. */
function sorted(rows: readonly BreakRow[]): BreakRow[] {
  const key = (row: BreakRow) => JSON.stringify(Object.values(row).map((value) => String(value)));
  return [...rows].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

const scenarioNames = fs.readdirSync(scenariosDirectory, { withFileTypes: true })
  .filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort();

describe('reconciliation scenarios', () => {
  it('has the scenarios, each with its ledger side and steps', () => {
    expect(scenarioNames.length).toBeGreaterThan(0);
    for (const name of scenarioNames) {
      for (const file of ['scenario.json', 'ledger.json']) {
        expect(fs.existsSync(path.join(scenariosDirectory, name, file)), `${name}/${file}`).toBe(true);
      }
    }
  });

  for (const name of scenarioNames) {
    const directory = path.join(scenariosDirectory, name);
    const scenario = readJson<Scenario>(path.join(directory, 'scenario.json'));

    it(`${name}: ${scenario.title}`, async () => {
      const { pool } = await createTestDatabase(3);
      await seedScenarioLedger(pool, readJson<ScenarioItem[]>(path.join(directory, 'ledger.json')));
      const imports = new ReconciliationImports(pool);
      const runs = new ReconciliationRuns(pool);
      for (const [index, step] of scenario.steps.entries()) {
        const where = `${name}, step ${index + 1}`;
        if ('import' in step) {
          const file = path.join(directory, step.import);
          const summary = await imports.importFile({ body: fs.createReadStream(file), filename: step.import,
            source: step.source });
          expect(summary.already_known, `${where}: ${step.import} already known`).toBe(step.already_known ?? false);
          expect(summary.records.conflicting, `${where}: ${step.import} conflicting records`)
            .toBe(step.conflicting ?? 0);
          continue;
        }
        for (const expected of step.breaks) {
          expect(expected.difference_minor, `${where}: the scenario's own difference is actual − expected`)
            .toBe(expected.actual_minor - expected.expected_minor);
        }
        const run = await runs.run({ asOf: step.run });
        const opened = await pool.query<BreakRow>(`SELECT type, leg, external_ref, internal_ref, currency, expected_minor,
           actual_minor, difference_minor FROM reconciliation_breaks WHERE run_id = $1`, [run.id]);
        expect(sorted(opened.rows), `${where}: the breaks of the run as of ${step.run}`)
          .toEqual(sorted(step.breaks.map(asRow)));
        if (step.counts !== undefined) expect(run.counts, `${where}: counts`).toMatchObject(step.counts);
        const resolved = await pool.query<{ type: string }>(`SELECT type FROM reconciliation_breaks
           WHERE resolved_by_run_id = $1 ORDER BY type`, [run.id]);
        expect(resolved.rows.map((row) => row.type), `${where}: breaks resolved by the run's matches`)
          .toEqual([...(step.resolves ?? [])].sort());
      }
    });
  }
});
