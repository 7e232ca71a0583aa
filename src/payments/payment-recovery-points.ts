import assert from 'node:assert/strict';
import type { Execution } from '../idempotency/idempotency-service.js';

/**
 * The recovery points of the payment operations, one shape per operation, as a resumed request
 * reads them back from its idempotency key (reference/reliability.md: idempotency keys with
 * recovery points). The stored JSON is unchanged from before these types: amounts as decimal
 * strings, and `key` absent in points saved before claims recorded their PSP key.
 */
export type PaymentRecoveryPoint =
  | { readonly point: 'started' }
  /** create without confirm: the intent exists. */
  | { readonly point: 'intent_created'; readonly intent: string }
  /** confirm: the attempt is recorded; the PSP call may have been sent. */
  | { readonly point: 'attempt_recorded'; readonly attempt: string; readonly authenticated: boolean }
  /** capture: the finalization is claimed for this amount, under this PSP key. */
  | { readonly point: 'capture_requested'; readonly amount: bigint; readonly key: string | undefined }
  /** cancel of an authorization: the void is claimed, with the merchant's reason. */
  | { readonly point: 'cancel_requested'; readonly reason: string | null; readonly key: string | undefined }
  /** refund: the amount is reserved on the charge. */
  | { readonly point: 'refund_reserved'; readonly refund: string };

export type PaymentRecoveryPointName = PaymentRecoveryPoint['point'];

/** The point the request reached, checked: a shape Penny never saved fails loudly, never guessed at. */
export function readRecoveryPoint(execution: Pick<Execution, 'recoveryPoint' | 'recoveryData'>):
PaymentRecoveryPoint {
  const data = execution.recoveryData;
  switch (execution.recoveryPoint) {
    case 'started':
      return { point: 'started' };
    case 'intent_created':
      return { point: 'intent_created', intent: text(data, 'intent') };
    case 'attempt_recorded':
      return { point: 'attempt_recorded', attempt: text(data, 'attempt'), authenticated: data.authenticated === true };
    case 'capture_requested':
      return { point: 'capture_requested', amount: BigInt(integerText(data, 'amount')), key: optionalText(data, 'key') };
    case 'cancel_requested':
      return { point: 'cancel_requested', reason: data.reason === null || data.reason === undefined
        ? null : text(data, 'reason'), key: optionalText(data, 'key') };
    case 'refund_reserved':
      return { point: 'refund_reserved', refund: text(data, 'refund') };
    default:
      throw new Error(`a payment request saved an unknown recovery point ${execution.recoveryPoint}`);
  }
}

/** Saves a point, in the caller's transaction, in the JSON shape readRecoveryPoint reads. */
export function saveRecoveryPoint(execution: Pick<Execution, 'saveRecoveryPoint'>,
  saved: Exclude<PaymentRecoveryPoint, { point: 'started' }>): Promise<void> {
  const { point, ...fields } = saved;
  const data: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(fields)) {
    if (value !== undefined) data[name] = typeof value === 'bigint' ? value.toString() : value;
  }
  return execution.saveRecoveryPoint(point, data);
}

/** The intent a create-and-confirm request created, kept with every point it saves. */
export function savedIntentId(execution: Pick<Execution, 'recoveryData'>): string | undefined {
  return optionalText(execution.recoveryData, 'intent');
}

function text(data: Record<string, unknown>, name: string): string {
  const value = data[name];
  assert.ok(typeof value === 'string' && value.length > 0, `recovery point field ${name} is a non-empty string`);
  return value;
}

function optionalText(data: Record<string, unknown>, name: string): string | undefined {
  return data[name] === undefined ? undefined : text(data, name);
}

function integerText(data: Record<string, unknown>, name: string): string {
  const value = text(data, name);
  assert.match(value, /^\d{1,20}$/, `recovery point field ${name} is an integer`);
  return value;
}
