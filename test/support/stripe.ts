import Stripe from 'stripe';
import { advanceClock } from '../../src/clock.js';
import { ConnectorRegistry, type Connector } from '../../src/connectors/connector.js';
import { createLogger } from '../../src/logger.js';
import type { SandboxWebhookSender } from '../../src/sandbox-psp/psp-webhooks.js';
import { SettlementService } from '../../src/settlement/settlement-service.js';
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

/** Penny's settlement pull (what `penny settlement pull` runs) over the served ledger, logging nothing. */
export function settlementOf(penny: ServedLedger): SettlementService {
  return new SettlementService(penny.pool, { connectors: penny.connectors, balances: penny.balances,
    logger: createLogger('silent') });
}

/** The sandbox PSP's webhook sender, pointed at the served Penny's inbox. */
export function sandboxSenderOf(penny: ServedLedger): SandboxWebhookSender {
  return penny.sandbox.sender(`http://127.0.0.1:${penny.port}/v1/connectors/sandbox/webhooks`);
}

/**
 * Penny's settlement pull of `day`, reading the sandbox's report with discrepancies planted (as the
 * PSP got it wrong), through a connector that asks for them.
 */
export function settlementPullWithPlant(penny: ServedLedger, day: string, plant: readonly string[]) {
  const planted: Connector = Object.create(penny.sandbox.connector, { fetchSettlementReport: {
    value: async (input: { day: string; currency?: string }) => (await fetch(`${penny.sandbox.url}`
      + `/v1/settlement_reports/${input.day}?currency=${input.currency ?? ''}&plant=${plant.join(',')}`)).text() } }) as Connector;
  const connectors = new ConnectorRegistry();
  connectors.register(planted);
  return new SettlementService(penny.pool, { connectors, balances: penny.balances, logger: createLogger('silent') })
    .pull({ connectorId: 'sandbox', day });
}

/**
 * Moves the sandbox's pending payouts on (pending → in_transit → paid, a controlled-clock second
 * apart) and delivers their webhooks, so Penny's payouts are paid.
 */
export async function payOutPending(penny: ServedLedger, sender: SandboxWebhookSender): Promise<void> {
  for (let step = 0; step < 3; step += 1) {
    await deliverSandboxWebhooks(penny, sender);
    advanceClock(1000);
    await sender.resolvePending();
  }
  await deliverSandboxWebhooks(penny, sender);
}
