import { createHash } from 'node:crypto';
import pg from 'pg';
import { parseDatabaseUrl, replaceDatabase } from '../database-url.js';
import { PrimaryLocator, primaryClientClass } from './primary.js';

/**
 * One pg pool per process. BIGINT (int8) and NUMERIC come back as bigint, so money never passes
 * through a float; SQL sums are NUMERIC, so they are parsed the same way.
 */
const int8Oid = 20;
const numericOid = 1700;
const timestamptzOid = 1184;

export function parseBigint(text: string): bigint {
  return BigInt(text);
}

function parseNumeric(text: string): bigint {
  if (!/^-?\d+$/.test(text)) throw new Error(`NUMERIC value ${text} is not a whole number`);
  return BigInt(text);
}

const bigintTypes = {
  getTypeParser(oid: number, format?: string) {
    if (oid === int8Oid) return parseBigint;
    if (oid === numericOid) return parseNumeric;
    if (oid === timestamptzOid) return toIsoTimestamp;
    return pg.types.getTypeParser(oid, format as 'text');
  },
} as pg.CustomTypesConfig;

/**
 * Timestamps stay strings, so PostgreSQL's microseconds survive (a JS Date keeps milliseconds).
 * Sessions run in UTC, so the text is `2026-01-31 12:00:00.123456+00`; we answer ISO 8601.
 */
export function toIsoTimestamp(text: string): string {
  const match = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(\.\d+)?\+00$/.exec(text);
  if (match === null) throw new Error(`unexpected timestamp text from PostgreSQL: ${text}`);
  const fraction = (match[3] ?? '.').slice(1).padEnd(6, '0');
  return `${match[1]}T${match[2]}.${fraction}Z`;
}

export interface PoolOptions {
  readonly connectionString: string;
  readonly sizeMax: number;
  readonly applicationName?: string;
}

/**
 * What every connection of Penny's sets. Neither `statement_timeout` nor pg's `query_timeout` is
 * set: either would give up on a COMMIT waiting for the synchronous standby (pg's client-side
 * timeout abandons the wait; a cancelled wait leaves the transaction committed locally but maybe
 * not replicated), and `synchronous_commit` is never touched, so sessions keep the server's.
 */
function sessionConfig(applicationName: string): pg.ClientConfig {
  return {
    types: bigintTypes, application_name: applicationName, options: '-c TimeZone=UTC',
    // TCP keepalive, so a connection to a primary whose host vanished (no FIN, no RST) is found
    // dead by the kernel and dropped, instead of waiting on it for the default two hours.
    keepAlive: true, keepAliveInitialDelayMillis: tcpKeepaliveIdleMs,
  };
}

/** Idle time before the kernel's first keepalive probe on a database connection. */
export const tcpKeepaliveIdleMs = 10_000;

/**
 * The pool's connections go to the writable primary only: a multi-host URL's hosts are tried in
 * turn, and each new connection runs `SELECT pg_is_in_recovery()` once (src/db/primary.ts).
 */
export function createPool(options: PoolOptions): pg.Pool {
  const session = sessionConfig(options.applicationName ?? 'penny');
  const target = parseDatabaseUrl(options.connectionString);
  const connectTimeoutMs = 10_000;
  const locator = new PrimaryLocator(target, { ...session, connectionTimeoutMillis: connectTimeoutMs });
  const pool = new pg.Pool({
    ...session,
    connectionString: target.urlFor(0),
    Client: primaryClientClass(locator),
    max: options.sizeMax,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: connectTimeoutMs,
  });
  // An idle client that loses its connection emits here; without a listener Node would crash.
  // A client connecting, or checked out between queries (held across a PSP call, or for a session
  // lock), emits on itself: PrimaryClient always listens (src/db/primary.ts). Its next query fails,
  // and the pool drops it when it is released, so the error itself needs nothing more.
  pool.on('error', () => undefined);
  return pool;
}

/** A single connection to the writable primary (checked at connect, like the pool's). */
export function createClient(connectionString: string, extra: Partial<pg.ClientConfig> = {}): pg.Client {
  const config = { ...sessionConfig('penny'), ...extra };
  const target = parseDatabaseUrl(connectionString);
  const PrimaryClient = primaryClientClass(new PrimaryLocator(target, config));
  return new PrimaryClient({ ...config, connectionString: target.urlFor(0) });
}

export type Queryable = pg.Pool | pg.PoolClient | pg.Client;

/** Runs `work` in one transaction on a connection of the pool; rolls back on any error. */
export async function withTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  const client = await pool.connect();
  try {
    return await inTransaction(client, () => work(client), options);
  } finally {
    client.release();
  }
}

export interface TransactionOptions {
  /**
   * What opens the transaction, in one round trip: `BEGIN` followed by parameterless statements
   * that must come first (a lock), as one simple query. Fixed text only, never a value from outside.
   */
  readonly begin?: string;
}

/** A statement and its values, to run later. */
export interface Statement {
  readonly text: string;
  readonly values: readonly unknown[];
}

/** A deferred write: its items so far (one, or a list gathered through the transaction) and how to write them. */
interface DeferredWrite {
  readonly items: unknown[];
  readonly build: (items: readonly unknown[]) => Statement;
}

/** The writes deferred to the end of a connection's open transaction, by slot. */
const deferredWrites = new WeakMap<object, Map<string, DeferredWrite>>();

/**
 * Runs `work` in one transaction on a connection the caller holds; rolls back on any error.
 * Writes deferred with `writeAtCommit` or `appendAtCommit` run last, inside the transaction, as
 * one statement. Called inside a transaction that inTransaction opened on the same connection,
 * `work` joins it: the caller's transaction commits both (a route that stores its answer with the
 * change, around a service that opens its own transaction), and an error rolls back both.
 */
export async function inTransaction<T>(client: pg.PoolClient, work: () => Promise<T>,
  options: TransactionOptions = {}): Promise<T> {
  if (deferredWrites.has(client)) {
    if (options.begin !== undefined) throw new Error('a transaction with its own BEGIN cannot join an open one');
    return work();
  }
  const writes = new Map<string, DeferredWrite>();
  await client.query(options.begin ?? 'BEGIN');
  deferredWrites.set(client, writes);
  try {
    const result = await work();
    deferredWrites.delete(client);
    if (writes.size > 0) {
      const combined = combineWrites([...writes.values()].map((write) => write.build(write.items)));
      await client.query(named(combined.text), combined.values as unknown[]);
    }
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    deferredWrites.delete(client);
  }
}

/**
 * Runs `work` under a savepoint of the transaction open on `client`: on an error, both what it
 * wrote and what it deferred are rolled back, and the error is thrown on.
 */
export async function inSavepoint<T>(client: pg.PoolClient, work: () => Promise<T>): Promise<T> {
  const writes = deferredWrites.get(client);
  if (writes === undefined) throw new Error('a savepoint needs a transaction opened by inTransaction');
  const before = new Map([...writes].map(([slot, write]) => [slot, { ...write, items: [...write.items] }]));
  await client.query('SAVEPOINT penny_savepoint');
  try {
    const result = await work();
    await client.query('RELEASE SAVEPOINT penny_savepoint');
    return result;
  } catch (error) {
    await client.query('ROLLBACK TO SAVEPOINT penny_savepoint');
    writes.clear();
    for (const [slot, write] of before) writes.set(slot, write);
    throw error;
  }
}

/**
 * A write nothing else in the transaction reads: in a transaction opened by inTransaction, it is
 * deferred to the end, where every deferred write runs in one statement (one round trip);
 * otherwise it runs at once. A later write to the same `slot` replaces an earlier one, so two
 * writes of one row never meet in one statement. Its errors surface at commit.
 */
export async function writeAtCommit(db: Queryable, slot: string, build: () => Statement): Promise<void> {
  const writes = deferredWrites.get(db);
  if (writes !== undefined) {
    writes.set(slot, { items: [], build: () => build() });
    return;
  }
  const statement = build();
  await db.query(named(statement.text), statement.values as unknown[]);
}

/**
 * Like writeAtCommit, for rows gathered through a transaction (its events): each call adds an
 * item to the slot, and the slot's one statement writes them all, in the order they were added.
 */
export async function appendAtCommit<T>(db: Queryable, slot: string, item: T,
  build: (items: readonly T[]) => Statement): Promise<void> {
  const writes = deferredWrites.get(db);
  const existing = writes?.get(slot);
  if (existing !== undefined) {
    existing.items.push(item);
    return;
  }
  if (writes !== undefined) {
    writes.set(slot, { items: [item], build: build as (items: readonly unknown[]) => Statement });
    return;
  }
  const statement = build([item]);
  await db.query(named(statement.text), statement.values as unknown[]);
}

/**
 * Several writes as one statement: each plain INSERT, UPDATE or DELETE becomes a data-modifying
 * CTE; at most one may itself begin with WITH, and its CTEs and main statement close the list.
 * Parameters are renumbered in order. PostgreSQL runs every data-modifying CTE, on one snapshot.
 */
export function combineWrites(statements: readonly Statement[]): Statement {
  if (statements.length === 1) return statements[0] as Statement;
  const parts: string[] = [];
  const values: unknown[] = [];
  let main: string | undefined;
  for (const [index, statement] of statements.entries()) {
    if (statement.text.includes('$$')) throw new Error('a deferred write cannot hold dollar quotes');
    const offset = values.length;
    const text = statement.text.replace(/\$(\d+)/g, (_match, number: string) => `$${Number(number) + offset}`).trim();
    values.push(...statement.values);
    const withList = /^WITH\s/i.exec(text);
    if (withList === null) {
      parts.push(`deferred_${index} AS (${text})`);
    } else {
      if (main !== undefined) throw new Error('only one deferred write may begin with WITH');
      main = text.slice(withList[0].length);
    }
  }
  return main === undefined
    ? { text: `WITH ${parts.join(',\n')}\nSELECT 1`, values }
    : { text: `WITH ${[...parts, main].join(',\n')}`, values };
}

/** Rewrites the database name of a connection URL. */
export function withDatabase(connectionString: string, database: string): string {
  if (parseDatabaseUrl(connectionString).hosts.length > 1) return replaceDatabase(connectionString, database);
  const url = new URL(connectionString);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

export async function ensureDatabase(serverUrl: string, database: string): Promise<void> {
  const client = createClient(serverUrl);
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount === 0) {
      await client.query(`CREATE DATABASE ${quoteIdentifier(database)}`).catch((error: { code?: string }) => {
        // Two processes starting at once may both try; the loser finds it created.
        if (error.code !== '42P04' && error.code !== '23505') throw error;
      });
    }
  } finally {
    await client.end();
  }
}

export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

const statementNames = new Map<string, string>();

/**
 * A statement with a name derived from its text, so each connection parses and plans it once
 * (pg prepares named statements per connection). Use for fixed SQL on hot paths:
 * `db.query(named(\`SELECT …\`), values)`.
 */
export function named(text: string): { name: string; text: string } {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `penny_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`;
    statementNames.set(text, name);
  }
  return { name, text };
}
