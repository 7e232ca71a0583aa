/**
 * The benchmarks' same-run reference: a Fastify hello-world, logger off. `GET /` answers
 * `{"hello":"world"}`. Started as a child process by bench/support/penny-server.ts, on PORT.
 *
 * With REPLAY_FLOOR_BODY_FILE, it is also the replays' floor: `POST /v1/payment_intents` reads its
 * form body as text and answers that file's bytes as JSON, and nothing else: what any server must
 * do for a replay over HTTP (read the request and its body, write the same stored answer).
 */
import fs from 'node:fs';
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.get('/', async () => ({ hello: 'world' }));

const replayBodyFile = process.env.REPLAY_FLOOR_BODY_FILE;
if (replayBodyFile !== undefined) {
  const answer = fs.readFileSync(replayBodyFile);
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' },
    (_request, body, done) => done(null, body));
  app.post('/v1/payment_intents', (_request, reply) => {
    void reply.type('application/json; charset=utf-8').send(answer);
  });
}

const port = Number(process.env.PORT ?? 3000);
await app.listen({ port, host: '127.0.0.1' });
const close = () => {
  void app.close().then(() => process.exit(0));
};
process.once('SIGTERM', close);
process.once('SIGINT', close);
