import assert from 'node:assert/strict';

/**
 * A fee of `basisPoints` of the amount plus a fixed part, in minor units, rounded half up to the
 * minor unit (decisions.md, "Fees"). Integer arithmetic only.
 */
export function feeMinor(amountMinor: bigint, price: { basisPoints: number; fixedMinor: bigint }): bigint {
  assert.ok(amountMinor >= 0n, 'a fee is computed on a non-negative amount');
  assert.ok(Number.isInteger(price.basisPoints) && price.basisPoints >= 0 && price.basisPoints <= 10_000);
  const proportional = (amountMinor * BigInt(price.basisPoints) + 5_000n) / 10_000n;
  return proportional + price.fixedMinor;
}
