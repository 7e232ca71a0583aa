import { businessProfileFields, type PayoutSchedule } from './account-commands.js';
import type { ConnectedAccountRow } from './account-store.js';
import type { BankAccountRow } from './bank-account-store.js';
import { countryCurrency } from './bank-numbers.js';

/**
 * Stripe's Account and BankAccount objects. Every field the stripe package declares always present
 * is here, null where Stripe sends null for what Penny does not keep. In test mode a connected
 * account needs no verification: it can take charges at once, and can be paid out once it has a
 * bank account (until then `external_account` is its one requirement due).
 */
export function presentConnectedAccount(account: ConnectedAccountRow) {
  const profile = account.businessProfile;
  const field = (name: (typeof businessProfileFields)[number]) => profile[name] ?? null;
  const due = account.hasBankAccount ? [] : ['external_account'];
  const schedule = account.payoutSchedule;
  return {
    id: account.id,
    object: 'account',
    business_profile: {
      annual_revenue: null, estimated_worker_count: null, mcc: field('mcc'),
      minority_owned_business_designation: null, name: field('name'),
      product_description: field('product_description'), specified_commercial_transactions_act_url: null,
      support_address: null, support_email: field('support_email'), support_phone: field('support_phone'),
      support_url: field('support_url'), url: field('url'),
    },
    business_type: null,
    capabilities: { card_payments: 'active', transfers: 'active' },
    charges_enabled: true,
    country: account.country,
    created: Math.floor(Date.parse(account.createdAt) / 1000),
    default_currency: countryCurrency(account.country) ?? null,
    details_submitted: true,
    email: account.email,
    future_requirements: requirements([]),
    metadata: { ...account.metadata },
    payouts_enabled: account.hasBankAccount,
    requirements: requirements(due),
    settings: {
      branding: { icon: null, logo: null, primary_color: null, secondary_color: null },
      card_payments: { decline_on: { avs_failure: false, cvc_failure: false }, statement_descriptor_prefix: null,
        statement_descriptor_prefix_kana: null, statement_descriptor_prefix_kanji: null },
      dashboard: { display_name: field('name'), timezone: 'Etc/UTC' },
      payments: { statement_descriptor: null, statement_descriptor_kana: null, statement_descriptor_kanji: null,
        statement_descriptor_prefix_kana: null, statement_descriptor_prefix_kanji: null },
      payouts: {
        debit_negative_balances: true,
        schedule: presentPayoutSchedule(schedule),
        statement_descriptor: null,
      },
    },
    tos_acceptance: { date: null, ip: null, user_agent: null },
    type: account.type,
  };
}

/** Stripe's `settings.payouts.schedule`: the anchor only for the interval that has one. */
export function presentPayoutSchedule(schedule: PayoutSchedule) {
  return {
    // Penny pays out what is available, and funds become available when the PSP settles them.
    delay_days: 0, interval: schedule.interval,
    ...(schedule.interval === 'weekly' ? { weekly_anchor: schedule.weeklyAnchor } : {}),
    ...(schedule.interval === 'monthly' ? { monthly_anchor: schedule.monthlyAnchor } : {}),
  };
}

function requirements(currentlyDue: string[]) {
  return {
    alternatives: [], current_deadline: null, currently_due: currentlyDue,
    disabled_reason: currentlyDue.length === 0 ? null : 'requirements.past_due',
    errors: [], eventually_due: currentlyDue, past_due: currentlyDue, pending_verification: [],
  };
}

/** Stripe's BankAccount: the number only as `last4`, and its keyed `fingerprint`. */
export function presentBankAccount(bank: BankAccountRow) {
  const none = { currently_due: [], errors: [], past_due: [], pending_verification: [] };
  return {
    id: bank.id,
    object: 'bank_account',
    account: bank.accountId,
    account_holder_name: bank.accountHolderName,
    account_holder_type: bank.accountHolderType,
    account_type: null,
    available_payout_methods: ['standard'],
    bank_name: bank.bankName,
    country: bank.country,
    currency: bank.currency,
    default_for_currency: bank.defaultForCurrency,
    fingerprint: bank.fingerprint,
    future_requirements: none,
    last4: bank.last4,
    metadata: { ...bank.metadata },
    requirements: none,
    routing_number: bank.routingNumber,
    status: bank.status,
  };
}
