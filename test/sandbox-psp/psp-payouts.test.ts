import { XMLParser } from 'fast-xml-parser';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { advanceClock, configureClock, nowIso } from '../../src/clock.js';
import { ConnectorUnknownOutcomeError } from '../../src/connectors/connector.js';
import { parseFaultProfile } from '../../src/sandbox-psp/psp-faults.js';
import type { SandboxWebhookSender } from '../../src/sandbox-psp/psp-webhooks.js';
import { createTestDatabase } from '../support/database.js';
import { startTestSandboxPsp, type TestSandboxPsp } from '../support/sandbox-psp.js';
import { callSandbox, eventsFor, startWebhookReceiver, unique, type ReceivedWebhook } from './psp-test-helpers.js';

/**
 * The sandbox's payouts are asynchronous, as a bank transfer is: pending, then in transit, then
 * paid or failed as the test bank account says, each step on the sandbox's clock and each with
 * its signed webhook; idempotent by key, and under every fault the other operations know.
 */
let sandbox: TestSandboxPsp;
let sender: SandboxWebhookSender;
let received: ReceivedWebhook[];

beforeAll(async () => {
  configureClock('controlled');
  const database = await createTestDatabase();
  sandbox = await startTestSandboxPsp(database.url);
  const receiver = await startWebhookReceiver();
  received = receiver.received;
  sender = sandbox.sender(receiver.url);
});

afterEach(() => {
  sandbox.resetFaults();
});

function payout(destination: string, overrides: Record<string, unknown> = {}) {
  const reference = `po_${unique()}`;
  const body = { reference, amount_minor: 5000, currency: 'EUR', destination, ...overrides };
  return { reference, body, send: (key = `payout:${reference}`) => callSandbox(sandbox, 'POST', '/v1/payouts', body, key) };
}

async function statusOf(reference: string) {
  const [operation] = await sandbox.connector.lookup({ reference });
  return operation;
}

async function deliver(): Promise<void> {
  while ((await sender.sendDue()) > 0) { /* deliver every due copy */ }
}

/**
 * Moves the controlled clock a step (payout_step_ms is 1 s) and runs the changes now due,
 * delivering the webhooks before and after, so they arrive in the order of the states.
 */
async function step(): Promise<void> {
  await deliver();
  advanceClock(1000);
  await sender.resolvePending();
  await deliver();
}

describe('a payout', () => {
  it('answers pending, then goes in_transit and paid, a step apart on the clock', async () => {
    const request = payout('NL39RABO0300065264');
    expect((await request.send()).body).toMatchObject({ kind: 'payout', outcome: 'pending',
      destination: 'NL39RABO0300065264', failure_code: null });
    await sender.resolvePending();
    expect((await statusOf(request.reference))?.outcome).toBe('pending');
    await step();
    expect((await statusOf(request.reference))?.outcome).toBe('in_transit');
    await step();
    expect(await statusOf(request.reference)).toMatchObject({ kind: 'payout', outcome: 'paid', amountMinor: 5000n,
      currency: 'EUR', failureCode: null });
  });

  it('sends a signed webhook for each state: pending, in_transit, paid', async () => {
    const request = payout('000123456789');
    await request.send();
    await step();
    await step();
    expect(eventsFor(sandbox.connector, received, request.reference).map((event) => event.type))
      .toEqual(['payout.pending', 'payout.in_transit', 'payout.paid']);
  });

  it.each([
    ['000111111116', 'no_account'],
    ['000111111113', 'account_closed'],
    ['000222222227', 'insufficient_funds'],
    ['110000000/000111111116', 'no_account'],
    ['DE62370400440532013001', 'no_account'],
    ['DE35 3704 0044 0532 0130 02', 'account_closed'],
    ['DE08370400440532013003', 'insufficient_funds'],
  ])('to the test account %s fails with %s, by webhook too', async (destination, failureCode) => {
    const request = payout(destination);
    await request.send();
    await step();
    await step();
    expect(await statusOf(request.reference)).toMatchObject({ outcome: 'failed', failureCode });
    expect(eventsFor(sandbox.connector, received, request.reference).at(-1)).toMatchObject({ type: 'payout.failed',
      operation: { outcome: 'failed', failureCode, amountMinor: 5000n } });
  });

  it.each(['000123456789', 'DE89370400440532013000', '987654321'])('to %s is paid', async (destination) => {
    const request = payout(destination);
    await request.send();
    await step();
    await step();
    expect((await statusOf(request.reference))?.outcome).toBe('paid');
  });

  it('with the system clock and no faults is paid within a few seconds', async () => {
    configureClock('system');
    try {
      const request = payout('000123456789');
      const started = Date.now();
      await request.send();
      while ((await statusOf(request.reference))?.outcome !== 'paid' && Date.now() - started < 10_000) {
        await sender.resolvePending();
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect((await statusOf(request.reference))?.outcome).toBe('paid');
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      configureClock('controlled');
    }
  });
});

describe('payout idempotency', () => {
  it('answers a retried key from the record: one payout, in its current state', async () => {
    const request = payout('000123456789');
    const first = await request.send();
    await step();
    const again = await request.send();
    expect(again.body).toMatchObject({ psp_reference: first.body.psp_reference, outcome: 'in_transit' });
    expect(await sandbox.connector.lookup({ reference: request.reference })).toHaveLength(1);
  });

  it('refuses another payout under a used key', async () => {
    const request = payout('000123456789');
    await request.send();
    const other = await callSandbox(sandbox, 'POST', '/v1/payouts', { ...request.body, amount_minor: 6000 },
      `payout:${request.reference}`);
    expect(other.status).toBe(422);
    expect(other.body.error.code).toBe('idempotency_key_reused');
  });
});

describe('faults on payouts', () => {
  const input = () => {
    const reference = `po_${unique()}`;
    return { reference, idempotencyKey: `payout:${reference}`, amountMinor: 5000n, currency: 'EUR',
      destination: '000123456789' };
  };

  it('a lost reply is retried with the same key by the connector: one payout', async () => {
    sandbox.injector.set(parseFaultProfile({ script: [{ operation: 'payout', fault: 'timeout_after' }] }));
    const request = input();
    const answer = await sandbox.connector.payout(request);
    const operations = await sandbox.connector.lookup({ reference: request.reference });
    expect(operations.map((operation) => operation.pspReference)).toEqual([answer.pspReference]);
  });

  it('every try losing its reply is an unknown outcome, and the look-up finds the one payout', async () => {
    sandbox.injector.set(parseFaultProfile({ script: Array.from({ length: 3 },
      () => ({ operation: 'payout', fault: 'timeout_after' })) }));
    const request = input();
    await expect(sandbox.connector.payout(request)).rejects.toBeInstanceOf(ConnectorUnknownOutcomeError);
    sandbox.resetFaults();
    expect(await sandbox.connector.lookup({ reference: request.reference })).toHaveLength(1);
  });

  it.each(['timeout_before', 'error_500', 'error_503'] as const)('%s on every try is unknown, with nothing paid out',
    async (fault) => {
      sandbox.injector.set(parseFaultProfile({ script: Array.from({ length: 3 }, () => ({ operation: 'payout', fault })) }));
      const request = input();
      await expect(sandbox.connector.payout(request)).rejects.toBeInstanceOf(ConnectorUnknownOutcomeError);
      sandbox.resetFaults();
      expect(await sandbox.connector.lookup({ reference: request.reference })).toEqual([]);
    });

  it('a lost webhook fault loses a payout\'s webhooks; the record still moves on', async () => {
    sandbox.injector.set(parseFaultProfile({ webhooks: { lost_rate: 1 } }));
    const request = payout('000123456789');
    await request.send();
    await step();
    await step();
    expect(eventsFor(sandbox.connector, received, request.reference)).toEqual([]);
    expect((await statusOf(request.reference))?.outcome).toBe('paid');
  });

  it('a duplicated webhook fault sends each payout state twice', async () => {
    sandbox.injector.set(parseFaultProfile({ webhooks: { duplicate_rate: 1 } }));
    const request = payout('000123456789');
    await request.send();
    await step();
    await step();
    expect(eventsFor(sandbox.connector, received, request.reference).map((event) => event.type))
      .toEqual(['payout.pending', 'payout.pending', 'payout.in_transit', 'payout.in_transit', 'payout.paid',
        'payout.paid']);
  });
});

describe('the sandbox bank\'s camt.053 statement', () => {
  const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@_', parseTagValue: false,
    removeNSPrefix: true, isArray: (name) => ['Ntry'].includes(name) });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the parsed statement
  const statementOf = (xml: string): any => (parser.parse(xml) as any).Document.BkToCstmrStmt.Stmt;

  it('has a paid payout as a credit on its destination account, on the day it was paid', async () => {
    const account = 'DE89370400440532013000';
    const request = payout(account, { amount_minor: 12_345 });
    await request.send();
    await step();
    await step();
    const day = nowIso().slice(0, 10);
    const answer = await callSandbox(sandbox, 'GET', `/v1/bank_statements/${day}?account=${account}`);
    const statement = statementOf(answer.body as string);
    expect(statement.Acct).toEqual({ Id: { IBAN: account }, Ccy: 'EUR' });
    const entry = statement.Ntry.find((item: { NtryDtls: { TxDtls: { RmtInf: { Ustrd: string } } } }) =>
      item.NtryDtls.TxDtls.RmtInf.Ustrd === `SANDBOX PAYOUT ${request.reference}`);
    expect(entry).toMatchObject({ Amt: { '#text': '123.45', '@_Ccy': 'EUR' }, CdtDbtInd: 'CRDT',
      BookgDt: { Dt: day } });
  });

  it('names an account without an IBAN by its number', async () => {
    const request = payout('000123456789', { amount_minor: 777 });
    await request.send();
    await step();
    await step();
    const answer = await callSandbox(sandbox, 'GET', `/v1/bank_statements/${nowIso().slice(0, 10)}?account=000123456789`);
    expect(statementOf(answer.body as string).Acct.Id).toEqual({ Othr: { Id: '000123456789' } });
    expect(answer.body).toContain(`SANDBOX PAYOUT ${request.reference}`);
  });

  it('has no credit for a failed payout, nor for one still in transit', async () => {
    const failed = payout('000111111116');
    await failed.send();
    await step();
    await step();
    const inTransit = payout('000123456789');
    await inTransit.send();
    await step();
    expect((await statusOf(inTransit.reference))?.outcome).toBe('in_transit');
    const day = nowIso().slice(0, 10);
    expect((await callSandbox(sandbox, 'GET', `/v1/bank_statements/${day}?account=000111111116`)).body)
      .not.toContain(failed.reference);
    expect((await callSandbox(sandbox, 'GET', `/v1/bank_statements/${day}?account=000123456789`)).body)
      .not.toContain(inTransit.reference);
  });
});
