/**
 * The typed commands the accounts domain takes. The Stripe edge (src/http/account-params.ts) and
 * the CLI read requests into them; nothing here knows Stripe's form encoding.
 */
export const accountTypes = ['custom', 'express', 'standard'] as const;
export type AccountType = (typeof accountTypes)[number];

export const payoutIntervals = ['daily', 'weekly', 'monthly', 'manual'] as const;
export type PayoutInterval = (typeof payoutIntervals)[number];

export const weekdays = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'] as const;
export type Weekday = (typeof weekdays)[number];

/** `settings[payouts][schedule]`: an anchor exactly when the interval needs one. */
export type PayoutSchedule =
  | { readonly interval: 'daily' | 'manual' }
  | { readonly interval: 'weekly'; readonly weeklyAnchor: Weekday }
  | { readonly interval: 'monthly'; readonly monthlyAnchor: number };

/** The business profile fields Penny keeps, in Stripe's names; null unsets one. */
export const businessProfileFields = ['name', 'url', 'mcc', 'product_description', 'support_email', 'support_phone',
  'support_url'] as const;
export type BusinessProfile = Partial<Record<(typeof businessProfileFields)[number], string | null>>;

export interface CreateAccountCommand {
  readonly type: AccountType;
  /** ISO 3166-1 alpha-2, upper case. */
  readonly country: string;
  readonly email: string | null;
  readonly businessProfile: BusinessProfile;
  readonly metadata: Record<string, string>;
  readonly payoutSchedule: PayoutSchedule;
}

/** Metadata changes as Stripe's updates make them: keys set, keys unset, or all cleared first. */
export interface MetadataChange {
  readonly set: Record<string, string>;
  readonly unset: readonly string[];
  readonly clearAll: boolean;
}

/** Undefined keeps the stored value. */
export interface UpdateAccountCommand {
  readonly email: string | null | undefined;
  /** Merged into the stored profile; a null field is removed. */
  readonly businessProfile: BusinessProfile | undefined;
  readonly metadata: MetadataChange;
  readonly payoutSchedule: PayoutSchedule | undefined;
}

export const accountHolderTypes = ['individual', 'company'] as const;
export type AccountHolderType = (typeof accountHolderTypes)[number];

/** A bank account given by its numbers (Penny takes no `btok_` tokens). */
export interface CreateBankAccountCommand {
  /** ISO 3166-1 alpha-2, upper case. */
  readonly country: string;
  /** Lower case; undefined: the country's currency. */
  readonly currency: string | undefined;
  /** An IBAN in IBAN countries, else the domestic account number; as sent (spaces allowed in an IBAN). */
  readonly accountNumber: string;
  readonly routingNumber: string | undefined;
  readonly accountHolderName: string | null;
  readonly accountHolderType: AccountHolderType | null;
  readonly defaultForCurrency: boolean;
  readonly metadata: Record<string, string>;
}

export interface UpdateBankAccountCommand {
  readonly accountHolderName: string | null | undefined;
  readonly accountHolderType: AccountHolderType | null | undefined;
  /** Only true: another account becomes the default by being set so itself. */
  readonly defaultForCurrency: true | undefined;
  readonly metadata: MetadataChange;
}

/** Where Stripe's parameter names put a bank account's fields, for refusals that name them. */
export interface BankAccountParams {
  readonly country: string;
  readonly currency: string;
  readonly accountNumber: string;
  readonly routingNumber: string;
}

export const externalAccountParams: BankAccountParams = {
  country: 'external_account[country]',
  currency: 'external_account[currency]',
  accountNumber: 'external_account[account_number]',
  routingNumber: 'external_account[routing_number]',
};
