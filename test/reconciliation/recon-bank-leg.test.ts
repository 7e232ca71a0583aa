import { describe, expect, it } from 'vitest';
import type { OpenBankEntryRow, OpenPayoutRow } from '../../src/reconciliation/recon-match-store.js';
import { namesWhole } from '../../src/reconciliation/recon-references.js';
import { planBankLeg } from '../../src/reconciliation/recon-run.js';

/** The PSP↔bank leg's pairing alone (passes 3 and 4), on payouts and bank entries made up here. */
function payout(recordId: number, reference: string, amountMinor: bigint): OpenPayoutRow {
  return { recordId: BigInt(recordId), reference, currency: 'EUR', amountMinor, day: '2026-03-02', deadline: '2026-03-05' };
}

function entry(recordId: number, text: string, amountMinor: bigint): OpenBankEntryRow {
  return { recordId: BigInt(recordId), fileId: 'rfile_test', externalId: `entry-${recordId}`, currency: 'EUR',
    amountMinor, text, day: '2026-03-03', deadline: '2026-03-06' };
}

describe('the bank leg', () => {
  it('leaves the payouts an ambiguous credit may pay in review, never missing', () => {
    const plan = planBankLeg([payout(1, 'batch-1-EUR', 9710n), payout(2, 'batch-2-EUR', 9710n)],
      [entry(3, '', 9710n)]);

    expect(plan.breaks.map((row) => row.type)).toEqual(['ambiguous_match']);
    expect(plan.unmatchedPayouts).toEqual([]);
    expect(plan.payoutsInReview.map((row) => row.reference)).toEqual(['batch-1-EUR', 'batch-2-EUR']);
  });

  it('pays two batches with one credit that names both', () => {
    const plan = planBankLeg([payout(1, 'batch-1-EUR', 1000n), payout(2, 'batch-2-EUR', 2500n)],
      [entry(3, 'SANDBOX PAYOUT batch-1-EUR batch-2-EUR', 3500n)]);

    expect(plan.matches).toHaveLength(1);
    expect(plan.matches[0]?.payouts.map((row) => row.reference)).toEqual(['batch-1-EUR', 'batch-2-EUR']);
    expect(plan.breaks).toEqual([]);
  });

  it('reports a credit that names a payout but pays another amount as amount_mismatch', () => {
    const plan = planBankLeg([payout(1, 'batch-1-EUR', 1000n)], [entry(2, 'SANDBOX PAYOUT batch-1-EUR', 993n)]);

    expect(plan.breaks).toEqual([expect.objectContaining({ type: 'amount_mismatch', leg: 'psp_bank',
      expectedMinor: 1000n, actualMinor: 993n })]);
  });
});

describe('a remittance text', () => {
  it('names a payout reference only as a whole token, so batch 12 is not batch 1', () => {
    const plan = planBankLeg([payout(1, 'TestMerchant Account, batch 1', 10000n),
      payout(2, 'TestMerchant Account, batch 12', 50000n)], [entry(3, 'TestMerchant Account, batch 12', 50000n)]);

    expect(plan.matches.map((match) => match.payouts.map((row) => row.reference)))
      .toEqual([['TestMerchant Account, batch 12']]);
    expect(plan.breaks).toEqual([]);
    expect(plan.unmatchedPayouts.map((row) => row.reference)).toEqual(['TestMerchant Account, batch 1']);
  });

  it('names a reference bounded by punctuation or the text\'s ends', () => {
    expect(namesWhole('PAYOUT/BATCH-1-EUR/X', 'BATCH-1-EUR')).toBe(true);
    expect(namesWhole('BATCH 1', 'BATCH 1')).toBe(true);
    expect(namesWhole('BATCH 12', 'BATCH 1')).toBe(false);
    expect(namesWhole('XBATCH 1', 'BATCH 1')).toBe(false);
    expect(namesWhole('BATCH 12 BATCH 1', 'BATCH 1')).toBe(true);
  });
});
