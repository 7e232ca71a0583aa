import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createClient, quoteIdentifier, withDatabase } from '../../src/db/pool.js';
import { dumpSchema, recordedMajorVersion, serverMajorVersion } from '../../src/db/schema-dump.js';
import { createTestDatabase } from '../support/database.js';

const schemaFile = new URL('../../src/db/schema.sql', import.meta.url);
const database = await createTestDatabase(2);

async function dumpOf(pool: { connect(): Promise<import('pg').PoolClient> }): Promise<string> {
  const client = await pool.connect();
  try {
    return await dumpSchema(client);
  } finally {
    client.release();
  }
}

describe('src/db/schema.sql', () => {
  it('is the schema the migrations leave (after adding a migration, run `npm run schema:dump`)', async (context) => {
    const committed = await fs.readFile(schemaFile, 'utf8');
    const client = await database.pool.connect();
    const major = await serverMajorVersion(client).finally(() => client.release());
    // PostgreSQL's renderings of bodies and expressions may differ on another major version.
    if (recordedMajorVersion(committed) !== major) context.skip();
    expect(await dumpOf(database.pool), 'src/db/schema.sql is stale: run `npm run schema:dump`').toBe(committed);
  });

  it('loads into an empty database and dumps the same again, so it leaves nothing out', async () => {
    const name = `penny_test_${inject('templateDatabase').split('_').at(-1)}_schema_${randomBytes(4).toString('hex')}`;
    const admin = createClient(inject('serverUrl'));
    await admin.connect();
    await admin.query(`CREATE DATABASE ${quoteIdentifier(name)} TEMPLATE template0`);
    afterAll(async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`);
      await admin.end();
    });
    const loaded = createClient(withDatabase(inject('serverUrl'), name));
    await loaded.connect();
    try {
      await loaded.query(await fs.readFile(schemaFile, 'utf8'));
      expect(await dumpSchema(loaded)).toBe(await dumpOf(database.pool));
    } finally {
      await loaded.end();
    }
  });
});
