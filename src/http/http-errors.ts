import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isHttpErrorCode, statusByCode } from '../error-codes.js';
import { PennyError } from '../errors.js';
import { isDatabaseUnavailable } from '../db/primary.js';

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

/** The one place where an error becomes an HTTP status, through the table in src/error-codes.ts. */
export function statusOf(error: PennyError): number {
  // A code that never reaches HTTP (a start-up refusal) reaching here is a bug: answered as a 500.
  if (!isHttpErrorCode(error.code)) throw new Error(`error code ${error.code} has no HTTP status`);
  return statusByCode[error.code];
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
    // The router's refusals of a path that cannot name an object (the server's frameworkErrors).
    case 'FST_ERR_BAD_URL':
      return new PennyError({
        code: 'route_not_found',
        message: 'Unrecognized request URL: its path is not valid percent-encoded UTF-8.',
      });
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new PennyError({
        code: 'route_not_found',
        message: 'Unrecognized request URL: a segment of its path is longer than any id or key can be.',
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

/**
 * No writable primary, or the connection to it lost: 503, retryable. A request cut off during its
 * COMMIT may have committed; its retry, with the same Idempotency-Key, resumes from what the key
 * stored (the key stays unfinished: this is not a PennyError), so it never runs blindly twice.
 */
function fromDatabaseUnavailable(error: unknown): PennyError | undefined {
  if (error instanceof PennyError || !isDatabaseUnavailable(error)) return undefined;
  return new PennyError({
    code: 'database_unavailable', type: 'api_error', cause: error,
    message: 'The database cannot take writes right now (no writable primary, or the connection to it was lost). ' +
      'Retry the request with the same Idempotency-Key.',
  });
}

export function handleError(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const unavailable = fromDatabaseUnavailable(error);
  if (unavailable !== undefined) {
    request.log.warn({ err: error, code: unavailable.code }, 'database unavailable');
    void reply.status(statusOf(unavailable)).header('retry-after', '1').send(errorBody(unavailable));
    return;
  }
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
