import Stripe from 'stripe';
import type { SandboxWebhookSender } from '../../src/sandbox-psp/psp-webhooks.js';
import { createTestLedger, type TestLedger, type TestLedgerOptions } from './app.js';

/**
 * Penny on a real socket (the official stripe SDK speaks HTTP), with a fresh database, and a way
 * to point the SDK at it. The server closes with the file's other hooks (createTestLedger).
 */
export interface ServedLedger extends TestLedger {
  readonly port: number;
  stripeFor(secretKey: string, maxNetworkRetries?: number): Stripe;
}

export async function serveTestLedger(options: TestLedgerOptions = {}): Promise<ServedLedger> {
  const penny = await createTestLedger(options);
  await penny.app.listen({ port: 0, host: '127.0.0.1' });
  const address = penny.app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    ...penny,
    port,
    stripeFor: (secretKey, maxNetworkRetries = 0) =>
      new Stripe(secretKey, { host: '127.0.0.1', port, protocol: 'http', maxNetworkRetries }),
  };
}

/**
 * Every due sandbox webhook sent to Penny and every stored PSP event processed: earlier tests'
 * webhooks may be due too, so each batch is sent and processed until none is left (bounded).
 */
export async function deliverSandboxWebhooks(penny: Pick<TestLedger, 'inbox'>, sender: SandboxWebhookSender):
Promise<void> {
  for (let round = 0; round < 20 && await sender.sendDue() > 0; round += 1) await penny.inbox.processDue();
  for (let round = 0; round < 20 && await penny.inbox.processDue() > 0; round += 1);
}
