import { beforeAll, describe, expect, it } from 'vitest';
import { advanceClock, configureClock } from '../../src/clock.js';
import { SandboxConnector, sandboxSignatureHeader } from '../../src/connectors/sandbox/sandbox-connector.js';
import { ConnectorUnknownOutcomeError } from '../../src/connectors/connector.js';
import { parseFaultProfile } from '../../src/sandbox-psp/psp-faults.js';
import { signPayload } from '../../src/security/hmac-signature.js';
import { createTestDatabase } from '../support/database.js';
import { sandboxWebhookSecret, startTestSandboxPsp, type TestSandboxPsp } from '../support/sandbox-psp.js';
import { connectorContract } from './connector-contract.js';

/** The sandbox connector keeps the connector contract, over the network, against the sandbox PSP. */
let sandbox: TestSandboxPsp;
let connector: SandboxConnector;
const rotatedSecret = 'sandbox_rotated_secret_0123456789abcdefghij';

beforeAll(async () => {
  // The contract makes the sandbox's later changes happen by moving its clock.
  configureClock('controlled');
  const database = await createTestDatabase();
  sandbox = await startTestSandboxPsp(database.url);
  connector = new SandboxConnector({
    baseUrl: sandbox.url, webhookSecrets: [sandboxWebhookSecret, rotatedSecret], timeoutMs: 1000, retryCountMax: 2,
    retryDelayInitialMs: 5, retryDelayMaxMs: 20, breakerFailuresMax: 1000, breakerOpenMs: 1000,
  });
});

connectorContract('sandbox', {
  connector: () => connector,
  async injectFault(operation, fault, times) {
    sandbox.injector.set(parseFaultProfile({ script: Array.from({ length: times }, () => ({ operation, fault })) }));
  },
  async injectFaults(faults) {
    sandbox.injector.set(parseFaultProfile({ script: faults.map(([operation, fault]) => ({ operation, fault })) }));
  },
  async clearFaults() {
    sandbox.resetFaults();
  },
  capabilities: { payouts: true, settlementReports: true },
  async propagate() {
    // The sandbox's look-up asks the sandbox itself.
  },
  followUpsReceived: false,
  webhooks: {
    signWebhook: (body, options = {}) => ({
      [sandboxSignatureHeader]: signPayload(body, options.secret ?? sandboxWebhookSecret,
        options.timestampSeconds ?? Math.floor(Date.now() / 1000)),
    }),
    signatureHeader: sandboxSignatureHeader,
    rotatedSecret,
  },
  async runDueChanges() {
    const sender = sandbox.sender(undefined);
    // Each step of a payout is payout_step_ms (1 s) after the last.
    for (let step = 0; step < 3; step += 1) {
      advanceClock(60_000);
      await sender.resolvePending();
    }
  },
  async openDispute(input) {
    const response = await fetch(`${sandbox.url}/control/disputes`, { method: 'POST',
      headers: { 'content-type': 'application/json' }, body: JSON.stringify({ psp_reference: input.pspReference,
        amount_minor: input.amountMinor === undefined ? undefined : Number(input.amountMinor),
        reason: input.reason }) });
    const body = await response.json() as { psp_reference: string };
    if (!response.ok) throw new Error(`the sandbox refused the dispute: ${JSON.stringify(body)}`);
    return body.psp_reference;
  },
  async decideDispute(pspReference, outcome) {
    const response = await fetch(`${sandbox.url}/control/disputes/${pspReference}/decide`, { method: 'POST',
      headers: { 'content-type': 'application/json' }, body: JSON.stringify({ outcome }) });
    if (!response.ok) throw new Error(`the sandbox refused the decision: ${await response.text()}`);
  },
  failingPayoutAccount: { destination: '000111111113', failureCode: 'account_closed' },
  payingPayoutAccount: 'DE89370400440532013000',
});

describe('the sandbox connector\'s price list', () => {
  it('publishes the sandbox\'s dispute fee: 1500 minor units, Stripe\'s $15', () => {
    expect(connector.priceList).toEqual({ basisPoints: 200, fixedMinor: 20n, disputeFeeMinor: 1500n });
  });
});

describe('the sandbox connector\'s circuit breaker', () => {
  it('opens after consecutive unknown outcomes and then sends nothing until it half-opens', async () => {
    const fragile = new SandboxConnector({ baseUrl: sandbox.url, webhookSecrets: [sandboxWebhookSecret],
      timeoutMs: 500, retryCountMax: 0, retryDelayInitialMs: 1, retryDelayMaxMs: 1, breakerFailuresMax: 2,
      breakerOpenMs: 60_000 });
    sandbox.injector.set(parseFaultProfile({ rates: { error_503: 1 } }));
    const input = (reference: string) => ({ reference, idempotencyKey: reference, amountMinor: 100n, currency: 'USD',
      paymentMethod: 'pm_card_visa', capture: true, authenticated: false });
    await expect(fragile.authorize(input('pa_breaker1'))).rejects.toBeInstanceOf(ConnectorUnknownOutcomeError);
    await expect(fragile.authorize(input('pa_breaker2'))).rejects.toBeInstanceOf(ConnectorUnknownOutcomeError);
    sandbox.resetFaults();
    await expect(fragile.authorize(input('pa_breaker3'))).rejects.toThrow(/circuit is open/);
    expect(await connector.lookup({ reference: 'pa_breaker3' })).toEqual([]);
  });
});
