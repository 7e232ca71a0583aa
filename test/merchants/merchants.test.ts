import Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import { keyDigest } from '../../src/merchants/merchant-keys.js';
import { testPepper } from '../support/app.js';
import { serveTestLedger, type ServedLedger } from '../support/stripe.js';

/** Merchants and keys, and the official stripe SDK authenticating against Penny over HTTP. */
let penny: ServedLedger;
let port: number;

beforeAll(async () => {
  penny = await serveTestLedger();
  port = penny.port;
});

function stripeFor(key: string): Stripe {
  return penny.stripeFor(key);
}

describe('merchants and keys', () => {
  it('stores a key only as its peppered digest, never in plain text', async () => {
    const { secretKey, merchant } = await penny.merchants.createMerchant('Digest Shop');
    const stored = await penny.pool.query<{ key_digest: Buffer; last4: string; prefix: string }>(
      'SELECT key_digest, last4, prefix FROM merchant_api_keys WHERE merchant_id = $1', [merchant.id]);
    expect(stored.rows[0]?.key_digest.equals(keyDigest(testPepper, secretKey))).toBe(true);
    expect(stored.rows[0]?.last4).toBe(secretKey.slice(-4));
    const dump = JSON.stringify((await penny.pool.query('SELECT * FROM merchant_api_keys')).rows);
    expect(dump).not.toContain(secretKey.slice(8));
  });

  it('lets the stripe SDK retrieve the account of its key', async () => {
    const { secretKey, merchant } = await penny.merchants.createMerchant('SDK Shop');
    const account = await stripeFor(secretKey).accounts.retrieveCurrent();
    expect(account.id).toBe(merchant.id);
    expect(account.business_profile?.name).toBe('SDK Shop');
  });

  it('accepts HTTP Basic with the key as user name', async () => {
    const { secretKey, merchant } = await penny.merchants.createMerchant('Basic Shop');
    const response = await fetch(`http://127.0.0.1:${port}/v1/account`, {
      headers: { authorization: `Basic ${Buffer.from(`${secretKey}:`).toString('base64')}` },
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { id: string }).id).toBe(merchant.id);
  });

  it('answers an unknown key with 401 and Stripe\'s masked message', async () => {
    const error = await stripeFor('sk_test_unknownunknownunknown1234').accounts.retrieveCurrent().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    const stripeError = error as InstanceType<typeof Stripe.errors.StripeAuthenticationError>;
    expect(stripeError.statusCode).toBe(401);
    expect(stripeError.message).toBe('Invalid API Key provided: sk_test_****1234');
  });

  it('answers a missing key with 401', async () => {
    const response = await fetch(`http://127.0.0.1:${port}/v1/account`);
    expect(response.status).toBe(401);
    expect(((await response.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');
  });

  it('refuses a revoked key, while the merchant\'s other key still works', async () => {
    const { secretKey, keyId, merchant } = await penny.merchants.createMerchant('Revoking Shop');
    const second = await penny.merchants.createKey(merchant.id);
    await penny.merchants.revokeKey(keyId);
    const error = await stripeFor(secretKey).accounts.retrieveCurrent().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    expect((await stripeFor(second.secretKey).accounts.retrieveCurrent()).id).toBe(merchant.id);
  });

  it('refuses to un-revoke or rewrite a key through raw SQL', async () => {
    const { keyId } = await penny.merchants.createMerchant('Raw Shop');
    await penny.merchants.revokeKey(keyId);
    await expect(penny.pool.query('UPDATE merchant_api_keys SET revoked_at = NULL WHERE id = $1', [keyId]))
      .rejects.toMatchObject({ code: 'PN003' });
    await expect(penny.pool.query('DELETE FROM merchant_api_keys WHERE id = $1', [keyId]))
      .rejects.toMatchObject({ code: 'PN003' });
  });

  it('refuses to delete or truncate a merchant, whose payments and events name it', async () => {
    const { merchant } = await penny.merchants.createMerchant('Kept Shop');
    await expect(penny.pool.query('DELETE FROM merchants WHERE id = $1', [merchant.id]))
      .rejects.toMatchObject({ code: 'PN003' });
    await expect(penny.pool.query('TRUNCATE merchants CASCADE')).rejects.toMatchObject({ code: 'PN003' });
    expect((await penny.pool.query('SELECT 1 FROM merchants WHERE id = $1', [merchant.id])).rowCount).toBe(1);
  });

  it('lists keys as prefix and last four characters only', async () => {
    const { secretKey, merchant } = await penny.merchants.createMerchant('Listing Shop');
    const keys = await penny.merchants.listKeys(merchant.id);
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ prefix: 'sk_test_', last4: secretKey.slice(-4), revokedAt: null });
    expect(JSON.stringify(keys)).not.toContain(secretKey);
  });
});
