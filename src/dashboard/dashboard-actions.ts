import { randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { withEventRequest } from '../events/event-store.js';
import type { Work } from '../idempotency/idempotency-service.js';
import { invalid } from '../validation.js';
import type { DashboardServices } from './dashboard-services.js';

/** A fresh nonce for a form: its action's idempotency key is made from it. */
export function newNonce(): string {
  return randomBytes(18).toString('base64url');
}

/** The form's fields, as the Stripe form parser gave them. */
export function formOf(request: FastifyRequest): Record<string, unknown> {
  const body = request.body;
  return typeof body === 'object' && body !== null ? body as Record<string, unknown> : {};
}

export function formString(form: Record<string, unknown>, name: string): string | undefined {
  const value = form[name];
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

export interface ActionOutcome {
  readonly status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the operation's JSON answer
  readonly body: any;
  readonly replayed: boolean;
}

/**
 * Runs an API operation as the API runs it: through the idempotency service, for the merchant
 * that owns the object, under the key `dashboard_<nonce>`, with events naming this request and
 * key. A second submit of the same form (a double click, a reload) replays the first answer, and
 * one sent while the first runs is refused with idempotency_key_in_use: the money moves once.
 */
export async function runIdempotent(services: Pick<DashboardServices, 'idempotency'>, request: FastifyRequest,
  operation: { merchantId: string; accountId?: string | undefined; path: string; params: Record<string, unknown>;
    work: Work }):
Promise<ActionOutcome> {
  const nonce = formString(formOf(request), 'nonce');
  if (nonce === undefined || !/^[A-Za-z0-9_-]{16,64}$/.test(nonce)) {
    throw invalid('nonce', 'This form has no valid nonce: reload the page and try again.');
  }
  const key = `dashboard_${nonce}`;
  const response = await withEventRequest({ requestId: request.id, idempotencyKey: key },
    () => services.idempotency.run({ merchantId: operation.merchantId, accountId: operation.accountId, key,
      method: 'POST', path: operation.path, params: operation.params }, operation.work));
  return { status: response.status, body: JSON.parse(response.body), replayed: response.replayed };
}

/** The message of an operation's error answer. */
export function errorMessageOf(outcome: ActionOutcome): string {
  const error = outcome.body?.error as { message?: unknown; code?: unknown } | undefined;
  return typeof error?.message === 'string' ? error.message : `The operation failed (${outcome.status}).`;
}
