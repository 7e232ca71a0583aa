import { describe, expect, it } from 'vitest';
import { parseDurationMs } from '../../src/http/clock-routes.js';
import { refusal } from '../support/refusal.js';

/** The test clock's `by` duration, as POST /v1/test_helpers/clock/advance reads it. */
describe('parseDurationMs', () => {
  it('reads a duration with a unit, and a number as seconds', () => {
    expect(parseDurationMs('15m')).toBe(900_000);
    expect(parseDurationMs(90)).toBe(90_000);
  });

  it.each([
    ['an object from a form (by[a]=x), which has no prototype', Object.assign(Object.create(null), { a: 'x' })],
    ['an array', ['1s']],
    ['a boolean', true],
  ])('refuses %s with parameter_invalid naming by', (_label, value) => {
    expect(refusal(() => parseDurationMs(value))).toMatchObject({ code: 'parameter_invalid', param: 'by' });
  });
});
