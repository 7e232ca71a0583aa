import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { afterAll } from 'vitest';
import { signNotificationItem } from '../../src/connectors/adyen/adyen-hmac.js';
import type { NotificationItem } from '../../src/connectors/adyen/adyen-translate.js';

/**
 * Adyen's Checkout API v71 played by a local HTTP server, offline. Every request Penny sends is
 * checked against the request schema of Adyen's published OpenAPI document
 * (test/fixtures/adyen/openapi/CheckoutService-v71.json) with ajv, and answered from the document's
 * examples (the success examples with fresh pspReferences, the error examples for 401/422/500).
 * It keeps Adyen's idempotency (a key answers its first answer; a key reused with another body is
 * refused), emits the standard notifications Adyen would send (signed with the account's HMAC
 * key), and injects faults. Refusals follow Adyen's test `holderName` values.
 */
export const adyenVectorKey = 'DFB1EB5485895CFA84146406857104ABB4CBCABDC8AAF103A624C8F6A3EAAB00';

type Fault = 'timeout_after' | 'timeout_before' | 'error_500' | 'error_429';
type Operation = 'authorize' | 'capture' | 'cancel' | 'refund' | 'details';

interface Payment {
  pspReference: string;
  reference: string;
  currency: string;
  value: number;
  autoCapture: boolean;
  capturedValue: number;
  refundedValue: number;
  cancelled: boolean;
}

interface Document {
  components: { schemas: Record<string, unknown>; examples: Record<string, { value: Record<string, unknown> }> };
}

const document = JSON.parse(readFileSync(new URL('../fixtures/adyen/openapi/CheckoutService-v71.json',
  import.meta.url), 'utf8')) as Document;

/** One ajv over the whole document, so its `#/components/schemas/…` references resolve. */
function requestValidators(): Record<string, ValidateFunction> {
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  ajv.addSchema({ ...document, $id: 'checkout' } as object);
  const compile = (name: string) => ajv.compile({ $ref: `checkout#/components/schemas/${name}` });
  return { payments: compile('PaymentRequest'), captures: compile('PaymentCaptureRequest'),
    cancels: compile('PaymentCancelRequest'), refunds: compile('PaymentRefundRequest'),
    details: compile('PaymentDetailsRequest') };
}

const validators = requestValidators();

function example(name: string): Record<string, unknown> {
  const found = document.components.examples[name]?.value;
  if (found === undefined) throw new Error(`CheckoutService-v71.json has no example ${name}`);
  return structuredClone(found);
}

/** Adyen's test holderName values and what they trigger (docs: testing result codes). */
const holderRefusals: Readonly<Record<string, { resultCode: string; refusalReason: string; code: string }>> = {
  DECLINED: { resultCode: 'Refused', refusalReason: 'Refused', code: '2' },
  CARD_EXPIRED: { resultCode: 'Refused', refusalReason: 'Expired Card', code: '6' },
  NOT_ENOUGH_BALANCE: { resultCode: 'Refused', refusalReason: 'Not enough balance', code: '12' },
  CVC_DECLINED: { resultCode: 'Refused', refusalReason: 'CVC Declined', code: '24' },
  FRAUD: { resultCode: 'Refused', refusalReason: 'FRAUD', code: '20' },
  ERROR: { resultCode: 'Error', refusalReason: 'Acquirer Error', code: '4' },
};

export interface AdyenStub {
  readonly url: string;
  readonly apiKey: string;
  readonly merchantAccount: string;
  readonly hmacKeyHex: string;
  /** Every request that reached the stub, with the schema's verdict. */
  readonly requests: { path: string; body: unknown; valid: boolean; errors: string[] }[];
  /** Payments Adyen holds, by pspReference. */
  readonly payments: Map<string, Payment>;
  injectFaults(faults: readonly (readonly [Operation, Fault])[]): void;
  clearFaults(): void;
  /** Notifications emitted and not yet taken, as signed notification bodies (one item each). */
  takeNotifications(): string[];
  /** Has the cardholder dispute a payment (a CHARGEBACK notification); the dispute's pspReference. */
  chargeback(pspReference: string, valueMinor: number, reason: string): string;
  decideChargeback(pspReference: string, outcome: 'won' | 'lost'): void;
  /** The next capture Adyen takes fails later: CAPTURE_FAILED instead of CAPTURE (as after a scheme refusal). */
  failNextCapture(): void;
  /**
   * The shopper finishes Adyen's 3-D Secure page of the payment Penny sent with `reference`: the
   * `redirectResult` Adyen would append to the return URL, which `/payments/details` then answers
   * Authorised or (failed) Refused.
   */
  completeRedirect(reference: string, outcome: 'authorised' | 'refused'): string;
  /**
   * Publishes a report for download, as Adyen's report URLs serve it (GET with the account's API
   * key); the URL a REPORT_AVAILABLE notification names.
   */
  publishReport(name: string, text: string): string;
  /** The report downloads that reached the stub (their paths). */
  readonly reportDownloads: string[];
  /** A signed notification body of the given items (each signed with `key`, the account's by default). */
  sign(items: NotificationItem[], key?: string): string;
}

export async function startAdyenStub(
  options: { merchantAccount?: string; hmacKeyHex?: string; timeoutMs?: number } = {},
): Promise<AdyenStub> {
  const apiKey = `AQE_test_${randomBytes(8).toString('hex')}`;
  const merchantAccount = options.merchantAccount ?? 'PennyECOM';
  const hmacKeyHex = options.hmacKeyHex ?? adyenVectorKey;
  const hangMs = (options.timeoutMs ?? 300) * 3;
  const payments = new Map<string, Payment>();
  const byKey = new Map<string, { hash: string; status: number; body: unknown }>();
  const requests: AdyenStub['requests'] = [];
  let faults: (readonly [Operation, Fault])[] = [];
  let notifications: string[] = [];
  let captureFails = false;
  const reports = new Map<string, string>();
  const reportDownloads: string[] = [];
  /** Payments awaiting the shopper's 3-D Secure, by reference, and the redirectResults handed out. */
  const redirected = new Map<string, { psp: string; amount: { currency: string; value: number };
    autoCapture: boolean }>();
  const redirectResults = new Map<string, { reference: string; outcome: 'authorised' | 'refused' }>();
  let counter = 0;
  const pspReference = () => `${Date.now().toString().slice(-8)}${String(counter += 1).padStart(7, '0')}X`;

  const sign = (items: NotificationItem[], key = hmacKeyHex) => JSON.stringify({ live: 'false',
    notificationItems: items.map((item) => ({ NotificationRequestItem: { ...item,
      additionalData: { ...item.additionalData, hmacSignature: signNotificationItem(item, key) } } })) });
  const notify = (item: Omit<NotificationItem, 'merchantAccountCode'>) => {
    notifications.push(sign([{ ...item, merchantAccountCode: merchantAccount,
      eventDate: new Date().toISOString() } as NotificationItem]));
  };

  const authorize = (body: Record<string, unknown>): [number, unknown] => {
    const amount = body.amount as { currency: string; value: number };
    const method = body.paymentMethod as Record<string, string>;
    const reference = String(body.reference);
    const refusal = holderRefusals[method.holderName ?? ''];
    const psp = pspReference();
    if (method.encryptedCardNumber?.startsWith('test_4917') === true) {
      redirected.set(reference, { psp, amount, autoCapture: body.captureDelayHours === 0 });
      const redirect = example('post-payments-ideal-200');
      return [200, { ...redirect, resultCode: 'RedirectShopper', pspReference: psp }];
    }
    if (refusal !== undefined) {
      if (refusal.resultCode === 'Refused') {
        notify({ pspReference: psp, merchantReference: reference, amount, eventCode: 'AUTHORISATION', success: 'false',
          reason: refusal.refusalReason });
      }
      return [200, { pspReference: psp, resultCode: refusal.resultCode, refusalReason: refusal.refusalReason,
        refusalReasonCode: refusal.code, merchantReference: reference }];
    }
    const autoCapture = body.captureDelayHours === 0;
    payments.set(psp, { pspReference: psp, reference, currency: amount.currency, value: amount.value, autoCapture,
      capturedValue: autoCapture ? amount.value : 0, refundedValue: 0, cancelled: false });
    notify({ pspReference: psp, merchantReference: reference, amount, eventCode: 'AUTHORISATION', success: 'true' });
    return [200, { ...example('post-payments-card-securedfields-200'), pspReference: psp, merchantReference: reference }];
  };

  /** /payments/details: the redirectResult's payment authorised or refused, as the shopper's page ended. */
  const details = (body: Record<string, unknown>): [number, unknown] => {
    const token = (body.details as { redirectResult?: string } | undefined)?.redirectResult ?? '';
    const result = redirectResults.get(token);
    const pending = result === undefined ? undefined : redirected.get(result.reference);
    if (result === undefined || pending === undefined) {
      return [422, { ...example('generic-422'), errorCode: '14_018', message: 'Invalid payload provided' }];
    }
    const { reference } = result;
    if (result.outcome === 'refused') {
      notify({ pspReference: pending.psp, merchantReference: reference, amount: pending.amount,
        eventCode: 'AUTHORISATION', success: 'false', reason: '3D Not Authenticated' });
      return [200, { resultCode: 'Refused', pspReference: pending.psp, refusalReason: '3D Not Authenticated',
        refusalReasonCode: '11', merchantReference: reference }];
    }
    if (!payments.has(pending.psp)) {
      payments.set(pending.psp, { pspReference: pending.psp, reference, currency: pending.amount.currency,
        value: pending.amount.value, autoCapture: pending.autoCapture,
        capturedValue: pending.autoCapture ? pending.amount.value : 0, refundedValue: 0, cancelled: false });
      notify({ pspReference: pending.psp, merchantReference: reference, amount: pending.amount,
        eventCode: 'AUTHORISATION', success: 'true' });
    }
    return [200, { ...example('post-payments-details-00.redirect-200'), pspReference: pending.psp,
      merchantReference: reference }];
  };

  const modify = (operation: 'captures' | 'cancels' | 'refunds', paymentPsp: string, body: Record<string, unknown>):
  [number, unknown] => {
    const payment = payments.get(paymentPsp);
    if (payment === undefined) {
      return [422, { ...example('generic-422'), errorCode: '167',
        message: 'Original pspReference required for this operation' }];
    }
    const psp = pspReference();
    const reference = String(body.reference ?? '');
    const amount = (body.amount ?? { currency: payment.currency, value: payment.value }) as
      { currency: string; value: number };
    const base = { pspReference: psp, originalReference: paymentPsp, merchantReference: reference, amount };
    const answerName = { captures: 'post-payments-paymentPspReference-captures-capture-201',
      cancels: 'post-payments-paymentPspReference-cancels-cancel-with-psp-reference-201',
      refunds: 'post-payments-paymentPspReference-refunds-refund-201' }[operation];
    const answer = { ...example(answerName), merchantAccount, paymentPspReference: paymentPsp, reference,
      pspReference: psp, ...(operation === 'cancels' ? {} : { amount }) };
    if (operation === 'captures') {
      const fits = !payment.cancelled && payment.capturedValue === 0 && amount.value <= payment.value;
      if (fits && captureFails) {
        captureFails = false;
        notify({ ...base, eventCode: 'CAPTURE_FAILED', success: 'true', reason: 'Capture Failed' });
        return [201, answer];
      }
      if (fits) payment.capturedValue = amount.value;
      notify({ ...base, eventCode: 'CAPTURE', success: fits ? 'true' : 'false' });
    } else if (operation === 'cancels') {
      const fits = payment.capturedValue === 0 && !payment.cancelled;
      if (fits) payment.cancelled = true;
      notify({ ...base, eventCode: 'CANCELLATION', success: fits ? 'true' : 'false' });
    } else {
      const fits = payment.refundedValue + amount.value <= payment.capturedValue;
      if (fits) payment.refundedValue += amount.value;
      notify({ ...base, eventCode: 'REFUND', success: fits ? 'true' : 'false' });
    }
    return [201, answer];
  };

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const send = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (request.headers['x-api-key'] !== apiKey) return send(401, example('generic-401'));
    if (request.method === 'GET' && request.url?.startsWith('/reports/download/') === true) {
      reportDownloads.push(request.url);
      const report = reports.get(request.url);
      if (report === undefined) return send(404, { status: 404, errorCode: '000', message: 'Not found' });
      response.writeHead(200, { 'content-type': 'text/csv' }).end(report);
      return undefined;
    }
    const path = (request.url ?? '').replace(/^\/v71/, '');
    const match = /^\/payments(?:\/(details)|\/([^/]+)\/(captures|cancels|refunds))?$/.exec(path);
    if (request.method !== 'POST' || match === null) return send(404, { status: 404, errorCode: '000', message: 'Not found' });
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      return send(400, example('generic-400'));
    }
    const kind = (match[1] ?? match[3] ?? 'payments') as 'payments' | 'details' | 'captures' | 'cancels' | 'refunds';
    const validate = validators[kind] as ValidateFunction;
    const valid = validate(body);
    requests.push({ path, body, valid, errors: (validate.errors ?? []).map((error) =>
      `${error.instancePath} ${error.message ?? ''}`) });
    if (!valid) return send(422, { ...example('generic-422'), message: 'The request does not match the schema.' });
    // /payments/details names no merchant account: the API key's account is Adyen's.
    if (kind !== 'details' && body.merchantAccount !== merchantAccount) return send(403, example('generic-403'));
    const operation: Operation = { payments: 'authorize', details: 'details', captures: 'capture', cancels: 'cancel',
      refunds: 'refund' }[kind] as Operation;
    const faultIndex = faults.findIndex(([faulted]) => faulted === operation);
    const fault = faultIndex === -1 ? undefined : faults.splice(faultIndex, 1)[0]?.[1];
    if (fault === 'error_500') return send(500, example('generic-500'));
    if (fault === 'error_429') return send(429, { status: 429, errorCode: '429', message: 'Too many requests' });
    if (fault === 'timeout_before') {
      await new Promise((resolve) => setTimeout(resolve, hangMs));
      return send(500, example('generic-500'));
    }
    const key = String(request.headers['idempotency-key'] ?? '');
    const hash = createHash('sha256').update(raw).digest('hex');
    const kept = key === '' ? undefined : byKey.get(key);
    let status: number;
    let answer: unknown;
    if (kept !== undefined) {
      if (kept.hash !== hash) {
        [status, answer] = [422, { ...example('generic-422'), errorCode: '704',
          message: 'request already processed or in progress with another body' }];
      } else {
        [status, answer] = [kept.status, kept.body];
      }
    } else {
      const paymentPsp = decodeURIComponent(match[2] ?? '');
      [status, answer] = kind === 'payments' ? authorize(body) : kind === 'details' ? details(body)
        : modify(kind, paymentPsp, body);
      if (key !== '') byKey.set(key, { hash, status, body: answer });
    }
    if (fault === 'timeout_after') await new Promise((resolve) => setTimeout(resolve, hangMs));
    return send(status, answer);
  };

  const server: Server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      response.writeHead(500).end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return {
    url: `http://127.0.0.1:${port}/v71`, apiKey, merchantAccount, hmacKeyHex, requests, payments, reportDownloads,
    publishReport(name, text) {
      const path = `/reports/download/MerchantAccount/${merchantAccount}/${name}`;
      reports.set(path, text);
      return `http://127.0.0.1:${port}${path}`;
    },
    injectFaults(list) {
      faults = [...list];
    },
    clearFaults() {
      faults = [];
    },
    takeNotifications() {
      const taken = notifications;
      notifications = [];
      return taken;
    },
    chargeback(paymentPsp, valueMinor, reason) {
      const payment = payments.get(paymentPsp);
      if (payment === undefined) throw new Error(`no payment ${paymentPsp}`);
      notify({ pspReference: paymentPsp, merchantReference: payment.reference, eventCode: 'CHARGEBACK', success: 'true',
        amount: { currency: payment.currency, value: valueMinor }, reason });
      return paymentPsp;
    },
    decideChargeback(paymentPsp, outcome) {
      const payment = payments.get(paymentPsp);
      if (payment === undefined) throw new Error(`no payment ${paymentPsp}`);
      notify({ pspReference: paymentPsp, merchantReference: payment.reference, success: 'true',
        eventCode: outcome === 'won' ? 'CHARGEBACK_REVERSED' : 'SECOND_CHARGEBACK',
        amount: { currency: payment.currency, value: payment.value } });
    },
    failNextCapture() {
      captureFails = true;
    },
    completeRedirect(reference, outcome) {
      if (!redirected.has(reference)) throw new Error(`no payment ${reference} awaits 3-D Secure`);
      const token = `Ab02b4c0!${randomBytes(12).toString('base64url')}`;
      redirectResults.set(token, { reference, outcome });
      return token;
    },
    sign,
  };
}
