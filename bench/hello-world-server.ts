/**
 * The benchmarks' same-run reference: a Fastify hello-world, logger off. `GET /` answers
 * `{"hello":"world"}`. Started as a child process by bench/support/penny-server.ts, on PORT.
 */
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.get('/', async () => ({ hello: 'world' }));

const port = Number(process.env.PORT ?? 3000);
await app.listen({ port, host: '127.0.0.1' });
const close = () => {
  void app.close().then(() => process.exit(0));
};
process.once('SIGTERM', close);
process.once('SIGINT', close);
