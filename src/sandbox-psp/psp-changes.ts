import type pg from 'pg';
import { nowIso, nowMs } from '../clock.js';
import { createDisputeMethod, payoutResult } from './psp-decisions.js';
import { openScheduledDispute } from './psp-disputes.js';
import type { FaultInjector } from './psp-faults.js';
import { enqueueWebhook } from './psp-outbox.js';
import {
  claimDueChanges, takeDueDisputeOpenings, updateOperationState, type OperationRow, type StateChange,
} from './psp-store.js';

/**
 * What the sandbox does later, on its clock (the system clock, or Penny's controlled clock, so
 * advancing it makes changes due): a pending authorization resolves; a payout goes pending →
 * in_transit → paid | failed (the test bank account decides), `payout_step_ms` apart; a dispute
 * with a delay is decided; a captured pm_card_createDispute charge is disputed. Each change
 * queues its webhook in the same transaction. The `sandbox-psp-changes` worker runs this.
 */
const batchMax = 100;

export async function runDueChanges(client: pg.PoolClient, injector: FaultInjector): Promise<number> {
  const due = await claimDueChanges(client, batchMax);
  for (const operation of due) {
    const changed = await updateOperationState(client, operation.pspReference, nextChange(operation, injector));
    await enqueueWebhook(client, changed, injector);
  }
  const disputed = await takeDueDisputeOpenings(client, batchMax);
  for (const charge of disputed) await openScheduledDispute(client, injector, charge);
  return due.length + disputed.length;
}

/** The change an operation whose time came makes: the outcome it was given, and what follows. */
function nextChange(operation: OperationRow, injector: FaultInjector): StateChange {
  const outcome = operation.resolvedOutcome ?? operation.outcome;
  switch (operation.kind) {
    case 'payout': {
      const result = payoutResult(operation.destination ?? '');
      if (outcome === 'in_transit') {
        return { outcome, next: { resolvesAt: later(injector.payoutStepMs()), outcome: result.outcome } };
      }
      return { outcome, decidedAt: nowIso(), failureCode: result.outcome === 'failed' ? result.failureCode : null };
    }
    case 'chargeback':
      return { outcome, decidedAt: nowIso() };
    case 'authorize':
      // A pending pm_card_createDispute charge that resolves captured is disputed in its turn. The
      // decision is dated now: a charge captured today settles today, whenever it was asked for.
      return { outcome, decidedAt: nowIso(), disputeAt: outcome === 'captured'
        && operation.paymentMethod === createDisputeMethod ? later(injector.createDisputeAfterMs()) : null };
    default:
      return { outcome };
  }
}

function later(ms: number): string {
  return new Date(nowMs() + ms).toISOString();
}
