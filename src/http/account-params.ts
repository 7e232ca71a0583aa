import {
  accountHolderTypes, accountTypes, businessProfileFields, payoutIntervals, weekdays, type BusinessProfile,
  type CreateAccountCommand, type CreateBankAccountCommand, type MetadataChange, type PayoutSchedule,
  type UpdateAccountCommand, type UpdateBankAccountCommand,
} from '../accounts/account-commands.js';
import { isCountryCode } from '../accounts/bank-numbers.js';
import { parseStripeCurrency } from '../money/stripe-currency.js';
import { invalid, missing, readEnum, readObject, readString } from '../validation.js';
import { readStripeBoolean, readStripeInteger } from './stripe-form.js';
import { readStripeMetadata } from './stripe-payment-params.js';

/**
 * The Stripe edge of connected accounts and their bank accounts: parameters as Stripe's API takes
 * them (form-encoded strings or JSON), read into the typed commands of src/accounts. Refusals here
 * happen before the idempotency layer, so they are never stored.
 */

export function parseCreateAccount(body: unknown): CreateAccountCommand {
  const object = readObject(body ?? {}, '', ['type', 'country', 'email', 'business_profile', 'metadata', 'settings',
    'capabilities', 'expand']);
  if (object.type === undefined) throw missing('type');
  readCapabilities(object.capabilities);
  return {
    type: readEnum(object.type, 'type', accountTypes) ?? 'custom',
    // Stripe defaults to the platform's country; a Penny merchant has none, so the default is US.
    country: object.country === undefined ? 'US' : readCountry(object.country, 'country'),
    email: readEmail(object.email) ?? null,
    businessProfile: object.business_profile === undefined ? {} : readBusinessProfile(object.business_profile),
    metadata: readStripeMetadata(object.metadata),
    payoutSchedule: readSettings(object.settings) ?? { interval: 'manual' },
  };
}

export function parseUpdateAccount(body: unknown): UpdateAccountCommand {
  const object = readObject(body ?? {}, '', ['email', 'business_profile', 'metadata', 'settings', 'capabilities',
    'expand']);
  readCapabilities(object.capabilities);
  const email = readEmail(object.email);
  return {
    email: email === '' ? null : email,
    businessProfile: object.business_profile === undefined || object.business_profile === '' ? undefined
      : readBusinessProfile(object.business_profile),
    metadata: readMetadataChange(object.metadata),
    payoutSchedule: readSettings(object.settings),
  };
}

/** Stripe's metadata on update: `metadata[k]=` unsets k, `metadata=` clears all. */
export function readMetadataChange(value: unknown): MetadataChange {
  const unset = value !== undefined && value !== '' && typeof value === 'object' && value !== null
    ? Object.entries(value as Record<string, unknown>).filter(([, item]) => item === '').map(([key]) => key)
    : [];
  return { set: readStripeMetadata(value), unset, clearAll: value === '' };
}

function readCountry(value: unknown, param: string): string {
  const text = readString(value, param, { lengthMax: 2, required: true });
  const code = /^[A-Za-z]{2}$/.test(text) ? text.toUpperCase() : '';
  if (!isCountryCode(code)) {
    throw invalid(param, 'The country must be an ISO 3166-1 alpha-2 code, such as US or DE.', 'country_code_invalid');
  }
  return code;
}

/** An address with one @ and a dot in its domain; '' (unset on update) is passed through. */
function readEmail(value: unknown): string | undefined {
  const email = readString(value, 'email', { lengthMax: 800 });
  if (email === undefined || email === '') return email;
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) {
    throw invalid('email', 'Invalid email address: an email is name@domain.', 'email_invalid');
  }
  return email;
}

function readBusinessProfile(value: unknown): BusinessProfile {
  const object = readObject(value, 'business_profile', businessProfileFields);
  const profile: BusinessProfile = {};
  for (const field of businessProfileFields) {
    const text = readString(object[field], `business_profile[${field}]`, { lengthMax: 5000 });
    if (text === undefined) continue;
    if (field === 'mcc' && text !== '' && !/^[0-9]{4}$/.test(text)) {
      throw invalid('business_profile[mcc]', 'An MCC is four digits.');
    }
    profile[field] = text === '' ? null : text;
  }
  return profile;
}

/** `capabilities[card_payments][requested]=true` and the like: accepted; in test mode every capability is active. */
function readCapabilities(value: unknown): void {
  if (value === undefined) return;
  const object = readObject(value, 'capabilities', Object.keys(value as object));
  for (const [name, capability] of Object.entries(object)) {
    const fields = readObject(capability, `capabilities[${name}]`, ['requested']);
    readStripeBoolean(fields.requested, `capabilities[${name}][requested]`);
  }
}

/** `settings[payouts][schedule]`; undefined when not given. */
function readSettings(value: unknown): PayoutSchedule | undefined {
  if (value === undefined) return undefined;
  const settings = readObject(value, 'settings', ['payouts']);
  if (settings.payouts === undefined) return undefined;
  const payouts = readObject(settings.payouts, 'settings[payouts]', ['schedule']);
  if (payouts.schedule === undefined) return undefined;
  const param = 'settings[payouts][schedule]';
  const schedule = readObject(payouts.schedule, param, ['interval', 'weekly_anchor', 'monthly_anchor']);
  const interval = readEnum(schedule.interval, `${param}[interval]`, payoutIntervals);
  if (interval === undefined) throw missing(`${param}[interval]`);
  const weekly = readEnum(schedule.weekly_anchor, `${param}[weekly_anchor]`, weekdays);
  const monthly = readStripeInteger(schedule.monthly_anchor, `${param}[monthly_anchor]`);
  if (weekly !== undefined && interval !== 'weekly') {
    throw invalid(`${param}[weekly_anchor]`, 'weekly_anchor applies only to the weekly interval.');
  }
  if (monthly !== undefined && interval !== 'monthly') {
    throw invalid(`${param}[monthly_anchor]`, 'monthly_anchor applies only to the monthly interval.');
  }
  if (interval === 'weekly') {
    if (weekly === undefined) throw missing(`${param}[weekly_anchor]`);
    return { interval, weeklyAnchor: weekly };
  }
  if (interval === 'monthly') {
    if (monthly === undefined) throw missing(`${param}[monthly_anchor]`);
    if (!Number.isInteger(monthly) || monthly < 1 || monthly > 31) {
      throw invalid(`${param}[monthly_anchor]`, 'monthly_anchor is a day of the month, from 1 to 31.',
        'parameter_invalid_integer');
    }
    return { interval, monthlyAnchor: monthly };
  }
  return { interval };
}

const bankAccountKeys = ['object', 'country', 'currency', 'account_number', 'routing_number', 'account_holder_name',
  'account_holder_type', 'default_for_currency'];

export function parseCreateBankAccount(body: unknown): CreateBankAccountCommand {
  const object = readObject(body ?? {}, '', ['external_account', 'default_for_currency', 'metadata', 'expand']);
  if (object.external_account === undefined || object.external_account === '') throw missing('external_account');
  if (typeof object.external_account === 'string') {
    throw invalid('external_account', 'Penny takes a bank account\'s details (external_account[object]=bank_account, ' +
      'country, currency, account_number, routing_number), not a token.');
  }
  const bank = readObject(object.external_account, 'external_account', bankAccountKeys);
  if (bank.object === undefined) throw missing('external_account[object]');
  if (bank.object !== 'bank_account') {
    throw invalid('external_account[object]', 'Penny pays out to bank accounts only: external_account[object] ' +
      'must be bank_account.');
  }
  if (bank.country === undefined) throw missing('external_account[country]');
  const accountNumber = readString(bank.account_number, 'external_account[account_number]',
    { lengthMax: 64, required: true });
  const outer = readStripeBoolean(object.default_for_currency, 'default_for_currency');
  const inner = readStripeBoolean(bank.default_for_currency, 'external_account[default_for_currency]');
  if (outer !== undefined && inner !== undefined && outer !== inner) {
    throw invalid('default_for_currency', 'default_for_currency is given twice, with two values.');
  }
  return {
    country: readCountry(bank.country, 'external_account[country]'),
    currency: bank.currency === undefined ? undefined : parseStripeCurrency(bank.currency, 'external_account[currency]'),
    accountNumber,
    routingNumber: readString(bank.routing_number, 'external_account[routing_number]', { lengthMax: 64 }),
    accountHolderName: readString(bank.account_holder_name, 'external_account[account_holder_name]',
      { lengthMax: 5000 }) || null,
    accountHolderType: readEnum(emptyAsUndefined(bank.account_holder_type), 'external_account[account_holder_type]',
      accountHolderTypes) ?? null,
    defaultForCurrency: outer ?? inner ?? false,
    metadata: readStripeMetadata(object.metadata),
  };
}

export function parseUpdateBankAccount(body: unknown): UpdateBankAccountCommand {
  const object = readObject(body ?? {}, '', ['account_holder_name', 'account_holder_type', 'default_for_currency',
    'metadata', 'expand']);
  const holderName = readString(object.account_holder_name, 'account_holder_name', { lengthMax: 5000 });
  const defaultForCurrency = readStripeBoolean(object.default_for_currency, 'default_for_currency');
  if (defaultForCurrency === false) {
    throw invalid('default_for_currency', 'A bank account stops being the default when another is made the ' +
      'default for its currency (default_for_currency=true on that one).');
  }
  return {
    accountHolderName: holderName === '' ? null : holderName,
    accountHolderType: object.account_holder_type === '' ? null
      : readEnum(object.account_holder_type, 'account_holder_type', accountHolderTypes),
    defaultForCurrency,
    metadata: readMetadataChange(object.metadata),
  };
}

function emptyAsUndefined(value: unknown): unknown {
  return value === '' ? undefined : value;
}
