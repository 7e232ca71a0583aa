import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The layers of docs/architecture.md, as .dependency-cruiser.cjs states them. These tests run the
 * check on src/ in every `npm test`, and show the rules bite, on a
 * small tree that breaks each one, and that src/ keeps them.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
const run = promisify(execFile);

async function cruise(directory: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout } = await run(process.execPath, [cli, 'src', '--config', '.dependency-cruiser.cjs'],
      { cwd: directory });
    return { code: 0, output: stdout };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, output: failed.stdout + failed.stderr };
  }
}

/** Files of a small tree, each importing what one rule forbids. */
const brokenTree: Record<string, string> = {
  'src/errors.ts': 'import { pool } from \'./db/pool.js\';\nexport const errors = pool;\n',
  'src/db/pool.ts': 'export const pool = 1;\n',
  'src/ledger/ledger-service.ts': 'import type { Flows } from \'../payments/payment-flows.js\';\nexport type Ledger = Flows;\n',
  'src/payments/payment-flows.ts': 'import { route } from \'../http/routes.js\';\nexport type Flows = number;\nexport const used = route;\n',
  'src/payments/payment-inbox.ts': 'import { inbox } from \'../webhooks/inbox.js\';\nexport const used = inbox;\n',
  'src/webhooks/inbox.ts': 'export const inbox = 1;\n',
  'src/http/routes.ts': 'import { SandboxConnector } from \'../connectors/sandbox/sandbox-connector.js\';\nexport const route = SandboxConnector;\n',
  'src/connectors/connector.ts': 'export interface Connector { id: string }\n',
  'src/connectors/sandbox/sandbox-connector.ts':
    'import { other } from \'../adyen/adyen-connector.js\';\nimport { flows } from \'../../payments/cycle-a.js\';\n'
    + 'export const SandboxConnector = [other, flows];\n',
  'src/connectors/adyen/adyen-connector.ts': 'export const other = 1;\n',
  'src/payments/cycle-a.ts': 'import { b } from \'./cycle-b.js\';\nexport const flows = b;\n',
  'src/payments/cycle-b.ts': 'import type { flows } from \'./cycle-a.js\';\nexport const b = 1;\nexport type B = typeof flows;\n',
  'src/sandbox-psp/psp-server.ts': 'import { used } from \'../payments/payment-flows.js\';\nexport const server = used;\n',
  'src/merchants/merchant-store.ts': 'import { used } from \'../payments/payment-inbox.js\';\nexport const store = used;\n',
  'src/ha/ha-cluster.ts': 'import { pool } from \'../db/pool.js\';\nexport const cluster = pool;\n',
  'src/missing.ts': 'import { nothing } from \'./no-such-module.js\';\nexport const missing = nothing;\n',
};

let brokenDirectory: string;
let brokenResult: { code: number; output: string };

beforeAll(async () => {
  brokenDirectory = await fs.mkdtemp(path.join(os.tmpdir(), 'penny-boundaries-'));
  await fs.copyFile(path.join(root, '.dependency-cruiser.cjs'), path.join(brokenDirectory, '.dependency-cruiser.cjs'));
  await fs.writeFile(path.join(brokenDirectory, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true }, include: ['src'] }));
  for (const [file, text] of Object.entries(brokenTree)) {
    await fs.mkdir(path.dirname(path.join(brokenDirectory, file)), { recursive: true });
    await fs.writeFile(path.join(brokenDirectory, file), text);
  }
  brokenResult = await cruise(brokenDirectory);
}, 60_000);

afterAll(async () => {
  await fs.rm(brokenDirectory, { recursive: true, force: true });
});

describe('the layer check', () => {
  it('passes on src/ as it is', async () => {
    const result = await cruise(root);
    expect(result.output).toContain('no dependency violations found');
    expect(result.code).toBe(0);
  }, 60_000);

  it.each([
    ['kernel-imports-only-kernel', 'src/errors.ts → src/db/pool.ts'],
    ['ground-imports-ground-database-kernel', 'src/ledger/ledger-service.ts → src/payments/payment-flows.ts'],
    ['domain-imports-downward', 'src/payments/payment-flows.ts → src/http/routes.ts'],
    ['payments-do-not-import-webhooks', 'src/payments/payment-inbox.ts → src/webhooks/inbox.ts'],
    ['concrete-connectors-wired-by-app-only', 'src/http/routes.ts → src/connectors/sandbox/sandbox-connector.ts'],
    ['connectors-import-no-other-connector',
      'src/connectors/sandbox/sandbox-connector.ts → src/connectors/adyen/adyen-connector.ts'],
    ['connector-imports-interface-database-kernel',
      'src/connectors/sandbox/sandbox-connector.ts → src/payments/cycle-a.ts'],
    ['sandbox-psp-is-an-outside-service', 'src/sandbox-psp/psp-server.ts → src/payments/payment-flows.ts'],
    ['merchants-import-no-other-domain', 'src/merchants/merchant-store.ts → src/payments/payment-inbox.ts'],
    ['ha-cluster-imports-only-kernel', 'src/ha/ha-cluster.ts → src/db/pool.ts'],
    ['no-cycles', 'src/payments/cycle-'],
    ['no-unresolvable-imports', 'src/missing.ts → ./no-such-module.js'],
  ])('refuses a tree that breaks %s (%s), failing the run', (rule, edge) => {
    expect(brokenResult.code).not.toBe(0);
    expect(brokenResult.output).toContain(`error ${rule}: ${edge}`);
  });
});

/**
 * Every SQL statement lives in a `*-store.ts` file of its folder (src/db, the database layer
 * itself, excepted): a service decides and never writes SQL; a store writes SQL and never decides.
 */
const sqlStatement = /\b(SELECT\s+[\w*(]|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|WITH\s+\w+\s+AS\s*\()/;

async function sourceFiles(directory: string): Promise<string[]> {
  const entries = await fs.readdir(directory, { withFileTypes: true, recursive: true });
  return entries.filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => path.join(entry.parentPath, entry.name));
}

describe('SQL only in stores', () => {
  it('finds a statement where one is written', () => {
    expect(sqlStatement.test('await db.query(`SELECT id FROM charges WHERE id = $1`)')).toBe(true);
    expect(sqlStatement.test("named('UPDATE recovery_jobs SET status = $3')")).toBe(true);
    expect(sqlStatement.test('// the intent, selected for update, is locked')).toBe(false);
  });

  it('holds no statement outside a *-store.ts file and src/db', async () => {
    const offenders: string[] = [];
    for (const file of await sourceFiles(path.join(root, 'src'))) {
      const relative = path.relative(root, file);
      if (relative.endsWith('-store.ts') || relative.startsWith(path.join('src', 'db') + path.sep)) continue;
      const lines = (await fs.readFile(file, 'utf8')).split('\n');
      lines.forEach((line, index) => {
        if (sqlStatement.test(line)) offenders.push(`${relative}:${index + 1}: ${line.trim()}`);
      });
    }
    expect(offenders).toEqual([]);
  });
});
