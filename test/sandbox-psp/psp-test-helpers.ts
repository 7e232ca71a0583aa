import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { afterAll } from 'vitest';
import type { ConnectorEvent } from '../../src/connectors/connector.js';
import { sandboxSignatureHeader, type SandboxConnector } from '../../src/connectors/sandbox/sandbox-connector.js';
import type { TestSandboxPsp } from '../support/sandbox-psp.js';

/** What the sandbox tests share: calls to its HTTP API, and a receiver of its webhooks. */
export const unique = (): string => randomBytes(6).toString('hex');

export interface SandboxAnswer {
  readonly status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON answers, read by the tests
  readonly body: any;
}

export async function callSandbox(sandbox: TestSandboxPsp, method: 'GET' | 'POST', path: string,
  body?: unknown, idempotencyKey?: string): Promise<SandboxAnswer> {
  const response = await fetch(`${sandbox.url}${path}`, {
    method, body: body === undefined ? undefined : JSON.stringify(body),
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(idempotencyKey === undefined ? {} : { 'idempotency-key': idempotencyKey }) },
  });
  const text = await response.text();
  return { status: response.status, body: text.startsWith('{') ? JSON.parse(text) : text };
}

/** An automatically captured charge at the sandbox: Penny's attempt reference and the PSP's. */
export async function capturedCharge(sandbox: TestSandboxPsp, options: { amountMinor?: number;
  paymentMethod?: string; capture?: boolean; currency?: string } = {}) {
  const reference = `pa_${unique()}`;
  const answer = await callSandbox(sandbox, 'POST', '/v1/authorizations', {
    reference, amount_minor: options.amountMinor ?? 10_000, currency: options.currency ?? 'EUR',
    payment_method: options.paymentMethod ?? 'pm_card_visa', capture: options.capture ?? true,
  }, `auth:${reference}`);
  if (answer.status !== 200) throw new Error(`the sandbox refused the authorization: ${JSON.stringify(answer.body)}`);
  return { reference, pspReference: answer.body.psp_reference as string, answer: answer.body };
}

export interface ReceivedWebhook {
  readonly raw: string;
  readonly headers: Record<string, string>;
}

/** A local endpoint that takes the sandbox's webhooks and keeps them, answering 200. */
export async function startWebhookReceiver(): Promise<{ url: string; received: ReceivedWebhook[] }> {
  const received: ReceivedWebhook[] = [];
  const server = http.createServer((request, response) => {
    let raw = '';
    request.on('data', (chunk: Buffer) => { raw += chunk.toString(); });
    request.on('end', () => {
      received.push({ raw, headers: Object.fromEntries(Object.entries(request.headers)
        .map(([name, value]) => [name, Array.isArray(value) ? value.join(',') : value ?? ''])) });
      response.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address();
  return { url: `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`, received };
}

/** The received webhooks that verify with the connector's secret, parsed, for one reference. */
export function eventsFor(connector: SandboxConnector, received: readonly ReceivedWebhook[],
  reference: string): ConnectorEvent[] {
  return received
    .map((webhook) => connector.parseWebhook({ rawBody: Buffer.from(webhook.raw), headers: webhook.headers }))
    .filter((event) => event.operation.reference === reference);
}

export { sandboxSignatureHeader };
