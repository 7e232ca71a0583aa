/**
 * The plain-SQL reference when pgbench is not on PATH: REFERENCE_CLIENTS connections (one `pg`
 * client each, no pool), each writing transfers with a named prepared statement for
 * REFERENCE_SECONDS, in REFERENCE_MODE `single` (one statement, autocommit) or `batch100`
 * (BEGIN; one statement of 100 transfers; COMMIT). Prints one JSON line, as pgbench's summary.
 * Started by bench/support/plain-sql-reference.ts in its own process, so that it shares no event
 * loop with the benchmark's load generator.
 */
import pg from 'pg';
import {
  batchTransferSql, packTransfer, randomTransferValues, referenceBatchSize, singleTransferSql,
} from './support/plain-sql-reference.js';

const url = process.env.REFERENCE_DATABASE_URL;
const mode = process.env.REFERENCE_MODE === 'batch100' ? 'batch100' : 'single';
const clientCount = Number(process.env.REFERENCE_CLIENTS ?? 1);
const seconds = Number(process.env.REFERENCE_SECONDS ?? 3);
if (url === undefined) throw new Error('REFERENCE_DATABASE_URL is required');

const randomReference = () => String(1 + Math.floor(Math.random() * Number.MAX_SAFE_INTEGER));

const clients = await Promise.all(Array.from({ length: clientCount }, async () => {
  const client = new pg.Client({ connectionString: url, application_name: 'penny-bench-reference' });
  await client.connect();
  return client;
}));
let transactions = 0;
let failed = 0;
let latencyMsTotal = 0;
const started = performance.now();
const deadline = started + seconds * 1000;
await Promise.all(clients.map(async (client) => {
  while (performance.now() < deadline) {
    const begin = performance.now();
    try {
      if (mode === 'single') {
        await client.query({ name: 'transfer', text: singleTransferSql,
          values: [randomReference(), ...randomTransferValues()] });
      } else {
        await client.query('BEGIN');
        const transfers = Array.from({ length: referenceBatchSize }, () => packTransfer(randomTransferValues()));
        await client.query({ name: 'batch', text: batchTransferSql, values: [randomReference(), ...transfers] });
        await client.query('COMMIT');
      }
      transactions += 1;
      latencyMsTotal += performance.now() - begin;
    } catch {
      failed += 1;
      if (mode === 'batch100') await client.query('ROLLBACK').catch(() => undefined);
    }
  }
}));
const elapsedSeconds = (performance.now() - started) / 1000;
await Promise.all(clients.map((client) => client.end()));
process.stdout.write(`${JSON.stringify({
  transactions, seconds: elapsedSeconds, transactionsPerSecond: transactions / elapsedSeconds,
  latencyMsAverage: transactions === 0 ? 0 : latencyMsTotal / transactions, failed,
})}\n`);
