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

type LogMethod = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/**
 * A request's logger, made only when a line is logged: pino's child applies the redaction to its
 * bindings as it is made (about 3.5 µs a request with Penny's redacted paths), and most requests
 * log nothing at the default level. Lines at a disabled level cost a level check (the parent's:
 * the child is made with no level of its own).
 */
export function lazyChildLogger(parent: Logger, bindings: pino.Bindings, options: pino.ChildLoggerOptions): Logger {
  // A route's own level or serializers: the child decides what it logs, so it is made now.
  if (Object.keys(options).length > 0) return parent.child(bindings, options);
  return new LazyChildLogger(parent, bindings) as unknown as Logger;
}

/** One object a request, its methods on the prototype: no closure is made per request. */
class LazyChildLogger {
  private made: Logger | undefined;

  constructor(private readonly parent: Logger, private readonly childBindings: pino.Bindings) {}

  get level(): string {
    return this.parent.level;
  }

  private child_(): Logger {
    this.made ??= this.parent.child(this.childBindings);
    return this.made;
  }

  private log(method: LogMethod, args: unknown[]): void {
    if (!this.parent.isLevelEnabled(method)) return;
    (this.child_()[method] as (...logged: unknown[]) => void)(...args);
  }

  fatal(...args: unknown[]): void { this.log('fatal', args); }
  error(...args: unknown[]): void { this.log('error', args); }
  warn(...args: unknown[]): void { this.log('warn', args); }
  info(...args: unknown[]): void { this.log('info', args); }
  debug(...args: unknown[]): void { this.log('debug', args); }
  trace(...args: unknown[]): void { this.log('trace', args); }
  silent(): void {}
  child(more: pino.Bindings, moreOptions?: pino.ChildLoggerOptions): Logger {
    return this.child_().child(more, moreOptions);
  }
  isLevelEnabled(level: string): boolean {
    return this.parent.isLevelEnabled(level);
  }
  bindings(): pino.Bindings {
    return this.child_().bindings();
  }
}
