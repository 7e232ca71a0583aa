import { createHash } from 'node:crypto';
import { stringifyJson } from '../json.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { withEventRequest } from '../events/event-store.js';
import type { IdempotencyService, IdempotentRequest, IdempotentResponse, Work } from '../idempotency/idempotency-service.js';
import { invalid, readLimit, readObject, readString } from '../validation.js';
import { merchantOf } from './merchant-routes.js';
import { formBodyText, readStripeInteger } from './stripe-form.js';

/** What the Stripe-compatible routes share: idempotent execution, pages and the `created` filter. */
/** Runs `work` under the request's Idempotency-Key and sends the (possibly replayed) bytes. */
export async function idempotent(
  idempotency: IdempotencyService,
  request: FastifyRequest,
  reply: FastifyReply,
  work: Work,
  options: { sealResponse?: boolean; finishBody?: IdempotentRequest['finishBody'] } = {},
) {
  const header = request.headers['idempotency-key'];
  const key = Array.isArray(header) ? header[0] : header;
  // State changes made by this request write events that name it and its key.
  const response = await withEventRequest({ requestId: request.id, idempotencyKey: key ?? null },
    () => idempotency.run({
      merchantId: merchantOf(request).id,
      // Stripe scopes keys per account: a connected account's requests (Stripe-Account) have their own.
      accountId: request.actingAccountId ?? undefined,
      key,
      method: request.method,
      path: request.url.split('?')[0] ?? request.url,
      params: storedParams(request.body),
      paramsText: formBodyText(request),
      sealResponse: options.sealResponse ?? false,
      ...(options.finishBody === undefined ? {} : { finishBody: options.finishBody }),
    }, work));
  return sendIdempotentResponse(reply, response);
}

/** An answer run or replayed under an Idempotency-Key: its stored bytes, marked when replayed. */
export function sendIdempotentResponse(reply: FastifyReply, response: IdempotentResponse): FastifyReply {
  if (response.replayed) void reply.header('Idempotent-Replayed', 'true');
  return reply.status(response.status).type('application/json; charset=utf-8').send(response.body);
}

/**
 * The parameters an idempotency key keeps, to tell a retry from another request: the body, with a
 * PSP's own payment method fields (`payment_method_data`, Adyen's encrypted card fields) replaced
 * by their SHA-256, so they are never stored and a reuse of the key with other fields is still told.
 */
export function storedParams(body: unknown): Record<string, unknown> {
  const params = (body ?? {}) as Record<string, unknown>;
  if (typeof params !== 'object' || params.payment_method_data === undefined) return params;
  const digest = createHash('sha256').update(stringifyJson(params.payment_method_data)).digest('hex');
  return { ...params, payment_method_data: { sha256: digest } };
}

export { answeredInTransaction } from '../idempotency/idempotency-service.js';

/** Stripe's page parameters: `limit` 1 to 100 (10), and at most one of the two cursors. */
export function readPage(query: Record<string, unknown>) {
  const startingAfter = readString(query.starting_after, 'starting_after', { lengthMax: 255 });
  const endingBefore = readString(query.ending_before, 'ending_before', { lengthMax: 255 });
  if (startingAfter !== undefined && endingBefore !== undefined) {
    throw invalid('ending_before', 'You may only specify one of these parameters: starting_after, ending_before.');
  }
  return { limit: readLimit(query.limit), startingAfter, endingBefore };
}

/** The last second of year 9999: a unix time past it has no ISO 8601 form PostgreSQL reads. */
const unixTimeMax = 253_402_300_799;

/** A unix time (seconds) from 0 to the end of year 9999. */
function readUnixTime(value: unknown, param: string): number | undefined {
  const seconds = readStripeInteger(value, param);
  if (seconds !== undefined && (seconds < 0 || seconds > unixTimeMax)) {
    throw invalid(param, `${param} must be a unix time from 0 to ${unixTimeMax} (the end of year 9999).`,
      'parameter_invalid_timestamp');
  }
  return seconds;
}

/** Stripe's `created` filter: an exact unix time, or `created[gte|gt|lte|lt]`. */
export function readCreatedFilter(value: unknown): { createdGte: string | undefined; createdLte: string | undefined } {
  if (value === undefined) return { createdGte: undefined, createdLte: undefined };
  const toIso = (seconds: number | undefined) =>
    seconds === undefined ? undefined : new Date(seconds * 1000).toISOString();
  if (typeof value === 'string') {
    const at = readUnixTime(value, 'created');
    return { createdGte: toIso(at), createdLte: toIso(at === undefined ? undefined : at + 0.999) };
  }
  const range = readObject(value, 'created', ['gte', 'gt', 'lte', 'lt']);
  const gt = readUnixTime(range.gt, 'created[gt]');
  const lt = readUnixTime(range.lt, 'created[lt]');
  return {
    createdGte: toIso(readUnixTime(range.gte, 'created[gte]') ?? (gt === undefined ? undefined : gt + 1)),
    createdLte: toIso(readUnixTime(range.lte, 'created[lte]') ?? (lt === undefined ? undefined : lt - 0.001)),
  };
}
