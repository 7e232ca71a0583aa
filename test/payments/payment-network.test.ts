import http from 'node:http';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestLedger, type TestLedger } from '../support/app.js';

/**
 * The network loses a response: a proxy in front of Penny forwards the first request, lets Penny
 * execute it, then cuts the connection before the client sees the answer. The SDK retries with the
 * same idempotency key and must end with the one payment that was made.
 */
let penny: TestLedger;
let proxy: http.Server;
let proxyPort: number;
let pennyPort: number;
let dropped = 0;

beforeAll(async () => {
  penny = await createTestLedger();
  await penny.app.listen({ port: 0, host: '127.0.0.1' });
  pennyPort = portOf(penny.app.server);
  proxy = http.createServer((request, response) => {
    const forwarded = http.request({
      host: '127.0.0.1', port: pennyPort, path: request.url, method: request.method, headers: request.headers,
    }, (answer) => {
      const chunks: Buffer[] = [];
      answer.on('data', (chunk: Buffer) => chunks.push(chunk));
      answer.on('end', () => {
        if (request.method === 'POST' && dropped === 0) {
          dropped += 1;
          request.socket.destroy();
          return;
        }
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        response.end(Buffer.concat(chunks));
      });
    });
    request.pipe(forwarded);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  proxyPort = portOf(proxy);
});

afterAll(async () => {
  await new Promise((resolve) => proxy.close(resolve));
  await penny.app.close();
});

function portOf(server: http.Server): number {
  const address = server.address();
  return typeof address === 'object' && address !== null ? address.port : 0;
}

describe('a lost response', () => {
  it('is survived by the SDK with maxNetworkRetries 2: one payment, one PSP call, the same intent', async () => {
    const { secretKey, merchant } = await penny.merchants.createMerchant('Lossy Shop');
    const stripe = new Stripe(secretKey, { host: '127.0.0.1', port: proxyPort, protocol: 'http', maxNetworkRetries: 2 });
    const intent = await stripe.paymentIntents.create({
      amount: 4200, currency: 'usd', payment_method: 'pm_card_visa', confirm: true,
    });
    expect(dropped).toBe(1);
    expect(intent.status).toBe('succeeded');
    const intents = await penny.pool.query('SELECT id FROM payment_intents WHERE merchant_id = $1', [merchant.id]);
    expect(intents.rows).toEqual([{ id: intent.id }]);
    const operations = await penny.pool.query(
      `SELECT o.kind FROM sandbox_psp_operations o JOIN payment_attempts a ON a.id = o.merchant_reference
       WHERE a.payment_intent_id = $1`, [intent.id]);
    expect(operations.rows).toEqual([{ kind: 'authorize' }]);
  });
});
