import { describe, expect, it } from 'vitest';
import { PennyError } from '../../src/errors.js';
import { faultProfileFromEnvironment } from '../../src/sandbox-psp/psp-service.js';

describe('PENNY_SANDBOX_PSP_FAULTS, checked by the commands that serve the sandbox', () => {
  it.each(['{bad', '[]', '{"no_such_fault": 1}'])('refuses %j, naming the variable', (value) => {
    let refusal: unknown;
    try {
      faultProfileFromEnvironment(value);
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(PennyError);
    expect(refusal).toMatchObject({ param: 'PENNY_SANDBOX_PSP_FAULTS' });
  });

  it('accepts an empty fault profile', () => {
    expect(faultProfileFromEnvironment('{}')).toBeDefined();
  });

  it('takes an unset profile as none', () => {
    expect(faultProfileFromEnvironment(undefined)).toBeUndefined();
  });
});
