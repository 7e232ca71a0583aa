import fs from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FailpointName } from '../../src/failpoints.js';
import { checkStoredBalances } from '../../src/ledger/ledger-verify.js';
import { MerchantService } from '../../src/merchants/merchant-service.js';
import { freePort } from '../global-setup.js';
import {
  delay, startChildUntilHealthy, stopAllChildren, stopChild, type ChildPenny,
} from '../support/child-penny.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * The crash test: `penny serve` runs in a child process and dies by SIGKILL at each step of a
 * payment. The client's retry with the same Idempotency-Key must end with one charge at the PSP,
 * one set of ledger entries, and the stored response replayed byte for byte.
 */
const operatorKey = 'op_crash_test_0123456789abcdefghij';
const secretKey = 'crash_test_secret_0123456789abcdefghijklmnopqrstuvwxyz';
const idempotencyKey = 'crash-test-payment-1';
type PaymentFailpoint = Extract<FailpointName, 'after_key_claim' | 'before_psp_call' | 'after_psp_reply' | 'after_commit'>;
const paymentBody = new URLSearchParams({
  amount: '5000', currency: 'usd', payment_method: 'pm_card_visa', confirm: 'true',
}).toString();

function pay(server: ChildPenny, merchantKey: string): Promise<Response> {
  return fetch(`http://127.0.0.1:${server.port}/v1/payment_intents`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${merchantKey}`,
      'content-type': 'application/x-www-form-urlencoded',
      'idempotency-key': idempotencyKey,
    },
    body: paymentBody,
  });
}

/**
 * The retry, as the stripe SDK would make it: a 409 idempotency_key_in_use (the dead process's
 * advisory lock not yet released by PostgreSQL) is retried after a short wait.
 */
async function retryPayment(server: ChildPenny, merchantKey: string) {
  const started = Date.now();
  for (let conflicts = 0; ; conflicts += 1) {
    const response = await pay(server, merchantKey);
    const text = await response.text();
    if (response.status !== 409 || conflicts >= 40) {
      return { response, text, conflicts, waitedMs: Date.now() - started };
    }
    await delay(50);
  }
}

async function count(database: TestDatabase, sql: string, values: unknown[]): Promise<number> {
  const result = await database.pool.query<{ count: bigint }>(`SELECT count(*) AS count FROM ${sql}`, values);
  return Number(result.rows[0]?.count);
}

/** Waits (up to 5 s) until no session holds an advisory lock in the database; how long it took. */
async function advisoryLocksReleased(database: TestDatabase): Promise<{ held: number; waitedMs: number }> {
  const started = Date.now();
  for (;;) {
    const held = await count(database,
      `pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      []);
    const waitedMs = Date.now() - started;
    if (held === 0 || waitedMs > 5000) return { held, waitedMs };
    await delay(10);
  }
}

/** What the database holds when the process has died, before the retry: proves where it died. */
async function stateAtCrash(database: TestDatabase, merchantId: string) {
  const key = await database.pool.query<{ recovery_point: string; response_status: number | null }>(
    'SELECT recovery_point, response_status FROM idempotency_keys WHERE merchant_id = $1 AND key = $2',
    [merchantId, idempotencyKey]);
  return {
    key: key.rows[0],
    intents: await count(database, 'payment_intents WHERE merchant_id = $1', [merchantId]),
    attempts: await count(database, 'payment_attempts WHERE merchant_id = $1', [merchantId]),
    pspAuthorizations: await count(database,
      `sandbox_psp_operations WHERE kind = 'authorize' AND merchant_reference IN
         (SELECT id FROM payment_attempts WHERE merchant_id = $1)`, [merchantId]),
    charges: await count(database, 'charges WHERE merchant_id = $1', [merchantId]),
  };
}

const expectedAtCrash: Record<PaymentFailpoint, Awaited<ReturnType<typeof stateAtCrash>>> = {
  after_key_claim: {
    key: { recovery_point: 'started', response_status: null }, intents: 0, attempts: 0, pspAuthorizations: 0, charges: 0,
  },
  before_psp_call: {
    key: { recovery_point: 'attempt_recorded', response_status: null },
    intents: 1, attempts: 1, pspAuthorizations: 0, charges: 0,
  },
  after_psp_reply: {
    key: { recovery_point: 'attempt_recorded', response_status: null },
    intents: 1, attempts: 1, pspAuthorizations: 1, charges: 0,
  },
  // The response is stored in the transaction that applies the PSP's answer: a crash after that
  // commit leaves a finished key, and the retry is a replay.
  after_commit: {
    key: { recovery_point: 'finished', response_status: 200 },
    intents: 1, attempts: 1, pspAuthorizations: 1, charges: 1,
  },
};

const failpoints: PaymentFailpoint[] = ['after_key_claim', 'before_psp_call', 'after_psp_reply', 'after_commit'];

/** A database per failpoint, created here so that its pool is closed after the file's tests. */
const databases = new Map<PaymentFailpoint, TestDatabase>();

beforeAll(async () => {
  for (const name of failpoints) databases.set(name, await createTestDatabase(2));
});

describe('a payment survives SIGKILL at each step', () => {
  it.each(failpoints)('killed at %s: the retry charges once, posts once and replays the stored response',
    async (name) => {
      const database = databases.get(name) as TestDatabase;
      const { merchant, secretKey: merchantKey } =
        await new MerchantService(database.pool, secretKey).createMerchant(`Crash Shop ${name}`);
      const dataDirectory = await fs.mkdtemp(path.join('/var/tmp', 'penny-crash-'));
      try {
        const failpointFile = path.join(dataDirectory, 'failpoint');
        await fs.writeFile(failpointFile, name);
        const environment = {
          DATABASE_URL: database.url,
          PENNY_DATA_DIR: dataDirectory,
          PENNY_OPERATOR_KEY: operatorKey,
          PENNY_SECRET_KEY: secretKey,
          PENNY_LOG_LEVEL: 'warn',
          PENNY_FAILPOINT: name,
          PENNY_FAILPOINT_FILE: failpointFile,
          PENNY_SANDBOX_PSP_PORT: String(await freePort()),
        };

        // The first request: Penny dies at the failpoint, the client sees the connection drop.
        const first = await startChildUntilHealthy(environment);
        await expect(pay(first, merchantKey)).rejects.toThrow();
        expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
        await expect(fs.access(failpointFile)).rejects.toThrow();
        expect(await stateAtCrash(database, merchant.id)).toEqual(expectedAtCrash[name]);
        // The dead process's session held the key's advisory lock; PostgreSQL drops it with the session.
        const released = await advisoryLocksReleased(database);
        expect(released.held, `advisory locks still held after ${released.waitedMs} ms`).toBe(0);

        // Restarted (the failpoint file is gone), the retry with the same key completes the payment.
        const second = await startChildUntilHealthy(environment);
        const retried = await retryPayment(second, merchantKey);
        if (retried.conflicts > 0) {
          console.warn(`${name}: 409 idempotency_key_in_use ${retried.conflicts} time(s), ${retried.waitedMs} ms`);
        }
        expect(retried.response.status, `${retried.text} (after ${retried.conflicts} 409s)`).toBe(200);
        expect(retried.response.headers.get('idempotent-replayed')).toBe(name === 'after_commit' ? 'true' : null);
        const intent = JSON.parse(retried.text) as { id: string; status: string; latest_charge: string };
        expect(intent).toMatchObject({ object: 'payment_intent', status: 'succeeded', amount: 5000,
          amount_received: 5000, currency: 'usd' });

        // Once more: the stored response, byte for byte.
        const replay = await pay(second, merchantKey);
        expect(replay.status).toBe(200);
        expect(replay.headers.get('idempotent-replayed')).toBe('true');
        expect(await replay.text()).toBe(retried.text);

        // One intent, one attempt, one authorization at the PSP, one charge.
        const intents = await database.pool.query<{ id: string }>(
          'SELECT id FROM payment_intents WHERE merchant_id = $1', [merchant.id]);
        expect(intents.rows.map((row) => row.id)).toEqual([intent.id]);
        const attempts = await database.pool.query<{ id: string }>(
          'SELECT id FROM payment_attempts WHERE merchant_id = $1', [merchant.id]);
        expect(attempts.rows).toHaveLength(1);
        const attemptId = attempts.rows[0]?.id as string;
        const operations = await database.pool.query<{ kind: string; amount_minor: bigint; outcome: string }>(
          'SELECT kind, amount_minor, outcome FROM sandbox_psp_operations WHERE merchant_reference = $1', [attemptId]);
        expect(operations.rows).toEqual([{ kind: 'authorize', amount_minor: 5000n, outcome: 'captured' }]);
        const charges = await database.pool.query<{ id: string }>(
          'SELECT id FROM charges WHERE merchant_id = $1', [merchant.id]);
        expect(charges.rows.map((row) => row.id)).toEqual([intent.latest_charge]);

        // One set of ledger entries for the charge: the capture and both fees.
        const references = await database.pool.query<{ external_reference: string }>(
          `SELECT external_reference FROM ledger_entries WHERE external_reference LIKE 'penny:charge:%'
           ORDER BY external_reference`);
        const charge = intent.latest_charge;
        expect(references.rows.map((row) => row.external_reference)).toEqual([
          `penny:charge:${charge}:capture`, `penny:charge:${charge}:penny_fee`, `penny:charge:${charge}:psp_fee`,
        ]);
        expect((await checkStoredBalances(database.pool)).failures).toEqual([]);

        await stopChild(second);
        expect((await second.exited).code).toBe(0);
      } finally {
        await stopAllChildren();
        await fs.rm(dataDirectory, { recursive: true, force: true });
      }
    }, 60_000);
});
