import { describe, expect, it } from 'vitest';
import { FaultInjector, parseFaultProfile, presentFaultProfile } from '../../src/sandbox-psp/psp-faults.js';

/** The sandbox's fault profile: a seeded run repeats exactly, whatever order operations come in. */
function injector(profile: Record<string, unknown>): FaultInjector {
  const faults = new FaultInjector();
  faults.set(parseFaultProfile(profile));
  return faults;
}

const noisyWebhooks = { seed: 42, webhooks: { lost_rate: 0.3, duplicate_rate: 0.3, delay_ms: { min: 0, max: 5000 } } };

describe('webhook fates', () => {
  it('are the same for one operation key under one seed, in whatever order keys come', () => {
    const keys = Array.from({ length: 50 }, (_, index) => `penny:pi_${index}:attempt:1`);
    const forward = injector(noisyWebhooks);
    const backward = injector(noisyWebhooks);
    const fates = new Map(keys.map((key) => [key, forward.webhookFate(key)]));
    for (const key of [...keys].reverse()) expect(backward.webhookFate(key)).toEqual(fates.get(key));
    const kinds = new Set([...fates.values()].map((fate) => fate.faults.join(',')));
    expect(kinds).toEqual(new Set(['', 'webhook_lost', 'webhook_duplicated']));
  });

  it('differ under another seed', () => {
    const keys = Array.from({ length: 50 }, (_, index) => `penny:pi_${index}:attempt:1`);
    const one = injector(noisyWebhooks);
    const other = injector({ ...noisyWebhooks, seed: 43 });
    expect(keys.map((key) => other.webhookFate(key))).not.toEqual(keys.map((key) => one.webhookFate(key)));
  });

  it('draw nothing from the generator the call faults use, and count nothing until counted', () => {
    const profile = { ...noisyWebhooks, rates: { error_503: 0.5 } };
    const plain = injector(profile);
    const withFates = injector(profile);
    const calls = Array.from({ length: 40 }, () => plain.faultFor('authorize'));
    const interleaved = Array.from({ length: 40 }, (_, index) => {
      withFates.webhookFate(`key-${index}`);
      return withFates.faultFor('authorize');
    });
    expect(interleaved).toEqual(calls);
    expect(withFates.injected.get('webhook_lost')).toBeUndefined();
    withFates.countInjected(['webhook_lost', 'webhook_lost']);
    expect(withFates.injected.get('webhook_lost')).toBe(2);
  });
});

describe('the delays of payouts and disputes in the fault profile', () => {
  it('default to a payout step of 1 s, a test-card dispute after 2 s, and disputes that wait for a decision', () => {
    expect(parseFaultProfile({})).toMatchObject({ payoutStepMs: 1000, createDisputeAfterMs: 2000,
      disputeDecideAfterMs: undefined, disputeDecideOutcome: 'won' });
  });

  it('are echoed back as given, and read again the same', () => {
    const profile = parseFaultProfile({ payout_step_ms: 10, create_dispute_after_ms: 20, dispute_decide_after_ms: 30,
      dispute_decide_outcome: 'lost' });
    expect(presentFaultProfile(profile)).toMatchObject({ payout_step_ms: 10, create_dispute_after_ms: 20,
      dispute_decide_after_ms: 30, dispute_decide_outcome: 'lost' });
    expect(parseFaultProfile(presentFaultProfile(profile))).toEqual(profile);
    expect(parseFaultProfile(presentFaultProfile(parseFaultProfile({})))).toEqual(parseFaultProfile({}));
  });

  it('refuses an outcome other than won or lost', () => {
    expect(() => parseFaultProfile({ dispute_decide_outcome: 'draw' })).toThrow(/dispute_decide_outcome/);
  });
});
