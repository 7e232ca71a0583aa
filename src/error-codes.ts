/**
 * The one table of error codes. Each code the API answers with has its HTTP status here, and
 * `ErrorCode`, the type of every PennyError's code, is derived from it, so a code not listed does
 * not compile. src/http/http-errors.ts maps errors to HTTP through this table; this module imports
 * nothing, so any layer can name a code. docs/errors.md lists every code
 * (test/http/errors-doc.test.ts checks it).
 */
export const statusByCode = {
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
  charge_disputed: 400,
  // Connected accounts and their bank accounts (Stripe's codes where Stripe has one).
  country_code_invalid: 400,
  email_invalid: 400,
  account_number_invalid: 400,
  routing_number_invalid: 400,
  account_balance_not_zero: 400,
  bank_account_is_default: 400,
  stripe_account_unsupported: 400,
  // Payouts (Stripe's codes).
  balance_insufficient: 400,
  payout_not_cancelable: 400,
  // Who is asking.
  api_key_missing: 401,
  api_key_invalid: 401,
  // The dashboard: a POST without its session's CSRF token.
  csrf_token_invalid: 403,
  // The card was declined (type card_error); the error embeds the PaymentIntent.
  card_declined: 402,
  expired_card: 402,
  incorrect_cvc: 402,
  processing_error: 402,
  psp_refused: 400,
  connector_capability_unsupported: 400,
  dispute_already_closed: 400,
  webhook_signature_invalid: 400,
  webhook_hmac_invalid: 401,
  clock_not_controlled: 400,
  // Reconciliation: a statement or report that cannot be read is refused whole.
  reconciliation_file_invalid: 400,
  reconciliation_break_not_repairable: 400,
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
  reconciliation_break_closed: 409,
  reconciliation_payout_not_booked: 409,
  reconciliation_payout_booked: 409,
  balance_write_refused: 409,
  // Too many requests: nothing ran, so the same request may be sent again later.
  rate_limit: 429,
  // Transport.
  request_too_large: 413,
  unsupported_media_type: 415,
  service_unavailable: 503,
  psp_outcome_unknown: 503,
  psp_unavailable: 503,
  // No writable PostgreSQL primary (a failover, a database down): retryable, never a success.
  database_unavailable: 503,
} as const satisfies Record<string, number>;

/**
 * Codes that never reach HTTP, so they have no status: they stop Penny at start
 * (`invalid_configuration`) or fail a `penny` command (`embedded_postgres_failed`).
 */
export const nonHttpErrorCodes = ['invalid_configuration', 'embedded_postgres_failed', 'usage_invalid',
  'command_failed', 'check_failed', 'payment_intent_authentication_failure', 'sandbox_invalid_state'] as const;

export type HttpErrorCode = keyof typeof statusByCode;
export type ErrorCode = HttpErrorCode | (typeof nonHttpErrorCodes)[number];

export function isHttpErrorCode(text: string): text is HttpErrorCode {
  return Object.hasOwn(statusByCode, text);
}

/** Narrows text from outside the code (a PSP's answer, a stored error, a trigger's message). */
export function isErrorCode(text: string): text is ErrorCode {
  return isHttpErrorCode(text) || (nonHttpErrorCodes as readonly string[]).includes(text);
}
