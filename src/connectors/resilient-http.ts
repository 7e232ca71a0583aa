import {
  BrokenCircuitError, circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleWhen, retry, wrap,
} from 'cockatiel';
import { request, type Dispatcher } from 'undici';
import { limits } from '../config.js';
import { stringifyJson } from '../json.js';
import { ConnectorRefusedError, ConnectorUnknownOutcomeError } from './connector.js';

/**
 * Outbound calls to a PSP: a timeout on every call; bounded retries with exponential backoff and
 * jitter, each carrying the same idempotency key; and a circuit breaker per connector (cockatiel).
 * A 4xx is a definite refusal; a timeout, a connection error or a 5xx is an unknown outcome.
 */
export interface ResilientHttpOptions {
  readonly connector: string;
  readonly baseUrl: string;
  readonly timeoutMs: number;
  /** Retries after the first try, for unknown outcomes and 429s. */
  readonly retryCountMax: number;
  readonly retryDelayInitialMs: number;
  readonly retryDelayMaxMs: number;
  /** Consecutive unknown outcomes that open the circuit, and how long it stays open. */
  readonly breakerFailuresMax: number;
  readonly breakerOpenMs: number;
  /** Headers sent on every call (a PSP's API key); never logged. */
  readonly headers?: () => Readonly<Record<string, string>>;
}

/** A connector's timeout, retry and breaker settings: each one given, or Penny's limit for it. */
export type ResilientTuning = Partial<Pick<ResilientHttpOptions, 'timeoutMs' | 'retryCountMax' | 'retryDelayInitialMs'
  | 'retryDelayMaxMs' | 'breakerFailuresMax' | 'breakerOpenMs'>>;

export function connectorTuning(tuning: ResilientTuning): Required<ResilientTuning> {
  return {
    timeoutMs: tuning.timeoutMs ?? limits.connectorTimeoutMs,
    retryCountMax: tuning.retryCountMax ?? limits.connectorRetryCountMax,
    retryDelayInitialMs: tuning.retryDelayInitialMs ?? limits.connectorRetryDelayInitialMs,
    retryDelayMaxMs: tuning.retryDelayMaxMs ?? limits.connectorRetryDelayMaxMs,
    breakerFailuresMax: tuning.breakerFailuresMax ?? limits.connectorBreakerFailuresMax,
    breakerOpenMs: tuning.breakerOpenMs ?? limits.connectorBreakerOpenMs,
  };
}

/** A 429: nothing happened, but the PSP asks to try again later; retried, then refused. */
class RateLimited extends Error {}

export class ResilientHttp {
  private readonly breaker;
  private readonly retrying;

  constructor(private readonly options: ResilientHttpOptions) {
    this.breaker = circuitBreaker(handleWhen((error) => error instanceof ConnectorUnknownOutcomeError), {
      halfOpenAfter: options.breakerOpenMs, breaker: new ConsecutiveBreaker(options.breakerFailuresMax),
    });
    this.retrying = retry(handleWhen((error) => error instanceof ConnectorUnknownOutcomeError
      || error instanceof RateLimited), {
      maxAttempts: options.retryCountMax,
      backoff: new ExponentialBackoff({ initialDelay: options.retryDelayInitialMs, maxDelay: options.retryDelayMaxMs }),
    });
  }

  /** Sends one request (retried as above) and returns the parsed JSON of a 2xx. */
  async request(method: 'GET' | 'POST', path: string, options: { body?: unknown; idempotencyKey?: string } = {}) {
    // Once any try's outcome was unknown, a later refusal cannot prove nothing happened: that try
    // may have moved the money. The whole call is then unknown, for a look-up to settle.
    let unknownTry: ConnectorUnknownOutcomeError | undefined;
    const once = async () => {
      try {
        return await this.once(method, path, options);
      } catch (error) {
        if (error instanceof ConnectorUnknownOutcomeError) unknownTry = error;
        throw error;
      }
    };
    try {
      return await wrap(this.retrying, this.breaker).execute(once);
    } catch (error) {
      if (error instanceof BrokenCircuitError) {
        throw new ConnectorUnknownOutcomeError(this.options.connector, 'the circuit is open', { cause: error });
      }
      if (unknownTry !== undefined && !(error instanceof ConnectorUnknownOutcomeError)) throw unknownTry;
      if (error instanceof RateLimited) {
        throw new ConnectorRefusedError(this.options.connector, 429, 'rate_limited', error.message);
      }
      throw error;
    }
  }

  private async once(method: 'GET' | 'POST', path: string, options: { body?: unknown; idempotencyKey?: string }) {
    let response: Dispatcher.ResponseData;
    try {
      // undici's request, not fetch: a third of fetch's CPU per call (no WHATWG streams and objects).
      response = await request(`${this.options.baseUrl}${path}`, {
        method,
        signal: AbortSignal.timeout(this.options.timeoutMs),
        headers: {
          ...this.options.headers?.(),
          ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(options.idempotencyKey === undefined ? {} : { 'idempotency-key': options.idempotencyKey }),
        },
        ...(options.body === undefined ? {} : { body: stringifyJson(options.body) }),
      });
    } catch (error) {
      throw new ConnectorUnknownOutcomeError(this.options.connector, describeFailure(error), { cause: error });
    }
    const status = response.statusCode;
    const text = await response.body.text().catch(() => '');
    if (status === 429) throw new RateLimited(`${this.options.connector} answered 429`);
    // A redirect is not an answer (request() does not follow it, and a POST must not be re-sent
    // elsewhere): whether the PSP acted is unknown, for a look-up to settle.
    if (status >= 500 || (status >= 300 && status < 400)) {
      throw new ConnectorUnknownOutcomeError(this.options.connector, `it answered ${status}`);
    }
    const body = parseJson(text);
    if (status >= 400) {
      // The sandbox's `{ error: { code, message } }`, or Adyen's `{ errorCode, message }`.
      const wrapped = body as { error?: { code?: string; message?: string } } | undefined;
      const flat = body as { errorCode?: unknown; message?: unknown } | undefined;
      const code = wrapped?.error?.code ?? (typeof flat?.errorCode === 'string' ? flat.errorCode : undefined);
      const message = wrapped?.error?.message ?? (typeof flat?.message === 'string' ? flat.message : undefined);
      throw new ConnectorRefusedError(this.options.connector, status, code ?? 'refused',
        message ?? `${this.options.connector} answered ${status}`);
    }
    if (body === undefined) throw new ConnectorUnknownOutcomeError(this.options.connector, 'its answer was not JSON');
    return body;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function describeFailure(error: unknown): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) return 'it timed out';
  // undici names the failure on the error itself (ECONNREFUSED, UND_ERR_SOCKET); fetch on its cause.
  const failure = error as { code?: unknown; cause?: { code?: string; message?: string } };
  const code = typeof failure.code === 'string' ? failure.code : undefined;
  return `the connection failed (${code ?? failure.cause?.code ?? failure.cause?.message ?? String(error)})`;
}
