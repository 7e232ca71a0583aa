import { beforeAll, describe, expect, it } from 'vitest';
import { AdyenConnector, adyenConnectorId } from '../../src/connectors/adyen/adyen-connector.js';
import { ConnectorRefusedError, ConnectorUnknownOutcomeError, ConnectorWebhookError, type PspOperation }
  from '../../src/connectors/connector.js';
import { startAdyenStub, type AdyenStub } from '../support/adyen-stub.js';
import { connectorContract } from './connector-contract.js';

/**
 * The Adyen connector keeps the connector contract against a local stub of Checkout v71 that checks
 * every request against Adyen's published request schemas. Its look-up reads the notifications the
 * stub sent, verified by the connector as Penny's webhook route does.
 */
let stub: AdyenStub;
let connector: AdyenConnector;
/** The operations Adyen's verified notifications reported, the latest per operation. */
const notified = new Map<string, PspOperation>();

function connectorFor(overrides: Partial<ConstructorParameters<typeof AdyenConnector>[0]> = {}) {
  return new AdyenConnector({
    merchantAccount: stub.merchantAccount, apiKey: stub.apiKey, hmacKeyHex: stub.hmacKeyHex, endpoint: stub.url,
    returnUrl: 'https://penny.example/return', timeoutMs: 300, retryCountMax: 2, retryDelayInitialMs: 5,
    retryDelayMaxMs: 20, breakerFailuresMax: 1000, breakerOpenMs: 1000,
    notificationLog: (_id, reference) => Promise.resolve([...notified.values()]
      .filter((operation) => operation.reference === reference)),
    ...overrides,
  });
}

async function propagate(): Promise<void> {
  for (const body of stub.takeNotifications()) {
    for (const event of connector.verifyNotification(Buffer.from(body)).events) {
      notified.set(`${event.operation.kind}:${event.operation.pspReference}`, event.operation);
    }
  }
}

beforeAll(async () => {
  stub = await startAdyenStub();
  connector = connectorFor();
});

connectorContract('adyen', {
  connector: () => connector,
  capabilities: { payouts: false, settlementReports: false },
  async injectFault(operation, fault, times) {
    stub.injectFaults(Array.from({ length: times }, () => [operation, fault] as const));
  },
  async injectFaults(faults) {
    stub.injectFaults(faults);
  },
  async clearFaults() {
    stub.clearFaults();
  },
  propagate,
  followUpsReceived: true,
  async runDueChanges() {
    await propagate();
  },
  async openDispute(input) {
    const payment = stub.payments.get(input.pspReference);
    return stub.chargeback(input.pspReference, Number(input.amountMinor ?? BigInt(payment?.value ?? 0)),
      input.reason === 'product_not_received' ? 'Merchandise/Services Not Received' : 'Fraud');
  },
  async decideDispute(pspReference, outcome) {
    stub.decideChargeback(pspReference, outcome);
  },
  failingPayoutAccount: { destination: '', failureCode: '' },
  payingPayoutAccount: '',
});

describe('the Adyen connector against Adyen\'s request schemas', () => {
  it('sends only requests that match CheckoutService-v71.json\'s schemas', async () => {
    // Each kind of request the connector makes, sent here, whatever ran before.
    const before = stub.requests.length;
    const authorize = { idempotencyKey: '', amountMinor: 1000n, currency: 'EUR', paymentMethod: 'pm_card_visa',
      authenticated: false };
    const held = await connector.authorize({ ...authorize, reference: 'pa_schema_held',
      idempotencyKey: 'k_schema_held', capture: false });
    const paid = await connector.authorize({ ...authorize, reference: 'pa_schema_paid',
      idempotencyKey: 'k_schema_paid', capture: true });
    const voided = await connector.authorize({ ...authorize, reference: 'pa_schema_void',
      idempotencyKey: 'k_schema_void', capture: false });
    await connector.capture({ reference: 'ch_schema_held', idempotencyKey: 'k_schema_capture',
      pspReference: held.pspReference ?? '', amountMinor: 600n, currency: 'EUR' });
    await connector.void({ reference: 'ch_schema_void', idempotencyKey: 'k_schema_cancel',
      pspReference: voided.pspReference ?? '' });
    await connector.refund({ reference: 're_schema', idempotencyKey: 'k_schema_refund',
      pspReference: paid.pspReference ?? '', amountMinor: 300n, currency: 'EUR' });
    const sent = stub.requests.slice(before);
    expect(sent.map((request) => request.path)).toEqual(['/payments', '/payments', '/payments',
      expect.stringMatching(/\/captures$/), expect.stringMatching(/\/cancels$/), expect.stringMatching(/\/refunds$/)]);
    // Every request the stub saw, these and any other test's, was checked.
    const invalid = stub.requests.filter((request) => !request.valid);
    expect(invalid.map((request) => [request.path, request.errors])).toEqual([]);
  });

  it('would catch a request off the schema', async () => {
    const before = stub.requests.length;
    const response = await fetch(`${stub.url}/payments`, { method: 'POST', headers: { 'x-api-key': stub.apiKey,
      'content-type': 'application/json' }, body: JSON.stringify({ amount: { currency: 'EUR', value: '10' } }) });
    expect(response.status).toBe(422);
    expect(stub.requests[before]?.valid).toBe(false);
  });

  it('sends its API key, and a wrong one is refused (401)', async () => {
    const wrong = connectorFor({ apiKey: 'AQE_wrong' });
    await expect(wrong.authorize({ reference: 'pa_key', idempotencyKey: 'k_key', amountMinor: 100n, currency: 'EUR',
      paymentMethod: 'pm_card_visa', capture: true, authenticated: false })).rejects.toMatchObject({ status: 401 });
  });

  it('passes the merchant\'s Adyen fields through untouched', async () => {
    const fields = { encryptedCardNumber: 'adyenjs_0_1_25$abc', encryptedExpiryMonth: 'adyenjs_0_1_25$m',
      encryptedExpiryYear: 'adyenjs_0_1_25$y', encryptedSecurityCode: 'adyenjs_0_1_25$c' };
    await connector.authorize({ reference: 'pa_fields', idempotencyKey: 'k_fields', amountMinor: 100n,
      currency: 'EUR', paymentMethod: 'pm_adyen', paymentMethodData: fields, capture: true, authenticated: false });
    expect(stub.requests.at(-1)?.body).toMatchObject({ paymentMethod: { type: 'scheme', ...fields } });
  });

  it('answers an unknown outcome for a re-send without the fields Penny never keeps, sending nothing', async () => {
    const before = stub.requests.length;
    await expect(connector.authorize({ reference: 'pa_fields', idempotencyKey: 'k_fields', amountMinor: 100n,
      currency: 'EUR', paymentMethod: 'pm_adyen', capture: true, authenticated: false }))
      .rejects.toBeInstanceOf(ConnectorUnknownOutcomeError);
    expect(stub.requests.length).toBe(before);
  });

  it('reads resultCode Error as an unknown outcome', async () => {
    await expect(connector.authorize({ reference: 'pa_error', idempotencyKey: 'k_error', amountMinor: 100n,
      currency: 'EUR', paymentMethod: 'pm_card_chargeDeclinedProcessingError', capture: true, authenticated: false }))
      .rejects.toBeInstanceOf(ConnectorUnknownOutcomeError);
  });

  it('answers requires_action with Adyen\'s redirect for a 3-D Secure card', async () => {
    expect(await connector.authorize({ reference: 'pa_3ds', idempotencyKey: 'k_3ds', amountMinor: 100n,
      currency: 'EUR', paymentMethod: 'pm_card_threeDSecure2Required', capture: true, authenticated: false }))
      .toMatchObject({ outcome: 'requires_action', redirectUrl: expect.stringMatching(/^https:\/\/test\.adyen\.com\//) });
  });

  it('tells Adyen the shopper\'s redirectResult (/payments/details) and reads its answer as /payments\'', async () => {
    const input = { reference: 'pa_3ds_done', idempotencyKey: 'k_3ds_done', amountMinor: 100n, currency: 'EUR',
      paymentMethod: 'pm_card_threeDSecure2Required', capture: false, authenticated: false };
    await connector.authorize(input);
    const details = { redirectResult: stub.completeRedirect('pa_3ds_done', 'authorised') };
    expect(await connector.authenticationResult({ reference: input.reference, idempotencyKey: 'k_3ds_done-details',
      details, capture: false })).toMatchObject({ outcome: 'authorized' });
    expect(stub.requests.at(-1)).toMatchObject({ path: '/payments/details', valid: true, body: { details } });
    await expect(connector.authenticationResult({ reference: input.reference, idempotencyKey: 'k_forged',
      details: { redirectResult: 'forged' }, capture: false })).rejects.toBeInstanceOf(ConnectorRefusedError);
  });

  it('refuses a reused key with another body, as Adyen does', async () => {
    const input = { reference: 'pa_reuse', idempotencyKey: 'k_reuse', amountMinor: 100n, currency: 'EUR',
      paymentMethod: 'pm_card_visa', capture: true, authenticated: false };
    await connector.authorize(input);
    await expect(connector.authorize({ ...input, amountMinor: 200n })).rejects.toBeInstanceOf(ConnectorRefusedError);
  });

  it('refuses a notification naming another merchant account, or with one item unsigned', () => {
    const item = { pspReference: 'P1', merchantReference: 'pa_1', amount: { value: 100, currency: 'EUR' },
      eventCode: 'AUTHORISATION', success: 'true' };
    const other = stub.sign([{ ...item, merchantAccountCode: 'OtherAccount' }]);
    expect(() => connector.verifyNotification(Buffer.from(other))).toThrow(ConnectorWebhookError);
    const signed = JSON.parse(stub.sign([{ ...item, merchantAccountCode: stub.merchantAccount },
      { ...item, pspReference: 'P2', merchantAccountCode: stub.merchantAccount }])) as
      { notificationItems: { NotificationRequestItem: { additionalData: Record<string, unknown> } }[] };
    delete signed.notificationItems[1]?.NotificationRequestItem.additionalData.hmacSignature;
    expect(() => connector.verifyNotification(Buffer.from(JSON.stringify(signed))))
      .toThrow(expect.objectContaining({ problem: 'missing' }));
  });

  it('is named after its merchant account', () => {
    expect(connector.id).toBe(adyenConnectorId(stub.merchantAccount));
  });
});
