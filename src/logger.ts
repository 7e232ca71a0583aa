import pino, { type Logger } from 'pino';

/**
 * Structured JSON logs. Secrets never reach a log line: Authorization headers, keys and card
 * fields are redacted wherever they appear in a logged object.
 */
export const redactedPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  '*.authorization',
  '*.password',
  '*.secret',
  '*.secret_key',
  '*.operator_key',
  '*.api_key',
  '*.card_number',
  '*.number',
  '*.cvc',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'penny' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: redactedPaths, censor: '[redacted]' },
    },
    destination,
  );
}
