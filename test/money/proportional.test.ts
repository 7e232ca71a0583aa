import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { refundShareMinor } from '../../src/money/proportional.js';

/**
 * A refund's share of a part split off its charge (decisions.md, "Fees"): proportional, rounded
 * down, the completing refund taking the remainder, so the shares of refunds that cover the charge
 * add up to the part exactly, and never beyond it.
 */
const split = fc.integer({ min: 1, max: 10_000_000 }).chain((whole) => fc.record({
  whole: fc.constant(BigInt(whole)),
  part: fc.integer({ min: 0, max: whole }).map(BigInt),
  cuts: fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, whole - 1) }), { maxLength: 8 }),
}));

/** The refunds that cover a whole of `whole`, cut at `cuts`. */
function refundsOf(whole: bigint, cuts: readonly number[]): bigint[] {
  const points = [0n, ...cuts.map(BigInt).filter((cut) => cut < whole).sort((a, b) => (a < b ? -1 : 1)), whole];
  return points.slice(1).map((point, index) => point - (points[index] as bigint)).filter((amount) => amount > 0n);
}

function sharesOf(input: { whole: bigint; part: bigint; refunds: readonly bigint[] }): bigint[] {
  const shares: bigint[] = [];
  let cumulative = 0n;
  let given = 0n;
  for (const refund of input.refunds) {
    cumulative += refund;
    const share = refundShareMinor({ partMinor: input.part, wholeMinor: input.whole, refundMinor: refund,
      cumulativeMinor: cumulative, givenMinor: given, completesCharge: cumulative === input.whole });
    shares.push(share);
    given += share;
  }
  return shares;
}

describe('a refund\'s share of a split-off part', () => {
  it('adds up to the part exactly once refunds cover the charge, each share never negative', () => {
    fc.assert(fc.property(split, ({ whole, part, cuts }) => {
      const shares = sharesOf({ whole, part, refunds: refundsOf(whole, cuts) });
      expect(shares.reduce((sum, share) => sum + share, 0n)).toBe(part);
      expect(shares.every((share) => share >= 0n)).toBe(true);
    }));
  });

  it('rounds each share before the last down from its exact proportion', () => {
    fc.assert(fc.property(split, ({ whole, part, cuts }) => {
      const refunds = refundsOf(whole, cuts);
      const shares = sharesOf({ whole, part, refunds });
      refunds.slice(0, -1).forEach((refund, index) => {
        expect(shares[index]).toBe((part * refund) / whole);
      });
    }));
  });

  it('never passes the part while the charge is not covered', () => {
    fc.assert(fc.property(split, ({ whole, part, cuts }) => {
      const refunds = refundsOf(whole, cuts).slice(0, -1);
      const total = sharesOf({ whole, part, refunds }).reduce((sum, share) => sum + share, 0n);
      expect(total <= part).toBe(true);
    }));
  });
});
