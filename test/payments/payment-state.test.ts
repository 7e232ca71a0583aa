import { describe, expect, it } from 'vitest';
import { assertTransition } from '../../src/payments/payment-state.js';

describe('the PaymentIntent transition table', () => {
  it('lets an authorization\'s unknown outcome in processing resolve to requires_payment_method or requires_action',
    () => {
      expect(() => assertTransition('processing', 'requires_payment_method')).not.toThrow();
      expect(() => assertTransition('processing', 'requires_action')).not.toThrow();
    });

  it('refuses requires_payment_method and requires_action from processing while a capture or cancel is claimed',
    () => {
      for (const to of ['requires_payment_method', 'requires_action'] as const) {
        expect(() => assertTransition('processing', to, { finalizing: true }))
          .toThrow(`illegal PaymentIntent transition processing -> ${to} while a capture or cancel is claimed`);
      }
      for (const to of ['requires_capture', 'succeeded', 'canceled'] as const) {
        expect(() => assertTransition('processing', to, { finalizing: true })).not.toThrow();
      }
    });
});
