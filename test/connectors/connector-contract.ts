import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  ConnectorRefusedError, ConnectorUnknownOutcomeError, ConnectorWebhookError, type AuthorizeInput, type Connector,
  type ConnectorCapabilities,
} from '../../src/connectors/connector.js';
import { authorizationFromRecord } from '../../src/connectors/decline-codes.js';

/**
 * The contract every PSP connector keeps, run against each one (test/connectors/*.test.ts: the
 * sandbox over the network, Adyen against its local stub). `harness` gives what only the PSP's
 * emulator can do: inject faults, sign a webhook, open a dispute. What a connector declares it
 * cannot do (payouts, settlement reports) is checked as refused; what a PSP does asynchronously
 * (Adyen's notifications) is let arrive by `propagate` before a look-up.
 */
export interface ContractHarness {
  connector(): Connector;
  /** What the connector declares, known before it is built (which parts of the contract apply). */
  readonly capabilities: Pick<ConnectorCapabilities, 'payouts' | 'settlementReports'>;
  /** Makes the next `times` calls of an operation fail in the given way. */
  injectFault(operation: 'authorize' | 'capture' | 'refund', fault: 'timeout_after' | 'timeout_before' | 'error_500'
    | 'error_429', times: number): Promise<void>;
  /** Makes the next calls fail in the given ways, in order. */
  injectFaults(faults: readonly (readonly ['authorize' | 'capture' | 'refund', 'timeout_after' | 'timeout_before'
    | 'error_500' | 'error_429'])[]): Promise<void>;
  clearFaults(): Promise<void>;
  /**
   * Lets what the PSP reports later arrive where the connector's look-up reads it (Adyen's
   * notifications); the sandbox's look-up asks the PSP itself, so it has nothing to do.
   */
  propagate(): Promise<void>;
  /**
   * Captures, voids and refunds answer `received`, and a refused one is reported failed later
   * (Adyen's modifications); otherwise they are done at once, and a refusal is a ConnectorRefusedError.
   */
  readonly followUpsReceived: boolean;
  /** The sandbox's own webhook format and signature; absent for a PSP tested by its own suite. */
  readonly webhooks?: {
    /** Headers that sign `body` as the PSP would, with a secret Penny knows or not, at a time. */
    signWebhook(body: string, options?: { secret?: string; timestampSeconds?: number }): Record<string, string>;
    /** The header carrying the signature, to remove it. */
    readonly signatureHeader: string;
    /** A second secret Penny also accepts (a rotation in progress). */
    readonly rotatedSecret: string;
  };
  /** Makes what the PSP does later happen now: payouts move on, disputes open or are decided. */
  runDueChanges(): Promise<void>;
  /** Has the cardholder dispute a captured charge (named by its authorization); the dispute's PSP reference. */
  openDispute(input: { pspReference: string; amountMinor?: bigint; reason?: string }): Promise<string>;
  decideDispute(pspReference: string, outcome: 'won' | 'lost'): Promise<void>;
  /** A bank account the PSP's test mode fails payouts to, and the failure code it gives. */
  readonly failingPayoutAccount: { readonly destination: string; readonly failureCode: string };
  /** A bank account the PSP's test mode pays out to. */
  readonly payingPayoutAccount: string;
}

export function connectorContract(name: string, harness: ContractHarness): void {
  const unique = () => randomBytes(6).toString('hex');
  const authorization = (overrides: Partial<AuthorizeInput> = {}): AuthorizeInput => {
    const id = unique();
    return { reference: `pa_contract${id}`, idempotencyKey: `contract:${id}`, amountMinor: 1000n, currency: 'USD',
      paymentMethod: 'pm_card_visa', capture: true, authenticated: false, ...overrides };
  };

  const lookup = async (reference: string) => {
    await harness.propagate();
    return harness.connector().lookup({ reference });
  };
  const supports = (capability: 'payouts' | 'settlementReports') => harness.capabilities[capability];

  describe(`connector contract: ${name}`, () => {
    it('declares its capabilities and an idempotency-key retention', () => {
      const { capabilities } = harness.connector();
      expect(capabilities).toMatchObject(harness.capabilities);
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
      expect(await lookup(input.reference)).toHaveLength(1);
    });

    it('looks an operation up by Penny\'s reference, and finds nothing for an unknown one', async () => {
      const input = authorization();
      const answer = await harness.connector().authorize(input);
      const [found] = await lookup(input.reference);
      expect(found && authorizationFromRecord(found, { captureRequested: true }).outcome).toBe('captured');
      expect(found).toMatchObject({ kind: 'authorize', pspReference: answer.pspReference, amountMinor: 1000n });
      expect(await lookup(`pa_missing${unique()}`)).toEqual([]);
    });

    it('captures part of an authorization, voids another, and refunds within what was captured', async () => {
      const connector = harness.connector();
      const held = await connector.authorize(authorization({ capture: false }));
      const id = unique();
      const captured = await connector.capture({ reference: `ch_${id}`, idempotencyKey: `cap:${id}`,
        pspReference: held.pspReference, amountMinor: 600n, currency: 'USD' });
      const refunded = await connector.refund({ reference: `re_${id}`, idempotencyKey: `ref:${id}`,
        pspReference: held.pspReference, amountMinor: 600n, currency: 'USD' });
      const other = await connector.authorize(authorization({ capture: false }));
      const voided = await connector.void({ reference: `ch_v${id}`, idempotencyKey: `void:${id}`,
        pspReference: other.pspReference });
      const tooMuch = () => connector.refund({ reference: `re_x${id}`, idempotencyKey: `refx:${id}`,
        pspReference: held.pspReference, amountMinor: 1n, currency: 'USD' });
      const afterVoid = () => connector.capture({ reference: `ch_c${id}`, idempotencyKey: `capv:${id}`,
        pspReference: other.pspReference, amountMinor: 1n, currency: 'USD' });
      if (!harness.followUpsReceived) {
        await expect(tooMuch()).rejects.toBeInstanceOf(ConnectorRefusedError);
        await expect(afterVoid()).rejects.toBeInstanceOf(ConnectorRefusedError);
        return;
      }
      // Taken, not done: the outcome of each is the PSP's later report, found by the look-up.
      for (const answer of [captured, refunded, voided, await tooMuch(), await afterVoid()]) {
        expect(answer.outcome).toBe('received');
      }
      const outcome = async (reference: string) => (await lookup(reference)).map((operation) => operation.outcome);
      expect(await outcome(`ch_${id}`)).toEqual(['captured']);
      expect(await outcome(`re_${id}`)).toEqual(['refunded']);
      expect(await outcome(`ch_v${id}`)).toEqual(['voided']);
      expect(await outcome(`re_x${id}`)).toEqual(['failed']);
      expect(await outcome(`ch_c${id}`)).toEqual(['failed']);
    });

    it('answers two concurrent calls with one key from one record', async () => {
      const input = authorization();
      const answers = await Promise.all(Array.from({ length: 50 }, () => harness.connector().authorize(input)));
      expect(new Set(answers.map((answer) => answer.pspReference)).size).toBe(1);
      expect(await lookup(input.reference)).toHaveLength(1);
    });

    it('fetches a settlement report, or refuses when it declares none', async () => {
      const fetching = harness.connector().fetchSettlementReport({ day: new Date().toISOString().slice(0, 10) });
      if (!supports('settlementReports')) {
        await expect(fetching).rejects.toBeInstanceOf(ConnectorRefusedError);
        return;
      }
      expect((await fetching).split('\n')[0]).toContain('Psp Reference');
    });

    it.runIf(!supports('payouts'))('refuses a payout when it declares no payouts', async () => {
      const id = unique();
      await expect(harness.connector().payout({ reference: `po_${id}`, idempotencyKey: `po:${id}`,
        amountMinor: 5000n, currency: 'EUR', destination: 'NL91ABNA0417164300' })).rejects
        .toBeInstanceOf(ConnectorRefusedError);
    });

    describe.runIf(supports('payouts'))('payouts', () => {
      it('pays out', async () => {
        const id = unique();
        const paid = await harness.connector().payout({ reference: `po_${id}`, idempotencyKey: `po:${id}`,
          amountMinor: 5000n, currency: 'EUR', destination: 'NL91ABNA0417164300' });
        expect(paid.pspReference).toMatch(/\S/);
      });
      it('pays out asynchronously: pending at first, paid later, as the look-up by Penny\'s reference shows',
        async () => {
          const id = unique();
          const paid = await harness.connector().payout({ reference: `po_${id}`, idempotencyKey: `po:${id}`,
            amountMinor: 2500n, currency: 'EUR', destination: harness.payingPayoutAccount });
          const [pending] = await harness.connector().lookup({ reference: `po_${id}` });
          expect(pending).toMatchObject({ kind: 'payout', pspReference: paid.pspReference, outcome: 'pending' });
          await harness.runDueChanges();
          expect(await harness.connector().lookup({ reference: `po_${id}` })).toEqual([expect.objectContaining({
            kind: 'payout', outcome: 'paid', amountMinor: 2500n, currency: 'EUR', failureCode: null })]);
        });

      it('fails a payout to its test mode\'s failing account, with the failure code', async () => {
        const id = unique();
        await harness.connector().payout({ reference: `po_${id}`, idempotencyKey: `po:${id}`, amountMinor: 2500n,
          currency: 'EUR', destination: harness.failingPayoutAccount.destination });
        await harness.runDueChanges();
        expect((await harness.connector().lookup({ reference: `po_${id}` }))[0]).toMatchObject({ outcome: 'failed',
          failureCode: harness.failingPayoutAccount.failureCode });
      });

      it('answers a payout\'s repeated key from its record: one payout', async () => {
        const id = unique();
        const input = { reference: `po_${id}`, idempotencyKey: `po:${id}`, amountMinor: 2500n, currency: 'EUR',
          destination: harness.payingPayoutAccount };
        const first = await harness.connector().payout(input);
        await harness.runDueChanges();
        expect(await harness.connector().payout(input)).toEqual(first);
        expect(await harness.connector().lookup({ reference: input.reference })).toHaveLength(1);
      });
    });

    it('reports a dispute on a captured charge by look-up: amount, reason and fee, then its decision', async () => {
      const input = authorization({ amountMinor: 1800n });
      const charged = await harness.connector().authorize(input);
      const disputeReference = await harness.openDispute({ pspReference: charged.pspReference, amountMinor: 1200n,
        reason: 'product_not_received' });
      const dispute = async () => (await lookup(input.reference))
        .find((operation) => operation.kind === 'chargeback');
      expect(await dispute()).toMatchObject({ pspReference: disputeReference, outcome: 'needs_response',
        amountMinor: 1200n, currency: 'USD', reason: 'product_not_received',
        disputeFeeMinor: harness.connector().priceList.disputeFeeMinor ?? null,
        parentPspReference: charged.pspReference });
      await harness.decideDispute(disputeReference, 'won');
      expect((await dispute())?.outcome).toBe('won');
    });

    it('retries a lost reply with the same key: one charge, and the answer', async () => {
      const input = authorization();
      await harness.injectFault('authorize', 'timeout_after', 1);
      expect((await harness.connector().authorize(input)).outcome).toBe('captured');
      expect(await lookup(input.reference)).toHaveLength(1);
    });

    it('reports an unknown outcome when every try loses its reply, and the look-up finds the charge', async () => {
      const input = authorization();
      await harness.injectFault('authorize', 'timeout_after', 10);
      await expect(harness.connector().authorize(input)).rejects.toBeInstanceOf(ConnectorUnknownOutcomeError);
      await harness.clearFaults();
      expect(await lookup(input.reference)).toHaveLength(1);
    });

    it('reports an unknown outcome for timeouts before processing and 5xx, with nothing charged', async () => {
      for (const fault of ['timeout_before', 'error_500'] as const) {
        const input = authorization();
        await harness.injectFault('authorize', fault, 10);
        await expect(harness.connector().authorize(input)).rejects.toBeInstanceOf(ConnectorUnknownOutcomeError);
        await harness.clearFaults();
        expect(await lookup(input.reference)).toEqual([]);
      }
    });

    it('reports an unknown outcome when a lost reply is followed by refusals: the first try may have charged',
      async () => {
        const input = authorization();
        await harness.injectFaults([['authorize', 'timeout_after'], ['authorize', 'error_429'],
          ['authorize', 'error_429']]);
        await expect(harness.connector().authorize(input)).rejects.toBeInstanceOf(ConnectorUnknownOutcomeError);
        await harness.clearFaults();
        expect(await lookup(input.reference)).toHaveLength(1);
      });

    it('treats a 4xx as a definite refusal, including 429 once its retries are spent', async () => {
      await harness.injectFault('authorize', 'error_429', 10);
      await expect(harness.connector().authorize(authorization())).rejects.toMatchObject({ status: 429 });
      await harness.clearFaults();
      await expect(harness.connector().authorize(authorization({ currency: 'XYZ' })))
        .rejects.toBeInstanceOf(ConnectorRefusedError);
    });

    describe.runIf(harness.webhooks !== undefined)('webhook signatures', () => {
      const signing = harness.webhooks ?? { signWebhook: (): Record<string, string> => ({}), signatureHeader: '',
        rotatedSecret: '' };
      const body = JSON.stringify({ id: `evt_${unique()}`, type: 'authorize.captured', data: {
        kind: 'authorize', psp_reference: 'psp_1', reference: 'pa_1', outcome: 'captured', amount_minor: 100,
        currency: 'USD', decline_code: null } });
      const parse = (raw: string, headers: Record<string, string>) =>
        harness.connector().parseWebhook({ rawBody: Buffer.from(raw), headers });

      it('accepts a signed webhook and parses it', () => {
        expect(parse(body, signing.signWebhook(body))).toMatchObject({ type: 'authorize.captured',
          operation: { reference: 'pa_1', amountMinor: 100n } });
      });

      it('accepts either secret during a rotation', () => {
        expect(parse(body, signing.signWebhook(body, { secret: signing.rotatedSecret })).type).toBe('authorize.captured');
      });

      it('refuses a tampered body', () => {
        expect(() => parse(body.replace('100', '999'), signing.signWebhook(body))).toThrow(ConnectorWebhookError);
      });

      it('refuses a wrong secret', () => {
        expect(() => parse(body, signing.signWebhook(body, { secret: 'not-the-secret' })))
          .toThrow(expect.objectContaining({ problem: 'mismatch' }));
      });

      it('refuses a stale timestamp', () => {
        const stale = signing.signWebhook(body, { timestampSeconds: Math.floor(Date.now() / 1000) - 3600 });
        expect(() => parse(body, stale)).toThrow(expect.objectContaining({ problem: 'stale' }));
      });

      it('parses a dispute\'s webhook with its reason, fee and charge', () => {
        const dispute = JSON.stringify({ id: `evt_${unique()}`, type: 'chargeback.needs_response', data: {
          kind: 'chargeback', psp_reference: 'psp_2', reference: 'pa_2', outcome: 'needs_response', amount_minor: 700,
          currency: 'EUR', decline_code: null, parent_psp_reference: 'psp_1', reason: 'fraudulent', fee_minor: 1500 } });
        expect(parse(dispute, signing.signWebhook(dispute)).operation).toMatchObject({ kind: 'chargeback',
          outcome: 'needs_response', amountMinor: 700n, reason: 'fraudulent', disputeFeeMinor: 1500n,
          parentPspReference: 'psp_1' });
      });

      it('parses a failed payout\'s webhook with its failure code', () => {
        const payout = JSON.stringify({ id: `evt_${unique()}`, type: 'payout.failed', data: {
          kind: 'payout', psp_reference: 'psp_3', reference: 'po_3', outcome: 'failed', amount_minor: 900,
          currency: 'EUR', decline_code: null, failure_code: 'account_closed' } });
        expect(parse(payout, signing.signWebhook(payout)).operation).toMatchObject({ kind: 'payout',
          outcome: 'failed', failureCode: 'account_closed' });
      });

      it('refuses a webhook whose fee is no whole number', () => {
        const bad = JSON.stringify({ id: `evt_${unique()}`, type: 'chargeback.lost', data: { kind: 'chargeback',
          psp_reference: 'psp_4', reference: 'pa_4', outcome: 'lost', amount_minor: 1, currency: 'EUR',
          fee_minor: '15.00' } });
        expect(() => parse(bad, signing.signWebhook(bad))).toThrow(expect.objectContaining({ problem: 'unparseable' }));
      });

      it('refuses a missing signature', () => {
        const headers = signing.signWebhook(body);
        delete headers[signing.signatureHeader];
        expect(() => parse(body, headers)).toThrow(expect.objectContaining({ problem: 'missing' }));
      });
    });
  });
}
