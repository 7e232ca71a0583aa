import { named } from '../../db/pool.js';
import type pg from 'pg';
import { newId } from '../../ids.js';
import type {
  AuthorizeInput, AuthorizeOutput, CaptureInput, Connector, RefundInput, VoidInput,
} from '../connector.js';

/**
 * The built-in sandbox PSP, in process for now: it keeps its own durable record of every money
 * movement (sandbox_psp_operations) and answers as an acquirer would, deterministically from
 * Stripe's test payment methods. A repeated idempotency key returns what was done the first time.
 * Penny reaches it only through the Connector interface, so moving it out of process changes no
 * caller.
 */
export const sandboxConnectorId = 'sandbox';

interface Decline {
  readonly code: string;
  readonly declineCode: string;
  readonly message: string;
}

const declines: Readonly<Record<string, Decline>> = {
  pm_card_chargeDeclined: { code: 'card_declined', declineCode: 'generic_decline', message: 'Your card was declined.' },
  pm_card_visa_chargeDeclined: { code: 'card_declined', declineCode: 'generic_decline', message: 'Your card was declined.' },
  pm_card_chargeDeclinedInsufficientFunds: {
    code: 'card_declined', declineCode: 'insufficient_funds', message: 'Your card has insufficient funds.',
  },
  pm_card_visa_chargeDeclinedInsufficientFunds: {
    code: 'card_declined', declineCode: 'insufficient_funds', message: 'Your card has insufficient funds.',
  },
  pm_card_chargeDeclinedExpiredCard: {
    code: 'expired_card', declineCode: 'expired_card', message: 'Your card has expired.',
  },
  pm_card_chargeDeclinedIncorrectCvc: {
    code: 'incorrect_cvc', declineCode: 'incorrect_cvc', message: 'Your card\'s security code is incorrect.',
  },
  pm_card_chargeDeclinedProcessingError: {
    code: 'processing_error', declineCode: 'processing_error',
    message: 'An error occurred while processing your card. Try again in a little bit.',
  },
};

const approved = new Set(['pm_card_visa', 'pm_card_mastercard', 'tok_visa', 'pm_card_amex']);
const authenticationRequired = new Set(['pm_card_authenticationRequired', 'pm_card_threeDSecure2Required']);

export class SandboxConnector implements Connector {
  readonly id = sandboxConnectorId;
  readonly capabilities = { manualCapture: true, partialCapture: true, refunds: true };
  /** The sandbox's published price list: 2% + 20 minor units. */
  readonly priceList = { basisPoints: 200, fixedMinor: 20n };

  constructor(private readonly pool: pg.Pool) {}

  /**
   * A repeated key answers what the sandbox recorded the first time, not what it would decide now:
   * its own record is the ground truth of what happened to the customer's money.
   */
  async authorize(input: AuthorizeInput): Promise<AuthorizeOutput> {
    const decided = this.decideAuthorization(input);
    const recorded = await this.record({
      idempotencyKey: input.idempotencyKey, reference: input.reference, kind: 'authorize', parent: null,
      amountMinor: input.amountMinor, currency: input.currency, outcome: decided.outcome,
      declineCode: decided.outcome === 'declined' ? decided.declineCode : null,
    });
    return answerFromRecord(input.reference, recorded);
  }

  async capture(input: CaptureInput): Promise<{ pspReference: string }> {
    return this.record({
      idempotencyKey: input.idempotencyKey, reference: input.reference, kind: 'capture', parent: input.pspReference,
      amountMinor: input.amountMinor, currency: null, outcome: 'captured', declineCode: null,
    });
  }

  async void(input: VoidInput): Promise<{ pspReference: string }> {
    return this.record({
      idempotencyKey: input.idempotencyKey, reference: input.reference, kind: 'void', parent: input.pspReference,
      amountMinor: null, currency: null, outcome: 'voided', declineCode: null,
    });
  }

  async refund(input: RefundInput): Promise<{ pspReference: string }> {
    return this.record({
      idempotencyKey: input.idempotencyKey, reference: input.reference, kind: 'refund', parent: input.pspReference,
      amountMinor: input.amountMinor, currency: null, outcome: 'refunded', declineCode: null,
    });
  }

  /** The outcome, before the sandbox assigns its reference (filled in by `authorize`). */
  private decideAuthorization(input: AuthorizeInput): AuthorizeOutput {
    const pspReference = '';
    const decline = declines[input.paymentMethod];
    if (decline !== undefined) return { outcome: 'declined', pspReference, ...decline };
    if (authenticationRequired.has(input.paymentMethod) && !input.authenticated) {
      return {
        outcome: 'requires_action', pspReference,
        redirectUrl: `https://sandbox.penny.invalid/3ds/${input.reference}`,
      };
    }
    if (approved.has(input.paymentMethod) || authenticationRequired.has(input.paymentMethod)) {
      return { outcome: input.capture ? 'captured' : 'authorized', pspReference };
    }
    return {
      outcome: 'declined', pspReference, code: 'card_declined', declineCode: 'generic_decline',
      message: `The sandbox does not know the payment method ${input.paymentMethod}.`,
    };
  }

  /** Records an operation once per idempotency key; a repeat returns the first record. */
  private async record(operation: {
    idempotencyKey: string; reference: string; kind: string; parent: string | null; amountMinor: bigint | null;
    currency: string | null; outcome: string; declineCode: string | null;
  }): Promise<RecordedOperation> {
    const result = await this.pool.query<{ psp_reference: string; outcome: string; decline_code: string | null }>(
      named(`WITH inserted AS (
         INSERT INTO sandbox_psp_operations (idempotency_key, merchant_reference, kind, psp_reference,
           parent_psp_reference, amount_minor, currency, outcome, decline_code)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (idempotency_key) DO NOTHING
         RETURNING psp_reference, outcome, decline_code)
       SELECT psp_reference, outcome, decline_code FROM inserted
       UNION ALL
       SELECT psp_reference, outcome, decline_code FROM sandbox_psp_operations WHERE idempotency_key = $1
         AND NOT EXISTS (SELECT 1 FROM inserted)`),
      [operation.idempotencyKey, operation.reference, operation.kind, newId('sbx'), operation.parent,
        operation.amountMinor?.toString() ?? null, operation.currency, operation.outcome, operation.declineCode],
    );
    const row = result.rows[0];
    if (row === undefined) throw new Error('the sandbox neither recorded nor found an operation');
    return { pspReference: row.psp_reference, outcome: row.outcome, declineCode: row.decline_code };
  }
}

interface RecordedOperation {
  readonly pspReference: string;
  readonly outcome: string;
  readonly declineCode: string | null;
}

function answerFromRecord(reference: string, recorded: RecordedOperation): AuthorizeOutput {
  const pspReference = recorded.pspReference;
  switch (recorded.outcome) {
    case 'authorized':
    case 'captured':
      return { outcome: recorded.outcome, pspReference };
    case 'requires_action':
      return { outcome: 'requires_action', pspReference, redirectUrl: `https://sandbox.penny.invalid/3ds/${reference}` };
    case 'declined': {
      const decline = Object.values(declines).find((item) => item.declineCode === recorded.declineCode)
        ?? { code: 'card_declined', declineCode: recorded.declineCode ?? 'generic_decline', message: 'Your card was declined.' };
      return { outcome: 'declined', pspReference, ...decline };
    }
    default:
      throw new Error(`the sandbox recorded an authorization with outcome ${recorded.outcome}`);
  }
}
