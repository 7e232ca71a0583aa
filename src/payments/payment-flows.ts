import type pg from 'pg';
import {
  ConnectorRefusedError, ConnectorUnknownOutcomeError, type AuthorizeOutput, type Connector, type ConnectorRegistry,
  type FollowUpOutput, type PspOperation,
} from '../connectors/connector.js';
import { authorizationFromRecord } from '../connectors/decline-codes.js';
import { nowMs } from '../clock.js';
import { limits } from '../config.js';
import { inTransaction } from '../db/pool.js';
import { isErrorCode } from '../error-codes.js';
import { PennyError } from '../errors.js';
import { failpoint } from '../failpoints.js';
import type { Execution } from '../idempotency/idempotency-service.js';
import { newId } from '../ids.js';
import { selectMerchantPricing } from '../merchants/merchant-store.js';
import { stripeAmountToMinor } from '../money/stripe-currency.js';
import type {
  CancelPaymentIntentCommand, CapturePaymentIntentCommand, ConfirmPaymentIntentCommand, ConnectCommand,
  CreateRefundCommand,
} from './payment-commands.js';
import { openCase } from './payment-cases.js';
import { recordChargeEvent, recordIntentEvent, recordRefundEvent } from './payment-events.js';
import { feeMinor } from '../money/fee.js';
import type { PaymentLedger } from './payment-ledger.js';
import { assertSplitFits, destinationSplit } from './destination-charges.js';
import { presentPaymentIntent } from './payment-presenter.js';
import { assertOperationAllowed, assertTransition, dependsOnFinalization } from './payment-state.js';
import { readRecoveryPoint, saveRecoveryPoint, type PaymentRecoveryPoint } from './payment-recovery-points.js';
import * as store from './payment-store.js';
import * as recoveryStore from './recovery-store.js';
import type { RecoverySubject } from './recovery-store.js';

/**
 * The operations that move money: confirm, capture, cancel and refund. Each has the same shape
 * (reference/style.md, rule 24): in one transaction, lock the intent, decide and record the
 * attempt with a recovery point; call the PSP outside any transaction with Penny's own idempotency
 * key; in a second transaction, apply the outcome with its ledger entries. A request that dies
 * part-way is resumed by its retry from the last recovery point, and the PSP call is repeated
 * with the same key, so the customer is charged once.
 *
 * One connector per charge: a new attempt goes to the connector new payments are routed to
 * (`connectorId`); everything after it (captures, voids, refunds, look-ups, recovery) goes to the
 * connector the attempt, charge or refund recorded. A connector's declared capabilities are
 * checked before anything is recorded or sent.
 */
export interface PaymentFlowOptions {
  /** Where new payments are routed, unless the merchant's own routing says otherwise (`routeOf`). */
  readonly connectorId: string;
  /**
   * The connector the merchant's new payments are routed to (registered by the time it answers),
   * read in the confirming transaction; undefined: `connectorId`.
   */
  readonly routeOf?: (db: pg.PoolClient, merchantId: string) => Promise<string | undefined>;
  readonly authorizationExpiryDays: number;
  /** Penny's own base URL, as customers' browsers reach it: the 3-D Secure page is served there. */
  readonly publicUrl: () => string;
}

/** A PaymentIntent as its merchant names it. */
export interface IntentKey {
  readonly merchantId: string;
  readonly id: string;
}

export interface ConfirmRequest extends IntentKey, ConfirmPaymentIntentCommand {
  /**
   * The attempt whose 3-D Secure challenge the customer completed (the authentication page); the
   * confirmation goes ahead only while that attempt is still the intent's current challenge,
   * checked under the row lock.
   */
  readonly authenticating?: string;
}

export class PaymentFlows {
  constructor(
    private readonly connectors: ConnectorRegistry,
    private readonly paymentLedger: PaymentLedger,
    private readonly options: PaymentFlowOptions,
  ) {}

  /**
   * A destination charge names live connected accounts of the platform (404 otherwise, naming the
   * field), locked in the creating transaction so a racing delete sees the charge and refuses.
   */
  async lockConnectAccounts(client: pg.PoolClient, merchantId: string, connect: ConnectCommand): Promise<void> {
    const accounts = [[connect.transferDestination, 'transfer_data[destination]'],
      [connect.onBehalfOf === connect.transferDestination ? undefined : connect.onBehalfOf, 'on_behalf_of']] as const;
    for (const [accountId, param] of accounts) {
      if (accountId === undefined) continue;
      await this.paymentLedger.destinations.lockConnectedAccount(client, { merchantId, accountId }, param);
    }
  }

  async confirm(execution: Execution, request: ConfirmRequest) {
    const resumed = readRecoveryPoint(execution);
    if (resumed.point === 'attempt_recorded') {
      // A retry carries the PSP's fields again (its body is the first's): they were never stored.
      return this.confirmRecorded(execution, { merchantId: request.merchantId, attemptId: resumed.attempt,
        paymentMethodData: request.paymentMethodData });
    }
    assertStarted(resumed);
    const recorded = await inTransaction(execution.client, async () => {
      const intent = await lockIntent(execution.client, request);
      // An authenticated re-authorization goes where the challenge came from, whatever the routing says now.
      const challenged = request.authenticating === undefined ? undefined
        : await assertCurrentChallenge(execution.client, intent, request.authenticating);
      return this.recordAttempt(execution, intent, { ...request, connector: challenged?.connector });
    });
    return this.confirmRecorded(execution, { merchantId: request.merchantId, attemptId: recorded.attempt.id,
      known: recorded, paymentMethodData: request.paymentMethodData });
  }

  /**
   * The customer failed the 3-D Secure challenge (the test page's Fail). Under the intent's row
   * lock and for its current challenge only, as completing is, the attempt records the failure
   * and the intent returns to requires_payment_method with Stripe's
   * payment_intent_authentication_failure (so payment_intent.payment_failed is emitted). A
   * requires_action attempt holds no money, so nothing is booked; the PSP is not called, and its
   * authorization stays requires_action, never captured.
   */
  async failAuthentication(client: pg.PoolClient, attempt: Pick<store.AttemptRow, 'merchantId' | 'paymentIntentId' | 'id'>):
  Promise<store.PaymentIntentRow> {
    return inTransaction(client, async () => {
      const intent = await lockIntent(client, { merchantId: attempt.merchantId, id: attempt.paymentIntentId });
      await assertCurrentChallenge(client, intent, attempt.id);
      await store.updateAttempt(client, attempt,
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
  async confirmRecorded(execution: Execution, recorded: { merchantId: string; attemptId: string;
    known?: { attempt: store.AttemptRow; intent: store.PaymentIntentRow };
    paymentMethodData?: Readonly<Record<string, string>> | undefined }) {
    const attempt = recorded.known?.attempt
      ?? await store.selectAttempt(execution.client, recorded.merchantId, recorded.attemptId);
    if (attempt === undefined) throw new Error(`attempt ${recorded.attemptId} is missing`);
    const intent = recorded.known?.intent
      ?? await mustIntent(execution.client, { merchantId: attempt.merchantId, id: attempt.paymentIntentId });
    failpoint('before_psp_call');
    // A resumed request whose attempt was resolved meanwhile (a webhook, or the recovery worker
    // concluding that the PSP never performed it) must not send it again: the answer is what the
    // attempt became. Found by penny simulate: the re-sent authorization charged a card Penny had
    // already declined.
    const outcome = isOpenAttempt(attempt.status)
      ? await this.sendAuthorization(attempt, intent, recorded.paymentMethodData)
      : { outcome: 'unknown' as const, reason: 'the attempt was resolved before this request resumed' };
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
  async sendAuthorization(attempt: store.AttemptRow, intent: store.PaymentIntentRow,
    paymentMethodData?: Readonly<Record<string, string>>): Promise<AuthorizationResult> {
    const connector = this.connectors.get(attempt.connector);
    try {
      return await connector.authorize({
        ...(paymentMethodData === undefined ? {} : { paymentMethodData }),
        reference: attempt.id,
        idempotencyKey: attempt.pspIdempotencyKey,
        amountMinor: stripeAmountToMinor(intent.currency, intent.amount),
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
    const intent = await lockIntent(client, { merchantId: attempt.merchantId, id: attempt.paymentIntentId });
    const current = await store.selectAttempt(client, attempt.merchantId, attempt.id);
    // Resolved already (by the reply, a webhook or a look-up): applied once, left as it is.
    if (current === undefined || !isOpenAttempt(current.status)) return intent;
    if (outcome.outcome === 'unknown' || outcome.outcome === 'pending') {
      if (current.status === 'manual_review') return intent;
      await store.updateAttempt(client, attempt, {
        status: 'unknown', pspReference: outcome.outcome === 'pending' ? outcome.pspReference : null, declineCode: null,
      });
      if (current.status === 'started') await hastenRecovery(client, authorizeSubject(attempt));
      return intent;
    }
    return this.applyDecided(client, { intent, attempt, returnUrl: current.returnUrl }, outcome);
  }

  /** A decided authorization outcome recorded on its attempt and the intent moved (the caller holds the lock). */
  private async applyDecided(client: pg.PoolClient,
    on: { intent: store.PaymentIntentRow; attempt: store.AttemptRow; returnUrl: string | null },
    outcome: Exclude<AuthorizationResult, { outcome: 'unknown' | 'pending' }>): Promise<store.PaymentIntentRow> {
    const { intent, attempt } = on;
    await resolveRecovery(client, authorizeSubject(attempt));
    await store.updateAttempt(client, attempt, {
      status: outcome.outcome, pspReference: outcome.pspReference,
      declineCode: outcome.outcome === 'declined' ? outcome.declineCode : null,
    });
    switch (outcome.outcome) {
      case 'declined':
        return this.confirmDeclined(client, { intent, attempt }, outcome);
      case 'requires_action':
        // The sandbox has no page of its own (its URL is a placeholder), so Penny serves its
        // test-mode authentication page (authentication-routes.ts): opening it completes the
        // authentication and sends the customer to return_url. A PSP that serves its own page
        // (Adyen's redirect, `pspAuthenticationPage`) gives it here.
        return moveIntent(client, intent, {
          status: 'requires_action',
          nextAction: { type: 'redirect_to_url', redirect_to_url: {
            url: this.connectors.get(attempt.connector).capabilities.pspAuthenticationPage === true
              ? outcome.redirectUrl
              : `${this.options.publicUrl()}/v1/payment_intents/${intent.id}/authenticate?attempt=${attempt.id}`,
            return_url: on.returnUrl,
          } },
        });
      case 'authorized':
      case 'captured':
        return this.confirmSucceeded(client, { intent, attempt }, outcome);
    }
  }

  /**
   * The customer is back from the PSP's own authentication page (Adyen's 3-D Secure redirect) with
   * what it handed back: the PSP is told (`authenticationResult`, outside any transaction), and
   * its answer resolves the attempt by `resolveChallenge`, once. A refusal of the details (forged or
   * stale ones) changes nothing; an attempt resolved already (a second return, or the PSP's
   * notification first) is not sent again.
   */
  async completePspAuthentication(client: pg.PoolClient, attempt: store.AttemptRow,
    details: Readonly<Record<string, string>>): Promise<store.PaymentIntentRow> {
    const connector = this.connectors.get(attempt.connector);
    const intent = await mustIntent(client, { merchantId: attempt.merchantId, id: attempt.paymentIntentId });
    if (connector.authenticationResult === undefined || attempt.status !== 'requires_action'
      || intent.status !== 'requires_action') {
      return intent;
    }
    let outcome: AuthorizationResult;
    try {
      outcome = await connector.authenticationResult({ reference: attempt.id,
        idempotencyKey: `${attempt.pspIdempotencyKey}-details`, details, capture: intent.captureMethod !== 'manual' });
    } catch (error) {
      if (error instanceof ConnectorRefusedError) return intent;
      if (!(error instanceof ConnectorUnknownOutcomeError)) throw error;
      outcome = { outcome: 'unknown', reason: error.reason };
    }
    return await inTransaction(client, () => this.resolveChallenge(client, attempt, outcome)) ?? intent;
  }

  /**
   * The outcome of a challenge the PSP hosted (its answer to the customer's return, or its
   * authorization event), applied once under the intent's row lock: only while the attempt is the
   * intent's current challenge (undefined otherwise, nothing changed). Decided: as any
   * authorization's outcome. Unknown or pending: the intent processing and the attempt's recovery
   * queued, until the PSP's notification or a look-up decides. Another step asked: left as it is.
   */
  async resolveChallenge(client: pg.PoolClient, attempt: Pick<store.AttemptRow, 'merchantId' | 'paymentIntentId' | 'id'>,
    outcome: AuthorizationResult): Promise<store.PaymentIntentRow | undefined> {
    const intent = await lockIntent(client, { merchantId: attempt.merchantId, id: attempt.paymentIntentId });
    const latest = await store.selectLatestAttempt(client, intent.merchantId, intent.id);
    if (intent.status !== 'requires_action' || latest?.id !== attempt.id || latest.status !== 'requires_action'
      || this.connectors.get(latest.connector).capabilities.pspAuthenticationPage !== true) {
      return undefined;
    }
    if (outcome.outcome === 'requires_action') return intent;
    if (outcome.outcome === 'unknown' || outcome.outcome === 'pending') {
      await store.updateAttempt(client, latest, { status: 'unknown',
        pspReference: outcome.outcome === 'pending' ? outcome.pspReference : latest.pspReference, declineCode: null });
      await queueRecovery(client, { ...authorizeSubject(latest), connector: latest.connector });
      return moveIntent(client, intent, { status: 'processing', nextAction: null });
    }
    return this.applyDecided(client, { intent, attempt: latest, returnUrl: latest.returnUrl }, outcome);
  }

  /**
   * Records a confirmation's attempt on an intent the caller's transaction has locked (or just
   * created), moving it to processing, with the recovery point a resumed request continues from.
   * The attempt goes to the connector new payments are routed to (or the one `request.connector`
   * names: a completed challenge's), if it can do what the intent asks.
   */
  async recordAttempt(execution: Execution, intent: store.PaymentIntentRow,
    request: ConfirmPaymentIntentCommand & { connector?: string | undefined }) {
    assertOperationAllowed(intent.status, 'confirm', presentPaymentIntent(intent));
    const paymentMethod = request.paymentMethod ?? intent.paymentMethod ?? undefined;
    if (paymentMethod === undefined) {
      throw new PennyError({
        code: 'payment_intent_unexpected_state', param: 'payment_method',
        message: 'You cannot confirm this PaymentIntent because it\'s missing a payment method.',
        details: { payment_intent: presentPaymentIntent(intent) },
      });
    }
    // An intent updated before updates checked its split could otherwise be charged and never booked.
    assertSplitFits(intent.connect, intent, 'amount');
    const connector = request.connector ?? await this.options.routeOf?.(execution.client, intent.merchantId)
      ?? this.options.connectorId;
    if (intent.captureMethod === 'manual') assertCapability(this.connectors.get(connector), 'manualCapture');
    const attempt = await store.insertAttempt(execution.client, {
      merchantId: intent.merchantId, id: newId('pa'), paymentIntentId: intent.id,
      connector, paymentMethod,
      authenticated: intent.status === 'requires_action' && intent.paymentMethod === paymentMethod,
      returnUrl: request.returnUrl,
    });
    // Recorded with the attempt, so an attempt whose request dies (and is never retried) is still resolved.
    await queueRecovery(execution.client, { ...authorizeSubject(attempt), connector: attempt.connector });
    const processing = await moveIntent(execution.client, intent, { status: 'processing', paymentMethod });
    await saveRecoveryPoint(execution,
      { point: 'attempt_recorded', attempt: attempt.id, authenticated: attempt.authenticated });
    return { attempt, intent: processing };
  }

  private async confirmDeclined(client: pg.PoolClient,
    on: { intent: store.PaymentIntentRow; attempt: store.AttemptRow },
    outcome: { code: string; declineCode: string; message: string; pspReference: string | null }):
  Promise<store.PaymentIntentRow> {
    const { intent, attempt } = on;
    const charge = await store.insertCharge(client, {
      merchantId: intent.merchantId, id: newId('ch'), paymentIntentId: intent.id, attemptId: attempt.id,
      connector: attempt.connector,
      amount: intent.amount, currency: intent.currency, amountCaptured: 0n, status: 'failed',
      paymentMethod: attempt.paymentMethod, failureCode: outcome.code, failureMessage: outcome.message,
      outcome: { network_status: 'declined_by_network', reason: outcome.declineCode, type: 'issuer_declined',
        seller_message: 'The bank did not return any further details with this decline.', risk_level: 'normal' },
      pspReference: outcome.pspReference, authorizationEntryId: null, captureBefore: null,
      fundsAvailableImmediately: false, connect: intent.connect, transferId: null, applicationFeeId: null,
    });
    await recordChargeEvent(client, { type: 'charge.failed', charge });
    return moveIntent(client, intent, {
      status: 'requires_payment_method', latestCharge: charge.id, nextAction: null,
      lastPaymentError: {
        type: 'card_error', code: outcome.code, decline_code: outcome.declineCode, message: outcome.message,
        charge: charge.id, payment_method: { id: attempt.paymentMethod, object: 'payment_method', type: 'card' },
      },
    });
  }

  private async confirmSucceeded(client: pg.PoolClient,
    on: { intent: store.PaymentIntentRow; attempt: store.AttemptRow },
    outcome: { outcome: 'authorized' | 'captured'; pspReference: string; availableImmediately?: boolean }):
  Promise<store.PaymentIntentRow> {
    const { intent, attempt } = on;
    const fundsAvailableImmediately = outcome.availableImmediately === true;
    const chargeId = newId('ch');
    const amountMinor = stripeAmountToMinor(intent.currency, intent.amount);
    const accounts = await this.paymentLedger.accountsFor(client, intent.merchantId, intent.currency.toUpperCase());
    const captured = outcome.outcome === 'captured';
    let authorizationEntryId: string | null = null;
    let captureBefore: string | null = null;
    let made: { transferId: string; applicationFeeId: string | null } | null = null;
    if (!captured) {
      const captureBeforeMs = nowMs() + this.options.authorizationExpiryDays * 86_400_000;
      captureBefore = new Date(captureBeforeMs).toISOString();
      // The hold outlives the authorization by a grace, so Penny's expiry (which voids at the PSP
      // first) always comes before the ledger's own; the ledger's is the backstop.
      const expiresAt = new Date(captureBeforeMs + authorizationHoldGraceMs).toISOString();
      authorizationEntryId = await this.paymentLedger.authorize(client, { accounts, chargeId, amountMinor, expiresAt });
    } else {
      made = await this.paymentLedger.capture(client, {
        merchantId: intent.merchantId, currency: intent.currency.toUpperCase(), fundsAvailableImmediately,
        accounts, chargeId, paymentIntentId: intent.id, amountMinor, authorizationEntryId: null,
        settlement: { connectorId: attempt.connector, attemptId: attempt.id },
        split: destinationSplit(intent.connect, intent.currency),
        ...(await this.fees(client, intent, { capturedMinor: amountMinor, connectorId: attempt.connector })),
      });
    }
    const charge = await store.insertCharge(client, {
      merchantId: intent.merchantId, id: chargeId, paymentIntentId: intent.id, attemptId: attempt.id,
      connector: attempt.connector,
      amount: intent.amount, currency: intent.currency, amountCaptured: captured ? intent.amount : 0n,
      status: 'succeeded', paymentMethod: attempt.paymentMethod, failureCode: null, failureMessage: null,
      outcome: { network_status: 'approved_by_network', reason: null, type: 'authorized',
        seller_message: 'Payment complete.', risk_level: 'normal' },
      pspReference: outcome.pspReference, authorizationEntryId, captureBefore, fundsAvailableImmediately,
      connect: intent.connect, transferId: made?.transferId ?? null, applicationFeeId: made?.applicationFeeId ?? null,
    });
    await recordChargeEvent(client, { type: 'charge.succeeded', charge });
    return moveIntent(client, intent, {
      status: captured ? 'succeeded' : 'requires_capture', latestCharge: charge.id, nextAction: null,
      lastPaymentError: null,
      amountCapturable: captured ? 0n : intent.amount,
      amountReceived: captured ? intent.amount : 0n,
    });
  }

  /** Penny's fee (the merchant's pricing) and the PSP's expected fee (its connector's price list). */
  private async fees(client: pg.PoolClient, intent: store.PaymentIntentRow,
    captured: { capturedMinor: bigint; connectorId: string }) {
    const pricing = await selectMerchantPricing(client, intent.merchantId);
    const connector = this.connectors.get(captured.connectorId);
    return {
      pennyFeeMinor: feeMinor(captured.capturedMinor, pricing),
      pspFeeMinor: feeMinor(captured.capturedMinor, connector.priceList),
    };
  }

  async capture(execution: Execution, request: IntentKey & CapturePaymentIntentCommand) {
    const resumed = readRecoveryPoint(execution);
    if (resumed.point === 'capture_requested') {
      return this.sendCapture(execution.client, { ...request, amount: resumed.amount, claimKey: resumed.key });
    }
    assertStarted(resumed);
    const claimed = await inTransaction(execution.client, async () => {
      const intent = await lockIntent(execution.client, request);
      assertOperationAllowed(intent.status, 'capture', presentPaymentIntent(intent));
      const amount = request.amountToCapture ?? intent.amountCapturable;
      if (amount > intent.amountCapturable) {
        throw new PennyError({
          code: 'amount_too_large', param: 'amount_to_capture', judgedOnState: true,
          message: `The amount to capture (${amount}) is more than the amount capturable (${intent.amountCapturable}).`,
        });
      }
      const charge = await mustCharge(execution.client, intent);
      if (amount < intent.amountCapturable) assertCapability(this.connectors.get(charge.connector), 'partialCapture');
      assertSplitWithin(charge.connect, amount);
      // Refused before the claim: a claim of an amount the PSP call cannot carry would stay open.
      stripeAmountToMinor(intent.currency, amount, { param: 'amount_to_capture' });
      const key = await claimFinalization(execution.client, intent, { kind: 'capture', amount, cancellationReason: null });
      await queueRecovery(execution.client, { merchantId: request.merchantId, kind: 'capture', subjectId: intent.id,
        connector: charge.connector });
      await saveRecoveryPoint(execution, { point: 'capture_requested', amount, key });
      return { amount, key };
    });
    return this.sendCapture(execution.client, { ...request, amount: claimed.amount, claimKey: claimed.key });
  }

  /**
   * Sends a claimed capture to the charge's connector (under its claim's key, the same every
   * time) and applies it: the request's own step, and what the recovery worker re-sends.
   */
  async sendCapture(client: pg.PoolClient, capture: IntentKey & { amount: bigint; claimKey: string | undefined }) {
    return this.sendFinalization(client, {
      subject: { merchantId: capture.merchantId, kind: 'capture', subjectId: capture.id },
      claimKey: capture.claimKey,
      call: (intent, charge, key) => this.connectors.get(charge.connector).capture({
        reference: charge.id, idempotencyKey: key, pspReference: charge.pspReference ?? '',
        amountMinor: stripeAmountToMinor(intent.currency, capture.amount), currency: intent.currency.toUpperCase(),
      }),
      apply: () => this.applyCapture(client, capture),
    });
  }

  /**
   * A claimed capture or cancel, sent and applied. Settled already (applied, or the claim given
   * back by recovery): never sent again. Only the claim the caller made (`claimKey`, its PSP key)
   * is sent: a stale retry of a claim given back never sends a later claim's key with its own
   * amount. A refusal gives the claim back; an unknown outcome hastens the claim's recovery job
   * and stops the request where its retry resumes.
   */
  private async sendFinalization(client: pg.PoolClient, finalization: {
    subject: RecoverySubject & { kind: 'capture' | 'cancel' };
    claimKey: string | undefined;
    call: (intent: store.PaymentIntentRow, charge: store.ChargeRow, idempotencyKey: string) => Promise<FollowUpOutput>;
    apply: () => Promise<store.PaymentIntentRow>;
  }): Promise<store.PaymentIntentRow> {
    const { subject, claimKey } = finalization;
    const intent = await mustIntent(client, { merchantId: subject.merchantId, id: subject.subjectId });
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
    const answer = await hastenOnUnknown(client, subject, () => followUp(
      () => finalization.call(intent, charge, idempotencyKey), { release: () => this.giveBack(client, subject) }));
    if (answer !== 'refused' && answer.outcome === 'received') {
      return this.awaitFinalization(client, subject, answer.pspReference);
    }
    return inTransaction(client, finalization.apply);
  }

  /**
   * The PSP took the capture or cancel and tells its outcome later (Adyen's `received`): nothing is
   * booked; the intent shows processing, as for any outcome Penny does not know yet, until the
   * PSP's report (a webhook, or recovery's look-up) applies it or gives the claim back.
   */
  private async awaitFinalization(client: pg.PoolClient, subject: RecoverySubject & { kind: 'capture' | 'cancel' },
    pspReference: string): Promise<store.PaymentIntentRow> {
    return inTransaction(client, () => this.awaitFinalizationLocked(client, subject, pspReference));
  }

  /**
   * The claim keeps the PSP reference of the request the PSP took: only the report naming it
   * (CAPTURE, CAPTURE_FAILED, CANCELLATION of that request) settles the claim, never an earlier
   * request's report for the same charge.
   */
  private async awaitFinalizationLocked(client: pg.PoolClient,
    subject: RecoverySubject & { kind: 'capture' | 'cancel' }, pspReference: string): Promise<store.PaymentIntentRow> {
    const intent = await lockIntent(client, { merchantId: subject.merchantId, id: subject.subjectId });
    if (intent.status !== 'requires_capture' && intent.status !== 'processing') return intent;
    const claim = await store.selectFinalization(client, intent);
    if (claim?.kind !== subject.kind) return intent;
    if (pspReference !== '') await store.updateFinalizationPspReference(client, intent, { kind: subject.kind, pspReference });
    return intent.status === 'processing' ? intent : moveIntent(client, intent, { status: 'processing' });
  }

  /**
   * The PSP reports that a capture or cancel it had taken failed (Adyen's CAPTURE_FAILED, or
   * CAPTURE or CANCELLATION with success false): the claim is given back and the intent returns to
   * requires_capture, to be captured, canceled or expire; nothing was booked.
   */
  async failFinalization(client: pg.PoolClient, subject: RecoverySubject & { kind: 'capture' | 'cancel' }):
  Promise<store.PaymentIntentRow> {
    const key = { merchantId: subject.merchantId, id: subject.subjectId };
    const intent = await lockIntent(client, key);
    await store.deleteFinalization(client, key, subject.kind);
    await resolveRecovery(client, subject);
    return intent.status === 'processing' ? moveIntent(client, intent, { status: 'requires_capture' }) : intent;
  }

  /** The PSP never performed a claimed capture or cancel: the claim is given back to the intent. */
  async giveBack(client: pg.PoolClient, subject: RecoverySubject & { kind: 'capture' | 'cancel' }): Promise<void> {
    await inTransaction(client, () => this.failFinalization(client, subject));
  }

  /** Applies a capture the PSP performed, once, under the intent's lock. */
  async applyCapture(client: pg.PoolClient, capture: IntentKey & { amount: bigint }) {
    const intent = await lockIntent(client, capture);
    await resolveRecovery(client, { merchantId: capture.merchantId, kind: 'capture', subjectId: capture.id });
    if (intent.status === 'succeeded') return intent;
    const charge = await mustCharge(client, intent);
    const amountMinor = stripeAmountToMinor(intent.currency, capture.amount);
    const accounts = await this.paymentLedger.accountsFor(client, capture.merchantId, intent.currency.toUpperCase());
    const made = await this.paymentLedger.capture(client, {
      merchantId: capture.merchantId, currency: intent.currency.toUpperCase(),
      fundsAvailableImmediately: charge.fundsAvailableImmediately, accounts, chargeId: charge.id,
      paymentIntentId: intent.id, amountMinor, authorizationEntryId: charge.authorizationEntryId,
      settlement: { connectorId: charge.connector, attemptId: charge.attemptId },
      split: destinationSplit(charge.connect, intent.currency),
      ...(await this.fees(client, intent, { capturedMinor: amountMinor, connectorId: charge.connector })),
    });
    const captured = await store.updateChargeCaptured(client, charge, capture.amount);
    const updated = made === null ? captured : await store.updateChargeTransfer(client, charge, made);
    await recordChargeEvent(client, { type: 'charge.captured', charge: updated, before: charge });
    return moveIntent(client, intent, {
      status: 'succeeded', amountCapturable: 0n, amountReceived: capture.amount,
    });
  }

  async cancel(execution: Execution, request: IntentKey & CancelPaymentIntentCommand) {
    const resumed = readRecoveryPoint(execution);
    if (resumed.point === 'cancel_requested') {
      return this.sendVoid(execution.client, { ...request, reason: resumed.reason ?? request.cancellationReason,
        claimKey: resumed.key });
    }
    assertStarted(resumed);
    const reason = request.cancellationReason;
    const done = await inTransaction(execution.client, async () => {
      const intent = await lockIntent(execution.client, request);
      assertOperationAllowed(intent.status, 'cancel', presentPaymentIntent(intent));
      assertTransition(intent.status, 'canceled');
      if (intent.status !== 'requires_capture') {
        return moveIntent(execution.client, intent, { status: 'canceled', canceled: { reason } });
      }
      const charge = await mustCharge(execution.client, intent);
      const key = await claimFinalization(execution.client, intent, { kind: 'cancel', amount: null,
        cancellationReason: reason });
      await queueRecovery(execution.client, { ...cancelSubject(request), connector: charge.connector });
      await saveRecoveryPoint(execution, { point: 'cancel_requested', reason, key });
      return key;
    });
    if (typeof done !== 'string') return done;
    return this.sendVoid(execution.client, { ...request, reason, claimKey: done });
  }

  /**
   * Sends a claimed cancel's void to the charge's connector (under its claim's key, the same every
   * time) and applies it: the request's own step, and what the recovery worker re-sends.
   */
  async sendVoid(client: pg.PoolClient, cancel: IntentKey & { reason: string | null; claimKey: string | undefined }) {
    return this.sendFinalization(client, {
      subject: cancelSubject(cancel),
      claimKey: cancel.claimKey,
      call: (_intent, charge, key) => this.connectors.get(charge.connector).void({
        reference: charge.id, idempotencyKey: key, pspReference: charge.pspReference ?? '',
      }),
      apply: () => this.applyCancel(client, cancel),
    });
  }

  /** Applies a void the PSP performed, once, under the intent's lock: the hold is voided. */
  async applyCancel(client: pg.PoolClient, cancel: IntentKey & { reason: string | null }) {
    const locked = await lockIntent(client, cancel);
    await resolveRecovery(client, cancelSubject(cancel));
    if (locked.status === 'canceled') return locked;
    // Only an authorization is voided (processing: one whose void the PSP took); anything else here
    // is a contradiction, and fails loudly.
    if (locked.status !== 'requires_capture' && locked.status !== 'processing') {
      throw new Error(`a void applied to ${locked.id} in ${locked.status}`);
    }
    const charge = await mustCharge(client, locked);
    if (charge.authorizationEntryId !== null) {
      await this.paymentLedger.cancelAuthorization(client, charge.authorizationEntryId);
    }
    return moveIntent(client, locked, { status: 'canceled', amountCapturable: 0n, canceled: { reason: cancel.reason } });
  }

  /**
   * An authorization not captured in time expires, as Stripe's do after 7 days: the charge's
   * connector voids it (the same void key a merchant's cancel would use), the hold is released,
   * and the intent is canceled with reason `automatic`. Claiming the finalization keeps a racing
   * capture out; an unknown outcome of the void leaves it for the next run.
   */
  async expireAuthorization(client: pg.PoolClient, key: IntentKey): Promise<'expired' | 'skipped'> {
    const claimed = await inTransaction(client, async () => {
      const intent = await lockIntent(client, key);
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
    let answer: FollowUpOutput;
    try {
      answer = await this.connectors.get(claimed.charge.connector).void({
        reference: claimed.charge.id, idempotencyKey: claimed.idempotencyKey,
        pspReference: claimed.charge.pspReference ?? '',
      });
    } catch (error) {
      return this.expiryVoidFailed(client, key, error);
    }
    if (answer.outcome === 'received') {
      // Taken, not done (Adyen's cancel): the intent waits in processing with its `automatic`
      // claim for the PSP's CANCELLATION, or for recovery's look-up of it; nothing is booked yet.
      await inTransaction(client, async () => {
        await queueRecovery(client, { ...cancelSubject(key), connector: claimed.charge.connector });
        await this.awaitFinalizationLocked(client, cancelSubject(key), answer.pspReference);
      });
      return 'expired';
    }
    await inTransaction(client, async () => {
      const locked = await lockIntent(client, key);
      if (locked.status === 'canceled') return;
      if (claimed.charge.authorizationEntryId !== null) {
        await this.paymentLedger.cancelAuthorization(client, claimed.charge.authorizationEntryId);
      }
      await moveIntent(client, locked, { status: 'canceled', amountCapturable: 0n, canceled: { reason: expiryReason } });
    });
    return 'expired';
  }

  /**
   * An expiry's void that did not happen: unknown or rate-limited, tried again next run; refused
   * (the PSP moved on without Penny), the claim is given back, so the intent is not stuck, and a
   * case is opened.
   */
  private async expiryVoidFailed(client: pg.PoolClient, key: IntentKey, error: unknown): Promise<'skipped'> {
    if (error instanceof ConnectorUnknownOutcomeError) return 'skipped';
    if (!(error instanceof ConnectorRefusedError)) throw error;
    if (error.status === 429) return 'skipped';
    await inTransaction(client, () => store.deleteFinalization(client, key, 'cancel'));
    await inTransaction(client, () => openCase(client, { merchantId: key.merchantId, kind: 'unresolved_outcome',
      paymentIntentId: key.id, subjectId: `expiry:${key.id}`,
      detail: { reason: `the PSP refused the void: ${error.message}` } }));
    throw error;
  }

  async refund(execution: Execution, merchantId: string, request: CreateRefundCommand): Promise<store.RefundRow> {
    const resumed = readRecoveryPoint(execution);
    if (resumed.point === 'refund_reserved') return this.sendRefund(execution.client, { merchantId, id: resumed.refund });
    assertStarted(resumed);
    const reserved = await inTransaction(execution.client, async () => {
      const refund = await this.reserveRefund(execution.client, merchantId, request);
      await queueRecovery(execution.client, { merchantId, kind: 'refund', subjectId: refund.id,
        connector: refund.connector });
      await saveRecoveryPoint(execution, { point: 'refund_reserved', refund: refund.id });
      return refund;
    });
    return this.sendRefund(execution.client, { merchantId, id: reserved.id });
  }

  /**
   * Under the charge's row lock: concurrent refunds are serialized and never exceed what was
   * captured. The charge's connector must take refunds.
   */
  private async reserveRefund(client: pg.PoolClient, merchantId: string, request: CreateRefundCommand) {
    const chargeId = request.charge
      ?? (await mustIntent(client, { merchantId, id: request.paymentIntent ?? '' })).latestCharge;
    const charge = chargeId === null ? undefined
      : await store.selectCharge(client, { merchantId, id: chargeId }, { forUpdate: true });
    if (charge === undefined) {
      throw new PennyError({ code: 'resource_missing', param: request.charge === undefined ? 'payment_intent' : 'charge',
        message: 'There is no charge to refund.' });
    }
    if (charge.disputed) {
      throw new PennyError({ code: 'charge_disputed', param: request.charge === undefined ? 'payment_intent' : 'charge',
        message: `Charge ${charge.id} has been charged back; the dispute took its money back, so it cannot be refunded.` });
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
    assertCapability(this.connectors.get(charge.connector), 'refunds',
      request.charge === undefined ? 'payment_intent' : 'charge');
    assertRefundSplit(charge, request);
    // Refused before the reservation: a refund the PSP call cannot carry would stay pending.
    stripeAmountToMinor(charge.currency, amount, { param: 'amount' });
    await store.addChargeRefunded(client, charge, amount);
    const refund = await store.insertRefund(client, {
      merchantId, id: newId('re'), chargeId: charge.id, paymentIntentId: charge.paymentIntentId,
      connector: charge.connector, amount, currency: charge.currency, reason: request.reason,
      metadata: request.metadata, paymentMethod: charge.paymentMethod, reverseTransfer: request.reverseTransfer,
      refundApplicationFee: request.refundApplicationFee,
    });
    await recordRefundEvent(client, { type: 'refund.created', refund });
    return refund;
  }

  /** Sends a reserved refund to its connector (key derived from the refund) and applies the answer. */
  async sendRefund(client: pg.PoolClient, key: { merchantId: string; id: string }): Promise<store.RefundRow> {
    const refund = await store.selectRefund(client, key.merchantId, key.id);
    if (refund === undefined) throw new Error(`refund ${key.id} is missing`);
    // Settled already (completed or failed, perhaps by recovery): never sent again.
    if (refund.status !== 'pending') return refund;
    const charge = await store.selectCharge(client, { merchantId: key.merchantId, id: refund.chargeId });
    if (charge === undefined) throw new Error(`charge ${refund.chargeId} is missing`);
    const amountMinor = stripeAmountToMinor(refund.currency, refund.amount);
    const done = await hastenOnUnknown(client, { merchantId: key.merchantId, kind: 'refund', subjectId: key.id },
      () => followUp(() => this.connectors.get(refund.connector).refund({
        reference: refund.id, idempotencyKey: `penny:${refund.id}`, pspReference: charge.pspReference ?? '',
        amountMinor, currency: refund.currency.toUpperCase(),
      }), 'refund'));
    if (done === 'refused') return inTransaction(client, () => failRefund(client, key));
    if (done.outcome === 'received') {
      // Taken, not done: the refund stays pending until the PSP reports it (webhook or look-up).
      await store.markRefundReceived(client, key, done.pspReference);
      return await store.selectRefund(client, key.merchantId, key.id) ?? refund;
    }
    return inTransaction(client, () => this.applyRefund(client, { ...key, pspReference: done.pspReference }));
  }

  /** Applies a refund the PSP performed, once: its ledger entry, its status and its events. */
  async applyRefund(client: pg.PoolClient, performed: { merchantId: string; id: string; pspReference: string }) {
    const { merchantId } = performed;
    const refund = await store.selectRefund(client, merchantId, performed.id);
    if (refund === undefined) throw new Error(`refund ${performed.id} is missing`);
    await store.selectCharge(client, { merchantId, id: refund.chargeId }, { forUpdate: true });
    await resolveRecovery(client, { merchantId, kind: 'refund', subjectId: performed.id });
    const current = await store.selectRefund(client, merchantId, performed.id) ?? refund;
    if (current.status !== 'pending') return current;
    const amountMinor = stripeAmountToMinor(refund.currency, refund.amount);
    const accounts = await this.paymentLedger.accountsFor(client, merchantId, refund.currency.toUpperCase());
    const entryId = await this.paymentLedger.refund(client, { merchantId, currency: refund.currency.toUpperCase(),
      accounts, refundId: refund.id, amountMinor });
    const shares = await this.refundShares(client, current);
    const completed = await store.completeRefund(client, current,
      { pspReference: performed.pspReference, ledgerEntryId: entryId, ...shares });
    await recordRefundEvent(client, { type: 'refund.updated', refund: completed, before: current });
    const refunded = await store.selectCharge(client, { merchantId, id: refund.chargeId });
    if (refunded !== undefined) await recordChargeEvent(client, { type: 'charge.refunded', charge: refunded });
    return completed;
  }

  /** A destination charge's refund takes back its shares of the transfer and the fee, as it asked. */
  private async refundShares(client: pg.PoolClient, refund: store.RefundRow) {
    const none = { transferReversalId: null, applicationFeeRefundId: null };
    if (!refund.reverseTransfer && !refund.refundApplicationFee) return none;
    const charge = await store.selectCharge(client, { merchantId: refund.merchantId, id: refund.chargeId });
    if (charge === undefined) throw new Error(`charge ${refund.chargeId} is missing`);
    if (charge.transferId === null) return none;
    const minor = (amount: bigint) => stripeAmountToMinor(refund.currency, amount);
    const totals = await store.selectSucceededRefundTotals(client, charge);
    const [all, reversing, feeRefunding] = [totals.all + refund.amount,
      totals.reversing + (refund.reverseTransfer ? refund.amount : 0n),
      totals.feeRefunding + (refund.refundApplicationFee ? refund.amount : 0n)];
    return this.paymentLedger.destinations.refunded(client, {
      merchantId: refund.merchantId, chargeId: charge.id, refundId: refund.id, currency: refund.currency.toUpperCase(),
      capturedMinor: minor(charge.amountCaptured), refundMinor: minor(refund.amount),
      completesCharge: all === charge.amountCaptured, reversingRefundedMinor: minor(reversing),
      feeRefundingRefundedMinor: minor(feeRefunding), reverseTransfer: refund.reverseTransfer,
      refundApplicationFee: refund.refundApplicationFee,
    });
  }
}

/**
 * A destination charge's split must fit what is captured: the transfer's amount and the
 * application fee are at most the capture (Stripe refuses a capture below them).
 */
function assertSplitWithin(connect: store.ConnectFields, amount: bigint): void {
  const largest = [connect.transferAmount, connect.applicationFeeAmount]
    .filter((part): part is bigint => part !== null).reduce((a, b) => (a > b ? a : b), 0n);
  if (largest > amount) {
    throw new PennyError({ code: 'amount_too_large', param: 'amount_to_capture',
      message: `The amount to capture (${amount}) is less than the destination charge passes on or keeps as a fee ` +
        `(${largest}).` });
  }
}

/** reverse_transfer needs a destination charge's transfer; refund_application_fee its fee. */
function assertRefundSplit(charge: store.ChargeRow, request: CreateRefundCommand): void {
  if (request.reverseTransfer && charge.transferId === null) {
    throw new PennyError({ code: 'parameter_invalid', param: 'reverse_transfer',
      message: `Charge ${charge.id} is not a destination charge: it has no transfer to reverse.` });
  }
  if (request.refundApplicationFee && charge.applicationFeeId === null) {
    throw new PennyError({ code: 'parameter_invalid', param: 'refund_application_fee',
      message: `Charge ${charge.id} has no application fee to refund.` });
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
export async function failRefund(client: pg.PoolClient, key: { merchantId: string; id: string }):
Promise<store.RefundRow> {
  const found = await store.selectRefund(client, key.merchantId, key.id);
  if (found === undefined) throw new Error(`refund ${key.id} is missing`);
  // The charge's lock first, as applyRefund takes it; then the refund as it is under that lock.
  const charge = await store.selectCharge(client, { merchantId: key.merchantId, id: found.chargeId },
    { forUpdate: true });
  if (charge === undefined) throw new Error(`charge ${found.chargeId} is missing`);
  await resolveRecovery(client, { merchantId: key.merchantId, kind: 'refund', subjectId: key.id });
  const refund = await store.selectRefund(client, key.merchantId, key.id) ?? found;
  if (refund.status !== 'pending') return refund;
  await store.addChargeRefunded(client, charge, -refund.amount);
  const failed = await store.failRefund(client, refund);
  await recordRefundEvent(client, { type: 'refund.failed', refund: failed, before: refund });
  return failed;
}

/** What Penny knows of an authorization: the PSP's answer, a refusal, or nothing yet. */
export type AuthorizationResult =
  | AuthorizeOutput
  | { readonly outcome: 'declined'; readonly pspReference: null; readonly code: string; readonly declineCode: string;
      readonly message: string }
  | { readonly outcome: 'unknown'; readonly reason: string };

/** The reason an expired authorization's intent is canceled with (Stripe's); merchants cannot give it. */
const expiryReason = 'automatic';

/** How much longer an authorization's ledger hold lasts than the authorization itself. */
export const authorizationHoldGraceMs = 86_400_000;

/** An attempt whose outcome Penny has not applied yet: only these change again. */
/**
 * An authorization as the PSP recorded it (a look-up's record or a webhook's), read against the
 * intent it is for: a record that says `authorized` with `captureAsRequested` (Adyen's
 * AUTHORISATION) is captured when the intent captures automatically. Every path that applies a
 * recorded authorization reads it here, so none forgets the intent's capture method.
 */
export function recordedAuthorization(operation: PspOperation, intent: Pick<store.PaymentIntentRow, 'captureMethod'>):
AuthorizationResult {
  return authorizationFromRecord(operation, { captureRequested: intent.captureMethod !== 'manual' });
}

/**
 * Whether a PSP's report of a capture or void is about this claim: the request the PSP took
 * (`received`) is named by the PSP reference the claim keeps; a claim without one (answered at
 * once, or not answered yet) takes the charge's report, as before.
 */
export function reportsClaim(claim: store.FinalizationRow, operation: Pick<PspOperation, 'pspReference'>): boolean {
  return claim.pspReference === null || claim.pspReference === operation.pspReference;
}

/**
 * The amount a PSP reports it captured, when it is not the claim's (in the intent's currency and
 * Penny's minor units): a capture Penny must not book as its own. Undefined when it agrees, or
 * the report gives no amount.
 */
export function capturedAmountMismatch(intent: store.PaymentIntentRow, claim: store.FinalizationRow,
  operation: Pick<PspOperation, 'amountMinor' | 'currency'>):
{ claimedMinor: string; reportedMinor: string; reportedCurrency: string | null } | undefined {
  if (operation.amountMinor === null || claim.amount === null) return undefined;
  const claimedMinor = stripeAmountToMinor(intent.currency, claim.amount);
  const sameCurrency = operation.currency === null
    || operation.currency.toLowerCase() === intent.currency.toLowerCase();
  if (sameCurrency && operation.amountMinor === claimedMinor) return undefined;
  return { claimedMinor: claimedMinor.toString(), reportedMinor: operation.amountMinor.toString(),
    reportedCurrency: operation.currency };
}

/**
 * The case of a capture the PSP performed for another amount than the claim's: one per PSP
 * request, whether the webhook or recovery's look-up found it first.
 */
export async function openCaptureAmountCase(client: pg.PoolClient, found: { intent: store.PaymentIntentRow;
  chargeId: string; operation: Pick<PspOperation, 'pspReference'>;
  mismatch: NonNullable<ReturnType<typeof capturedAmountMismatch>>; }): Promise<void> {
  await openCase(client, { merchantId: found.intent.merchantId, kind: 'contradicting_event',
    paymentIntentId: found.intent.id, subjectId: `${found.chargeId}:${found.operation.pspReference}:amount`,
    detail: { penny: `capture ${found.mismatch.claimedMinor}`, psp: `captured ${found.mismatch.reportedMinor}`,
      psp_reference: found.operation.pspReference, ...found.mismatch } });
}

export function isOpenAttempt(status: store.AttemptStatus): boolean {
  return status === 'started' || status === 'unknown' || status === 'manual_review';
}

/** The connector's capabilities, as the connector interface declares them (payouts: none booked yet). */
type CheckedCapability = 'manualCapture' | 'partialCapture' | 'refunds';

const capabilityNames: Readonly<Record<CheckedCapability, { name: string; param: string }>> = {
  manualCapture: { name: 'manual capture', param: 'capture_method' },
  partialCapture: { name: 'partial capture', param: 'amount_to_capture' },
  refunds: { name: 'refunds', param: 'charge' },
};

/**
 * Refuses, before anything is recorded or sent, what the payment's connector declares it cannot
 * do, naming the parameter of the request (`param`, when the request named another than the usual).
 */
function assertCapability(connector: Connector, capability: CheckedCapability, param?: string): void {
  if (connector.capabilities[capability]) return;
  const { name } = capabilityNames[capability];
  throw new PennyError({
    code: 'connector_capability_unsupported', param: param ?? capabilityNames[capability].param,
    message: `The payment processor of this payment (${connector.id}) does not support ${name}.`,
    details: { capability: name, connector: connector.id },
  });
}

/** A request whose key saved a point of another operation (the key was reused across operations). */
function assertStarted(point: PaymentRecoveryPoint): void {
  if (point.point !== 'started') throw new Error(`a payment request resumed at a foreign point ${point.point}`);
}

function cancelSubject(key: IntentKey): RecoverySubject & { kind: 'cancel' } {
  return { merchantId: key.merchantId, kind: 'cancel', subjectId: key.id };
}

function capitalized(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

function authorizeSubject(attempt: store.AttemptRow): RecoverySubject {
  return { merchantId: attempt.merchantId, kind: 'authorize', subjectId: attempt.id };
}

/**
 * Recorded with the claim, in its transaction (deferred to its end: nothing reads it there); a
 * look-up after `limits.recoveryGraceMs` finishes an operation whose request died.
 */
async function queueRecovery(client: pg.PoolClient, subject: RecoverySubject & { connector: string }): Promise<void> {
  // created_at by Penny's clock: the PSP's key retention is measured from it.
  await recoveryStore.queueRecoveryJobAtCommit(client, { ...subject,
    nextRunAt: new Date(nowMs() + limits.recoveryGraceMs).toISOString(), createdAt: new Date(nowMs()).toISOString() });
}

/** The outcome is known to be unknown: the first look-up comes soon, not after the grace. */
async function hastenRecovery(client: pg.PoolClient, subject: RecoverySubject): Promise<void> {
  await recoveryStore.hastenRecoveryJob(client, subject,
    new Date(nowMs() + limits.recoveryFirstDelayMs).toISOString());
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
  await recoveryStore.resolveRecoveryJob(client, subject, new Date(nowMs()).toISOString());
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
async function assertCurrentChallenge(client: pg.PoolClient, intent: store.PaymentIntentRow, attemptId: string):
Promise<store.AttemptRow> {
  const latest = await store.selectLatestAttempt(client, intent.merchantId, intent.id);
  const current = intent.status === 'requires_action' && latest?.id === attemptId
    && latest.status === 'requires_action' && latest.paymentMethod === intent.paymentMethod;
  if (!current || latest === undefined) {
    throw new PennyError({
      code: 'payment_intent_unexpected_state',
      message: 'This authentication is no longer the PaymentIntent\'s current one.',
      details: { payment_intent: presentPaymentIntent(intent) },
    });
  }
  return latest;
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
  if (change.status !== before.status) {
    // Only a move out of processing other than capture, cancel or give-back asks for the claim.
    const finalizing = dependsOnFinalization(before.status, change.status)
      && await store.selectFinalization(client, before) !== undefined;
    assertTransition(before.status, change.status, { finalizing });
  }
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

function pspOperationOf(kind: 'capture' | 'cancel'): 'capture' | 'void' {
  return kind === 'capture' ? 'capture' : 'void';
}

/** Claims the intent's finalization for this request; returns the claim's PSP idempotency key. */
async function claimFinalization(client: pg.PoolClient, intent: store.PaymentIntentRow,
  claim: { kind: 'capture' | 'cancel'; amount: bigint | null; cancellationReason: string | null }): Promise<string> {
  const pspIdempotencyKey = newFinalizationKey(intent, claim.kind);
  const claimed = await store.insertFinalization(client, intent, { ...claim, pspIdempotencyKey });
  if (!claimed.won) {
    throw new PennyError({
      code: 'payment_intent_unexpected_state',
      message: `This PaymentIntent is already being ${claimed.kind === 'capture' ? 'captured' : 'canceled'}.`,
      details: { payment_intent: presentPaymentIntent(intent) },
    });
  }
  return pspIdempotencyKey;
}

/** The intent, read without a lock; a missing one is the client's 404. */
async function mustIntent(client: pg.PoolClient, key: IntentKey) {
  return foundIntent(key, await store.selectPaymentIntent(client, { merchantId: key.merchantId, id: key.id }));
}

/** The intent under its row lock (FOR UPDATE) for the caller's transaction. */
async function lockIntent(client: pg.PoolClient, key: IntentKey) {
  return foundIntent(key, await store.selectPaymentIntent(client, key, { forUpdate: true }));
}

function foundIntent(key: IntentKey, intent: store.PaymentIntentRow | undefined): store.PaymentIntentRow {
  if (intent === undefined) {
    throw new PennyError({ code: 'resource_missing', param: 'intent', message: `No such payment_intent: '${key.id}'` });
  }
  return intent;
}

async function mustCharge(client: pg.PoolClient, intent: store.PaymentIntentRow): Promise<store.ChargeRow> {
  const charge = intent.latestCharge === null ? undefined
    : await store.selectCharge(client, { merchantId: intent.merchantId, id: intent.latestCharge });
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
    // Stored from a PSP's decline (decline-codes.ts); a code Penny does not know reads as a decline.
    code: isErrorCode(error.code) ? error.code : 'card_declined',
    type: 'card_error',
    message: error.message,
    details: { decline_code: error.decline_code, charge: error.charge, payment_intent: presentPaymentIntent(intent) },
  });
}
