import type pg from 'pg';
import type { Logger } from 'pino';
import { defaultBankAccount, findBankAccount, type BankAccountVault } from '../accounts/bank-accounts.js';
import type { BalanceService } from '../balances/balance-service.js';
import { nowMs } from '../clock.js';
import { limits } from '../config.js';
import { raiseAlert } from '../metrics/metrics.js';
import {
  ConnectorRefusedError, ConnectorUnknownOutcomeError, type ConnectorRegistry, type PspOperation, type PspSyncRequest,
} from '../connectors/connector.js';
import { inTransaction, withTransaction, type Queryable } from '../db/pool.js';
import { recordEvent } from '../events/event-store.js';
import { PennyError } from '../errors.js';
import type { Execution } from '../idempotency/idempotency-service.js';
import { newId } from '../ids.js';
import { stripeAmountStepMinor } from '../money/stripe-currency.js';
import { internalEntry } from '../ledger/ledger-commands.js';
import type { LedgerService } from '../ledger/ledger-service.js';
import {
  payoutFailureMessages, sandboxTestBankAccount, type CreatePayoutCommand, type PayoutOwner,
} from './payout-commands.js';
import { presentPayout } from './payout-presenter.js';
import { assertPayoutTransition, canMove, isPayoutStatus, type PayoutStatus } from './payout-state.js';
import * as store from './payout-store.js';
import type { PayoutRow } from './payout-store.js';

/**
 * Payouts: money leaves an owner's available balance for its bank account. As payments do
 * (reference/style.md, rule 24): one transaction records the payout, its guarded ledger entry
 * (debit Merchant available with `must_not_overdraw`, credit PSP receivable: the PSP pays the
 * merchant out of what it holds for it), its `payout` balance transaction and `payout.created`;
 * then the PSP is called outside any transaction with Penny's key `penny:<payout id>`; then a
 * second transaction notes the answer. The PSP moves the payout on by webhooks (pending,
 * in_transit, paid, failed: `applyPspOperation`), and a lost answer is resolved by look-up
 * (`resolveUnknown`), never by a second payout. A failed or canceled payout returns its money.
 */
export interface PayoutServiceOptions {
  readonly connectors: ConnectorRegistry;
  readonly ledger: LedgerService;
  readonly balances: BalanceService;
  readonly vault: BankAccountVault;
  /**
   * Where the merchant's new payouts go: the connector its payments are routed to. One that
   * declares no payouts (Adyen's Checkout) refuses the payout before anything is recorded.
   */
  readonly connectorId: (db: Queryable, merchantId: string) => string | Promise<string>;
  readonly logger: Logger;
}

export interface PayoutKey extends PayoutOwner {
  readonly id: string;
}

export class PayoutService {
  constructor(private readonly pool: pg.Pool, private readonly options: PayoutServiceOptions) {}

  async create(execution: Execution, request: { owner: PayoutOwner; command: CreatePayoutCommand }) {
    const resumed = execution.recoveryPoint === 'payout_recorded' ? execution.recoveryData.payout : undefined;
    if (typeof resumed === 'string') return this.send({ ...request.owner, id: resumed }, { firstTry: false });
    const recorded = await inTransaction(execution.client, async () => {
      const payout = await this.record(execution.client, request);
      await execution.saveRecoveryPoint('payout_recorded', { payout: payout.id });
      return payout;
    });
    return this.send(recorded, { firstTry: true });
  }

  /**
   * An automatic payout (the schedule's, `payout-scheduler.ts`): what the owner's available
   * transactions in the currency that no automatic payout took yet net to, read (and locked) in the
   * payout's own transaction, rounded down to Stripe's payout step, to its default destination,
   * recorded as a manual payout is (the guarded entry, the `payout` balance transaction,
   * `payout.created`) with `automatic: true` and the UTC day it is for, then sent to the PSP the
   * same way (key `penny:<payout id>`). It reads the oldest transactions, a bounded number
   * (`BalanceService.unpaidAvailable`: on past the bound while they net to less than the step), and
   * pays what they net to, or what all unpaid transactions net to when that is less (newer refunds),
   * rounded down to the step. It is linked to exactly the transactions it read (and its own), so
   * they sum to its amount; what it read but does not pay (r: below the step, or beyond the whole)
   * is held back as Stripe's minimum balance does, a `payout_minimum_balance_hold` (−r, linked to
   * this payout) and a `payout_minimum_balance_release` (+r, left for the next one), which together
   * leave the balance as it is (docs/accounting.md).
   * The database keeps one automatic payout per owner, currency and day, so a racing worker, or a
   * rerun after a crash, pays nothing more. Answers undefined, writing nothing, when there is
   * nothing to pay out, no destination, or the day's payout exists already. `availableMinor`, the
   * scheduler's read of the balance, only says whether to look.
   */
  async payOutAutomatically(request: { owner: PayoutOwner; currency: string; availableMinor: bigint; day: string }):
  Promise<ReturnType<typeof presentPayout> | undefined> {
    const { owner, day } = request;
    const currency = request.currency.trim().toUpperCase();
    const step = stripeAmountStepMinor(currency.toLowerCase(), 'payout');
    if (request.availableMinor <= 0n) return undefined;
    let recorded: PayoutRow | undefined;
    try {
      recorded = await withTransaction(this.pool, async (client) => {
        if (await store.selectAutomaticPayout(client, { ...owner, currency, day }) !== undefined) return undefined;
        if (await this.defaultDestination(client, owner, currency) === undefined) return undefined;
        const totalMinor = await this.options.balances.unpaidAvailableTotal(client, { ...owner, currency });
        if (roundedDown(totalMinor, step) <= 0n) return undefined;
        const unpaid = await this.options.balances.unpaidAvailable(client, { ...owner, currency, enoughMinor: step });
        const amountMinor = roundedDown(unpaid.netMinor < totalMinor ? unpaid.netMinor : totalMinor, step);
        if (amountMinor <= 0n) {
          raiseAlert(this.options.logger, 'automatic_payout_blocked', { merchant: owner.merchantId,
            account: owner.accountId, currency, read: unpaid.ids.length, readMinor: unpaid.netMinor.toString(),
            totalMinor: totalMinor.toString() },
          'the oldest unpaid transactions net to no payout within the read bound; nothing is paid automatically');
          return undefined;
        }
        return this.record(client, { owner, command: { amountMinor, currency, destination: undefined, description: null,
          statementDescriptor: null, metadata: {} },
        automatic: { day, paid: unpaid.ids, heldMinor: unpaid.netMinor - amountMinor } });
      });
    } catch (error) {
      // Taken meanwhile (a payout, a transfer, a dispute), or paid by a racing worker: nothing to do.
      if (error instanceof PennyError && error.code === 'balance_insufficient') return undefined;
      if (store.isAutomaticPayoutConflict(error)) return undefined;
      throw error;
    }
    return recorded === undefined ? undefined : this.send(recorded, { firstTry: true });
  }

  /** The payout, its guarded entry, its balance transaction and its event, in the caller's transaction. */
  private async record(client: pg.PoolClient, request: { owner: PayoutOwner; command: CreatePayoutCommand;
    automatic?: { day: string; paid: readonly string[]; heldMinor: bigint } }): Promise<PayoutRow> {
    const { owner, command } = request;
    const connector = this.options.connectors.get(await this.options.connectorId(client, owner.merchantId));
    if (!connector.capabilities.payouts) {
      throw new PennyError({ code: 'connector_capability_unsupported', param: 'amount',
        message: `The payment processor this merchant is routed to (${connector.id}) does not support payouts.`,
        details: { capability: 'payouts', connector: connector.id } });
    }
    const destination = await this.destinationOf(client, { owner, command });
    const id = newId('po');
    // An owner that never held money in the currency has nothing available: nothing is created for it.
    if (!await this.options.balances.holdsCurrency(client, { ownerId: owner.accountId, currency: command.currency })) {
      throw insufficientBalance();
    }
    const accounts = await this.options.balances.accounts.accountsFor(client,
      { ownerId: owner.accountId, currency: command.currency });
    let entryId: string;
    try {
      const created = await this.options.ledger.createEntriesIn(client, [internalEntry({
        reference: `penny:payout:${id}`, description: `Payout ${id}`,
        legs: [[accounts.merchant_available, 'debit', command.amountMinor],
          [accounts.psp_receivable, 'credit', command.amountMinor]],
        guardedAccount: accounts.merchant_available,
      })]);
      entryId = created.entries[0]?.id ?? '';
    } catch (error) {
      if (error instanceof PennyError && error.code === 'insufficient_funds') throw insufficientBalance();
      throw error;
    }
    const now = new Date(nowMs()).toISOString();
    const transaction = await this.options.balances.recordMovement(client, {
      merchantId: owner.merchantId, accountId: owner.accountId, type: 'payout', reportingCategory: 'payout',
      sourceId: id, currency: command.currency, amountMinor: -command.amountMinor,
      description: command.description ?? 'STRIPE PAYOUT',
    });
    const payout = await store.insertPayout(client, {
      merchantId: owner.merchantId, accountId: owner.accountId, id, amountMinor: command.amountMinor,
      currency: command.currency, destination, description: command.description,
      statementDescriptor: command.statementDescriptor, metadata: command.metadata,
      connector: connector.id, arrivalDate: now, entryId, balanceTransactionId: transaction.id,
      automaticDay: request.automatic?.day ?? null,
    });
    if (request.automatic !== undefined) {
      const linked = [...request.automatic.paid, transaction.id];
      const { heldMinor } = request.automatic;
      if (heldMinor > 0n) {
        const movement = { merchantId: owner.merchantId, accountId: owner.accountId, sourceId: id,
          currency: command.currency, description: 'Payout remainder held for the next payout' };
        const hold = await this.options.balances.recordMovement(client, { ...movement,
          type: 'payout_minimum_balance_hold', reportingCategory: 'payout_minimum_balance_hold',
          amountMinor: -heldMinor });
        await this.options.balances.recordMovement(client, { ...movement, type: 'payout_minimum_balance_release',
          reportingCategory: 'payout_minimum_balance_release', amountMinor: heldMinor });
        linked.push(hold.id);
      }
      await this.options.balances.linkToAutomaticPayout(client, { merchantId: owner.merchantId, payoutId: id,
        ids: linked });
    }
    await recordEvent(client, { merchantId: owner.merchantId, account: payout.accountId,
      type: 'payout.created', object: presentPayout(payout) });
    return payout;
  }

  /**
   * Where the payout goes: the bank account named (the owner's, in the payout's currency), or the
   * owner's default for the currency; a platform with none (test mode: every key is sk_test_) is
   * paid to the sandbox bank's test account. A connected account without one is refused.
   */
  private async destinationOf(client: pg.PoolClient, request: { owner: PayoutOwner; command: CreatePayoutCommand }):
  Promise<string> {
    const { owner, command } = request;
    if (command.destination !== undefined) {
      const bank = await findBankAccount(client, owner, command.destination).catch((error: unknown) => {
        if (error instanceof PennyError) {
          throw new PennyError({ code: 'resource_missing', param: 'destination', message: error.message });
        }
        throw error;
      });
      if (bank.currency.toUpperCase() !== command.currency) {
        throw new PennyError({ code: 'parameter_invalid', param: 'destination',
          message: `The bank account ${bank.id} is in ${bank.currency}, not ${command.currency.toLowerCase()}.` });
      }
      return bank.id;
    }
    const destination = await this.defaultDestination(client, owner, command.currency);
    if (destination !== undefined) return destination;
    throw new PennyError({ code: 'parameter_invalid', param: 'currency', message: 'Sorry, you don\'t have any ' +
      `external accounts in that currency (${command.currency.toLowerCase()}).` });
  }

  /**
   * Where a payout that names no bank account goes: the owner's default bank account for the
   * currency, or, for a platform without one (test mode), the sandbox bank's test account.
   */
  private async defaultDestination(client: pg.PoolClient, owner: PayoutOwner, currency: string):
  Promise<string | undefined> {
    const bank = await defaultBankAccount(client, owner, currency);
    if (bank !== undefined) return bank.id;
    return owner.accountId === owner.merchantId ? sandboxTestBankAccount : undefined;
  }

  /** What the PSP is sent as the destination: the bank account's number, or the test account. */
  private async pspDestination(payout: PayoutRow): Promise<string> {
    if (!payout.destination.startsWith('ba_')) return payout.destination;
    const bank = await findBankAccount(this.pool, payout, payout.destination);
    const number = this.options.vault.accountNumberOf(bank);
    return bank.routingNumber === null ? number : `${bank.routingNumber}/${number}`;
  }

  /**
   * Calls the PSP for a recorded payout (same key on every try) and notes its answer. A lost
   * answer leaves the payout `pending` with its call `unknown`, for the look-up; a refusal of the
   * first try leaves it `pending` and cancelable. A refusal of a later try (a resumed request, the
   * worker's re-send) proves nothing, since an earlier try may have moved the money: the call
   * stays `unknown`; so does a first try's refusal once the worker has sent the call too (counted
   * before it calls), since the worker's call may still take it. The PSP taking the payout always
   * wins. Answers the payout as it then is.
   */
  private async send(key: PayoutKey, options: { firstTry: boolean }) {
    const payout = await this.find(key);
    if (payout.pspCall !== 'unknown' || payout.status !== 'pending') return presentPayout(payout);
    if (!options.firstTry && !(await store.countResend(this.pool, payout))) return presentPayout(await this.find(key));
    const answer = await this.callPsp(payout);
    const updated = await withTransaction(this.pool, async (client) => {
      const locked = await store.selectPayout(client, payout, { forUpdate: true });
      if (locked === undefined) return payout;
      const provesNothing = answer.pspCall === 'refused' && (!options.firstTry || locked.pspResendCount > 0);
      const pspCall = provesNothing ? { ...answer, pspCall: 'unknown' as const } : answer;
      if (pspCall.pspCall === 'sent' && locked.pspCall !== 'sent') {
        if (locked.status === 'canceled') {
          raiseAlert(this.options.logger, 'payout_sent_after_cancel', { payout: locked.id },
            'the PSP took a payout Penny had canceled');
        }
        return store.updatePspCall(client, locked, pspCall);
      }
      return locked.pspCall === 'unknown' ? store.updatePspCall(client, locked, pspCall) : locked;
    });
    return presentPayout(updated);
  }

  private async callPsp(payout: PayoutRow): Promise<{ pspCall: store.PspCall; pspReference: string | null }> {
    try {
      const answer = await this.options.connectors.get(payout.connector).payout({
        reference: payout.id, idempotencyKey: `penny:${payout.id}`, amountMinor: payout.amountMinor,
        currency: payout.currency, destination: await this.pspDestination(payout),
      });
      return { pspCall: 'sent', pspReference: answer.pspReference };
    } catch (error) {
      if (error instanceof ConnectorUnknownOutcomeError) return { pspCall: 'unknown', pspReference: null };
      if (error instanceof ConnectorRefusedError) {
        this.options.logger.warn({ payout: payout.id, code: error.code }, 'the PSP refused a payout');
        return { pspCall: 'refused', pspReference: null };
      }
      throw error;
    }
  }

  async retrieve(key: PayoutKey): Promise<PayoutRow> {
    return this.find(key);
  }

  async list(query: store.PayoutListQuery) {
    const cursor = query.startingAfter ?? query.endingBefore;
    if (cursor !== undefined && await store.selectPayout(this.pool, { ...query, id: cursor }) === undefined) {
      throw new PennyError({ code: 'resource_missing', param: query.startingAfter === undefined ? 'ending_before'
        : 'starting_after', message: `No such payout: '${cursor}'` });
    }
    return store.selectPayoutPage(this.pool, query);
  }

  /**
   * Cancels a payout the PSP has not taken (pending, its call refused): the money returns with a
   * `payout_cancel` transaction. Any other payout is refused, as Stripe refuses one already
   * submitted to the bank.
   */
  async cancel(client: pg.PoolClient, key: PayoutKey): Promise<PayoutRow> {
    return inTransaction(client, async () => {
      const payout = await store.selectPayout(client, key, { forUpdate: true });
      if (payout === undefined) throw missingPayout(key.id);
      if (payout.status !== 'pending' || payout.pspCall !== 'refused') {
        throw new PennyError({ code: 'payout_not_cancelable', param: 'id', message: payout.status === 'pending'
          ? 'This payout has already been submitted to the bank and can no longer be canceled.'
          : `Payouts can only be canceled while they are pending; this one is ${payout.status}.` });
      }
      return this.returnMoney(client, payout, { status: 'canceled', failureCode: null });
    });
  }

  /**
   * What the PSP reports about a payout (a webhook or a look-up), under the payout's row lock in
   * the caller's transaction: applied only forward along the transition table; a repeat or a late
   * report changes nothing. A paid payout the bank returned (`failed` after `paid`, as Stripe's
   * can) fails as any other does: its money returns once. Answers what was done, for the inbox's note.
   */
  async applyPspOperation(client: pg.PoolClient, operation: PspOperation & { connector: string }):
  Promise<{ status: 'processed' | 'ignored' | 'parked'; note: string }> {
    const payout = await store.lockPayoutById(client, operation.reference);
    if (payout === undefined) return { status: 'parked', note: `payout ${operation.reference} is not known yet` };
    if (payout.connector !== operation.connector) {
      return { status: 'ignored', note: `payout ${payout.id} belongs to connector ${payout.connector}` };
    }
    const current = payout.pspCall === 'sent' ? payout
      : await store.updatePspCall(client, payout, { pspCall: 'sent', pspReference: operation.pspReference });
    const target = operation.outcome;
    if (current.status === 'canceled') {
      // Canceled only after the PSP refused it: the PSP contradicts itself, and an operator must look.
      raiseAlert(this.options.logger, 'payout_canceled_reported', { payout: payout.id, outcome: target },
        'the PSP reports a canceled payout');
      return { status: 'ignored', note: `payout ${payout.id} was canceled; the PSP reports ${target}` };
    }
    if (!isPayoutStatus(target) || target === 'canceled' || target === 'pending') {
      if (target === 'pending') {
        return current === payout ? { status: 'ignored', note: `payout ${payout.id} is pending at the PSP` }
          : { status: 'processed', note: `payout ${payout.id} taken by the PSP` };
      }
      return { status: 'ignored', note: `a payout outcome ${target} is not known to Penny` };
    }
    if (target === current.status) return { status: 'ignored', note: `payout ${payout.id} is already ${target}` };
    if (!canMove(current.status, target)) {
      return { status: 'ignored', note: `payout ${payout.id} is ${current.status}; ${target} is late or a repeat` };
    }
    if (target === 'failed') {
      await this.returnMoney(client, current, { status: 'failed', failureCode: operation.failureCode ?? 'could_not_process' });
    } else {
      await this.move(client, current, target);
    }
    return { status: 'processed', note: `payout ${payout.id} ${target}` };
  }

  private async move(client: pg.PoolClient, payout: PayoutRow, status: 'in_transit' | 'paid'): Promise<PayoutRow> {
    assertPayoutTransition(payout.status, status);
    const moved = await store.updatePayoutStatus(client, payout, { status, failureCode: null, failureMessage: null,
      returnEntryId: null, failureBalanceTransactionId: null });
    await this.announce(client, { before: payout, after: moved });
    return moved;
  }

  /** The reverse entry and a `payout_failure` or `payout_cancel` transaction (+amount, available). */
  private async returnMoney(client: pg.PoolClient, payout: PayoutRow,
    change: { status: 'failed' | 'canceled'; failureCode: string | null }): Promise<PayoutRow> {
    assertPayoutTransition(payout.status, change.status);
    const kind = change.status === 'failed' ? 'failure' : 'cancel';
    const accounts = await this.options.balances.accounts.accountsFor(client,
      { ownerId: payout.accountId, currency: payout.currency });
    const created = await this.options.ledger.createEntriesIn(client, [internalEntry({
      reference: `penny:payout:${payout.id}:${kind}`, description: `Payout ${payout.id} ${change.status}`,
      legs: [[accounts.psp_receivable, 'debit', payout.amountMinor],
        [accounts.merchant_available, 'credit', payout.amountMinor]],
    })]);
    const transaction = await this.options.balances.recordMovement(client, {
      merchantId: payout.merchantId, accountId: payout.accountId, type: `payout_${kind}`,
      reportingCategory: 'payout_reversal', sourceId: payout.id, currency: payout.currency,
      amountMinor: payout.amountMinor, description: change.status === 'failed' ? 'PAYOUT FAILURE' : 'PAYOUT CANCEL',
    });
    const after = await store.updatePayoutStatus(client, payout, {
      status: change.status, failureCode: change.failureCode,
      failureMessage: change.failureCode === null ? null
        : payoutFailureMessages[change.failureCode] ?? payoutFailureMessages.could_not_process ?? null,
      returnEntryId: created.entries[0]?.id ?? '', failureBalanceTransactionId: transaction.id,
    });
    await this.announce(client, { before: payout, after });
    return after;
  }

  /** payout.updated with the previous status, and payout.paid, .failed or .canceled. */
  private async announce(client: pg.PoolClient, change: { before: PayoutRow; after: PayoutRow }): Promise<void> {
    const { before, after } = change;
    const object = presentPayout(after);
    const account = after.accountId;
    await recordEvent(client, { merchantId: after.merchantId, account, type: 'payout.updated', object,
      previousAttributes: { status: before.status } });
    const finals: Partial<Record<PayoutStatus, string>> = { paid: 'payout.paid', failed: 'payout.failed',
      canceled: 'payout.canceled' };
    const type = finals[after.status];
    if (type !== undefined) await recordEvent(client, { merchantId: after.merchantId, account, type, object });
  }

  /**
   * The `payouts` worker: payouts whose call is unknown (the answer was lost, or the request died
   * before it), once `limits.payoutLookupGraceMs` old, up to `limits.payoutLookupBatchMax` a run.
   * The PSP's record is applied; a payout it has no record of is sent again with the same key while
   * the PSP keeps keys, and after that taken as refused (nothing moved; it can be canceled).
   */
  async resolveUnknown(): Promise<number> {
    const due = await store.selectUnknownPayouts(this.pool, {
      before: new Date(nowMs() - limits.payoutLookupGraceMs).toISOString(), limit: limits.payoutLookupBatchMax });
    for (const payout of due) {
      try {
        await this.resolveOne(payout);
      } catch (error) {
        this.options.logger.warn({ err: error, payout: payout.id }, 'a payout look-up failed; it is tried again');
      }
    }
    return due.length;
  }

  /**
   * A payout the PSP's settlement report says it paid (a PaidOut line), whose webhooks may never
   * have come: Penny asks the PSP and applies what it says, as the webhook would have. Found by
   * penny simulate: with the webhook lost, the payout stayed in transit and its line was a break.
   */
  async syncFromPsp(connectors: ConnectorRegistry, request: PspSyncRequest): Promise<void> {
    if ((await store.selectPayoutById(this.pool, request.reference))?.status === 'paid') return;
    const operations = await connectors.get(request.connectorId).lookup({ reference: request.reference });
    const found = operations.find((operation) => operation.kind === 'payout');
    if (found === undefined) return;
    await withTransaction(this.pool, (client) => this.applyPspOperation(client,
      { ...found, connector: request.connectorId }));
  }

  private async resolveOne(payout: PayoutRow): Promise<void> {
    const connector = this.options.connectors.get(payout.connector);
    const found = (await connector.lookup({ reference: payout.id })).find((operation) => operation.kind === 'payout');
    if (found !== undefined) {
      await withTransaction(this.pool, (client) => this.applyPspOperation(client,
        { ...found, connector: payout.connector }));
      return;
    }
    const ageMs = nowMs() - Date.parse(payout.createdAt);
    if (ageMs < connector.capabilities.idempotencyKeyRetentionMs) {
      await this.send(payout, { firstTry: false });
      return;
    }
    await withTransaction(this.pool, async (client) => {
      const locked = await store.selectPayout(client, payout, { forUpdate: true });
      if (locked?.pspCall === 'unknown') await store.updatePspCall(client, locked, { pspCall: 'refused', pspReference: null });
    });
  }

  private async find(key: PayoutKey): Promise<PayoutRow> {
    const payout = await store.selectPayout(this.pool, key);
    if (payout === undefined) throw missingPayout(key.id);
    return payout;
  }
}

/** `amountMinor` rounded down to a multiple of `stepMinor`; zero or less stays as it is. */
function roundedDown(amountMinor: bigint, stepMinor: bigint): bigint {
  return amountMinor > 0n ? amountMinor - amountMinor % stepMinor : amountMinor;
}

function insufficientBalance(): PennyError {
  return new PennyError({ code: 'balance_insufficient', param: 'amount',
    message: 'You have insufficient funds in your account for this payout.' });
}

function missingPayout(id: string): PennyError {
  return new PennyError({ code: 'resource_missing', param: 'id',
    message: /^po_[A-Za-z0-9]{1,64}$/.test(id) ? `No such payout: '${id}'` : 'No such payout.' });
}

/** The payout a PSP's record names by Penny's reference (po_…); undefined for one Penny never made. */
export function payoutOfReference(db: Queryable, reference: string): Promise<PayoutRow | undefined> {
  return reference.startsWith('po_') ? store.selectPayoutById(db, reference) : Promise.resolve(undefined);
}
