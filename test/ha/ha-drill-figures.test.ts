import { describe, expect, it } from 'vitest';
import { unavailableSeconds, type ProbeAnswer } from '../../src/ha/ha-drill-figures.js';

const fault = 1_000_000;
const answer = (sentAfterMs: number, ok: boolean, tookMs = 20): ProbeAnswer =>
  ({ sentMs: fault + sentAfterMs, answeredMs: fault + sentAfterMs + tookMs, ok });

describe('unavailableSeconds', () => {
  it('counts from the fault to the first success after the first failure', () => {
    const answers = [answer(0, true), answer(100, false, 2000), answer(2200, false), answer(30_000, true, 500)];
    expect(unavailableSeconds(answers, fault)).toBe(30.5);
  });

  it('is undefined while writes are still refused', () => {
    expect(unavailableSeconds([answer(100, false), answer(300, false)], fault)).toBeUndefined();
  });

  it('is 0 when no write failed for 10 s after the fault', () => {
    expect(unavailableSeconds([answer(100, true), answer(10_100, true)], fault)).toBe(0);
  });

  it('ignores answers to probes sent before the fault', () => {
    expect(unavailableSeconds([answer(-500, false), answer(100, true)], fault)).toBeUndefined();
  });
});
