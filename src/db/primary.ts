import pg from 'pg';
import type { DatabaseHost, DatabaseTarget } from '../database-url.js';

/**
 * Penny writes only to the writable primary (issue 23; decisions.md, "For high availability").
 * `pg` takes one host per connection, so a libpq-style multi-host DATABASE_URL
 * (`postgres://user@h1:5432,h2:5433/db?target_session_attrs=read-write`) is split here into its
 * hosts, and every new connection is checked with `SELECT pg_is_in_recovery()`: one round trip per
 * new connection, never per query. A standby, even given as the only host, is refused.
 */

/**
 * No writable primary could be reached: every host refused the connection or is a standby. A
 * plain Error (not a PennyError), so the idempotency layer leaves the key unfinished and a retry
 * resumes; the HTTP edge answers 503 `database_unavailable`.
 */
export class DatabaseUnavailableError extends Error {
  /** The cause's code (ECONNREFUSED, a SQLSTATE), so what reports on codes still sees it. */
  readonly code: string | undefined;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DatabaseUnavailableError';
    const code = (options?.cause as { code?: unknown } | undefined)?.code;
    this.code = typeof code === 'string' ? code : undefined;
  }
}

/** Node's errors for a server that cannot be reached. */
const unreachableErrnos = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH',
  'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);
/**
 * SQLSTATEs of a database that is not there to write to: class 08 (connection exception),
 * 57P01–57P03 (shut down by the administrator, crash shutdown, cannot connect now: starting up
 * or shutting down), 25006 (read-only transaction: a node demoted to standby under a connection).
 */
const unavailableSqlStates = /^(08[0-9A-Z]{3}|57P0[123]|25006)$/;
/** pg's and pg-pool's own messages for a lost or never-made connection. */
const lostConnectionMessages = new RegExp('^(Connection terminated|timeout exceeded when trying to connect'
  + '|Client was closed and is not queryable|Client has encountered a connection error and is not queryable)');

/**
 * Whether an error, as the pool or a query throws it, means the database could not be written to
 * (no primary, a lost connection): the request may be retried. When it happened during COMMIT, the
 * outcome is unknown; the retry, with the same idempotency key, resumes from what was stored, never
 * blindly. Causes are not followed: a PSP call's socket error wrapped in a PennyError stays that.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (error instanceof DatabaseUnavailableError) return true;
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (error instanceof pg.DatabaseError) return typeof code === 'string' && unavailableSqlStates.test(code);
  if (typeof code === 'string' && unreachableErrnos.has(code)) return true;
  return lostConnectionMessages.test(error.message);
}

function describeHost(host: DatabaseHost): string {
  return host.host.startsWith('/') ? `${host.host} (socket, port ${host.port})` : `${host.host}:${host.port}`;
}

async function inRecovery(client: pg.Client): Promise<boolean> {
  const result = await client.query<{ in_recovery: boolean }>('SELECT pg_is_in_recovery() AS in_recovery');
  return result.rows[0]?.in_recovery !== false;
}

/**
 * Which host of a multi-host URL is the primary: the last one found writable, else found again by
 * trying each host in turn (one search at a time, shared by every connection that waits for it).
 */
export class PrimaryLocator {
  private preferred: number | undefined;
  private search: Promise<number> | undefined;

  constructor(
    readonly target: DatabaseTarget,
    private readonly probeConfig: pg.ClientConfig,
  ) {
    this.preferred = target.hosts.length === 1 ? 0 : undefined;
  }

  /** The index of the host to connect to. */
  async primary(): Promise<number> {
    if (this.preferred !== undefined) return this.preferred;
    this.search ??= this.find().finally(() => { this.search = undefined; });
    return this.search;
  }

  /** The host at `index` was not writable (or not reachable): search again next time. */
  forget(index: number): void {
    if (this.target.hosts.length > 1 && this.preferred === index) this.preferred = undefined;
  }

  private async find(): Promise<number> {
    const refusals: string[] = [];
    for (const [index, host] of this.target.hosts.entries()) {
      const probe = new pg.Client({ ...this.probeConfig, connectionString: this.target.urlFor(index) });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        if (!(await inRecovery(probe))) {
          this.preferred = index;
          return index;
        }
        refusals.push(`${describeHost(host)} is a standby (in recovery)`);
      } catch (error) {
        refusals.push(`${describeHost(host)}: ${error instanceof Error ? error.message : String(error)}`);
      } finally {
        await probe.end().catch(() => undefined);
      }
    }
    throw noPrimary(refusals);
  }
}

function noPrimary(refusals: readonly string[]): DatabaseUnavailableError {
  return new DatabaseUnavailableError(`no writable PostgreSQL primary: ${refusals.join('; ')}`);
}

/**
 * A pg.Client that connects to the host the locator names and keeps the connection only when that
 * host is writable; pg.Pool builds its connections with it (the pool's `Client` option). A host
 * found in recovery, or unreachable, is forgotten, so the next connection searches the list again.
 */
export function primaryClientClass(locator: PrimaryLocator): typeof pg.Client {
  const multiHost = locator.target.hosts.length > 1;
  class PrimaryClient extends pg.Client {
    constructor(config?: string | pg.ClientConfig) {
      super(config);
      // A connection that dies emits 'error' on its client, and Node ends a process whose emitter
      // has no listener. The pool listens only once a client is connected, and connecting here
      // includes the primary check: a cut during it (a database restart) ended the process (the
      // long run found it). Every such error also fails the client's connect or its queries, and
      // the pool's own listener still drops a dead idle client, so this listener needs to do nothing.
      this.on('error', () => undefined);
    }

    override connect(): Promise<pg.Client>;
    override connect(callback: ((error: Error) => void) | ((error: null, client: pg.Client) => void)): void;
    override connect(
      callback?: ((error: Error) => void) | ((error: null, client: pg.Client) => void),
    ): Promise<pg.Client> | undefined {
      const connecting = this.connectToPrimary().then(() => this as pg.Client);
      if (callback === undefined) return connecting;
      const done = callback as (error: Error | null, client?: pg.Client) => void;
      connecting.then((client) => done(null, client), (error: Error) => done(error));
      return undefined;
    }

    private async connectToPrimary(): Promise<void> {
      const index = await locator.primary();
      const host = locator.target.hosts[index] as DatabaseHost;
      // The pool gave up while the hosts were searched (its connect timeout destroys the socket).
      const socket = (this as unknown as { connection: { stream: { destroyed?: boolean } } }).connection.stream;
      if (socket.destroyed === true) {
        throw new DatabaseUnavailableError('connecting to the PostgreSQL primary timed out');
      }
      if (multiHost) {
        // pg reads the host and port from these when it opens the socket.
        this.host = host.host;
        this.port = host.port;
        const parameters = (this as unknown as { connectionParameters: { host: string; port: number } })
          .connectionParameters;
        parameters.host = host.host;
        parameters.port = host.port;
      }
      try {
        await super.connect();
      } catch (error) {
        locator.forget(index);
        throw new DatabaseUnavailableError(`cannot connect to PostgreSQL at ${describeHost(host)}: ` +
          `${error instanceof Error ? error.message : String(error)}`, { cause: error });
      }
      let standby: boolean;
      try {
        standby = await inRecovery(this);
      } catch (error) {
        locator.forget(index);
        await this.end().catch(() => undefined);
        throw error;
      }
      if (standby) {
        locator.forget(index);
        await this.end().catch(() => undefined);
        throw noPrimary([`${describeHost(host)} is a standby (in recovery)`]);
      }
    }
  }
  return PrimaryClient;
}
