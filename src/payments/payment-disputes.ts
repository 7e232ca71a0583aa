import type pg from 'pg';
import type { ConnectorRegistry, PspOperation, PspSyncRequest } from '../connectors/connector.js';
import { withTransaction, type Queryable } from '../db/pool.js';
import { PennyError } from '../errors.js';
import { recordEvent } from '../events/event-store.js';
import { newId } from '../ids.js';
import { stripeAmountToMinor } from '../money/stripe-currency.js';
import * as disputeStore from './dispute-store.js';
import type { DisputeRow } from './dispute-store.js';
import { presentDispute } from './dispute-presenter.js';
import type { PaymentLedger } from './payment-ledger.js';
import { chargeOfReference } from './payment-service.js';
import * as store from './payment-store.js';

/**
 * Disputes (Stripe's du_): opened and decided by the PSP (chargeback events through the inbox),
 * answered by the merchant (evidence, metadata) or accepted (close). Opening withdraws the
 * disputed amount and the PSP's dispute fee from the merchant's available balance; a won dispute
 * returns the amount, never the fee. Every step runs under the charge's row lock, once: a repeated
 * or late PSP event changes nothing.
 */
export interface ChargebackEvent {
  readonly connector: string;
  readonly operation: PspOperation;
}

export type ChargebackDecision = { readonly status: 'processed' | 'ignored' | 'parked'; readonly note: string };

/** A dispute may move only forward: from needs_response or under_review to won or lost. */
const open: readonly disputeStore.DisputeStatus[] = ['needs_response', 'under_review'];

export class PaymentDisputes {
  constructor(private readonly pool: pg.Pool, private readonly paymentLedger: PaymentLedger) {}

  /** A PSP chargeback event, in the inbox's transaction: opens the dispute, or decides it. */
  async applyChargeback(client: pg.PoolClient, event: ChargebackEvent): Promise<ChargebackDecision> {
    const { operation } = event;
    const found = await chargeOfReference(client, operation.reference);
    if (found === undefined) return { status: 'parked', note: `no charge for ${operation.reference}` };
    if (found.connector !== event.connector) {
      return { status: 'parked', note: `${found.id} is handled by connector ${found.connector}, not ${event.connector}` };
    }
    const charge = await store.selectCharge(client, found, { forUpdate: true }) ?? found;
    const dispute = await disputeStore.selectDisputeByPspReference(client,
      { connector: event.connector, pspReference: operation.pspReference }, { forUpdate: true });
    if (operation.outcome === 'needs_response') {
      if (dispute !== undefined) return { status: 'ignored', note: 'already applied' };
      return this.openDispute(client, { charge, event });
    }
    if (operation.outcome !== 'won' && operation.outcome !== 'lost') {
      return { status: 'ignored', note: `a chargeback ${operation.outcome} is not known to Penny` };
    }
    if (dispute === undefined) return { status: 'parked', note: 'the dispute is not opened yet' };
    if (!open.includes(dispute.status)) return { status: 'ignored', note: `already ${dispute.status}` };
    await this.decide(client, { dispute, outcome: operation.outcome });
    return { status: 'processed', note: `dispute ${operation.outcome}` };
  }

  /**
   * A dispute the PSP's settlement report names (a Chargeback or ChargebackReversed line) whose
   * webhook may never have come: Penny asks the PSP for the charge's operations and applies each
   * chargeback as its webhook would have (opened first, then decided), once. Found by penny
   * simulate: with a dispute's webhook lost, its Chargeback line was a reconciliation break.
   */
  async syncFromPsp(connectors: ConnectorRegistry, request: PspSyncRequest): Promise<void> {
    const known = await disputeStore.selectDisputeByPspReference(this.pool,
      { connector: request.connectorId, pspReference: request.pspReference });
    if (known !== undefined && (request.lineType === 'Chargeback' || known.status === 'won')) return;
    const operations = await connectors.get(request.connectorId).lookup({ reference: request.reference });
    for (const operation of operations.filter((item) => item.kind === 'chargeback')) {
      await withTransaction(this.pool, async (client) => {
        const event = { connector: request.connectorId, operation };
        if (operation.outcome !== 'needs_response') {
          await this.applyChargeback(client, { ...event, operation: { ...operation, outcome: 'needs_response' } });
        }
        await this.applyChargeback(client, event);
      });
    }
  }

  async retrieve(merchantId: string, id: string): Promise<DisputeRow> {
    const dispute = await disputeStore.selectDispute(this.pool, { merchantId, id });
    if (dispute === undefined) throw noSuchDispute(id);
    return dispute;
  }

  async list(query: Parameters<typeof disputeStore.selectDisputePage>[1]) {
    const cursor = query.startingAfter ?? query.endingBefore;
    if (cursor !== undefined && await disputeStore.selectDispute(this.pool,
      { merchantId: query.merchantId, id: cursor }) === undefined) {
      throw new PennyError({ code: 'resource_missing', param: query.startingAfter === undefined ? 'ending_before'
        : 'starting_after', message: `No such dispute: '${cursor}'` });
    }
    return disputeStore.selectDisputePage(this.pool, query);
  }

  /**
   * The merchant's evidence or metadata, in the caller's transaction (the idempotent request's,
   * which stores its answer with it); evidence makes an open dispute `under_review`.
   */
  async update(client: pg.PoolClient, key: { merchantId: string; id: string },
    change: { evidence: Record<string, string> | undefined; metadata: Record<string, string> | undefined }) {
    const dispute = await this.lockedOpen(client, key);
    const updated = await disputeStore.updateDispute(client, dispute, {
      ...(change.evidence === undefined ? {} : { evidence: { ...dispute.evidence, ...change.evidence },
        status: 'under_review' as const }),
      ...(change.metadata === undefined ? {} : { metadata: { ...dispute.metadata, ...change.metadata } }),
    });
    await recordDisputeEvent(client, 'charge.dispute.updated', updated);
    return updated;
  }

  /** Accepting the dispute, in the caller's transaction: it is lost; the withdrawn funds stay with the cardholder. */
  async close(client: pg.PoolClient, key: { merchantId: string; id: string }): Promise<DisputeRow> {
    const dispute = await this.lockedOpen(client, key);
    return this.decide(client, { dispute, outcome: 'lost' });
  }

  private async openDispute(client: pg.PoolClient, opening: { charge: store.ChargeRow; event: ChargebackEvent }):
  Promise<ChargebackDecision> {
    const { charge, event } = opening;
    const currency = charge.currency.toUpperCase();
    const amountMinor = event.operation.amountMinor ?? stripeAmountToMinor(charge.currency, charge.amountCaptured);
    const opened = await disputeStore.insertDispute(client, {
      merchantId: charge.merchantId, id: newId('du'), chargeId: charge.id, paymentIntentId: charge.paymentIntentId,
      connector: event.connector, pspReference: event.operation.pspReference, amountMinor,
      feeMinor: event.operation.disputeFeeMinor ?? 0n, currency, reason: event.operation.reason ?? 'general',
    });
    if (opened === undefined) return { status: 'ignored', note: 'already applied' };
    await store.markChargeDisputed(client, charge);
    await this.post(client, { dispute: opened, reversal: false });
    await recordDisputeEvent(client, 'charge.dispute.created', opened);
    await recordDisputeEvent(client, 'charge.dispute.funds_withdrawn', opened);
    return { status: 'processed', note: 'dispute opened' };
  }

  private async decide(client: Queryable, decision: { dispute: DisputeRow; outcome: 'won' | 'lost' }):
  Promise<DisputeRow> {
    const decided = await disputeStore.updateDispute(client, decision.dispute, { status: decision.outcome });
    if (decision.outcome === 'won') {
      await this.post(client, { dispute: decided, reversal: true });
      await recordDisputeEvent(client, 'charge.dispute.funds_reinstated', decided);
    }
    await recordDisputeEvent(client, 'charge.dispute.closed', decided);
    return decided;
  }

  private async post(client: Queryable, posting: { dispute: DisputeRow; reversal: boolean }): Promise<void> {
    const { dispute } = posting;
    const accounts = await this.paymentLedger.accountsFor(client, dispute.merchantId, dispute.currency);
    await this.paymentLedger.dispute(client, { merchantId: dispute.merchantId, currency: dispute.currency, accounts,
      disputeId: dispute.id, amountMinor: dispute.amountMinor, feeMinor: dispute.feeMinor,
      reversal: posting.reversal });
  }

  private async lockedOpen(client: pg.PoolClient, key: { merchantId: string; id: string }): Promise<DisputeRow> {
    const dispute = await disputeStore.selectDispute(client, key, { forUpdate: true });
    if (dispute === undefined) throw noSuchDispute(key.id);
    if (!open.includes(dispute.status)) {
      throw new PennyError({ code: 'dispute_already_closed', message: `Dispute ${dispute.id} is already ${dispute.status}.` });
    }
    return dispute;
  }
}

async function recordDisputeEvent(db: Queryable, type: string, dispute: DisputeRow): Promise<void> {
  await recordEvent(db, { merchantId: dispute.merchantId, type, object: presentDispute(dispute) });
}

function noSuchDispute(id: string): PennyError {
  return new PennyError({ code: 'resource_missing', param: 'dispute', message: `No such dispute: '${id}'` });
}
