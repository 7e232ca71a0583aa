import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../src/db/pool.js';
import { ReconciliationImports } from '../../src/reconciliation/recon-import.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { CuttingProxy, simpleQueryStartingWith } from '../support/cutting-proxy.js';

/**
 * An import when the outside world fails: the database connection lost as the records' COPY
 * begins, and a body that fails before the import reads it (a file of the inbox that another
 * process moved away). Each must fail the import with an error, hand its connection back, and
 * leave the process running.
 */
const sdrHeader = 'Merchant Account,Psp Reference,Merchant Reference,Type,Modification Reference,Gross Currency,'
  + 'Gross Debit (GC),Gross Credit (GC),Net Currency,Net Debit (NC),Net Credit (NC),Batch Number,Creation Date';

/** More than 16 KiB of records, so the first COPY write waits for the connection to drain. */
function sdr(rows: number): string {
  const lines = [sdrHeader];
  for (let index = 1; index <= rows; index += 1) {
    lines.push(`Shop,cut${index},ch_cut${index},Settled,cut${index},EUR,,10.00,EUR,,9.70,9,2026-03-02 10:00:00`);
  }
  return `${lines.join('\n')}\n`;
}

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase(2);
});

describe('a reconciliation import whose connection is cut as its COPY begins', () => {
  let proxy: CuttingProxy;
  let proxyUrl: string;

  beforeAll(async () => {
    ({ proxy, url: proxyUrl } = await CuttingProxy.start(database.url, simpleQueryStartingWith('COPY ')));
  });

  afterAll(async () => {
    await proxy.close();
  });

  it('fails with an error and hands its connection back to the pool', async () => {
    const pool = createPool({ connectionString: proxyUrl, sizeMax: 2 });
    try {
      const imports = new ReconciliationImports(pool);
      const importing = imports.importFile({ body: Readable.from([Buffer.from(sdr(400))]), filename: 'cut.csv' });
      const outcome = await Promise.race([
        importing.then(() => 'imported', () => 'failed'),
        new Promise((resolve) => setTimeout(() => resolve('still waiting after 10 s'), 10_000)),
      ]);
      expect(proxy.cuts).toBe(1);
      expect(outcome).toBe('failed');
      expect(pool.idleCount).toBe(pool.totalCount);
    } finally {
      await pool.end();
    }
  }, 20_000);
});

describe('a reconciliation import whose body fails before the import reads it', () => {
  it('fails with the body\'s error and leaves the process running', async () => {
    const body = new Readable({ read() {} });
    // The error is emitted on the next tick, while the import is still making its directory.
    body.destroy(new Error('ENOENT: the inbox file was moved away'));
    const imports = new ReconciliationImports(database.pool);
    await expect(imports.importFile({ body, filename: 'gone.csv' })).rejects.toThrow('ENOENT');
  });
});
