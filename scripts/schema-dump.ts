import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.js';
import { migrate } from '../src/db/migrate.js';
import { createClient, ensureDatabase, withDatabase } from '../src/db/pool.js';
import { dumpSchema } from '../src/db/schema-dump.js';

/**
 * `npm run schema:dump`: migrates an empty database on a throwaway embedded PostgreSQL (never a
 * database in use) and writes its schema to src/db/schema.sql. Run it after adding a migration;
 * test/db/schema.test.ts fails until it is run. The embedded server is the one the tests use, so
 * the file renders as the test expects (PostgreSQL's own renderings can differ between versions).
 */
const schemaFile = fileURLToPath(new URL('../../src/db/schema.sql', import.meta.url));

async function main(): Promise<void> {
  // The embedded server runs as `postgres` when we are root, so its directory must be reachable.
  const scratch = await fs.mkdtemp(path.join('/var/tmp', 'penny-schema-'));
  await fs.chmod(scratch, 0o755);
  const server = await startEmbeddedPostgres({ directory: path.join(scratch, 'postgres'), port: await freePort() });
  try {
    const databaseUrl = withDatabase(server.serverUrl, 'penny_schema');
    await ensureDatabase(server.serverUrl, 'penny_schema');
    await migrate(databaseUrl);
    const client = createClient(databaseUrl);
    await client.connect();
    try {
      await fs.writeFile(schemaFile, await dumpSchema(client));
    } finally {
      await client.end();
    }
  } finally {
    await server.stop();
    await fs.rm(scratch, { recursive: true, force: true });
  }
  process.stdout.write(`wrote ${path.relative(process.cwd(), schemaFile)}\n`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

await main();
