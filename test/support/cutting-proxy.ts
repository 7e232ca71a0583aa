import net from 'node:net';

/**
 * A TCP proxy in front of the test PostgreSQL that resets a connection (both ends) the moment the
 * client sends a chunk the predicate picks, without passing that chunk on: a connection lost at a
 * chosen step of the protocol, as a database restart or a network cut would lose it.
 */
export class CuttingProxy {
  private readonly server: net.Server;
  /** Connections reset so far. */
  cuts = 0;

  private constructor(private readonly port: number, private readonly cutOn: (chunk: Buffer) => boolean) {
    this.server = net.createServer((client) => this.accept(client));
  }

  /** Listens on 127.0.0.1 in front of the server at `port` on 127.0.0.1; answers the proxy's URL. */
  static async start(databaseUrl: string, cutOn: (chunk: Buffer) => boolean):
  Promise<{ proxy: CuttingProxy; url: string }> {
    const url = new URL(databaseUrl);
    // The test server listens on 127.0.0.1 and on a socket directory (the `host` parameter).
    const port = Number(url.port === '' ? 5432 : url.port);
    const proxy = new CuttingProxy(port, cutOn);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', () => resolve()));
    url.hostname = '127.0.0.1';
    url.port = String((proxy.server.address() as net.AddressInfo).port);
    url.searchParams.delete('host');
    return { proxy, url: url.toString() };
  }

  private accept(client: net.Socket): void {
    const upstream = net.connect(this.port, '127.0.0.1');
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    upstream.on('data', (chunk) => client.write(chunk));
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
    client.on('data', (chunk) => {
      if (!this.cutOn(chunk)) {
        upstream.write(chunk);
        return;
      }
      this.cuts += 1;
      client.resetAndDestroy();
      upstream.destroy();
    });
  }

  async close(): Promise<void> {
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** A simple-query message ('Q') whose text starts with `prefix`. */
export function simpleQueryStartingWith(prefix: string): (chunk: Buffer) => boolean {
  return (chunk) => chunk[0] === 0x51 && chunk.toString('utf8', 5, 5 + prefix.length) === prefix;
}
