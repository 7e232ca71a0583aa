import { extractIBAN, getCountrySpecifications, validateIBAN, ValidationErrorsIBAN } from 'ibantools';
import { PennyError } from '../errors.js';
import { isStripeCurrency } from '../money/stripe-currency.js';
import { invalid, missing } from '../validation.js';
import type { BankAccountParams } from './account-commands.js';

/**
 * Bank account numbers, checked before anything is stored: an IBAN (ISO 13616) by its country's
 * length and format and the mod-97 check digits, through `ibantools` (maintained, no
 * dependencies, with the IBAN registry's per-country table, which a hand-kept table would let go
 * stale); a US account number as 4 to 17 digits with an ABA routing number (9 digits, checksum
 * 3-7-1). Refusals use Stripe's codes (`account_number_invalid`, `routing_number_invalid`) and name
 * the parameter, never the number.
 */
const countries = getCountrySpecifications();

/** An ISO 3166-1 alpha-2 code, upper case. */
export function isCountryCode(code: string): boolean {
  return /^[A-Z]{2}$/.test(code) && Object.hasOwn(countries, code);
}

/** Whether the country's bank accounts are named by IBAN (it is in the IBAN registry). */
export function usesIban(country: string): boolean {
  return countries[country]?.IBANRegistry === true;
}

const euroCountries = ['AT', 'BE', 'CY', 'DE', 'EE', 'ES', 'FI', 'FR', 'GR', 'HR', 'IE', 'IT', 'LT', 'LU', 'LV', 'MT',
  'NL', 'PT', 'SI', 'SK'];
const currencyByCountry: Readonly<Record<string, string>> = {
  ...Object.fromEntries(euroCountries.map((country) => [country, 'eur'])),
  US: 'usd', GB: 'gbp', CH: 'chf', LI: 'chf', SE: 'sek', DK: 'dkk', NO: 'nok', PL: 'pln', CZ: 'czk', HU: 'huf',
  RO: 'ron', CA: 'cad', AU: 'aud', NZ: 'nzd', JP: 'jpy', SG: 'sgd', HK: 'hkd', MX: 'mxn', BR: 'brl', IN: 'inr',
};

/** The country's currency, where Penny knows it (an account's `default_currency`). */
export function countryCurrency(country: string): string | undefined {
  return currencyByCountry[country];
}

/** Banks Penny can name, by US routing number or by IBAN country and bank code; others are null. */
const bankNames: Readonly<Record<string, string>> = {
  'US:110000000': 'STRIPE TEST BANK',
  'US:021000021': 'JPMORGAN CHASE BANK, NA',
  'US:026009593': 'BANK OF AMERICA, N.A.',
  'US:121000248': 'WELLS FARGO BANK, NA',
  'DE:37040044': 'COMMERZBANK AG',
  'DE:10010010': 'POSTBANK NDL DER DB PRIVAT- UND FIRMENKUNDENBANK',
  'GB:WEST': 'NATWEST',
  'FR:30006': 'BNP PARIBAS',
};

export interface CheckedBankNumber {
  readonly country: string;
  readonly currency: string;
  /** The number in electronic form: an IBAN without spaces, upper case; a US number's digits. */
  readonly accountNumber: string;
  readonly routingNumber: string | null;
  readonly last4: string;
  readonly bankName: string | null;
}

/** Checks a bank account's country, currency and numbers; refuses with the parameter named in `params`. */
export function checkBankNumber(input: { country: string; currency: string | undefined; accountNumber: string;
  routingNumber: string | undefined }, params: BankAccountParams): CheckedBankNumber {
  const { country } = input;
  if (!isCountryCode(country)) {
    throw invalid(params.country, 'The country must be an ISO 3166-1 alpha-2 code, such as US or DE.',
      'country_code_invalid');
  }
  if (usesIban(country)) return checkIban(input, params);
  if (country === 'US') return checkUsAccount(input, params);
  throw invalid(params.country, 'Penny takes bank accounts in the United States (account and routing number) and ' +
    'in the countries of the IBAN registry (IBAN).');
}

function currencyFor(input: { country: string; currency: string | undefined }, params: BankAccountParams): string {
  const currency = input.currency ?? countryCurrency(input.country);
  if (currency === undefined) throw missing(params.currency);
  if (!isStripeCurrency(currency)) throw invalid(params.currency, `Invalid currency: ${currency}.`, 'currency_invalid');
  return currency;
}

function checkIban(input: { country: string; currency: string | undefined; accountNumber: string;
  routingNumber: string | undefined }, params: BankAccountParams): CheckedBankNumber {
  if (input.routingNumber !== undefined && input.routingNumber !== '') {
    throw invalid(params.routingNumber, `A bank account in ${input.country} is given by its IBAN alone, ` +
      'in account_number, without a routing_number.');
  }
  // Spaces (the paper form) and lower case are accepted; nothing else is removed.
  const iban = input.accountNumber.replace(/ /g, '').toUpperCase();
  if (!/^[A-Z]{2}[0-9]{2}[A-Z0-9]+$/.test(iban)) {
    throw accountNumberInvalid(params, 'The IBAN must be two letters, two check digits and the account\'s ' +
      'letters and digits.');
  }
  if (iban.slice(0, 2) !== input.country) {
    throw accountNumberInvalid(params, `The IBAN is not of the bank account's country (${input.country}).`);
  }
  const result = validateIBAN(iban);
  if (!result.valid) throw accountNumberInvalid(params, ibanProblem(result.errorCodes, input.country));
  const bankCode = extractIBAN(iban).bankIdentifier;
  return {
    country: input.country, currency: currencyFor(input, params), accountNumber: iban, routingNumber: null,
    last4: iban.slice(-4),
    bankName: bankCode === undefined ? null : bankNames[`${input.country}:${bankCode}`] ?? null,
  };
}

function ibanProblem(codes: readonly ValidationErrorsIBAN[], country: string): string {
  const length = countries[country]?.chars;
  if (codes.includes(ValidationErrorsIBAN.WrongBBANLength)) {
    return `An IBAN of ${country} has ${length ?? 'a fixed number of'} characters.`;
  }
  if (codes.includes(ValidationErrorsIBAN.WrongBBANFormat)) return `The IBAN does not have the format of ${country}'s IBANs.`;
  if (codes.includes(ValidationErrorsIBAN.WrongAccountBankBranchChecksum)) {
    return 'The IBAN\'s national check digits do not match.';
  }
  return 'The IBAN\'s check digits do not match (ISO 13616 mod 97): a character is wrong or two are swapped.';
}

function checkUsAccount(input: { country: string; currency: string | undefined; accountNumber: string;
  routingNumber: string | undefined }, params: BankAccountParams): CheckedBankNumber {
  const currency = currencyFor(input, params);
  if (currency !== 'usd') throw invalid(params.currency, 'A US bank account holds usd.', 'currency_invalid');
  if (!/^[0-9]{4,17}$/.test(input.accountNumber)) {
    throw accountNumberInvalid(params, 'A US account number is 4 to 17 digits.');
  }
  if (input.routingNumber === undefined || input.routingNumber === '') throw missing(params.routingNumber);
  if (!isAbaRoutingNumber(input.routingNumber)) {
    throw new PennyError({ code: 'routing_number_invalid', param: params.routingNumber,
      message: 'Invalid routing number: an ABA routing number is 9 digits whose checksum (3-7-1) is a multiple of 10.' });
  }
  return {
    country: 'US', currency, accountNumber: input.accountNumber, routingNumber: input.routingNumber,
    last4: input.accountNumber.slice(-4), bankName: bankNames[`US:${input.routingNumber}`] ?? null,
  };
}

/** 9 digits d1…d9 with 3(d1+d4+d7) + 7(d2+d5+d8) + (d3+d6+d9) ≡ 0 (mod 10). */
export function isAbaRoutingNumber(text: string): boolean {
  if (!/^[0-9]{9}$/.test(text)) return false;
  const weights = [3, 7, 1, 3, 7, 1, 3, 7, 1];
  const sum = [...text].reduce((total, digit, index) => total + Number(digit) * (weights[index] ?? 0), 0);
  return sum % 10 === 0;
}

function accountNumberInvalid(params: BankAccountParams, message: string): PennyError {
  return new PennyError({ code: 'account_number_invalid', param: params.accountNumber,
    message: `The bank account number is invalid. ${message}` });
}
