import { afterAll } from 'vitest';
import { createPool } from '../../src/db/pool.js';
import { createLogger } from '../../src/logger.js';
import { noFaults, type FaultInjector } from '../../src/sandbox-psp/psp-faults.js';
import { buildSandboxPsp } from '../../src/sandbox-psp/psp-server.js';
import { SandboxWebhookSender } from '../../src/sandbox-psp/psp-webhooks.js';
import { SandboxConnector } from '../../src/connectors/sandbox/sandbox-connector.js';

/**
 * The sandbox PSP as a real HTTP service on its own port and pool (it shares the test file's
 * database, keeping to its own tables), and a connector that reaches it over the network.
 */
export const sandboxWebhookSecret = 'sandbox_test_webhook_secret_0123456789abcdef';

export interface TestSandboxPsp {
  readonly url: string;
  readonly injector: FaultInjector;
  readonly connector: SandboxConnector;
  /** The sender of the sandbox's webhooks, aimed at `webhookUrl` once Penny listens. */
  sender(webhookUrl: string | undefined): SandboxWebhookSender;
  resetFaults(): void;
}

export async function startTestSandboxPsp(databaseUrl: string): Promise<TestSandboxPsp> {
  const pool = createPool({ connectionString: databaseUrl, sizeMax: 4, applicationName: 'penny-sandbox-psp' });
  const logger = createLogger(process.env.PENNY_TEST_LOG_LEVEL ?? 'silent');
  const { app, injector } = buildSandboxPsp({ pool, logger });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
  afterAll(async () => {
    await app.close();
    await pool.end();
  });
  return {
    url,
    injector,
    connector: new SandboxConnector({
      baseUrl: url, webhookSecrets: [sandboxWebhookSecret], timeoutMs: 2000, retryCountMax: 2,
      retryDelayInitialMs: 5, retryDelayMaxMs: 20, breakerFailuresMax: 1000, breakerOpenMs: 1000,
    }),
    sender: (webhookUrl) =>
      new SandboxWebhookSender(pool, injector, { webhookUrl, secret: sandboxWebhookSecret, logger }),
    resetFaults: () => injector.set(noFaults),
  };
}
