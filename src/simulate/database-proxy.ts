import net from 'node:net';

/**
 * A TCP proxy between Penny and PostgreSQL, so a simulation can break the database connection the
 * way a network does: cut every connection (both ends see a reset), stall them (bytes held, then
 * let through), or cut a connection just after it sent COMMIT, before PostgreSQL's answer reaches
 * Penny: the commit's outcome is then unknown to Penny, the hardest case of all.
 */
export class DatabaseProxy {
  private readonly server: net.Server;
  private readonly links = new Set<Link>();
  private commitCutsArmed = 0;
  private stalledUntilMs = 0;
  /** Connections cut while a COMMIT was on its way (counted once each). */
  commitCuts = 0;

  private constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((client) => this.accept(client));
  }

  static async start(target: { host: string; port: number }): Promise<DatabaseProxy> {
    const proxy = new DatabaseProxy(target);
    await new Promise<void>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  get port(): number {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('the database proxy is not listening');
    return address.port;
  }

  /** Resets every open connection; new ones are accepted at once. */
  cutAll(): number {
    const count = this.links.size;
    for (const link of this.links) link.destroy();
    return count;
  }

  /** Holds every byte, both ways, for `durationMs`; connections stay open. */
  stall(durationMs: number): void {
    this.stalledUntilMs = Math.max(this.stalledUntilMs, Date.now() + durationMs);
    for (const link of this.links) link.holdUntil(this.stalledUntilMs);
  }

  /** The next `count` COMMITs reach PostgreSQL, and their connection is cut before the answer comes back. */
  armCommitCuts(count: number): void {
    this.commitCutsArmed += count;
  }

  disarm(): void {
    this.commitCutsArmed = 0;
    this.stalledUntilMs = 0;
    for (const link of this.links) link.holdUntil(0);
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    const upstream = net.connect(this.target.port, this.target.host);
    const link = new Link(client, upstream, () => this.takeCommitCut());
    link.holdUntil(this.stalledUntilMs);
    this.links.add(link);
    link.onClose(() => this.links.delete(link));
  }

  private takeCommitCut(): boolean {
    if (this.commitCutsArmed === 0) return false;
    this.commitCutsArmed -= 1;
    this.commitCuts += 1;
    return true;
  }
}

/** A simple-protocol query message ('Q') whose text begins with COMMIT, as node-postgres sends it. */
function carriesCommit(chunk: Buffer): boolean {
  const query = 0x51;
  for (let index = chunk.indexOf(query); index !== -1 && index + 11 <= chunk.length;
    index = chunk.indexOf(query, index + 1)) {
    if (chunk.toString('latin1', index + 5, index + 11).toUpperCase() === 'COMMIT') return true;
  }
  return false;
}

class Link {
  private heldUntilMs = 0;
  private cutAtAnswer = false;
  private closed = false;
  private readonly closeHandlers: (() => void)[] = [];

  constructor(private readonly client: net.Socket, private readonly upstream: net.Socket,
    private readonly takeCommitCut: () => boolean) {
    client.on('data', (chunk: Buffer) => this.forward(chunk, upstream, true));
    upstream.on('data', (chunk: Buffer) => this.forward(chunk, client, false));
    for (const socket of [client, upstream]) {
      socket.on('error', () => this.destroy());
      socket.on('close', () => this.destroy());
    }
  }

  onClose(handler: () => void): void {
    this.closeHandlers.push(handler);
  }

  holdUntil(untilMs: number): void {
    this.heldUntilMs = untilMs;
    const waitMs = untilMs - Date.now();
    if (waitMs <= 0) {
      this.client.resume();
      this.upstream.resume();
      return;
    }
    this.client.pause();
    this.upstream.pause();
    setTimeout(() => this.holdUntil(this.heldUntilMs), waitMs).unref();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.resetAndDestroy();
    this.upstream.resetAndDestroy();
    for (const handler of this.closeHandlers) handler();
  }

  private forward(chunk: Buffer, to: net.Socket, fromClient: boolean): void {
    if (this.closed) return;
    if (!fromClient && this.cutAtAnswer) {
      this.destroy();
      return;
    }
    if (fromClient && carriesCommit(chunk) && this.takeCommitCut()) this.cutAtAnswer = true;
    to.write(chunk);
  }
}
