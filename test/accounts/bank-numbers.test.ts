import { describe, expect, it } from 'vitest';
import { externalAccountParams } from '../../src/accounts/account-commands.js';
import { checkBankNumber, isAbaRoutingNumber, usesIban } from '../../src/accounts/bank-numbers.js';
import { refusal } from '../support/refusal.js';

/** The bank-number checks on their own: ABA checksums, IBAN check digits and lengths. */
describe('ABA routing numbers', () => {
  it('accepts routing numbers whose 3-7-1 checksum is a multiple of 10', () => {
    for (const number of ['110000000', '021000021', '026009593', '121000248']) expect(isAbaRoutingNumber(number)).toBe(true);
  });

  it('refuses a changed digit, a wrong length and non-digits', () => {
    for (const number of ['110000001', '021000022', '11000000', '1100000000', '11000000a', '']) {
      expect(isAbaRoutingNumber(number)).toBe(false);
    }
  });
});

describe('IBANs', () => {
  const check = (accountNumber: string, country = 'DE') =>
    checkBankNumber({ country, currency: undefined, accountNumber, routingNumber: undefined }, externalAccountParams);

  it('accepts a valid IBAN and takes the country\'s currency', () => {
    expect(check('DE89370400440532013000')).toMatchObject({ accountNumber: 'DE89370400440532013000', currency: 'eur',
      last4: '3000' });
    expect(check('GB82WEST12345698765432', 'GB')).toMatchObject({ currency: 'gbp', bankName: 'NATWEST' });
  });

  it('refuses every single changed digit of a valid IBAN', () => {
    const valid = 'DE89370400440532013000';
    for (let index = 2; index < valid.length; index += 1) {
      const digit = Number(valid[index]);
      const changed = valid.slice(0, index) + String((digit + 1) % 10) + valid.slice(index + 1);
      expect(refusal(() => check(changed)).code, changed).toBe('account_number_invalid');
    }
  });

  it('names the country\'s length when the length is wrong', () => {
    const error = refusal(() => check('DE893704004405320130001'));
    expect(error).toMatchObject({ code: 'account_number_invalid', param: 'external_account[account_number]' });
    expect(error.message).toContain('22 characters');
  });

  it('knows which countries use IBANs', () => {
    expect([usesIban('DE'), usesIban('GB'), usesIban('US'), usesIban('CA')]).toEqual([true, true, false, false]);
  });

  it('refuses countries that are neither US nor IBAN countries', () => {
    const error = refusal(() => check('12345678', 'CA'));
    expect(error).toMatchObject({ code: 'parameter_invalid', param: 'external_account[country]' });
  });
});
