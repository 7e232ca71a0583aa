import net from 'node:net';

/** A TCP port free on the loopback now (the OS picks it), for a simulation's or a bench's own servers. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address !== null
        ? resolve(address.port)
        : reject(new Error('no free port'))));
    });
  });
}
