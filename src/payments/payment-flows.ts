import type pg from 'pg';
import {
  ConnectorRefusedError, ConnectorUnknownOutcomeError, type AuthorizeOutput, type ConnectorRegistry,
} from '../connectors/connector.js';
import { nowMs } from '../clock.js';
import { inTransaction, named, writeAtCommit } from '../db/pool.js';
import { PennyError } from '../errors.js';
import { failpoint } from '../failpoints.js';
import type { Execution } from '../idempotency/idempotency-service.js';
import { newId } from '../ids.js';
import { stripeAmountToMinor } from '../money/stripe-currency.js';
import { openCase } from './payment-cases.js';
import { recordChargeEvent, recordIntentEvent, recordRefundEvent } from './payment-events.js';
import { feeMinor } from './payment-fees.js';
import type { PaymentLedger } from './payment-ledger.js';
import { presentPaymentIntent } from './payment-presenter.js';
import { assertOperationAllowed, assertTransition } from './payment-state.js';
import * as store from './payment-store.js';

/**
 * The operations that move money: confirm, capture, cancel and refund. Each has the same shape
 * (reference/style.md, rule 24): in one transaction, lock the intent, decide and record the
 * attempt with a recovery point; call the PSP outside any transaction with Penny's own idempotency
 * key; in a second transaction, apply the outcome with its ledger entries. A request that dies
 * part-way is resumed by its retry from the last recovery point, and the PSP call is repeated
 * with the same key, so the customer is charged once.
 */
export interface PaymentFlowOptions {
  readonly connectorId: string;
  readonly authorizationExpiryDays: number;
  /** Penny's own base URL, as customers' browsers reach it: the 3-D Secure page is served there. */
  readonly publicUrl: () => string;
}

export class PaymentFlows {
  constructor(
    private readonly connectors: ConnectorRegistry,
    private readonly paymentLedger: PaymentLedger,
    private readonly options: PaymentFlowOptions,
  ) {}

  /**
   * `authenticating`: the attempt whose 3-D Secure challenge the customer completed (the
   * authentication page); the confirmation goes ahead only while that attempt is still the
   * intent's current challenge, checked under the row lock.
   */
  async confirm(execution: Execution, merchantId: string, id: string, paymentMethod: string | undefined,
    returnUrl: string | null = null, authenticating?: string) {
    if (execution.recoveryPoint !== 'started') return this.confirmRecorded(execution, merchantId, id, execution.recoveryData);
    const recorded = await inTransaction(execution.client, async () => {
      const intent = await mustIntent(execution.client, merchantId, id, true);
      if (authenticating !== undefined) await assertCurrentChallenge(execution.client, intent, authenticating);
      return this.recordAttempt(execution, intent, paymentMethod, returnUrl);
    });
    return this.confirmRecorded(execution, merchantId, id, recorded.data, recorded);
  }

  /**
   * The customer failed the 3-D Secure challenge (the test page's Fail). Under the intent's row
   * lock and for its current challenge only, as completing is, the attempt records the failure
   * and the intent returns to requires_payment_method with Stripe's
   * payment_intent_authentication_failure (so payment_intent.payment_failed is emitted). A
   * requires_action attempt holds no money, so nothing is booked; the PSP is not called, and its
   * authorization stays requires_action, never captured.
   */
  async failAuthentication(client: pg.PoolClient, merchantId: string, id: string, attemptId: string):
  Promise<store.PaymentIntentRow> {
    return inTransaction(client, async () => {
      const intent = await mustIntent(client, merchantId, id, true);
      await assertCurrentChallenge(client, intent, attemptId);
      await store.updateAttempt(client, { merchantId, id: attemptId },
        { status: 'authentication_failed', pspReference: null, declineCode: null });
      return moveIntent(client, intent, {
        status: 'requires_payment_method', nextAction: null,
        lastPaymentError: authenticationFailure(intent.paymentMethod),
      });
    });
  }

  /**
   * The rest of a confirmation once its attempt is recorded: the PSP call, then the outcome. A
   * resumed request reads the attempt and the intent again; the first run passes what it wrote.
   */
  async confirmRecorded(execution: Execution, merchantId: string, id: string, data: Record<string, unknown>,
    known?: { attempt: store.AttemptRow; intent: store.PaymentIntentRow }) {
    const attemptId = String(data.attempt);
    const attempt = known?.attempt ?? await store.selectAttempt(execution.client, merchantId, attemptId);
    if (attempt === undefined) throw new Error(`attempt ${attemptId} of ${id} is missing`);
    const intent = known?.intent ?? await mustIntent(execution.client, merchantId, id);
    failpoint('before_psp_call');
    const outcome = await this.sendAuthorization(attempt, intent);
    const applied = await inTransaction(execution.client, async () => {
      const result = await this.applyAuthorization(execution.client, attempt, outcome);
      failpoint('after_psp_reply');
      await execution.complete(confirmationAnswer(result));
      return result;
    });
    failpoint('after_commit');
    return answerApplied(applied);
  }

  /**
   * Sends (or re-sends, with the same key) an attempt's authorization. A refusal (4xx) is a
   * definite failure, answered as a processing error; a timeout, a connection error, a 5xx or an
   * open circuit is an unknown outcome, never a guess.
   */
  async sendAuthorization(attempt: store.AttemptRow, intent: store.PaymentIntentRow): Promise<AuthorizationResult> {
    const connector = this.connectors.get(attempt.connector);
    try {
      return await connector.authorize({
        reference: attempt.id,
        idempotencyKey: attempt.pspIdempotencyKey,
        amountMinor: stripeAmountToMinor(intent.currency, Number(intent.amount)),
        currency: intent.currency.toUpperCase(),
        paymentMethod: attempt.paymentMethod,
        capture: intent.captureMethod !== 'manual',
        authenticated: attempt.authenticated,
      });
    } catch (error) {
      if (error instanceof ConnectorUnknownOutcomeError) return { outcome: 'unknown', reason: error.reason };
      if (error instanceof ConnectorRefusedError) {
        return { outcome: 'declined', pspReference: null, code: 'processing_error', declineCode: 'processing_error',
          message: 'An error occurred while processing your card. Try again in a little bit.' };
      }
      throw error;
    }
  }

  /**
   * Applies an authorization's outcome once, under the intent's row lock, whoever learnt it: the
   * request's own reply, a PSP webhook or the recovery worker. An attempt already resolved is left
   * as it is; an unknown outcome leaves the intent processing and queues its recovery.
   */
  async applyAuthorization(client: pg.PoolClient, attempt: store.AttemptRow, outcome: AuthorizationResult):
  Promise<store.PaymentIntentRow> {
    const intent = await mustIntent(client, attempt.merchantId, attempt.paymentIntentId, true);
    const current = await store.selectAttempt(client, attempt.merchantId, attempt.id);
    // Resolved already (by the reply, a webhook or a look-up): applied once, left as it is.
    if (current === undefined || !['started', 'unknown', 'manual_review'].includes(current.status)) return intent;
    if (outcome.outcome === 'unknown' || outcome.outcome === 'pending') {
      if (current.status === 'manual_review') return intent;
      await store.updateAttempt(client, attempt, {
        status: 'unknown', pspReference: outcome.outcome === 'pending' ? outcome.pspReference : null, declineCode: null,
      });
      if (current.status === 'started') await hastenRecovery(client, authorizeSubject(attempt));
      return intent;
    }
    await resolveRecovery(client, authorizeSubject(attempt));
    await store.updateAttempt(client, attempt, {
      status: outcome.outcome, pspReference: outcome.pspReference,
      declineCode: outcome.outcome === 'declined' ? outcome.declineCode : null,
    });
    switch (outcome.outcome) {
      case 'declined':
        return this.confirmDeclined(client, intent, attempt, outcome);
      case 'requires_action':
        // The sandbox has no page of its own (its URL is a placeholder), so Penny serves its
        // test-mode authentication page (authentication-routes.ts): opening it completes the
        // authentication and sends the customer to return_url. A real PSP's connector would
        // give its own page here (outcome.redirectUrl).
        return moveIntent(client, intent, {
          status: 'requires_action',
          nextAction: { type: 'redirect_to_url', redirect_to_url: {
            url: `${this.options.publicUrl()}/v1/payment_intents/${intent.id}/authenticate?attempt=${attempt.id}`,
            return_url: current.returnUrl,
          } },
        });
      case 'authorized':
      case 'captured':
        return this.confirmSucceeded(client, intent, attempt, outcome.outcome, outcome.pspReference);
    }
  }

  /**
   * Records a confirmation's attempt on an intent the caller's transaction has locked (or just
   * created), moving it to processing, with the recovery point a resumed request continues from.
   */
  async recordAttempt(execution: Execution, intent: store.PaymentIntentRow, method: string | undefined,
    returnUrl: string | null = null) {
    assertOperationAllowed(intent.status, 'confirm', presentPaymentIntent(intent));
    const paymentMethod = method ?? intent.paymentMethod ?? undefined;
    if (paymentMethod === undefined) {
      throw new PennyError({
        code: 'payment_intent_unexpected_state', param: 'payment_method',
        message: 'You cannot confirm this PaymentIntent because it\'s missing a payment method.',
        details: { payment_intent: presentPaymentIntent(intent) },
      });
    }
    const attempt = await store.insertAttempt(execution.client, {
      merchantId: intent.merchantId, id: newId('pa'), paymentIntentId: intent.id,
      connector: this.options.connectorId, paymentMethod,
      authenticated: intent.status === 'requires_action' && intent.paymentMethod === paymentMethod,
      returnUrl,
    });
    // Recorded with the attempt, so an attempt whose request dies (and is never retried) is still resolved.
    await queueRecovery(execution.client, authorizeSubject(attempt), recoveryGraceMs);
    const processing = await moveIntent(execution.client, intent, { status: 'processing', paymentMethod });
    const data = { attempt: attempt.id, authenticated: attempt.authenticated };
    await execution.saveRecoveryPoint('attempt_recorded', data);
    return { data, attempt, intent: processing };
  }

  private async confirmDeclined(
    client: pg.PoolClient,
    intent: store.PaymentIntentRow,
    attempt: store.AttemptRow,
    outcome: { code: string; declineCode: string; message: string; pspReference: string | null },
  ): Promise<store.PaymentIntentRow> {
    const charge = await store.insertCharge(client, {
      merchantId: intent.merchantId, id: newId('ch'), paymentIntentId: intent.id, attemptId: attempt.id,
      amount: intent.amount, currency: intent.currency, amountCaptured: 0n, status: 'failed',
      paymentMethod: attempt.paymentMethod, failureCode: outcome.code, failureMessage: outcome.message,
      outcome: { network_status: 'declined_by_network', reason: outcome.declineCode, type: 'issuer_declined',
        seller_message: 'The bank did not return any further details with this decline.', risk_level: 'normal' },
      pspReference: outcome.pspReference, authorizationEntryId: null, captureBefore: null,
    });
    await recordChargeEvent(client, 'charge.failed', charge);
    return moveIntent(client, intent, {
      status: 'requires_payment_method', latestCharge: charge.id, nextAction: null,
      lastPaymentError: {
        type: 'card_error', code: outcome.code, decline_code: outcome.declineCode, message: outcome.message,
        charge: charge.id, payment_method: { id: attempt.paymentMethod, object: 'payment_method', type: 'card' },
      },
    });
  }

  private async confirmSucceeded(
    client: pg.PoolClient,
    intent: store.PaymentIntentRow,
    attempt: store.AttemptRow,
    outcome: 'authorized' | 'captured',
    pspReference: string,
  ): Promise<store.PaymentIntentRow> {
    const chargeId = newId('ch');
    const amountMinor = stripeAmountToMinor(intent.currency, Number(intent.amount));
    const accounts = await this.paymentLedger.accountsFor(client, intent.merchantId, intent.currency.toUpperCase());
    let authorizationEntryId: string | null = null;
    let captureBefore: string | null = null;
    if (outcome === 'authorized') {
      const captureBeforeMs = nowMs() + this.options.authorizationExpiryDays * 86_400_000;
      captureBefore = new Date(captureBeforeMs).toISOString();
      // The hold outlives the authorization by a grace, so Penny's expiry (which voids at the PSP
      // first) always comes before the ledger's own; the ledger's is the backstop.
      const expiresAt = new Date(captureBeforeMs + authorizationHoldGraceMs).toISOString();
      authorizationEntryId = await this.paymentLedger.authorize(client, { accounts, chargeId, amountMinor, expiresAt });
    } else {
      await this.paymentLedger.capture(client, {
        accounts, chargeId, amountMinor, authorizationEntryId: null, ...(await this.fees(client, intent, amountMinor)),
      });
    }
    const charge = await store.insertCharge(client, {
      merchantId: intent.merchantId, id: chargeId, paymentIntentId: intent.id, attemptId: attempt.id,
      amount: intent.amount, currency: intent.currency, amountCaptured: outcome === 'captured' ? intent.amount : 0n,
      status: 'succeeded', paymentMethod: attempt.paymentMethod, failureCode: null, failureMessage: null,
      outcome: { network_status: 'approved_by_network', reason: null, type: 'authorized',
        seller_message: 'Payment complete.', risk_level: 'normal' },
      pspReference, authorizationEntryId, captureBefore,
    });
    await recordChargeEvent(client, 'charge.succeeded', charge);
    const status = outcome === 'captured' ? 'succeeded' : 'requires_capture';
    return moveIntent(client, intent, {
      status, latestCharge: charge.id, nextAction: null, lastPaymentError: null,
      amountCapturable: outcome === 'captured' ? 0n : intent.amount,
      amountReceived: outcome === 'captured' ? intent.amount : 0n,
    });
  }

  private async fees(client: pg.PoolClient, intent: store.PaymentIntentRow, capturedMinor: bigint) {
    const pricing = await store.selectMerchantPricing(client, intent.merchantId);
    const connector = this.connectors.get(this.options.connectorId);
    return {
      pennyFeeMinor: feeMinor(capturedMinor, pricing),
      pspFeeMinor: feeMinor(capturedMinor, connector.priceList),
    };
  }

  async capture(execution: Execution, merchantId: string, id: string, amountToCapture: bigint | undefined) {
    let data = execution.recoveryData;
    if (execution.recoveryPoint === 'started') {
      data = await inTransaction(execution.client, async () => {
        const intent = await mustIntent(execution.client, merchantId, id, true);
        assertOperationAllowed(intent.status, 'capture', presentPaymentIntent(intent));
        const amount = amountToCapture ?? intent.amountCapturable;
        if (amount > intent.amountCapturable) {
          throw new PennyError({
            code: 'amount_too_large', param: 'amount_to_capture', judgedOnState: true,
            message: `The amount to capture (${amount}) is more than the amount capturable (${intent.amountCapturable}).`,
          });
        }
        const key = await claimFinalization(execution.client, intent, 'capture', amount);
        await queueRecovery(execution.client, { merchantId, kind: 'capture', subjectId: intent.id }, recoveryGraceMs);
        const requested = { amount: amount.toString(), key };
        await execution.saveRecoveryPoint('capture_requested', requested);
        return requested;
      });
    }
    return this.sendCapture(execution.client, merchantId, id, BigInt(String(data.amount)), savedKey(data));
  }

  /**
   * Sends a claimed capture to the PSP (under its claim's key, the same every time) and applies
   * it: the request's own step, and what the recovery worker re-sends.
   */
  async sendCapture(client: pg.PoolClient, merchantId: string, id: string, amount: bigint,
    claimKey: string | undefined) {
    return this.sendFinalization(client, { merchantId, kind: 'capture', subjectId: id }, claimKey, (intent, charge, key) =>
      this.connectors.get(this.options.connectorId).capture({
        reference: charge.id, idempotencyKey: key, pspReference: charge.pspReference ?? '',
        amountMinor: stripeAmountToMinor(intent.currency, Number(amount)),
      }), () => this.applyCapture(client, merchantId, id, amount));
  }

  /**
   * A claimed capture or cancel, sent and applied. Settled already (applied, or the claim given
   * back by recovery): never sent again. Only the claim the caller made (`claimKey`, its PSP key)
   * is sent: a stale retry of a claim given back never sends a later claim's key with its own
   * amount. A refusal gives the claim back; an unknown outcome hastens the claim's recovery job
   * and stops the request where its retry resumes.
   */
  private async sendFinalization(client: pg.PoolClient, subject: RecoverySubject & { kind: 'capture' | 'cancel' },
    claimKey: string | undefined,
    call: (intent: store.PaymentIntentRow, charge: store.ChargeRow, idempotencyKey: string) => Promise<unknown>,
    apply: () => Promise<store.PaymentIntentRow>): Promise<store.PaymentIntentRow> {
    const intent = await mustIntent(client, subject.merchantId, subject.subjectId);
    if (intent.status !== 'requires_capture') return intent;
    const claim = await store.selectFinalization(client, intent);
    if (claim?.kind !== subject.kind || (claimKey !== undefined && claim.pspIdempotencyKey !== claimKey)) {
      const [operation, done] = subject.kind === 'capture' ? ['capture', 'performed it'] : ['cancel', 'voided the payment'];
      throw new PennyError({ code: 'payment_intent_unexpected_state',
        message: `This ${operation} was given up: the payment processor never ${done}. ${capitalized(operation)} again.`,
        details: { payment_intent: presentPaymentIntent(intent) } });
    }
    const charge = await mustCharge(client, intent);
    const idempotencyKey = finalizationKey(claim, charge.id, subject.kind);
    await hastenOnUnknown(client, subject, () => followUp(() => call(intent, charge, idempotencyKey), {
      release: () => this.giveBack(client, subject) }));
    return inTransaction(client, apply);
  }

  /** The PSP never performed a claimed capture or cancel: the claim is given back to the intent. */
  async giveBack(client: pg.PoolClient, subject: RecoverySubject & { kind: 'capture' | 'cancel' }): Promise<void> {
    await inTransaction(client, async () => {
      await mustIntent(client, subject.merchantId, subject.subjectId, true);
      await releaseFinalization(client, { merchantId: subject.merchantId, id: subject.subjectId }, subject.kind);
      await resolveRecovery(client, subject);
    });
  }

  /** Applies a capture the PSP performed, once, under the intent's lock. */
  async applyCapture(client: pg.PoolClient, merchantId: string, id: string, amount: bigint) {
    const intent = await mustIntent(client, merchantId, id, true);
    await resolveRecovery(client, { merchantId, kind: 'capture', subjectId: id });
    if (intent.status === 'succeeded') return intent;
    const charge = await mustCharge(client, intent);
    const amountMinor = stripeAmountToMinor(intent.currency, Number(amount));
    const accounts = await this.paymentLedger.accountsFor(client, merchantId, intent.currency.toUpperCase());
    await this.paymentLedger.capture(client, {
      accounts, chargeId: charge.id, amountMinor, authorizationEntryId: charge.authorizationEntryId,
      ...(await this.fees(client, intent, amountMinor)),
    });
    await recordChargeEvent(client, 'charge.captured', await store.updateChargeCaptured(client, charge, amount), charge);
    return moveIntent(client, intent, {
      status: 'succeeded', amountCapturable: 0n, amountReceived: amount,
    });
  }

  async cancel(execution: Execution, merchantId: string, id: string, reason: string | null) {
    if (execution.recoveryPoint === 'started') {
      const done = await inTransaction(execution.client, async () => {
        const intent = await mustIntent(execution.client, merchantId, id, true);
        assertOperationAllowed(intent.status, 'cancel', presentPaymentIntent(intent));
        assertTransition(intent.status, 'canceled');
        if (intent.status !== 'requires_capture') {
          return moveIntent(execution.client, intent, { status: 'canceled', canceled: { reason } });
        }
        const key = await claimFinalization(execution.client, intent, 'cancel', null, reason);
        await queueRecovery(execution.client, cancelSubject(merchantId, id), recoveryGraceMs);
        await execution.saveRecoveryPoint('cancel_requested', { reason, key });
        return key;
      });
      if (typeof done !== 'string') return done;
      return this.sendVoid(execution.client, merchantId, id, reason, done);
    }
    const savedReason = execution.recoveryData.reason as string | null | undefined;
    return this.sendVoid(execution.client, merchantId, id, savedReason ?? reason, savedKey(execution.recoveryData));
  }

  /**
   * Sends a claimed cancel's void to the PSP (under its claim's key, the same every time) and
   * applies it: the request's own step, and what the recovery worker re-sends.
   */
  async sendVoid(client: pg.PoolClient, merchantId: string, id: string, reason: string | null,
    claimKey: string | undefined) {
    return this.sendFinalization(client, cancelSubject(merchantId, id), claimKey, (_intent, charge, key) =>
      this.connectors.get(this.options.connectorId).void({
        reference: charge.id, idempotencyKey: key, pspReference: charge.pspReference ?? '',
      }), () => this.applyCancel(client, merchantId, id, reason));
  }

  /** Applies a void the PSP performed, once, under the intent's lock: the hold is voided. */
  async applyCancel(client: pg.PoolClient, merchantId: string, id: string, reason: string | null) {
    const locked = await mustIntent(client, merchantId, id, true);
    await resolveRecovery(client, cancelSubject(merchantId, id));
    if (locked.status === 'canceled') return locked;
    // Only an authorization is voided; anything else here is a contradiction, and fails loudly.
    if (locked.status !== 'requires_capture') throw new Error(`a void applied to ${locked.id} in ${locked.status}`);
    const charge = await mustCharge(client, locked);
    if (charge.authorizationEntryId !== null) {
      await this.paymentLedger.cancelAuthorization(client, charge.authorizationEntryId);
    }
    return moveIntent(client, locked, { status: 'canceled', amountCapturable: 0n, canceled: { reason } });
  }

  /**
   * An authorization not captured in time expires, as Stripe's do after 7 days: the PSP voids it
   * (the same void key a merchant's cancel would use), the hold is released, and the intent is
   * canceled with reason `automatic`. Claiming the finalization keeps a racing capture out; an
   * unknown outcome of the void leaves it for the next run.
   */
  async expireAuthorization(client: pg.PoolClient, merchantId: string, id: string): Promise<'expired' | 'skipped'> {
    const claimed = await inTransaction(client, async () => {
      const intent = await mustIntent(client, merchantId, id, true);
      if (intent.status !== 'requires_capture') return undefined;
      // Its claim says `automatic`; a claim of anyone else (a capture, or the merchant's cancel,
      // which its own recovery job finishes with the merchant's reason) is left alone.
      const finalization = await store.insertFinalization(client, intent, { kind: 'cancel', amount: null,
        cancellationReason: expiryReason, pspIdempotencyKey: newFinalizationKey(intent, 'cancel') });
      const ours = finalization.won || (finalization.kind === 'cancel' && finalization.cancellationReason === expiryReason);
      if (!ours) return undefined;
      const charge = await mustCharge(client, intent);
      return { charge, idempotencyKey: finalizationKey(finalization, charge.id, 'cancel') };
    });
    if (claimed === undefined) return 'skipped';
    try {
      await this.connectors.get(this.options.connectorId).void({
        reference: claimed.charge.id, idempotencyKey: claimed.idempotencyKey,
        pspReference: claimed.charge.pspReference ?? '',
      });
    } catch (error) {
      if (error instanceof ConnectorUnknownOutcomeError) return 'skipped';
      // Refused (the PSP moved on without Penny): give the claim back, so the intent is not stuck.
      if (error instanceof ConnectorRefusedError && error.status !== 429) {
        await inTransaction(client, () => releaseFinalization(client, { merchantId, id }, 'cancel'));
        await inTransaction(client, () => openCase(client, { merchantId, kind: 'unresolved_outcome',
          paymentIntentId: id, subjectId: `expiry:${id}`, detail: { reason: `the PSP refused the void: ${error.message}` } }));
      }
      if (error instanceof ConnectorRefusedError && error.status === 429) return 'skipped';
      throw error;
    }
    await inTransaction(client, async () => {
      const locked = await mustIntent(client, merchantId, id, true);
      if (locked.status === 'canceled') return;
      if (claimed.charge.authorizationEntryId !== null) {
        await this.paymentLedger.cancelAuthorization(client, claimed.charge.authorizationEntryId);
      }
      await moveIntent(client, locked, { status: 'canceled', amountCapturable: 0n, canceled: { reason: expiryReason } });
    });
    return 'expired';
  }

  async refund(execution: Execution, merchantId: string, request: RefundRequest): Promise<store.RefundRow> {
    let data = execution.recoveryData;
    if (execution.recoveryPoint === 'started') {
      data = await inTransaction(execution.client, async () => {
        const refund = await reserveRefund(execution.client, merchantId, request);
        await queueRecovery(execution.client, { merchantId, kind: 'refund', subjectId: refund.id }, recoveryGraceMs);
        await execution.saveRecoveryPoint('refund_reserved', { refund: refund.id });
        return { refund: refund.id };
      });
    }
    return this.sendRefund(execution.client, merchantId, String(data.refund));
  }

  /** Sends a reserved refund to the PSP (key derived from the refund) and applies the answer. */
  async sendRefund(client: pg.PoolClient, merchantId: string, refundId: string): Promise<store.RefundRow> {
    const refund = await store.selectRefund(client, merchantId, refundId);
    if (refund === undefined) throw new Error(`refund ${refundId} is missing`);
    // Settled already (completed or failed, perhaps by recovery): never sent again.
    if (refund.status !== 'pending') return refund;
    const charge = await store.selectCharge(client, merchantId, refund.chargeId);
    if (charge === undefined) throw new Error(`charge ${refund.chargeId} is missing`);
    const amountMinor = stripeAmountToMinor(refund.currency, Number(refund.amount));
    const done = await hastenOnUnknown(client, { merchantId, kind: 'refund', subjectId: refundId },
      () => followUp(() => this.connectors.get(this.options.connectorId).refund({
        reference: refund.id, idempotencyKey: `penny:${refund.id}`, pspReference: charge.pspReference ?? '',
        amountMinor,
      }), 'refund'));
    if (done === 'refused') return inTransaction(client, () => failRefund(client, merchantId, refundId));
    return inTransaction(client, () => this.applyRefund(client, merchantId, refundId, done.pspReference));
  }

  /** Applies a refund the PSP performed, once: its ledger entry, its status and its events. */
  async applyRefund(client: pg.PoolClient, merchantId: string, refundId: string, pspReference: string) {
    const refund = await store.selectRefund(client, merchantId, refundId);
    if (refund === undefined) throw new Error(`refund ${refundId} is missing`);
    await store.selectCharge(client, merchantId, refund.chargeId, { forUpdate: true });
    await resolveRecovery(client, { merchantId, kind: 'refund', subjectId: refundId });
    const current = await store.selectRefund(client, merchantId, refundId) ?? refund;
    if (current.status !== 'pending') return current;
    const amountMinor = stripeAmountToMinor(refund.currency, Number(refund.amount));
    const accounts = await this.paymentLedger.accountsFor(client, merchantId, refund.currency.toUpperCase());
    const entryId = await this.paymentLedger.refund(client, { accounts, refundId, amountMinor });
    const completed = await store.completeRefund(client, current, { pspReference, ledgerEntryId: entryId });
    await recordRefundEvent(client, 'refund.updated', completed, current);
    const refunded = await store.selectCharge(client, merchantId, refund.chargeId);
    if (refunded !== undefined) await recordChargeEvent(client, 'charge.refunded', refunded);
    return completed;
  }
}

/**
 * A follow-up call (capture, void, refund) on an authorization Penny knows. An unknown outcome, or
 * a PSP that still rate-limits after the retries, stops the request where its retry resumes,
 * re-sending the same idempotency key: 503, not stored. A definite refusal of a refund fails the
 * refund; of a capture or void, `release` gives the intent's finalization back (so it can be
 * captured, canceled or expire later) and the PSP's refusal is the answer.
 */
async function followUp<T>(call: () => Promise<T>, onRefused: 'refund' | { release: () => Promise<unknown> }):
Promise<T | 'refused'> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ConnectorUnknownOutcomeError) {
      throw new PennyError({
        code: 'psp_outcome_unknown', type: 'api_error', resumable: true, cause: error,
        message: 'The payment processor did not answer in time; retry this request with the same Idempotency-Key.',
      });
    }
    if (!(error instanceof ConnectorRefusedError)) throw error;
    if (error.status === 429) {
      throw new PennyError({
        code: 'psp_unavailable', type: 'api_error', resumable: true, cause: error,
        message: 'The payment processor is busy; retry this request with the same Idempotency-Key in a moment.',
      });
    }
    if (onRefused === 'refund') return 'refused';
    await onRefused.release();
    throw new PennyError({ code: 'psp_refused', cause: error,
      message: `The payment processor refused the request: ${error.message}` });
  }
}

/** A refund the PSP refused: it fails, and its amount is released back to the charge. */
export async function failRefund(client: pg.PoolClient, merchantId: string, refundId: string):
Promise<store.RefundRow> {
  const found = await store.selectRefund(client, merchantId, refundId);
  if (found === undefined) throw new Error(`refund ${refundId} is missing`);
  // The charge's lock first, as applyRefund takes it; then the refund as it is under that lock.
  const charge = await store.selectCharge(client, merchantId, found.chargeId, { forUpdate: true });
  if (charge === undefined) throw new Error(`charge ${found.chargeId} is missing`);
  await resolveRecovery(client, { merchantId, kind: 'refund', subjectId: refundId });
  const refund = await store.selectRefund(client, merchantId, refundId) ?? found;
  if (refund.status !== 'pending') return refund;
  await store.addChargeRefunded(client, charge, -refund.amount);
  const failed = await store.failRefund(client, refund);
  await recordRefundEvent(client, 'refund.failed', failed, refund);
  return failed;
}

/** What Penny knows of an authorization: the PSP's answer, a refusal, or nothing yet. */
export type AuthorizationResult =
  | AuthorizeOutput
  | { readonly outcome: 'declined'; readonly pspReference: null; readonly code: string; readonly declineCode: string;
      readonly message: string }
  | { readonly outcome: 'unknown'; readonly reason: string };

/** The first look-up of an unknown outcome waits this long; the recovery schedule continues from there. */
export const recoveryFirstDelayMs = 2000;
/** An attempt whose request has not applied an outcome after this long is looked up (the request died). */
export const recoveryGraceMs = 60_000;

/** The reason an expired authorization's intent is canceled with (Stripe's); merchants cannot give it. */
const expiryReason = 'automatic';

/** How much longer an authorization's ledger hold lasts than the authorization itself. */
export const authorizationHoldGraceMs = 86_400_000;

/** What a recovery job resolves: an authorization (its attempt), a capture or a cancel (its intent), a refund. */
interface RecoverySubject {
  readonly merchantId: string;
  readonly kind: 'authorize' | 'capture' | 'cancel' | 'refund';
  readonly subjectId: string;
}

function cancelSubject(merchantId: string, intentId: string): RecoverySubject & { kind: 'cancel' } {
  return { merchantId, kind: 'cancel', subjectId: intentId };
}

function capitalized(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

function authorizeSubject(attempt: store.AttemptRow): RecoverySubject {
  return { merchantId: attempt.merchantId, kind: 'authorize', subjectId: attempt.id };
}

/** Recorded with the claim, in its transaction (deferred to its end: nothing reads it there). */
async function queueRecovery(client: pg.PoolClient, subject: RecoverySubject, delayMs: number): Promise<void> {
  // created_at by Penny's clock: the PSP's key retention is measured from it.
  // A subject's earlier job, finished (a capture given back, then asked again), is opened anew.
  const values = [subject.merchantId, newId('rcv'), subject.kind, subject.subjectId,
    new Date(nowMs() + delayMs).toISOString(), new Date(nowMs()).toISOString()];
  await writeAtCommit(client, `recovery_job:${subject.kind}:${subject.subjectId}`, () => ({
    text: `INSERT INTO recovery_jobs (merchant_id, id, kind, subject_id, next_run_at, created_at)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (kind, subject_id) DO UPDATE SET status = 'pending', run_count = 0, last_error = NULL,
       resolved_at = NULL, next_run_at = excluded.next_run_at, created_at = excluded.created_at
     WHERE recovery_jobs.status <> 'pending'`,
    values,
  }));
}

/** The outcome is known to be unknown: the first look-up comes soon, not after the grace. */
async function hastenRecovery(client: pg.PoolClient, subject: RecoverySubject): Promise<void> {
  await client.query(named(`UPDATE recovery_jobs SET next_run_at = least(next_run_at, $4)
     WHERE kind = $3 AND subject_id = $1 AND merchant_id = $2 AND status = 'pending'`),
  [subject.subjectId, subject.merchantId, subject.kind, new Date(nowMs() + recoveryFirstDelayMs).toISOString()]);
}

/** A follow-up whose outcome is unknown: its recovery job runs soon, whether or not the client retries. */
async function hastenOnUnknown<T>(client: pg.PoolClient, subject: RecoverySubject, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof PennyError && error.resumable) await hastenRecovery(client, subject);
    throw error;
  }
}

/** The outcome is applied: the recovery job has nothing left to do. */
async function resolveRecovery(client: pg.PoolClient, subject: RecoverySubject): Promise<void> {
  await client.query(named(`UPDATE recovery_jobs SET status = 'resolved', resolved_at = $4
     WHERE kind = $3 AND subject_id = $1 AND merchant_id = $2 AND status = 'pending'`),
  [subject.subjectId, subject.merchantId, subject.kind, new Date(nowMs()).toISOString()]);
}

export interface RefundRequest {
  readonly paymentIntent: string | undefined;
  readonly charge: string | undefined;
  readonly amount: bigint | undefined;
  readonly reason: string | null;
  readonly metadata: Record<string, string>;
}

/** Under the charge's row lock: concurrent refunds are serialized and never exceed what was captured. */
async function reserveRefund(client: pg.PoolClient, merchantId: string, request: RefundRequest) {
  const chargeId = request.charge ?? (await mustIntent(client, merchantId, request.paymentIntent ?? '')).latestCharge;
  const charge = chargeId === null
    ? undefined
    : await store.selectCharge(client, merchantId, chargeId, { forUpdate: true });
  if (charge === undefined) {
    throw new PennyError({ code: 'resource_missing', param: request.charge === undefined ? 'payment_intent' : 'charge',
      message: 'There is no charge to refund.' });
  }
  const remaining = charge.amountCaptured - charge.amountRefunded;
  if (!charge.captured || remaining === 0n) {
    throw new PennyError({
      code: charge.captured ? 'charge_already_refunded' : 'charge_not_refundable',
      message: charge.captured ? `Charge ${charge.id} has already been refunded.`
        : `Charge ${charge.id} has not been captured; cancel the PaymentIntent instead.`,
    });
  }
  const amount = request.amount ?? remaining;
  if (amount > remaining) {
    throw new PennyError({
      code: 'amount_too_large', param: 'amount', judgedOnState: true,
      message: `Refund amount (${amount}) is greater than the unrefunded amount on the charge (${remaining}).`,
    });
  }
  await store.addChargeRefunded(client, charge, amount);
  const refund = await store.insertRefund(client, {
    merchantId, id: newId('re'), chargeId: charge.id, paymentIntentId: charge.paymentIntentId, amount,
    currency: charge.currency, reason: request.reason, metadata: request.metadata, paymentMethod: charge.paymentMethod,
  });
  await recordRefundEvent(client, 'refund.created', refund);
  return refund;
}

/** Stripe's last_payment_error when the customer fails 3-D Secure: a request error, with no charge. */
function authenticationFailure(paymentMethod: string | null): Record<string, unknown> {
  return {
    type: 'invalid_request_error', code: 'payment_intent_authentication_failure',
    message: 'The provided PaymentMethod has failed authentication. You can provide payment_method_data or a new '
      + 'PaymentMethod to attempt to fulfill this PaymentIntent again.',
    payment_method: paymentMethod === null ? null : { id: paymentMethod, object: 'payment_method', type: 'card' },
  };
}

/** The attempt is the intent's newest, still awaiting its challenge, on the intent's payment method. */
async function assertCurrentChallenge(client: pg.PoolClient, intent: store.PaymentIntentRow, attemptId: string) {
  const latest = await store.selectLatestAttempt(client, intent.merchantId, intent.id);
  const current = intent.status === 'requires_action' && latest?.id === attemptId
    && latest.status === 'requires_action' && latest.paymentMethod === intent.paymentMethod;
  if (!current) {
    throw new PennyError({
      code: 'payment_intent_unexpected_state',
      message: 'This authentication is no longer the PaymentIntent\'s current one.',
      details: { payment_intent: presentPaymentIntent(intent) },
    });
  }
}

/**
 * Every change of an intent goes through here, so each is checked against the one transition
 * table and writes its event in the same transaction.
 */
async function moveIntent(
  client: pg.PoolClient,
  before: store.PaymentIntentRow,
  change: Parameters<typeof store.updatePaymentIntent>[2],
): Promise<store.PaymentIntentRow> {
  if (change.status !== before.status) assertTransition(before.status, change.status);
  const after = await store.updatePaymentIntent(client, before, change);
  await recordIntentEvent(client, before, after);
  return after;
}

/**
 * A claim's own PSP idempotency key, recorded with it: the same for every re-send of this claim
 * (a resumed request, recovery), and new for the next claim, so a PSP that keeps answers by key
 * never answers a new capture or cancel with an old claim's refusal.
 */
function newFinalizationKey(intent: store.PaymentIntentRow, kind: 'capture' | 'cancel'): string {
  return `penny:${intent.latestCharge ?? intent.id}:${pspOperationOf(kind)}:${newId('fin')}`;
}

/** The key of a claim's call: its recorded key, or for claims made before keys were recorded, the charge's. */
function finalizationKey(claim: store.FinalizationRow, chargeId: string, kind: 'capture' | 'cancel'): string {
  return claim.pspIdempotencyKey ?? `penny:${chargeId}:${pspOperationOf(kind)}`;
}

/** The claim key a request saved with its recovery point; absent for points saved before keys were recorded. */
function savedKey(data: Record<string, unknown>): string | undefined {
  return typeof data.key === 'string' ? data.key : undefined;
}

function pspOperationOf(kind: 'capture' | 'cancel'): 'capture' | 'void' {
  return kind === 'capture' ? 'capture' : 'void';
}

/** Gives a claimed finalization back, in the caller's transaction. */
async function releaseFinalization(client: pg.PoolClient, intent: Pick<store.PaymentIntentRow, 'merchantId' | 'id'>,
  kind: 'capture' | 'cancel'): Promise<void> {
  await store.deleteFinalization(client, intent, kind);
}

/** Claims the intent's finalization for this request; returns the claim's PSP idempotency key. */
async function claimFinalization(client: pg.PoolClient, intent: store.PaymentIntentRow, kind: 'capture' | 'cancel',
  amount: bigint | null, cancellationReason: string | null = null): Promise<string> {
  const pspIdempotencyKey = newFinalizationKey(intent, kind);
  const claimed = await store.insertFinalization(client, intent,
    { kind, amount, cancellationReason, pspIdempotencyKey });
  if (!claimed.won) {
    throw new PennyError({
      code: 'payment_intent_unexpected_state',
      message: `This PaymentIntent is already being ${claimed.kind === 'capture' ? 'captured' : 'canceled'}.`,
      details: { payment_intent: presentPaymentIntent(intent) },
    });
  }
  return pspIdempotencyKey;
}

async function mustIntent(client: pg.PoolClient, merchantId: string, id: string, forUpdate = false) {
  const intent = await store.selectPaymentIntent(client, merchantId, id, { forUpdate });
  if (intent === undefined) {
    throw new PennyError({ code: 'resource_missing', param: 'intent', message: `No such payment_intent: '${id}'` });
  }
  return intent;
}

async function mustCharge(client: pg.PoolClient, intent: store.PaymentIntentRow): Promise<store.ChargeRow> {
  const charge = intent.latestCharge === null ? undefined : await store.selectCharge(client, intent.merchantId,
    intent.latestCharge);
  if (charge === undefined) throw new Error(`PaymentIntent ${intent.id} has no charge to act on`);
  return charge;
}

/** What a confirmation answers: the intent, or for a declined attempt, the decline. */
function confirmationAnswer(intent: store.PaymentIntentRow): { status: number; body: unknown } | PennyError {
  if (intent.status === 'requires_payment_method' && intent.lastPaymentError !== null) return declineError(intent);
  return { status: 200, body: presentPaymentIntent(intent) };
}

/** The answer to a confirmation, first run or resumed: a declined attempt is answered as a decline. */
function answerApplied(intent: store.PaymentIntentRow): store.PaymentIntentRow {
  if (intent.status === 'requires_payment_method' && intent.lastPaymentError !== null) throw declineError(intent);
  return intent;
}

function declineError(intent: store.PaymentIntentRow): PennyError {
  const error = intent.lastPaymentError as { code: string; decline_code: string; message: string; charge: string };
  return new PennyError({
    code: error.code,
    type: 'card_error',
    message: error.message,
    details: { decline_code: error.decline_code, charge: error.charge, payment_intent: presentPaymentIntent(intent) },
  });
}
