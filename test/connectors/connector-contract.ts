import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  ConnectorRefusedError, ConnectorUnknownOutcomeError, ConnectorWebhookError, type AuthorizeInput, type Connector,
} from '../../src/connectors/connector.js';

/**
 * The contract every PSP connector keeps, run against each one (test/connectors/*.test.ts).
 * `harness` gives what only the PSP's emulator can do: inject faults, and sign a webhook.
 */
export interface ContractHarness {
  connector(): Connector;
  /** Makes the next `times` calls of an operation fail in the given way. */
  injectFault(operation: 'authorize' | 'capture' | 'refund', fault: 'timeout_after' | 'timeout_before' | 'error_500'
    | 'error_429', times: number): Promise<void>;
  /** Makes the next calls fail in the given ways, in order. */
  injectFaults(faults: readonly (readonly ['authorize' | 'capture' | 'refund', 'timeout_after' | 'timeout_before'
    | 'error_500' | 'error_429'])[]): Promise<void>;
  clearFaults(): Promise<void>;
  /** Headers that sign `body` as the PSP would, with a secret Penny knows or not, at a time. */
  signWebhook(body: string, options?: { secret?: string; timestampSeconds?: number }): Record<string, string>;
  /** The header carrying the signature, to remove it. */
  readonly signatureHeader: string;
  /** A second secret Penny also accepts (a rotation in progress). */
  readonly rotatedSecret: string;
}

export function connectorContract(name: string, harness: ContractHarness): void {
  const unique = () => randomBytes(6).toString('hex');
  const authorization = (overrides: Partial<AuthorizeInput> = {}): AuthorizeInput => {
    const id = unique();
    return { reference: `pa_contract${id}`, idempotencyKey: `contract:${id}`, amountMinor: 1000n, currency: 'USD',
      paymentMethod: 'pm_card_visa', capture: true, authenticated: false, ...overrides };
  };

  describe(`connector contract: ${name}`, () => {
    it('declares its capabilities and an idempotency-key retention', () => {
      const { capabilities } = harness.connector();
      expect(capabilities.idempotencyKeyRetentionMs).toBeGreaterThan(0);
      expect(typeof capabilities.manualCapture).toBe('boolean');
    });

    it('captures at once with an approved card, or only authorizes when asked', async () => {
      expect((await harness.connector().authorize(authorization())).outcome).toBe('captured');
      expect((await harness.connector().authorize(authorization({ capture: false }))).outcome).toBe('authorized');
    });

    it('declines with the network\'s code', async () => {
      expect(await harness.connector().authorize(authorization({ paymentMethod: 'pm_card_chargeDeclinedExpiredCard' })))
        .toMatchObject({ outcome: 'declined', code: 'expired_card', declineCode: 'expired_card' });
    });

    it('answers a repeated idempotency key from its record, moving money once', async () => {
      const input = authorization();
      const first = await harness.connector().authorize(input);
      expect(await harness.connector().authorize(input)).toEqual(first);
      expect(await harness.connector().lookup({ reference: input.reference })).toHaveLength(1);
    });

    it('looks an operation up by Penny\'s reference, and finds nothing for an unknown one', async () => {
      const input = authorization();
      const answer = await harness.connector().authorize(input);
      const [found] = await harness.connector().lookup({ reference: input.reference });
      expect(found).toMatchObject({ kind: 'authorize', outcome: 'captured', pspReference: answer.pspReference,
        amountMinor: 1000n });
      expect(await harness.connector().lookup({ reference: `pa_missing${unique()}` })).toEqual([]);
    });

    it('captures part of an authorization, voids another, and refunds within what was captured', async () => {
      const connector = harness.connector();
      const held = await connector.authorize(authorization({ capture: false }));
      const id = unique();
      await connector.capture({ reference: `ch_${id}`, idempotencyKey: `cap:${id}`, pspReference: held.pspReference,
        amountMinor: 600n });
      await connector.refund({ reference: `re_${id}`, idempotencyKey: `ref:${id}`, pspReference: held.pspReference,
        amountMinor: 600n });
      await expect(connector.refund({ reference: `re_x${id}`, idempotencyKey: `refx:${id}`,
        pspReference: held.pspReference, amountMinor: 1n })).rejects.toBeInstanceOf(ConnectorRefusedError);
      const other = await connector.authorize(authorization({ capture: false }));
      await connector.void({ reference: `ch_v${id}`, idempotencyKey: `void:${id}`, pspReference: other.pspReference });
      await expect(connector.capture({ reference: `ch_c${id}`, idempotencyKey: `capv:${id}`,
        pspReference: other.pspReference, amountMinor: 1n })).rejects.toBeInstanceOf(ConnectorRefusedError);
    });

    it('answers two concurrent calls with one key from one record', async () => {
      const input = authorization();
      const answers = await Promise.all(Array.from({ length: 50 }, () => harness.connector().authorize(input)));
      expect(new Set(answers.map((answer) => answer.pspReference)).size).toBe(1);
      expect(await harness.connector().lookup({ reference: input.reference })).toHaveLength(1);
    });

    it('fetches a settlement report', async () => {
      const report = await harness.connector().fetchSettlementReport({ day: new Date().toISOString().slice(0, 10) });
      expect(report.split('\n')[0]).toContain('Psp Reference');
    });

    it('pays out', async () => {
      const id = unique();
      const paid = await harness.connector().payout({ reference: `po_${id}`, idempotencyKey: `po:${id}`,
        amountMinor: 5000n, currency: 'EUR', destination: 'NL91ABNA0417164300' });
      expect(paid.pspReference).toMatch(/\S/);
    });

    it('retries a lost reply with the same key: one charge, and the answer', async () => {
      const input = authorization();
      await harness.injectFault('authorize', 'timeout_after', 1);
      expect((await harness.connector().authorize(input)).outcome).toBe('captured');
      expect(await harness.connector().lookup({ reference: input.reference })).toHaveLength(1);
    });

    it('reports an unknown outcome when every try loses its reply, and the look-up finds the charge', async () => {
      const input = authorization();
      await harness.injectFault('authorize', 'timeout_after', 10);
      await expect(harness.connector().authorize(input)).rejects.toBeInstanceOf(ConnectorUnknownOutcomeError);
      await harness.clearFaults();
      expect(await harness.connector().lookup({ reference: input.reference })).toHaveLength(1);
    });

    it('reports an unknown outcome for timeouts before processing and 5xx, with nothing charged', async () => {
      for (const fault of ['timeout_before', 'error_500'] as const) {
        const input = authorization();
        await harness.injectFault('authorize', fault, 10);
        await expect(harness.connector().authorize(input)).rejects.toBeInstanceOf(ConnectorUnknownOutcomeError);
        await harness.clearFaults();
        expect(await harness.connector().lookup({ reference: input.reference })).toEqual([]);
      }
    });

    it('reports an unknown outcome when a lost reply is followed by refusals: the first try may have charged',
      async () => {
        const input = authorization();
        await harness.injectFaults([['authorize', 'timeout_after'], ['authorize', 'error_429'],
          ['authorize', 'error_429']]);
        await expect(harness.connector().authorize(input)).rejects.toBeInstanceOf(ConnectorUnknownOutcomeError);
        await harness.clearFaults();
        expect(await harness.connector().lookup({ reference: input.reference })).toHaveLength(1);
      });

    it('treats a 4xx as a definite refusal, including 429 once its retries are spent', async () => {
      await harness.injectFault('authorize', 'error_429', 10);
      await expect(harness.connector().authorize(authorization())).rejects.toMatchObject({ status: 429 });
      await harness.clearFaults();
      await expect(harness.connector().authorize(authorization({ currency: 'XYZ' })))
        .rejects.toBeInstanceOf(ConnectorRefusedError);
    });

    describe('webhook signatures', () => {
      const body = JSON.stringify({ id: `evt_${unique()}`, type: 'authorize.captured', data: {
        kind: 'authorize', psp_reference: 'psp_1', reference: 'pa_1', outcome: 'captured', amount_minor: 100,
        currency: 'USD', decline_code: null } });
      const parse = (raw: string, headers: Record<string, string>) =>
        harness.connector().parseWebhook({ rawBody: Buffer.from(raw), headers });

      it('accepts a signed webhook and parses it', () => {
        expect(parse(body, harness.signWebhook(body))).toMatchObject({ type: 'authorize.captured',
          operation: { reference: 'pa_1', amountMinor: 100n } });
      });

      it('accepts either secret during a rotation', () => {
        expect(parse(body, harness.signWebhook(body, { secret: harness.rotatedSecret })).type).toBe('authorize.captured');
      });

      it('refuses a tampered body', () => {
        expect(() => parse(body.replace('100', '999'), harness.signWebhook(body))).toThrow(ConnectorWebhookError);
      });

      it('refuses a wrong secret', () => {
        expect(() => parse(body, harness.signWebhook(body, { secret: 'not-the-secret' })))
          .toThrow(expect.objectContaining({ problem: 'mismatch' }));
      });

      it('refuses a stale timestamp', () => {
        const stale = harness.signWebhook(body, { timestampSeconds: Math.floor(Date.now() / 1000) - 3600 });
        expect(() => parse(body, stale)).toThrow(expect.objectContaining({ problem: 'stale' }));
      });

      it('refuses a missing signature', () => {
        const headers = harness.signWebhook(body);
        delete headers[harness.signatureHeader];
        expect(() => parse(body, headers)).toThrow(expect.objectContaining({ problem: 'missing' }));
      });
    });
  });
}
