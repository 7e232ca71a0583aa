import { beforeAll, describe, expect, it } from 'vitest';
import { signBody } from '../../src/connectors/adyen/adyen-hmac.js';
import { createLogger } from '../../src/logger.js';
import { signPayload } from '../../src/security/hmac-signature.js';
import { startAdyenStub, type AdyenStub } from '../support/adyen-stub.js';
import { createTestLedger, type TestLedger } from '../support/app.js';
import { sandboxWebhookSecret } from '../support/sandbox-psp.js';

/**
 * The PSP webhook routes take anyone's POST: a notification Penny cannot verify gets one answer,
 * whatever the reason (no such connector, an Adyen account no merchant is routed to, a bad
 * signature), so a caller without the keys learns nothing of the operator's configuration. The
 * reason is in the log, at warn, without the signature.
 */
let penny: TestLedger;
let stub: AdyenStub;
const logLines: string[] = [];
const wrongSignature = 'V3JvbmdTaWduYXR1cmVGb3JUaGlzSXRlbQ==';

beforeAll(async () => {
  stub = await startAdyenStub({ timeoutMs: 300 });
  penny = await createTestLedger({ routing: { adyenTimeoutMs: 300 },
    logger: createLogger('warn', { write: (line: string) => { logLines.push(line); } }) });
  const created = await penny.merchants.createMerchant('Adyen Shop');
  const routed = await penny.request({ method: 'POST', url: `/v1/merchants/${created.merchant.id}/connector`, body: {
    connector: 'adyen', merchant_account: stub.merchantAccount, api_key: stub.apiKey, hmac_key: stub.hmacKeyHex,
    endpoint: stub.url } });
  expect(routed.status).toBe(200);
});

function notification(account: string, hmacSignature = wrongSignature): string {
  return JSON.stringify({ live: 'false', notificationItems: [{ NotificationRequestItem: { merchantAccountCode: account,
    pspReference: 'PSPREFUSED1', eventCode: 'AUTHORISATION', success: 'true', merchantReference: 'pa_x',
    amount: { value: 1, currency: 'EUR' }, eventDate: '2026-01-01T00:00:00Z', additionalData: { hmacSignature } } }] });
}

async function post(url: string, body: string, headers: Record<string, string> = {}) {
  const response = await penny.app.inject({ method: 'POST', url, payload: body,
    headers: { 'content-type': 'application/json', ...headers } });
  return { status: response.statusCode, body: response.body };
}

const postAdyen = (body: string, headers: Record<string, string> = {}) =>
  post('/v1/connectors/adyen/webhooks', body, headers);

/** The warn lines logged while `action` ran. */
async function warnedDuring(action: () => Promise<unknown>): Promise<{ level: number; msg: string; reason: string }[]> {
  const from = logLines.length;
  await action();
  return logLines.slice(from).map((line) => JSON.parse(line) as { level: number; msg: string; reason: string });
}

describe('the Adyen webhook route, to a notification it cannot verify', () => {
  it('answers a routed account with a wrong signature exactly as an account no merchant is routed to', async () => {
    const routed = await postAdyen(notification(stub.merchantAccount));
    const unrouted = await postAdyen(notification('SomeoneElsesAccount'));
    expect(routed.status).toBe(401);
    expect(JSON.parse(routed.body)).toMatchObject({ error: { code: 'webhook_hmac_invalid' } });
    expect(routed.body).not.toContain('[accepted]');
    expect(unrouted).toEqual(routed);
  });

  it('answers a malformed body, a missing signature and a header-signed webhook no key verifies the same way',
    async () => {
      const expected = await postAdyen(notification(stub.merchantAccount));
      const typed = JSON.stringify({ type: 'ach.notificationOfChange', version: '1', data: { pspReference: 'N1' } });
      const unsigned = JSON.parse(notification(stub.merchantAccount)) as
        { notificationItems: { NotificationRequestItem: { additionalData: Record<string, string> } }[] };
      delete unsigned.notificationItems[0]?.NotificationRequestItem.additionalData.hmacSignature;
      const answers = [
        await postAdyen('not json'),
        await postAdyen('{"live":"false"}'),
        await postAdyen(JSON.stringify(unsigned)),
        await postAdyen(typed),
        await postAdyen(typed, { hmacsignature: signBody(Buffer.from(typed), 'AB'.repeat(32)) }),
      ];
      for (const answer of answers) expect(answer).toEqual(expected);
    });

  it('logs the reason at warn, never the signature nor the HMAC key', async () => {
    const warned = await warnedDuring(async () => {
      await postAdyen(notification(stub.merchantAccount));
      await postAdyen(notification('SomeoneElsesAccount'));
    });
    expect(warned.map((line) => [line.level, line.reason])).toEqual([
      [40, `an item's HMAC signature for the Adyen merchant account ${stub.merchantAccount} is mismatch`],
      [40, 'no merchant is routed to the Adyen merchant account SomeoneElsesAccount'],
    ]);
    const logged = JSON.stringify(warned);
    expect(logged).not.toContain(wrongSignature);
    expect(logged.toLowerCase()).not.toContain(stub.hmacKeyHex.toLowerCase());
  });

  it('still answers [accepted] to a notification that verifies', async () => {
    const signed = stub.sign([{ pspReference: 'PSPVERIFIED1', merchantAccountCode: stub.merchantAccount,
      merchantReference: 'pa_none', amount: { value: 100, currency: 'EUR' }, eventCode: 'AUTHORISATION',
      success: 'false' }]);
    expect(await postAdyen(signed)).toEqual({ status: 200, body: '[accepted]' });
  });
});

describe('the connector webhook route, to a webhook it cannot verify', () => {
  const sandboxSigned = (body: string) =>
    ({ 'sandbox-signature': signPayload(body, sandboxWebhookSecret, Math.floor(Date.now() / 1000)) });

  it("answers a connector Penny does not have exactly as a registered connector's bad signature", async () => {
    const body = JSON.stringify({ id: 'sbxevt_refused', object: 'event', type: 'payout.paid', data: null });
    const tampered = sandboxSigned(body);
    const registered = await post('/v1/connectors/sandbox/webhooks', `${body} `, tampered);
    expect(registered.status).toBe(400);
    expect(JSON.parse(registered.body)).toMatchObject({ error: { code: 'webhook_signature_invalid' } });
    expect(await post('/v1/connectors/nobody/webhooks', `${body} `, tampered)).toEqual(registered);
    expect(await post(`/v1/connectors/adyen:${stub.merchantAccount}/webhooks`, body, tampered)).toEqual(registered);
    expect(await post('/v1/connectors/adyen:SomeoneElsesAccount/webhooks', body, tampered)).toEqual(registered);
  });

  it('logs the reason at warn, never the signature', async () => {
    const body = '{}';
    const headers = sandboxSigned(body);
    const warned = await warnedDuring(async () => {
      await post('/v1/connectors/nobody/webhooks', body, headers);
      await post('/v1/connectors/sandbox/webhooks', body, { 'sandbox-signature': 't=1,v1=00' });
    });
    expect(warned.map((line) => [line.level, line.reason])).toEqual([
      [40, 'no connector has this id'],
      [40, 'its signature is stale'],
    ]);
    expect(JSON.stringify(warned)).not.toContain(String(headers['sandbox-signature']).split('v1=')[1]);
  });
});
