import { minorToStripeBalanceUnits } from '../money/stripe-currency.js';
import type { DisputeRow } from './dispute-store.js';

/** Stripe's Dispute object; the amount in Stripe's units of the currency. */
export function presentDispute(dispute: DisputeRow) {
  const created = Math.floor(Date.parse(dispute.createdAt) / 1000);
  return {
    id: dispute.id,
    object: 'dispute',
    amount: minorToStripeBalanceUnits(dispute.currency, dispute.amountMinor),
    balance_transactions: [],
    charge: dispute.chargeId,
    created,
    currency: dispute.currency.toLowerCase(),
    enhanced_eligibility_types: [],
    evidence: { ...emptyEvidence, ...dispute.evidence },
    evidence_details: {
      due_by: created + 7 * 86_400,
      enhanced_eligibility: {},
      has_evidence: Object.keys(dispute.evidence).length > 0,
      past_due: false,
      submission_count: Object.keys(dispute.evidence).length > 0 ? 1 : 0,
    },
    is_charge_refundable: false,
    livemode: false,
    metadata: dispute.metadata,
    payment_intent: dispute.paymentIntentId,
    payment_method_details: { type: 'card', card: { brand: 'visa', case_type: 'chargeback', network_reason_code: null } },
    reason: dispute.reason,
    status: dispute.status,
  };
}

/** The evidence fields a merchant may give, as text (Stripe's file fields are not taken). */
export const disputeEvidenceFields = ['access_activity_log', 'billing_address', 'cancellation_policy_disclosure',
  'cancellation_rebuttal', 'customer_communication', 'customer_email_address', 'customer_name',
  'customer_purchase_ip', 'duplicate_charge_explanation', 'duplicate_charge_id', 'product_description',
  'refund_policy_disclosure', 'refund_refusal_explanation', 'service_date', 'shipping_address', 'shipping_carrier',
  'shipping_date', 'shipping_tracking_number', 'uncategorized_text'] as const;

const emptyEvidence: Record<string, null> = Object.fromEntries(disputeEvidenceFields.map((field) => [field, null]));
