import pino, { type Logger } from 'pino';

/**
 * Structured JSON logs. Secrets never reach a log line: Authorization headers, keys and card
 * fields are redacted at the top of a logged object and up to two levels down (pino's redaction
 * takes fixed paths; Penny logs nothing deeper).
 */
/** Field names that hold a secret or card data; redacted at the top level and two levels down. */
const secretFields = ['authorization', 'password', 'secret', 'secret_key', 'operator_key', 'api_key', 'card_number',
  'number', 'cvc', 'apiKey', 'hmacKey', 'hmacKeyHex', 'hmac_key'];

export const redactedPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  ...secretFields.flatMap((field) => [field, `*.${field}`, `*.*.${field}`]),
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'penny' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: redactedPaths, censor: '[redacted]' },
      // A request is logged without its query string: a query can carry what must never be
      // logged (a card number sent by mistake), and the path says which route ran.
      serializers: { req: serializeRequest },
    },
    destination,
  );
}

interface LoggedRequest {
  readonly method?: string;
  readonly url?: string;
  readonly hostname?: string;
  readonly ip?: string;
}

function serializeRequest(request: LoggedRequest) {
  return {
    method: request.method,
    url: request.url?.split('?')[0],
    host: request.hostname,
    remoteAddress: request.ip,
  };
}
