import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { PennyError } from '../errors.js';

/**
 * The one place where error codes become HTTP statuses. A code missing here is a bug, caught by
 * test/http/errors-doc.test.ts, which also checks that docs/errors.md lists every code.
 */
export const statusByCode: Readonly<Record<string, number>> = {
  // The request can never succeed as sent.
  parameter_unknown: 400,
  parameter_missing: 400,
  parameter_invalid: 400,
  parameter_invalid_integer: 400,
  parameter_invalid_string: 400,
  parameter_invalid_boolean: 400,
  parameter_invalid_object: 400,
  parameter_invalid_timestamp: 400,
  url_invalid: 400,
  metadata_invalid: 400,
  currency_invalid: 400,
  amount_too_small: 400,
  amount_too_large: 400,
  invalid_json: 400,
  invalid_form_body: 400,
  card_number_in_request: 400,
  amount_invalid_for_currency: 400,
  unbalanced_entry: 400,
  currency_mismatch: 400,
  duplicate_external_reference: 400,
  partial_post_unsupported: 400,
  amount_exceeds_hold: 400,
  entry_not_a_hold: 400,
  entry_not_reversible: 400,
  // Idempotency: the same key with another request can never succeed (never 409: the SDK retries it).
  idempotency_key_invalid: 400,
  idempotency_key_reused: 400,
  payment_intent_unexpected_state: 400,
  charge_already_refunded: 400,
  charge_not_refundable: 400,
  // Who is asking.
  api_key_missing: 401,
  api_key_invalid: 401,
  // The card was declined (type card_error); the error embeds the PaymentIntent.
  card_declined: 402,
  expired_card: 402,
  incorrect_cvc: 402,
  processing_error: 402,
  psp_refused: 400,
  webhook_signature_invalid: 400,
  clock_not_controlled: 400,
  // What is asked for does not exist.
  account_not_found: 404,
  entry_not_found: 404,
  route_not_found: 404,
  resource_missing: 404,
  // Conflicts with the current state.
  insufficient_funds: 409,
  hold_already_posted: 409,
  hold_already_voided: 409,
  hold_expired: 409,
  reference_conflict: 409,
  account_code_taken: 409,
  entry_already_reversed: 409,
  history_is_append_only: 409,
  idempotency_key_in_use: 409,
  case_already_closed: 409,
  balance_write_refused: 409,
  // Too many requests: nothing ran, so the same request may be sent again later.
  rate_limit: 429,
  // Transport.
  request_too_large: 413,
  unsupported_media_type: 415,
  service_unavailable: 503,
  psp_outcome_unknown: 503,
  psp_unavailable: 503,
};

export interface ErrorBody {
  readonly error: {
    readonly type: string;
    readonly code?: string;
    readonly param?: string;
    readonly message: string;
    readonly [field: string]: unknown;
  };
}

export function errorBody(error: PennyError): ErrorBody {
  return {
    error: {
      type: error.type,
      code: error.code,
      ...(error.param === undefined ? {} : { param: error.param }),
      message: error.message,
      ...error.details,
    },
  };
}

export function statusOf(error: PennyError): number {
  const status = statusByCode[error.code];
  if (status === undefined) throw new Error(`error code ${error.code} has no HTTP status`);
  return status;
}

/** Fastify's own refusals (body parsing, size) in Penny's shape. */
function fromFastifyError(error: FastifyError, bodyBytesMax: number | undefined): PennyError | undefined {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new PennyError({ code: 'invalid_json', message: `The request body is not valid JSON: ${error.message}` });
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new PennyError({
        code: 'request_too_large',
        message: bodyBytesMax === undefined ? 'The request body is larger than this endpoint accepts.'
          : `The request body is larger than this endpoint accepts (${bodyBytesMax} bytes).`,
      });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new PennyError({
        code: 'unsupported_media_type',
        message: 'Send the body as application/json or application/x-www-form-urlencoded.',
      });
    default:
      break;
  }
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    if (/JSON|prototype|constructor/i.test(error.message)) {
      return new PennyError({ code: 'invalid_json', message: `The request body was refused: ${error.message}` });
    }
  }
  return undefined;
}

export function handleError(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const known = error instanceof PennyError ? error
    : fromFastifyError(error as FastifyError, (request.routeOptions as { bodyLimit?: number } | undefined)?.bodyLimit);
  if (known !== undefined) {
    request.log.info({ code: known.code, param: known.param }, 'request refused');
    void reply.status(statusOf(known)).send(errorBody(known));
    return;
  }
  request.log.error({ err: error }, 'unexpected error');
  void reply.status(500).send({
    error: { type: 'api_error', code: 'internal_error', message: 'An unexpected error occurred; it has been logged.' },
  });
}
