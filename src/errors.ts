import type { ErrorCode } from './error-codes.js';

/**
 * Errors are values with codes. Every operating error Penny can answer with is a PennyError; its
 * code is one of the table in src/error-codes.ts, which gives each its HTTP status.
 */
export type PennyErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'idempotency_error'
  | 'rate_limit_error'
  | 'card_error'
  | 'api_error';

export interface PennyErrorOptions {
  readonly code: ErrorCode;
  readonly message: string;
  readonly type?: PennyErrorType;
  readonly param?: string;
  readonly cause?: unknown;
  /** Further fields of Stripe's error object (decline_code, payment_intent, …). */
  readonly details?: Record<string, unknown>;
  /**
   * The request stopped at a point its retry can resume from (a PSP outcome not known yet): the
   * answer is not stored under the idempotency key, so the retry continues the work.
   */
  readonly resumable?: boolean;
  /**
   * The parameters were judged against the object's current amounts (a capture above what is
   * capturable, a refund above what remains): like a wrong status, the answer is stored under the
   * idempotency key, since the same request could be judged otherwise later.
   */
  readonly judgedOnState?: boolean;
}

export class PennyError extends Error {
  readonly code: ErrorCode;
  readonly type: PennyErrorType;
  readonly param: string | undefined;
  readonly details: Record<string, unknown>;
  readonly resumable: boolean;
  readonly judgedOnState: boolean;

  constructor(options: PennyErrorOptions) {
    super(options.message, { cause: options.cause });
    this.name = 'PennyError';
    this.code = options.code;
    this.type = options.type ?? 'invalid_request_error';
    this.param = options.param;
    this.details = options.details ?? {};
    this.resumable = options.resumable ?? false;
    this.judgedOnState = options.judgedOnState ?? false;
  }
}

/** Codes that say the request's parameters are wrong (see isParameterError for which are stored). */
const parameterErrorCodes: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'parameter_unknown', 'parameter_missing', 'parameter_invalid', 'parameter_invalid_integer',
  'parameter_invalid_string', 'parameter_invalid_boolean', 'parameter_invalid_object',
  'parameter_invalid_timestamp', 'url_invalid', 'metadata_invalid', 'currency_invalid', 'amount_too_small',
  'amount_too_large', 'amount_invalid_for_currency', 'card_number_in_request', 'country_code_invalid', 'email_invalid',
  'account_number_invalid', 'routing_number_invalid',
]);

/**
 * A refusal of the request's parameters on their own (an update's amount below the currency's
 * minimum needs the intent's currency, but not its state). Like Stripe, Penny does not store it
 * under the idempotency key when it comes before the work made any progress, so a corrected retry
 * with the same key runs.
 */
export function isParameterError(error: PennyError): boolean {
  return error.type === 'invalid_request_error' && error.param !== undefined && !error.judgedOnState
    && parameterErrorCodes.has(error.code);
}

/** Normalises anything thrown into an Error, keeping the original as `cause`. */
export function coerceError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new Error(`non-error thrown: ${String(thrown)}`, { cause: thrown });
}
