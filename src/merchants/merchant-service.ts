import type pg from 'pg';
import { withTransaction } from '../db/pool.js';
import { PennyError } from '../errors.js';
import { newId } from '../ids.js';
import { keyDigest, keyDigestHex, keyPrefix, newSecretKey } from './merchant-keys.js';
import * as store from './merchant-store.js';

/** Merchants, their secret keys, and authentication by key. */
/**
 * Authenticated keys are remembered for `keyCacheTtlMs`, bounded to `keyCacheEntriesMax` keys, so a
 * busy client does not cost a query per request. A revoked key is forgotten at once in this
 * process, at once in every other Penny process that listens for revocations
 * (KeyRevocationListener), and within the TTL in any process that is not listening.
 */
const keyCacheTtlMs = 5_000;
const keyCacheEntriesMax = 10_000;

export class MerchantService {
  private readonly keyCache = new Map<string, { merchant: store.MerchantRow; keyId: string; expiresAt: number }>();
  /**
   * Counts revocations heard (here or announced). A key read before a revocation and returned after
   * it is used for that request but not cached: it may be the revoked one.
   */
  private revocationsHeard = 0;

  constructor(private readonly pool: pg.Pool, private readonly pepper: string) {}

  /** Creates a merchant with its first secret key; the key is returned here and never again. */
  async createMerchant(name: string): Promise<{ merchant: store.MerchantRow; secretKey: string; keyId: string }> {
    if (name.trim().length === 0 || name.length > 255) {
      throw new PennyError({ code: 'parameter_invalid', param: 'name', message: 'A merchant name is 1 to 255 characters.' });
    }
    return withTransaction(this.pool, async (client) => {
      const merchant = await store.insertMerchant(client, newId('acct'), name);
      const { secretKey, keyId } = await this.insertKey(client, merchant.id);
      return { merchant, secretKey, keyId };
    });
  }

  async createKey(merchantId: string): Promise<{ secretKey: string; keyId: string }> {
    await this.getMerchant(merchantId);
    return this.insertKey(this.pool, merchantId);
  }

  async listKeys(merchantId: string): Promise<store.ApiKeyRow[]> {
    await this.getMerchant(merchantId);
    return store.selectApiKeys(this.pool, merchantId);
  }

  async revokeKey(keyId: string): Promise<store.ApiKeyRow> {
    const key = await store.revokeApiKey(this.pool, keyId);
    this.forgetKey(keyId);
    if (key === undefined) {
      throw new PennyError({ code: 'resource_missing', param: 'key', message: `No API key ${keyId}.` });
    }
    return key;
  }

  /** Drops a key from the cache (it was revoked, here or in another process). */
  forgetKey(keyId: string): void {
    this.revocationsHeard += 1;
    for (const [cacheKey, entry] of this.keyCache) if (entry.keyId === keyId) this.keyCache.delete(cacheKey);
  }

  /** Drops every cached key (revocations may have been missed while not listening). */
  forgetAllKeys(): void {
    this.revocationsHeard += 1;
    this.keyCache.clear();
  }

  /** A page of merchants, newest first (the operator's dashboard). */
  async list(query: { limit: number; startingAfter: string | undefined }):
  Promise<{ merchants: store.MerchantRow[]; hasMore: boolean }> {
    if (query.startingAfter !== undefined) await this.getMerchant(query.startingAfter);
    const rows = await store.selectMerchantPage(this.pool, { ...query, limit: query.limit + 1 });
    return { merchants: rows.slice(0, query.limit), hasMore: rows.length > query.limit };
  }

  async getMerchant(id: string): Promise<store.MerchantRow> {
    const merchant = await store.selectMerchant(this.pool, id);
    if (merchant === undefined) {
      throw new PennyError({ code: 'resource_missing', param: 'merchant', message: `No merchant ${id}.` });
    }
    return merchant;
  }

  /** The merchant a secret key belongs to, or undefined for an unknown or revoked key. */
  async authenticate(secretKey: string): Promise<store.MerchantRow | undefined> {
    const cacheKey = keyDigestHex(this.pepper, secretKey);
    const cached = this.keyCache.get(cacheKey);
    if (cached !== undefined && cached.expiresAt > Date.now()) return cached.merchant;
    const heardBefore = this.revocationsHeard;
    const found = await store.selectMerchantByKeyDigest(this.pool, Buffer.from(cacheKey, 'hex'));
    if (found === undefined) {
      this.keyCache.delete(cacheKey);
      return undefined;
    }
    if (this.revocationsHeard !== heardBefore) return found.merchant;
    if (this.keyCache.size >= keyCacheEntriesMax) this.keyCache.clear();
    const expiresAt = Date.now() + keyCacheTtlMs;
    this.keyCache.set(cacheKey, { merchant: found.merchant, keyId: found.keyId, expiresAt });
    return found.merchant;
  }

  /**
   * The merchant and the id of the key, for a secret key that is known and unrevoked (uncached:
   * the dashboard keeps the key's id with the session it opens, so revoking the key ends it).
   */
  async authenticateWithKeyId(secretKey: string): Promise<{ merchant: store.MerchantRow; keyId: string } | undefined> {
    return store.selectMerchantByKeyDigest(this.pool, keyDigest(this.pepper, secretKey));
  }

  private async insertKey(db: pg.Pool | pg.PoolClient, merchantId: string) {
    const secretKey = newSecretKey();
    const keyId = newId('key');
    await store.insertApiKey(db, {
      id: keyId, merchantId, digest: keyDigest(this.pepper, secretKey),
      prefix: keyPrefix(secretKey), last4: secretKey.slice(-4),
    });
    return { secretKey, keyId };
  }
}
