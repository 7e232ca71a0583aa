/**
 * A refund's share of an amount split off its charge (a destination charge's transfer, its
 * application fee): in proportion to the refund, rounded down, so the shares never exceed the
 * part; the refund that completes the charge takes the remainder instead (decisions.md, "Fees").
 * `cumulativeMinor` is what the charge's refunds that asked for this share came to, this one
 * included; `givenMinor` what earlier shares already gave back. All in minor units.
 */
export function refundShareMinor(input: { partMinor: bigint; wholeMinor: bigint; refundMinor: bigint;
  cumulativeMinor: bigint; givenMinor: bigint; completesCharge: boolean }): bigint {
  const { partMinor, wholeMinor } = input;
  if (wholeMinor <= 0n || partMinor < 0n || input.refundMinor < 0n) {
    throw new Error(`a refund share of ${partMinor} over ${wholeMinor} for ${input.refundMinor} is impossible`);
  }
  const share = input.completesCharge ? (partMinor * input.cumulativeMinor) / wholeMinor - input.givenMinor
    : (partMinor * input.refundMinor) / wholeMinor;
  const left = partMinor - input.givenMinor;
  if (share < 0n) return 0n;
  return share > left ? left : share;
}
