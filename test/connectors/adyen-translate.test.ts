import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fromAdyenValue, toAdyenValue } from '../../src/connectors/adyen/adyen-currency.js';
import {
  notificationSigningString, signBody, signNotificationItem, signString, verifyBodySignature, verifyNotificationItem,
} from '../../src/connectors/adyen/adyen-hmac.js';
import {
  AdyenTranslationError, AdyenUnknownAnswerError, authorizeOutput, captureRequest, modificationOutput,
  notificationEvent, notificationItems, paymentDetailsRequest, paymentRequest, reportDownloadUrl,
  type NotificationItem,
} from '../../src/connectors/adyen/adyen-translate.js';
import type { AuthorizeInput } from '../../src/connectors/connector.js';

/** The pure half of the Adyen connector: requests, answers, notifications, signatures, amounts. */
const vectorKey = 'DFB1EB5485895CFA84146406857104ABB4CBCABDC8AAF103A624C8F6A3EAAB00';
const webhooks = JSON.parse(readFileSync(new URL('../fixtures/adyen/openapi/Webhooks-v1.json', import.meta.url),
  'utf8')) as { components: { examples: Record<string, { value: unknown }> } };
const checkout = JSON.parse(readFileSync(new URL('../fixtures/adyen/openapi/CheckoutService-v71.json',
  import.meta.url), 'utf8')) as { components: { examples: Record<string, { value: unknown }> } };
const account = { merchantAccount: 'PennyECOM', testMode: true, returnUrl: 'https://penny.example/return' };
const input = (overrides: Partial<AuthorizeInput> = {}): AuthorizeInput => ({ reference: 'pa_1', idempotencyKey: 'k',
  amountMinor: 1000n, currency: 'EUR', paymentMethod: 'pm_card_visa', capture: true, authenticated: false,
  ...overrides });

describe('Adyen notification HMAC', () => {
  it('passes both test vectors of the fixtures README', () => {
    expect(signString('pspReference:originalReference:merchantAccount:reference:1000:EUR:REPORT_AVAILABLE:true',
      vectorKey)).toBe('ZNBPtI+oDyyRrLyD1XirkKnQgIAlFc07Vj27TeHsDRE=');
    expect(signString('pspReference:originalReference:merchantAccount:reference:1000:EUR:EVENT:true', vectorKey))
      .toBe('ipnxGCaUZ4l8TUW75a71/ghd2Fe5ffvX0pV4TLTntIc=');
  });

  it('signs the eight fields of an item, an absent one as the empty string', () => {
    const item = { pspReference: 'pspReference', originalReference: 'originalReference',
      merchantAccountCode: 'merchantAccount', merchantReference: 'reference', amount: { value: 1000, currency: 'EUR' },
      eventCode: 'EVENT', success: 'true' };
    expect(signNotificationItem(item, vectorKey)).toBe('ipnxGCaUZ4l8TUW75a71/ghd2Fe5ffvX0pV4TLTntIc=');
    expect(notificationSigningString({ ...item, originalReference: undefined }))
      .toBe('pspReference::merchantAccount:reference:1000:EUR:EVENT:true');
  });

  const examples = Object.entries(webhooks.components.examples);
  const standard = examples.flatMap(([name, example]) => {
    const items = notificationItems(example.value);
    return items === undefined ? [] : items.map((item) => [name, item] as const);
  });

  it('reads the 42 examples of Webhooks-v1.json: 39 standard notifications, 3 of another shape', () => {
    expect(examples).toHaveLength(42);
    expect(standard).toHaveLength(39);
    expect(examples.filter(([, example]) => notificationItems(example.value) === undefined).map(([name]) => name))
      .toEqual(expect.arrayContaining([expect.stringContaining('NOTICE_OF_CHANGE')]));
  });

  it.each(standard)('verifies %s signed with the vector key', (_name, item) => {
    expect(verifyNotificationItem(item, signNotificationItem(item, vectorKey), vectorKey)).toBe(true);
  });

  const signedFields = ['pspReference', 'originalReference', 'merchantAccountCode', 'merchantReference', 'value',
    'currency', 'eventCode', 'success'] as const;
  const changed = (item: NotificationItem, field: typeof signedFields[number]): NotificationItem => {
    const flip = (text: string) => (text === '' ? 'X' : `${text.slice(0, -1)}${text.endsWith('1') ? '2' : '1'}`);
    if (field === 'value') return { ...item, amount: { ...item.amount, value: (item.amount?.value ?? 0) + 1 } };
    if (field === 'currency') return { ...item, amount: { ...item.amount, currency: flip(item.amount?.currency ?? '') } };
    return { ...item, [field]: flip(String(item[field] ?? '')) };
  };

  it.each(standard)('refuses %s with one character changed in any signed field', (_name, item) => {
    const signature = signNotificationItem(item, vectorKey);
    for (const field of signedFields) {
      expect(verifyNotificationItem(changed(item, field), signature, vectorKey), field).toBe(false);
    }
  });

  const typed = examples.filter(([, example]) => notificationItems(example.value) === undefined)
    .map(([name, example]) => [name, Buffer.from(JSON.stringify(example.value))] as const);

  it.each(typed)('verifies %s, signed whole in the HmacSignature header with the vector key', (_name, body) => {
    expect(verifyBodySignature(body, signBody(body, vectorKey), vectorKey)).toBe(true);
  });

  it.each(typed)('refuses %s with any one byte of its body changed', (_name, body) => {
    const signature = signBody(body, vectorKey);
    for (let index = 0; index < body.length; index += 1) {
      const changed = Buffer.from(body);
      changed[index] = (changed[index] ?? 0) ^ 1;
      if (verifyBodySignature(changed, signature, vectorKey)) expect.fail(`byte ${index} changed and still verifies`);
    }
    expect(verifyBodySignature(body, signBody(body, `${vectorKey.slice(0, -1)}1`), vectorKey)).toBe(false);
  });

  it('refuses a signature made with another key, a missing one, and a key that is not hex', () => {
    const [[, item]] = standard as unknown as [[string, NotificationItem]];
    const otherKey = `${vectorKey.slice(0, -1)}1`;
    expect(verifyNotificationItem(item, signNotificationItem(item, otherKey), vectorKey)).toBe(false);
    expect(verifyNotificationItem(item, undefined, vectorKey)).toBe(false);
    expect(verifyNotificationItem(item, signNotificationItem(item, vectorKey), 'not-hex')).toBe(false);
  });
});

describe('Adyen notifications as Penny events', () => {
  const item = (eventCode: string, success: string, extra: Partial<NotificationItem> = {}): NotificationItem => ({
    pspReference: 'PSP2', originalReference: 'PSP1', merchantAccountCode: 'PennyECOM', merchantReference: 'ch_1',
    amount: { value: 2500, currency: 'EUR' }, eventCode, success, ...extra });

  it('deduplicates by pspReference, eventCode and success', () => {
    expect(notificationEvent(item('CAPTURE', 'true'))?.id).toBe('PSP2:CAPTURE:true');
    expect(notificationEvent(item('CAPTURE', 'false'))?.id).toBe('PSP2:CAPTURE:false');
  });

  it('maps captures, cancels and refunds with their outcome, naming the payment they follow', () => {
    expect(notificationEvent(item('CAPTURE', 'true'))?.operation).toMatchObject({ kind: 'capture',
      outcome: 'captured', reference: 'ch_1', parentPspReference: 'PSP1', amountMinor: 2500n, currency: 'EUR' });
    expect(notificationEvent(item('CAPTURE_FAILED', 'true'))?.operation).toMatchObject({ kind: 'capture',
      outcome: 'failed' });
    expect(notificationEvent(item('CANCELLATION', 'true'))?.operation).toMatchObject({ kind: 'void', outcome: 'voided' });
    expect(notificationEvent(item('REFUND', 'false'))?.operation).toMatchObject({ kind: 'refund', outcome: 'failed' });
    expect(notificationEvent(item('REFUND_FAILED', 'true'))?.operation).toMatchObject({ kind: 'refund',
      outcome: 'failed' });
  });

  it('maps an authorisation, captured as Penny asked, and a refused one with Stripe\'s decline code', () => {
    expect(notificationEvent(item('AUTHORISATION', 'true', { originalReference: undefined }))?.operation)
      .toMatchObject({ kind: 'authorize', outcome: 'authorized', captureAsRequested: true, parentPspReference: null });
    expect(notificationEvent(item('AUTHORISATION', 'false', { reason: 'Not enough balance' }))?.operation)
      .toMatchObject({ kind: 'authorize', outcome: 'declined', declineCode: 'insufficient_funds' });
  });

  it('maps chargebacks to disputes opened, won and lost', () => {
    expect(notificationEvent(item('CHARGEBACK', 'true', { originalReference: undefined }))?.operation)
      .toMatchObject({ kind: 'chargeback', outcome: 'needs_response', parentPspReference: 'PSP2' });
    expect(notificationEvent(item('CHARGEBACK_REVERSED', 'true'))?.operation).toMatchObject({ outcome: 'won' });
    expect(notificationEvent(item('SECOND_CHARGEBACK', 'true'))?.operation).toMatchObject({ outcome: 'lost' });
  });

  it('keeps the steps Penny does not apply as notices, those that move money marked so', () => {
    for (const code of ['REFUNDED_REVERSED', 'CANCEL_OR_REFUND', 'TECHNICAL_CANCEL', 'AUTHORISATION_ADJUSTMENT']) {
      expect(notificationEvent(item(code, 'true'))?.operation).toMatchObject({ kind: 'notice', notice: code,
        outcome: 'money_moved', reference: 'ch_1', parentPspReference: 'PSP1' });
      expect(notificationEvent(item(code, 'false'))?.operation).toMatchObject({ kind: 'notice', outcome: 'failed' });
    }
    expect(notificationEvent(item('OFFER_CLOSED', 'true'))?.operation).toMatchObject({ kind: 'notice',
      notice: 'OFFER_CLOSED', outcome: 'performed' });
  });

  it('acts on no other event code', () => {
    expect(notificationEvent(item('REPORT_AVAILABLE', 'true'))).toBeUndefined();
  });

  it('parses the library\'s real-shaped notifications', () => {
    for (const [file, kind, outcome] of [['captureTrue', 'capture', 'captured'], ['captureFalse', 'capture', 'failed'],
      ['refundTrue', 'refund', 'refunded'], ['refundFalse', 'refund', 'failed'],
      ['authorisationTrue', 'authorize', 'authorized']] as const) {
      const body = JSON.parse(readFileSync(new URL(`../fixtures/adyen/notifications/${file}.json`, import.meta.url),
        'utf8')) as unknown;
      const [parsed] = notificationItems(body) ?? [];
      expect(parsed && notificationEvent(parsed)?.operation, file).toMatchObject({ kind, outcome });
    }
  });
});

describe('Adyen requests and answers', () => {
  it('asks for automatic capture with captureDelayHours 0, and manual capture otherwise', () => {
    expect(paymentRequest(input(), account)).toMatchObject({ merchantAccount: 'PennyECOM', reference: 'pa_1',
      amount: { currency: 'EUR', value: 1000 }, captureDelayHours: 0, returnUrl: `${account.returnUrl}?attempt=pa_1` });
    const manual = paymentRequest(input({ capture: false }), account);
    expect(manual).not.toHaveProperty('captureDelayHours');
    expect(manual).toMatchObject({ additionalData: { manualCapture: 'true' } });
  });

  it('gives Adyen a return URL naming the attempt, and sends only the details Adyen takes back', () => {
    expect(new URL(String(paymentRequest(input(), account).returnUrl)).searchParams.get('attempt')).toBe('pa_1');
    expect(paymentDetailsRequest({ redirectResult: 'X6Xt!Y', attempt: 'pa_1', other: 'x' }))
      .toEqual({ details: { redirectResult: 'X6Xt!Y' } });
    expect(() => paymentDetailsRequest({ attempt: 'pa_1' })).toThrow(AdyenTranslationError);
  });

  it('passes the merchant\'s Adyen fields through untouched', () => {
    const fields = { encryptedCardNumber: 'adyenjs_0_1_25$abc', encryptedSecurityCode: 'adyenjs_0_1_25$def' };
    expect(paymentRequest(input({ paymentMethod: 'pm_adyen', paymentMethodData: fields }), account).paymentMethod)
      .toEqual({ type: 'scheme', ...fields });
  });

  it('maps Stripe\'s test payment methods to Adyen\'s test-only card fields, in test mode only', () => {
    const method = paymentRequest(input({ paymentMethod: 'pm_card_chargeDeclinedExpiredCard' }), account)
      .paymentMethod as Record<string, string>;
    expect(method.encryptedCardNumber).toMatch(/^test_4\d{15}$/);
    expect(method).toMatchObject({ encryptedSecurityCode: 'test_737', holderName: 'CARD_EXPIRED' });
    expect(() => paymentRequest(input(), { ...account, testMode: false })).toThrow(AdyenTranslationError);
  });

  it('writes amounts in Adyen\'s own minor units', () => {
    expect(toAdyenValue('ISK', 150n)).toBe(15000n);
    expect(toAdyenValue('IDR', 150000n)).toBe(1500n);
    expect(toAdyenValue('IDR', 150001n)).toBeUndefined();
    expect(toAdyenValue('JPY', 500n)).toBe(500n);
    expect(toAdyenValue('KWD', 1500n)).toBe(1500n);
    expect(fromAdyenValue('CLP', 70000n)).toBe(700n);
    expect(captureRequest({ reference: 'ch_1', idempotencyKey: 'k', pspReference: 'P', amountMinor: 150n,
      currency: 'ISK' }, account).amount).toEqual({ currency: 'ISK', value: 15000 });
    expect(() => captureRequest({ reference: 'ch_1', idempotencyKey: 'k', pspReference: 'P', amountMinor: 1n,
      currency: 'IDR' }, account)).toThrow(AdyenTranslationError);
  });

  it('reads Authorised as captured or authorized, as Penny asked', () => {
    const answer = checkout.components.examples['post-payments-card-securedfields-200']?.value;
    expect(authorizeOutput(answer, { capture: true })).toEqual({ outcome: 'captured', pspReference: '993617895215577D' });
    expect(authorizeOutput(answer, { capture: false }).outcome).toBe('authorized');
  });

  it('reads Refused with its refusalReason as Stripe\'s decline', () => {
    expect(authorizeOutput({ resultCode: 'Refused', pspReference: 'P', refusalReason: 'Expired Card',
      refusalReasonCode: '6' }, { capture: true })).toMatchObject({ outcome: 'declined', code: 'expired_card',
      declineCode: 'expired_card' });
    expect(authorizeOutput({ resultCode: 'Refused', pspReference: 'P', refusalReason: 'Something new' },
      { capture: true })).toMatchObject({ outcome: 'declined', code: 'card_declined', declineCode: 'generic_decline' });
  });

  it('reads Pending and Received as pending, and the shopper actions as requires_action with the URL', () => {
    expect(authorizeOutput({ resultCode: 'Received', pspReference: 'P' }, { capture: true }).outcome).toBe('pending');
    expect(authorizeOutput({ resultCode: 'Pending', pspReference: 'P' }, { capture: true }).outcome).toBe('pending');
    const redirect = checkout.components.examples['post-payments-ideal-200']?.value as { action: { url: string } };
    expect(authorizeOutput(redirect, { capture: true })).toMatchObject({ outcome: 'requires_action',
      redirectUrl: redirect.action.url });
    expect(authorizeOutput({ resultCode: 'ChallengeShopper', action: { url: 'https://x' } }, { capture: true }).outcome)
      .toBe('requires_action');
  });

  it('reads Error and an unknown resultCode as an unknown outcome', () => {
    expect(() => authorizeOutput({ resultCode: 'Error', refusalReason: 'Acquirer Error' }, { capture: true }))
      .toThrow(AdyenUnknownAnswerError);
    expect(() => authorizeOutput({ resultCode: 'Bogus' }, { capture: true })).toThrow(AdyenUnknownAnswerError);
  });

  it('reads a modification\'s received as received, never as done', () => {
    const answer = checkout.components.examples['post-payments-paymentPspReference-captures-capture-201']?.value;
    expect(modificationOutput(answer)).toEqual({ pspReference: '993617894906488A', outcome: 'received' });
    expect(() => modificationOutput({ status: 'done' })).toThrow(AdyenUnknownAnswerError);
  });
});

describe('where Adyen\'s announced reports are downloaded from', () => {
  const endpoint = 'https://checkout-test.adyen.com/v71';
  it('takes Adyen\'s own https hosts and the configured endpoint\'s origin only', () => {
    const report = '/reports/download/MerchantAccount/Shop/settlement_detail_report_batch_1.csv';
    expect(reportDownloadUrl(`https://ca-test.adyen.com${report}`, endpoint)).toBe(`https://ca-test.adyen.com${report}`);
    expect(reportDownloadUrl(`https://ca-live.adyenpayments.com${report}`, endpoint)).toBeDefined();
    expect(reportDownloadUrl(`http://127.0.0.1:9000${report}`, 'http://127.0.0.1:9000/v71')).toBeDefined();
    for (const refused of [`http://ca-test.adyen.com${report}`, `https://ca-test.adyen.com:8443${report}`,
      `https://adyen.com.evil.example${report}`, `https://eviladyen.com${report}`, `https://u:p@ca-test.adyen.com${report}`,
      `http://169.254.169.254${report}`, `http://127.0.0.1:9001${report}`, 'not a url']) {
      expect(reportDownloadUrl(refused, 'http://127.0.0.1:9000/v71'), refused).toBeUndefined();
    }
  });
});
