import type pg from 'pg';
import type { Logger } from 'pino';
import { createClient } from '../db/pool.js';
import { coerceError } from '../errors.js';
import type { MerchantService } from './merchant-service.js';
import { keyRevocationChannel, listenForKeyRevocations } from './merchant-store.js';

/** How long to wait before listening again after the connection was lost. */
const reconnectDelayMs = 1_000;
/** A connection attempt that hangs (a partitioned external server) is given up after this. */
const connectTimeoutMs = 10_000;

/**
 * Listens on a connection of its own for keys revoked anywhere (`penny keys revoke`, another
 * Penny process): revokeApiKey announces the key's id with NOTIFY when it commits, and this
 * process forgets the key at once instead of when its cache entry expires. While the connection
 * is down, the cache's TTL still bounds a stale key; once listening again, the whole cache is
 * dropped, since revocations may have been missed meanwhile. (Behind a pooler in transaction mode,
 * such as PgBouncer, LISTEN does not work: point Penny at PostgreSQL itself.)
 */
export class KeyRevocationListener {
  private client: pg.Client | undefined;
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly connectionString: string,
    private readonly merchants: MerchantService,
    private readonly logger: Logger,
  ) {}

  /** Starts listening; a failure is logged and retried, never fatal (the TTL still holds). */
  async start(): Promise<void> {
    await this.listen().catch((error: unknown) => this.listenLater(error));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry !== undefined) clearTimeout(this.retry);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private async listen(): Promise<void> {
    // TCP keepalive: the connection only listens, so a silently dropped peer is noticed only this way.
    const client = createClient(this.connectionString, {
      connectionTimeoutMillis: connectTimeoutMs, keepAlive: true, application_name: 'penny-key-revocations',
    });
    client.on('notification', (message) => {
      if (message.channel === keyRevocationChannel && message.payload) this.merchants.forgetKey(message.payload);
    });
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client, new Error('the connection ended')));
    try {
      await client.connect();
      await listenForKeyRevocations(client);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.merchants.forgetAllKeys();
  }

  private lost(client: pg.Client, error: unknown): void {
    if (this.stopped || this.client !== client) return;
    this.client = undefined;
    void client.end().catch(() => undefined);
    this.listenLater(error);
  }

  private listenLater(error: unknown): void {
    if (this.stopped) return;
    this.logger.warn({ err: coerceError(error) },
      'not listening for revoked API keys; a revoked key may be accepted here until its cache entry expires');
    this.retry = setTimeout(() => {
      this.retry = undefined;
      void this.listen().catch((next: unknown) => this.listenLater(next));
    }, reconnectDelayMs);
  }
}
