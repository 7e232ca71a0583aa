import { createHash } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type pg from 'pg';
import type { Logger } from 'pino';
import canonicalize from 'canonicalize';
import { clockMode, clockOffsetMs, followClockOffset, nowMs } from '../clock.js';
import type { Queryable } from '../db/pool.js';
import { PennyError } from '../errors.js';
import { stringifyJson } from '../json.js';
import { newId } from '../ids.js';
import { isCurrency } from '../money/currency.js';
import { invalid, missing, readBoolean, readObject, readString } from '../validation.js';
import {
  bypassPendingMethod, createDisputeMethod, decideAuthorization, disputeReasons, type DisputeReason,
} from './psp-decisions.js';
import { decideDispute, openDispute, type DisputeRequest } from './psp-disputes.js';
import { InvalidStateError, invalidState, notFound } from './psp-errors.js';
import { FaultInjector, parseFaultProfile, presentFaultProfile, type PspOperation } from './psp-faults.js';
import { webhookCopies } from './psp-outbox.js';
import { bankStatementsFor, payOutSettlementBatches, sandboxBankIban, settlementBatches } from './psp-settlement.js';
import {
  presentOperation, recordOperation, selectChildren, selectOperation, selectOperationsByReference,
  selectPspReferenceByKey, withBookingTransaction, type NewOperation, type OperationRow, type WebhookCopy,
} from './psp-store.js';
import { settlementDiscrepancies, type SettlementDiscrepancy } from './settlement-report.js';

/**
 * The sandbox PSP: a separate HTTP service that behaves like an acquirer. It authorizes,
 * captures, voids, refunds and pays out (asynchronously: pending → in_transit → paid | failed);
 * opens and decides disputes on request (POST /control/disputes); honours idempotency keys (a
 * repeat answers from its record); answers in the reply and later by signed webhook; and
 * misbehaves on request through a seeded fault profile (POST /control/faults).
 */
export interface SandboxPspOptions {
  readonly pool: pg.Pool;
  readonly logger: Logger;
  readonly injector?: FaultInjector;
}

export function buildSandboxPsp(options: SandboxPspOptions): { app: FastifyInstance; injector: FaultInjector } {
  const injector = options.injector ?? new FaultInjector();
  const app = Fastify({ loggerInstance: options.logger as FastifyBaseLogger, bodyLimit: 64 * 1024,
    genReqId: () => newId('sbxreq') });
  app.setReplySerializer((payload) => stringifyJson(payload));
  app.setErrorHandler((error: Error & { statusCode?: number }, _request, reply) => {
    if (error instanceof InvalidStateError) {
      return reply.status(409).send({ error: { type: 'invalid_request_error', code: 'invalid_state',
        message: error.message } });
    }
    if (error instanceof PennyError) {
      const status = error.code === 'resource_missing' ? 404 : error.type === 'idempotency_error' ? 422 : 400;
      return reply.status(status).send({ error: { type: error.type, code: error.code, param: error.param,
        message: error.message } });
    }
    const status = error.statusCode !== undefined && error.statusCode < 500 ? error.statusCode : 500;
    if (status === 500) options.logger.error({ err: error }, 'sandbox PSP failed');
    return reply.status(status).send({ error: { type: 'api_error', message: error.message } });
  });
  const psp = new SandboxPsp(options.pool, injector);

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.post('/v1/authorizations', (request, reply) =>
    psp.withFaults('authorize', request, reply, () => psp.authorize(request)));
  app.post('/v1/captures', (request, reply) => psp.withFaults('capture', request, reply, () => psp.capture(request)));
  app.post('/v1/voids', (request, reply) => psp.withFaults('void', request, reply, () => psp.void(request)));
  app.post('/v1/refunds', (request, reply) => psp.withFaults('refund', request, reply, () => psp.refund(request)));
  app.post('/v1/payouts', (request, reply) => psp.withFaults('payout', request, reply, () => psp.payout(request)));
  app.get('/v1/operations', (request, reply) => psp.withFaults('lookup', request, reply, async () => {
    const query = readObject(request.query, '', ['reference']);
    const reference = readString(query.reference, 'reference', { lengthMax: 255, required: true });
    const data = await selectOperationsByReference(options.pool, reference);
    return { object: 'list', data: data.map(presentOperation) };
  }));
  app.get<{ Params: { pspReference: string } }>('/v1/operations/:pspReference', async (request) => {
    const operation = await selectOperation(options.pool, request.params.pspReference);
    if (operation === undefined) throw notFound(request.params.pspReference);
    return presentOperation(operation);
  });
  app.get<{ Params: { day: string } }>('/v1/settlement_reports/:day', async (request, reply) => {
    const query = readObject(request.query, '', ['currency', 'plant', 'batch_fee_minor']);
    const batchFeeMinor = query.batch_fee_minor === undefined ? 0n : readAmount(Number(query.batch_fee_minor));
    const batches = await settlementBatches(options.pool, readDay(request.params.day), readPlanted(request.query),
      batchFeeMinor, { published: true });
    const currency = readString(query.currency, 'currency', { lengthMax: 3 });
    const batch = batches.find((item) => currency === undefined || item.rows[0]?.netCurrency === currency);
    return reply.type('text/csv; charset=utf-8').send(batch?.csv ?? '');
  });
  // The acquirer closes a day now (`penny sandbox-psp settle --date D`): its batches are paid out, once.
  // With `plant`, the batches are paid as the planted report says: the PSP's mistake is real money.
  app.post<{ Params: { day: string } }>('/control/settlements/:day', async (request) => {
    readObject(request.body ?? {}, '', []);
    readObject(request.query, '', ['plant']);
    const day = readDay(request.params.day);
    return { date: day, payouts: await payOutSettlementBatches(options.pool, day, readPlanted(request.query)) };
  });
  // One account's statement of the day (default: the operator's, which receives settlement payouts).
  app.get<{ Params: { day: string } }>('/v1/bank_statements/:day', async (request, reply) => {
    const day = readDay(request.params.day);
    const query = readObject(request.query, '', ['account', 'currency']);
    const statements = await bankStatementsFor(options.pool, day, {
      account: readString(query.account, 'account', { lengthMax: 64 }) ?? sandboxBankIban,
      currency: readString(query.currency, 'currency', { lengthMax: 3 }),
    });
    return reply.type('application/xml; charset=utf-8').send(statements[0] ?? '');
  });
  // A cardholder disputes a captured charge: the acquirer opens a dispute (and tells by webhook).
  app.post('/control/disputes', async (request) =>
    presentOperation(await openDispute(options.pool, injector, readDisputeRequest(request.body))));
  app.post<{ Params: { id: string } }>('/control/disputes/:id/decide', async (request) => {
    const body = readObject(request.body ?? {}, '', ['outcome']);
    const outcome = readString(body.outcome, 'outcome', { lengthMax: 4, required: true });
    if (outcome !== 'won' && outcome !== 'lost') throw invalid('outcome', 'outcome is won or lost.');
    return presentOperation(await decideDispute(options.pool, injector, request.params.id, outcome));
  });
  // The first name of POST /control/disputes, kept for callers that use it.
  app.post('/control/chargebacks', async (request) =>
    presentOperation(await openDispute(options.pool, injector, readDisputeRequest(request.body))));
  app.get('/control/faults', async () => ({ ...presentFaultProfile(injector.current()),
    injected: Object.fromEntries(injector.injected) }));
  app.post('/control/faults', async (request) => {
    injector.set(parseFaultProfile(request.body));
    return presentFaultProfile(injector.current());
  });
  // The sandbox follows Penny's controlled clock when they run apart; a restarted Penny reads it back.
  app.get('/control/clock', async () => ({ mode: clockMode(), offset_ms: clockOffsetMs(), now_ms: nowMs() }));
  app.post('/control/clock', async (request) => {
    const body = readObject(request.body ?? {}, '', ['offset_ms']);
    if (clockMode() !== 'controlled') throw invalid('offset_ms', 'The sandbox clock is the system clock.');
    if (typeof body.offset_ms !== 'number' || !Number.isSafeInteger(body.offset_ms)) throw missing('offset_ms');
    followClockOffset(body.offset_ms);
    return { now_ms: nowMs() };
  });
  return { app, injector };
}

class SandboxPsp {
  constructor(private readonly pool: pg.Pool, private readonly injector: FaultInjector) {}

  /** Latency, then maybe an error or a timeout before the work, or a lost reply after it. */
  async withFaults(operation: PspOperation, request: FastifyRequest, reply: FastifyReply,
    work: () => Promise<unknown>): Promise<unknown> {
    const latencyMs = this.injector.latencyMs();
    if (latencyMs > 0) await sleep(latencyMs);
    const fault = this.injector.faultFor(operation);
    if (fault === 'error_500' || fault === 'error_503' || fault === 'error_429') {
      const status = Number(fault.slice(-3));
      return reply.status(status).send({ error: { type: status === 429 ? 'rate_limit_error' : 'api_error',
        message: `The sandbox injected a ${status}.` } });
    }
    if (fault === 'timeout_before') return this.dropConnection(request, reply);
    const result = await work();
    if (fault === 'timeout_after') return this.dropConnection(request, reply);
    return result;
  }

  private async dropConnection(request: FastifyRequest, reply: FastifyReply) {
    const hangMs = this.injector.timeoutHangMs();
    if (hangMs > 0) await sleep(hangMs);
    reply.hijack();
    request.raw.socket.destroy();
    return undefined;
  }

  async authorize(request: FastifyRequest) {
    const body = readObject(request.body, '', ['reference', 'amount_minor', 'currency', 'payment_method', 'capture',
      'authenticated']);
    const amountMinor = readAmount(body.amount_minor);
    const currency = readString(body.currency, 'currency', { lengthMax: 3, required: true });
    if (!isCurrency(currency)) throw invalid('currency', `Unknown currency ${currency}.`);
    const paymentMethod = readString(body.payment_method, 'payment_method', { lengthMax: 255, required: true });
    const capture = readBoolean(body.capture, 'capture') ?? true;
    const decision = decideAuthorization({
      paymentMethod, capture, authenticated: readBoolean(body.authenticated, 'authenticated') ?? false,
    });
    const goesPending = decision.outcome !== 'requires_action' && this.injector.authorizationGoesPending();
    return this.record(request, {
      kind: 'authorize', parentPspReference: null, amountMinor, currency, paymentMethod,
      outcome: decision.outcome, declineCode: decision.outcome === 'declined' ? decision.decline.declineCode : null,
      pending: goesPending ? {
        resolvesAt: new Date(nowMs() + this.injector.pendingResolveMs()).toISOString(), outcome: decision.outcome,
      } : undefined,
      availableImmediately: paymentMethod === bypassPendingMethod,
      disputeAt: !goesPending && decision.outcome === 'captured' ? this.disputeAtFor(paymentMethod) : null,
    });
  }

  async capture(request: FastifyRequest) {
    const body = readObject(request.body, '', ['reference', 'psp_reference', 'amount_minor']);
    const amountMinor = readAmount(body.amount_minor);
    return this.onParent(request, body, async (client, parent) => {
      if (parent.kind !== 'authorize' || parent.outcome !== 'authorized') throw invalidState(parent, 'captured');
      const children = await selectChildren(client, parent.pspReference);
      if (children.some((child) => child.kind === 'capture' || child.kind === 'void')) throw invalidState(parent, 'captured');
      if (amountMinor > (parent.amountMinor ?? 0n)) throw invalid('amount_minor', 'More than the authorized amount.');
      return { kind: 'capture', amountMinor, currency: parent.currency, outcome: 'captured',
        availableImmediately: parent.availableImmediately, disputeAt: this.disputeAtFor(parent.paymentMethod) };
    });
  }

  async void(request: FastifyRequest) {
    const body = readObject(request.body, '', ['reference', 'psp_reference']);
    return this.onParent(request, body, async (client, parent) => {
      if (parent.kind !== 'authorize' || parent.outcome !== 'authorized') throw invalidState(parent, 'voided');
      const children = await selectChildren(client, parent.pspReference);
      if (children.some((child) => child.kind === 'capture' || child.kind === 'void')) throw invalidState(parent, 'voided');
      return { kind: 'void', amountMinor: null, currency: parent.currency, outcome: 'voided' };
    });
  }

  async refund(request: FastifyRequest) {
    const body = readObject(request.body, '', ['reference', 'psp_reference', 'amount_minor']);
    const amountMinor = readAmount(body.amount_minor);
    return this.onParent(request, body, async (client, parent) => {
      const children = await selectChildren(client, parent.pspReference);
      const capturedMinor = parent.outcome === 'captured' ? parent.amountMinor ?? 0n
        : children.filter((child) => child.kind === 'capture').reduce((sum, child) => sum + (child.amountMinor ?? 0n), 0n);
      const refundedMinor = children.filter((child) => child.kind === 'refund')
        .reduce((sum, child) => sum + (child.amountMinor ?? 0n), 0n);
      if (amountMinor > capturedMinor - refundedMinor) throw invalid('amount_minor', 'More than the unrefunded amount.');
      return { kind: 'refund', amountMinor, currency: parent.currency, outcome: 'refunded' };
    });
  }

  async payout(request: FastifyRequest) {
    const body = readObject(request.body, '', ['reference', 'amount_minor', 'currency', 'destination']);
    const currency = readString(body.currency, 'currency', { lengthMax: 3, required: true });
    if (!isCurrency(currency)) throw invalid('currency', `Unknown currency ${currency}.`);
    const destination = readString(body.destination, 'destination', { lengthMax: 255, required: true });
    // Pending now, in transit after a step, then paid or failed as the test bank account says (psp-changes.ts).
    return this.record(request, { kind: 'payout', parentPspReference: null, amountMinor: readAmount(body.amount_minor),
      currency, paymentMethod: null, outcome: 'pending', declineCode: null, destination,
      pending: { resolvesAt: new Date(nowMs() + this.injector.payoutStepMs()).toISOString(), outcome: 'in_transit' } });
  }

  /** When a captured pm_card_createDispute charge is disputed; null for any other card. */
  private disputeAtFor(paymentMethod: string | null): string | null {
    return paymentMethod === createDisputeMethod
      ? new Date(nowMs() + this.injector.createDisputeAfterMs()).toISOString() : null;
  }

  /** A follow-up on an earlier operation, decided under that operation's row lock. */
  private async onParent(
    request: FastifyRequest,
    body: Record<string, unknown>,
    decide: (client: pg.PoolClient, parent: OperationRow) => Promise<Pick<NewOperation, 'kind' | 'amountMinor' |
      'currency' | 'outcome' | 'availableImmediately' | 'disputeAt'>>,
  ) {
    const parentReference = readString(body.psp_reference, 'psp_reference', { lengthMax: 255, required: true });
    const key = idempotencyKeyOf(request);
    const fingerprint = fingerprintOf(request);
    return withBookingTransaction(this.pool, async (client) => {
      const parent = await selectOperation(client, parentReference, { forUpdate: true });
      if (parent === undefined) throw notFound(parentReference);
      // A repeated key answers from the record, whatever the parent's state is now.
      const existing = await recordedFor(client, key);
      if (existing !== undefined) return answerRepeat(existing, fingerprint);
      const decided = await decide(client, parent);
      return this.insert(client, request, { ...decided, parentPspReference: parent.pspReference, paymentMethod: null,
        declineCode: null });
    });
  }

  private async record(request: FastifyRequest, operation: Omit<NewOperation, 'idempotencyKey' | 'reference' |
    'requestFingerprint'>) {
    // One statement writes the record and its webhooks; the transaction is for the day's lock.
    return withBookingTransaction(this.pool, (client) => this.insert(client, request, operation));
  }

  private async insert(db: Queryable, request: FastifyRequest,
    operation: Omit<NewOperation, 'idempotencyKey' | 'reference' | 'requestFingerprint'>) {
    const body = request.body as Record<string, unknown>;
    const fingerprint = fingerprintOf(request);
    // Decided once (the insert may look twice), not for an authorization still pending (its
    // resolution is its event); its faults count only if this request recorded the operation.
    let fate: { copies: WebhookCopy[]; faults: string[] } | undefined;
    const recorded = await recordOperation(db, {
      ...operation, idempotencyKey: idempotencyKeyOf(request), requestFingerprint: fingerprint,
      reference: readString(body.reference, 'reference', { lengthMax: 255, required: true }),
    }, (row) => (fate ??= row.kind === 'authorize' && row.outcome === 'pending' ? { copies: [], faults: [] }
      : webhookCopies(row, this.injector)).copies);
    if (!recorded.created) return answerRepeat(recorded.operation, fingerprint);
    this.injector.countInjected(fate?.faults ?? []);
    return presentOperation(recorded.operation);
  }
}

async function recordedFor(client: pg.PoolClient, key: string): Promise<OperationRow | undefined> {
  const reference = await selectPspReferenceByKey(client, key);
  return reference === undefined ? undefined : selectOperation(client, reference);
}

function answerRepeat(operation: OperationRow, fingerprint: string) {
  if (operation.requestFingerprint !== null && operation.requestFingerprint !== fingerprint) {
    throw new PennyError({ code: 'idempotency_key_reused', type: 'idempotency_error',
      message: 'This idempotency key was used with a different request.' });
  }
  return presentOperation(operation);
}

function idempotencyKeyOf(request: FastifyRequest): string {
  const header = request.headers['idempotency-key'];
  const key = Array.isArray(header) ? header[0] : header;
  if (key === undefined || key.length === 0 || key.length > 255) throw missing('Idempotency-Key');
  return key;
}

function fingerprintOf(request: FastifyRequest): string {
  const text = `${request.routeOptions.url ?? ''} ${canonicalize(request.body ?? {}) ?? ''}`;
  return createHash('sha256').update(text).digest('hex');
}

function readAmount(value: unknown): bigint {
  if (value === undefined) throw missing('amount_minor');
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw invalid('amount_minor', 'amount_minor is a positive whole number of minor units.');
  }
  return BigInt(value);
}

function readDay(value: string): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value) || Number.isNaN(Date.parse(`${value}T00:00:00Z`))) {
    throw invalid('day', 'A settlement day is YYYY-MM-DD.');
  }
  return value;
}

/**
 * POST /control/disputes: `{charge_reference | psp_reference, amount_minor?, reason?,
 * decide_after_ms?, decide_outcome?}`.
 */
function readDisputeRequest(body: unknown): DisputeRequest {
  const object = readObject(body ?? {}, '', ['charge_reference', 'psp_reference', 'amount_minor', 'reason',
    'decide_after_ms', 'decide_outcome']);
  const chargeReference = readString(object.charge_reference, 'charge_reference', { lengthMax: 255 });
  const pspReference = readString(object.psp_reference, 'psp_reference', { lengthMax: 255 });
  if ((chargeReference === undefined) === (pspReference === undefined)) {
    throw invalid('charge_reference', 'Name the charge by charge_reference or by psp_reference (one of them).');
  }
  const reason = readString(object.reason, 'reason', { lengthMax: 64 });
  if (reason !== undefined && !(disputeReasons as readonly string[]).includes(reason)) {
    throw invalid('reason', `reason is one of: ${disputeReasons.join(', ')}.`);
  }
  const decideAfterMs = object.decide_after_ms;
  if (decideAfterMs !== undefined && (typeof decideAfterMs !== 'number' || !Number.isSafeInteger(decideAfterMs)
    || decideAfterMs < 0)) {
    throw invalid('decide_after_ms', 'decide_after_ms is a whole number of milliseconds.');
  }
  const decideOutcome = readString(object.decide_outcome, 'decide_outcome', { lengthMax: 4 });
  if (decideOutcome !== undefined && decideOutcome !== 'won' && decideOutcome !== 'lost') {
    throw invalid('decide_outcome', 'decide_outcome is won or lost.');
  }
  return { chargeReference, pspReference, reason: reason as DisputeReason | undefined,
    amountMinor: object.amount_minor === undefined ? undefined : readAmount(object.amount_minor),
    decideAfterMs, decideOutcome };
}

function readPlanted(query: unknown): SettlementDiscrepancy[] {
  const plant = (query as Record<string, unknown> | undefined)?.plant;
  if (plant === undefined) return [];
  const kinds = String(plant).split(',');
  for (const kind of kinds) {
    if (!(settlementDiscrepancies as readonly string[]).includes(kind)) {
      throw invalid('plant', `plant lists some of: ${settlementDiscrepancies.join(', ')}.`);
    }
  }
  return kinds as SettlementDiscrepancy[];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
