import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { LRUCache } from 'lru-cache';
import type pg from 'pg';
import { inTransaction } from '../db/pool.js';
import { limits } from '../config.js';
import { isParameterError, PennyError } from '../errors.js';
import { failpoint } from '../failpoints.js';
import { stringifyJson } from '../json.js';
import type { SecretBox } from '../security/secret-box.js';
import {
  claimKey, deleteKeysFinishedBefore, deleteUnstartedKey, lockAndInsertKey, saveRecoveryPointAtCommit,
  saveResponseAtCommit, selectKey, selectKeyDescription, tryLockKey, unlockKey, type FinishedKey, type KeyIdentity,
  type KeyRow, type NewKey, type OpenedKey,
} from './idempotency-store.js';

/**
 * Stripe's idempotency keys, per merchant and acting account (Stripe-Account). The first request
 * with a key executes; its status and body, once execution began, are stored and replayed byte for
 * byte for the same key and the same parameters. While it runs, the key is held by a
 * session-level advisory lock on the request's own connection, so a second request gets 409
 * `idempotency_key_in_use`, and a process that dies mid-request releases the lock with its
 * connection: the retry resumes from the key's recovery point (see reference/reliability.md,
 * Brandur's recovery points).
 */
export interface IdempotentRequest {
  readonly merchantId: string;
  /**
   * The connected account the request acts as (the Stripe-Account header); absent for the
   * merchant itself. Stripe scopes keys per account, so the same key on two accounts is two requests.
   */
  readonly accountId?: string | undefined;
  readonly key: string | undefined;
  readonly method: string;
  readonly path: string;
  readonly params: Record<string, unknown>;
  /**
   * The text `params` was parsed from, when there is one (a form body): a replay whose method,
   * path and text are those of a replay already found the same request skips the fingerprint.
   */
  readonly paramsText?: string | undefined;
  /** The response shows a secret once (a webhook endpoint's): it is stored sealed, never plain. */
  readonly sealResponse?: boolean;
  /**
   * Finishes a successful body before it is sent and stored (Stripe's `expand`), on the request's
   * connection, in the transaction that stores it when the work stores its own answer.
   */
  readonly finishBody?: (client: pg.PoolClient, body: unknown) => Promise<unknown>;
}

export interface IdempotentResponse {
  readonly status: number;
  /** The serialized body, exactly as sent. */
  readonly body: string;
  readonly replayed: boolean;
}

/** What a request's work sees: its connection and where an earlier run of it stopped. */
export interface Execution {
  readonly client: pg.PoolClient;
  readonly recoveryPoint: string;
  readonly recoveryData: Record<string, unknown>;
  /** Records progress, in the caller's transaction on `client`, so a retry resumes after it. */
  saveRecoveryPoint(point: string, data: Record<string, unknown>): Promise<void>;
  /**
   * Stores the response in the caller's transaction, as its last statement, so the outcome and
   * its answer commit together (one commit fewer, and no window between them).
   */
  complete(result: { status: number; body: unknown } | PennyError): Promise<void>;
}

export type Work = (execution: Execution) => Promise<{ status: number; body: unknown }>;

/**
 * Runs a request's work in one transaction that also stores its answer under the idempotency key,
 * so a change (a movement of money, a new object) and the answer a retry replays commit together,
 * or neither does. A service that opens its own transaction on the connection joins this one.
 */
export function answeredInTransaction(execution: Execution, work: () => Promise<unknown>):
Promise<{ status: number; body: unknown }> {
  return inTransaction(execution.client, async () => {
    const body = await work();
    await execution.complete({ status: 200, body });
    return { status: 200, body };
  });
}

export const idempotencyKeyLengthMax = 255;

/** A stored body that starts with this is sealed; a JSON body starts with `{`. */
const sealedPrefix = 'sealed:';

/** How an operating error becomes a response; given by the HTTP layer, which owns statuses. */
export type ErrorRenderer = (error: PennyError) => { status: number; body: unknown };

export class IdempotencyService {
  /**
   * Keys read finished from the database, by merchant, account and key: a finished key never
   * changes until it is reaped, after the retention, so its replay needs no round trip until then.
   * Bounded in bytes (limits.idempotencyReplayCacheBytesMax), least recently used evicted.
   */
  private readonly finishedKeys = new LRUCache<string, CachedKey>({
    maxSize: limits.idempotencyReplayCacheBytesMax,
    sizeCalculation: (cached) => finishedKeyBytes(cached.finished.row) + (cached.sameRequest?.length ?? 0) * 2,
  });

  constructor(
    private readonly pool: pg.Pool,
    private readonly renderError: ErrorRenderer,
    private readonly responseBox?: SecretBox,
  ) {}

  /** A stored body as it was sent: sealed bodies are opened. */
  private storedBody(text: string): string {
    if (!text.startsWith(sealedPrefix)) return text;
    if (this.responseBox === undefined) throw new Error('a sealed idempotent response needs the secret box');
    return this.responseBox.open(text.slice(sealedPrefix.length));
  }

  private bodyToStore(request: IdempotentRequest, text: string): string {
    if (request.sealResponse !== true) return text;
    if (this.responseBox === undefined) throw new Error('a sealed idempotent response needs the secret box');
    return sealedPrefix + this.responseBox.seal(text);
  }

  async run(request: IdempotentRequest, work: Work): Promise<IdempotentResponse> {
    if (request.key !== undefined && (request.key.length === 0 || request.key.length > idempotencyKeyLengthMax)) {
      throw new PennyError({
        code: 'idempotency_key_invalid', param: 'Idempotency-Key',
        message: `An Idempotency-Key is 1 to ${idempotencyKeyLengthMax} characters.`,
      });
    }
    if (request.key !== undefined) {
      const identity = { ...request, key: request.key, accountId: request.accountId ?? '' };
      const cached = this.finishedKeys.get(cacheKeyOf(identity));
      if (cached !== undefined) {
        if (cached.sameRequest === undefined || cached.sameRequest !== sameRequestText(request)) {
          assertSameRequest(cached.finished.row, identity);
        }
        return this.replayed(cached.finished.row);
      }
    }
    const client = await this.pool.connect();
    try {
      if (request.key === undefined) return await this.execute(client, undefined, work, request.finishBody);
      return await this.runWithKey(client, { ...request, key: request.key, accountId: request.accountId ?? '' }, work);
    } finally {
      client.release();
    }
  }

  /**
   * A finished key's stored answer, found in memory alone when the request's method, path and form
   * text are those of a request already found to be the same as the key's (so it passed, as this
   * very text, every check a request passes before its key is looked up). The HTTP layer asks
   * before it parses the body, so such a replay skips the parsing, filtering and validation.
   * Undefined otherwise: the request then runs the usual way, checked in full.
   */
  replayOfSameText(request: Pick<IdempotentRequest, 'merchantId' | 'method' | 'path' | 'paramsText'> & { key: string }):
  IdempotentResponse | undefined {
    const cached = this.finishedKeys.get(cacheKeyOf({ merchantId: request.merchantId, accountId: '', key: request.key }));
    if (cached?.sameRequest === undefined || cached.sameRequest !== sameRequestText(request)) return undefined;
    return this.replayed(cached.finished.row);
  }

  /** A finished key's stored answer, as it was sent. */
  private replayed(row: KeyRow): IdempotentResponse {
    return { status: row.responseStatus as number, body: this.storedBody(row.responseBody as string), replayed: true };
  }

  /**
   * Kept for replays until the reaper may delete it: the retention after it finished, counted by
   * the database's clock, which the reaper uses (this process's clock may differ). With the text
   * of a request found to be the same as the key's, so that its replays skip the fingerprint.
   */
  private remember(identity: KeyIdentity, finished: FinishedKey, sameRequest: string | undefined): void {
    const ttlMs = idempotencyKeyRetentionHours * 3_600_000 - finished.finishedAgoMs;
    if (ttlMs > 0) this.finishedKeys.set(cacheKeyOf(identity), { finished, sameRequest }, { ttl: ttlMs });
  }

  private async runWithKey(
    client: pg.PoolClient,
    request: IdempotentRequest & KeyIdentity,
    work: Work,
  ): Promise<IdempotentResponse> {
    let opened: OpenedKey | undefined;
    try {
      // A finished key comes back as it is, with no lock taken: its replay writes nothing.
      opened = await lockAndInsertKey(client, newKey(request));
    } finally {
      // A statement that failed may still have taken the lock: session locks outlive errors.
      if (opened === undefined) await unlockKey(client, request);
    }
    if (opened.finished !== null) {
      const same = isSameRequest(opened.finished.row, request);
      this.remember(request, opened.finished, same ? sameRequestText(request) : undefined);
      if (!same) assertSameRequest(opened.finished.row, request);
      return this.replayed(opened.finished.row);
    }
    if (opened.locked !== true) {
      // Different parameters are a client's mistake (400), never a 409 the SDK would retry.
      const running = await selectKey(client, request, { finishedOnly: false });
      if (running !== undefined) assertSameRequest(running, request);
      throw keyInUse(request.key);
    }
    try {
      // Not inserted: the key exists. Read it again now that the lock is held (a new snapshot),
      // since a request that held the lock may have finished it after this statement began.
      const row = opened.inserted ?? await claimKey(client, newKey(request));
      failpoint('after_key_claim');
      assertSameRequest(row, request);
      if (row.responseStatus !== null && row.responseBody !== null) {
        return { status: row.responseStatus, body: this.storedBody(row.responseBody), replayed: true };
      }
      return await this.execute(client, { ...request, row }, work, request.finishBody);
    } finally {
      await unlockKey(client, request);
    }
  }

  /**
   * Runs the work. A PennyError after execution began (a decline, a wrong state) is a response
   * like any other and is stored; anything else leaves the key unfinished, to resume on retry.
   */
  private async execute(
    client: pg.PoolClient,
    keyed: (IdempotentRequest & KeyIdentity & { row: KeyRow }) | undefined,
    work: Work,
    finishBody: IdempotentRequest['finishBody'],
  ): Promise<IdempotentResponse> {
    let stored: { status: number; body: string } | undefined;
    const finish = (body: unknown) => finishBody?.(client, body) ?? Promise.resolve(body);
    // Inside the work's transaction, the key's writes go with its deferred writes at the end (the
    // response replaces a recovery point saved in the same transaction); otherwise at once.
    const storeResponse = async (response: { status: number; body: string }) => {
      if (keyed === undefined) return;
      await saveResponseAtCommit(client, keyed,
        { status: response.status, storedBody: () => this.bodyToStore(keyed, response.body) });
    };
    const execution: Execution = {
      client,
      recoveryPoint: keyed?.row.recoveryPoint ?? 'started',
      recoveryData: keyed?.row.recoveryData ?? {},
      saveRecoveryPoint: async (point, data) => {
        if (keyed === undefined) return;
        await saveRecoveryPointAtCommit(client, keyed, { point, data });
      },
      complete: async (result) => {
        const rendered = result instanceof PennyError ? this.renderError(result)
          : { status: result.status, body: await finish(result.body) };
        const response = { status: rendered.status, body: stringifyJson(rendered.body) };
        await storeResponse(response);
        stored = response;
      },
    };
    let response: { status: number; body: string };
    try {
      const result = await work(execution);
      // The work stored its response in its last transaction, which returned: it committed.
      if (stored !== undefined) return { ...stored, replayed: false };
      response = { status: result.status, body: stringifyJson(await finish(result.body)) };
    } catch (error) {
      if (!(error instanceof PennyError) || error.resumable) throw error;
      // An operating error raised after the work stored its answer (a decline, thrown once the
      // transaction that stored it committed) is that answer. A failing COMMIT is not a PennyError.
      if (stored !== undefined) return { ...stored, replayed: false };
      const rendered = this.renderError(error);
      response = { status: rendered.status, body: stringifyJson(rendered.body) };
      // Refused for its parameters before the work saved any progress: nothing is stored, and a
      // corrected retry runs. Once progress was saved, the refusal is stored like any answer.
      if (keyed !== undefined && isParameterError(error) && await deleteUnstartedKey(client, keyed)) {
        return { ...response, replayed: false };
      }
    }
    await storeResponse(response);
    return { ...response, replayed: false };
  }

  /** What operators and clients see of a key: its state, fingerprint and stored status. */
  async describe(scope: { merchantId: string; accountId?: string | undefined }, key: string) {
    const identity = { merchantId: scope.merchantId, accountId: scope.accountId ?? '', key };
    const row = await selectKeyDescription(this.pool, identity);
    if (row === undefined) {
      throw new PennyError({ code: 'resource_missing', param: 'key', message: `No idempotency key ${key}.` });
    }
    const inFlight = row.responseStatus === null && await this.isLocked(identity);
    return {
      object: 'idempotency_key',
      key,
      state: keyState(row, inFlight),
      request_method: row.requestMethod,
      request_path: row.requestPath,
      request_fingerprint: row.requestFingerprint,
      recovery_point: row.recoveryPoint,
      response_status: row.responseStatus,
      created: Math.floor(Date.parse(row.createdAt) / 1000),
    };
  }

  /** Whether a request holds the key's lock: taken here only to be released at once. */
  private async isLocked(identity: KeyIdentity): Promise<boolean> {
    const client = await this.pool.connect();
    try {
      if (await tryLockKey(client, identity)) {
        await unlockKey(client, identity);
        return false;
      }
      return true;
    } finally {
      client.release();
    }
  }
}

/**
 * completed: replayed on retry; expired: finished longer ago than the retention, due to be reaped
 * (a retry then runs as a new request); in_flight: its first request is running; unfinished: that
 * request died part-way, and a retry resumes it.
 */
function keyState(row: { completedAt: string | null }, inFlight: boolean): string {
  if (row.completedAt !== null) {
    const ageMs = Date.now() - Date.parse(row.completedAt);
    return ageMs > idempotencyKeyRetentionHours * 3_600_000 ? 'expired' : 'completed';
  }
  return inFlight ? 'in_flight' : 'unfinished';
}

/** Finished keys are kept at least this long (Stripe: at least 24 hours). */
export const idempotencyKeyRetentionHours = 24;

/** The key's row to insert, for a request that carries one. */
function newKey(request: IdempotentRequest & KeyIdentity): NewKey {
  return { merchantId: request.merchantId, accountId: request.accountId, key: request.key, method: request.method,
    path: request.path,
    fingerprint: requestFingerprint(request), params: request.params };
}

export function requestFingerprint(request: Pick<IdempotentRequest, 'method' | 'path' | 'params'>): string {
  const canonical = (canonicalize as unknown as (value: unknown) => string)(
    { method: request.method, path: request.path, params: request.params });
  return createHash('sha256').update(canonical).digest('hex');
}

/** A finished key in the replay cache, and the text of a request found to be the same as its own. */
interface CachedKey {
  readonly finished: FinishedKey;
  readonly sameRequest: string | undefined;
}

/** A request's method, path and parameters' text: equal texts are the same request (undefined: no text). */
function sameRequestText(request: Pick<IdempotentRequest, 'method' | 'path' | 'paramsText'>): string | undefined {
  return request.paramsText === undefined ? undefined : `${request.method} ${request.path}\n${request.paramsText}`;
}

function isSameRequest(row: KeyRow, request: Pick<IdempotentRequest, 'method' | 'path' | 'params'>): boolean {
  return row.requestFingerprint === requestFingerprint(request);
}

/** Same key, another endpoint or other parameters: 400 idempotency_error, naming what differs. */
function assertSameRequest(row: KeyRow, request: IdempotentRequest & { key: string }): void {
  if (isSameRequest(row, request)) return;
  const param = row.requestMethod !== request.method || row.requestPath !== request.path
    ? undefined
    : firstDifferentParam(row.requestParams, request.params);
  throw new PennyError({
    code: 'idempotency_key_reused',
    type: 'idempotency_error',
    ...(param === undefined ? {} : { param }),
    message: 'Keys for idempotent requests can only be used with the same parameters they were first ' +
      `used with. Try using a key other than '${request.key}' if you meant to execute a different request.`,
  });
}

function firstDifferentParam(stored: Record<string, unknown>, sent: Record<string, unknown>): string | undefined {
  const canonical = canonicalize as unknown as (value: unknown) => string | undefined;
  const names = [...new Set([...Object.keys(stored), ...Object.keys(sent)])].sort();
  return names.find((name) => canonical(stored[name]) !== canonical(sent[name]));
}

/** Ids hold no space, so the key, last, cannot make two identities one. */
function cacheKeyOf(identity: KeyIdentity): string {
  return `${identity.merchantId} ${identity.accountId} ${identity.key}`;
}

/** About what a cached key holds: its stored body and the parameters it was first sent with. */
function finishedKeyBytes(row: KeyRow): number {
  return 256 + (row.responseBody?.length ?? 0) * 2 + JSON.stringify(row.requestParams).length * 2;
}

function keyInUse(key: string): PennyError {
  return new PennyError({
    code: 'idempotency_key_in_use',
    type: 'idempotency_error',
    message: `There is currently another in-progress request using this Idempotent Key (${key}); ` +
      'retry this request later.',
  });
}

/**
 * Deletes finished keys older than the retention (at least 24 hours, as Stripe keeps them), at
 * most `batchMax` per call. A key whose work is unfinished is never deleted.
 */
export async function reapFinishedKeys(
  pool: pg.Pool,
  options: { retentionHours: number; batchMax: number },
): Promise<number> {
  return deleteKeysFinishedBefore(pool, options);
}
