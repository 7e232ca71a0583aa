import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type pg from 'pg';
import type { MerchantService } from '../merchants/merchant-service.js';
import {
  deleteExpiredSessions, deleteSession, insertSession, selectLiveSession,
} from './dashboard-session-store.js';

/** Who is signed in: the operator (sees everything) or one merchant (sees its own objects only). */
export type Viewer =
  | { readonly kind: 'operator' }
  | { readonly kind: 'merchant'; readonly merchantId: string; readonly merchantName: string };

/** How long a session lasts from sign-in; it is not extended. */
export const sessionLifetimeSeconds = 8 * 60 * 60;

/**
 * Dashboard sessions, kept server-side: the browser holds a random 256-bit token in an HttpOnly
 * cookie, Penny holds its SHA-256 (migration 0040), so sign-out (the row deleted) really ends it.
 * An operator's session also holds the HMAC-SHA-256 of the operator key that opened it, under
 * PENNY_SECRET_KEY (migration 0047), and is live only while that is the current operator key's:
 * change PENNY_OPERATOR_KEY and restart, and the sessions it opened are signed out.
 * The CSRF token is an HMAC of the session token under PENNY_SECRET_KEY: it is written into the
 * page (a hidden field, and a header htmx sends), never into a cookie a script could read.
 */
export class DashboardSessions {
  private readonly operatorDigest: Buffer;
  /** What an operator's session stores of the key that opened it: never the key, nor its bare hash. */
  private readonly operatorSessionDigest: Buffer;

  constructor(private readonly pool: pg.Pool, private readonly options: {
    operatorKey: string; secretKey: string; merchants: MerchantService;
  }) {
    this.operatorDigest = digest(options.operatorKey);
    this.operatorSessionDigest = createHmac('sha256', options.secretKey)
      .update(`dashboard operator key\0${options.operatorKey}`).digest();
  }

  /** Signs in with the operator key or a merchant's secret key; undefined for anything else. */
  async signIn(key: string): Promise<{ token: string; viewer: Viewer } | undefined> {
    const trimmed = key.trim();
    if (trimmed.length === 0 || trimmed.length > 255) return undefined;
    let session: { merchantId: string | null; keyId: string | null; operatorKeyDigest: Buffer | null;
      viewer: Viewer; } | undefined;
    if (timingSafeEqual(digest(trimmed), this.operatorDigest)) {
      session = { merchantId: null, keyId: null, operatorKeyDigest: this.operatorSessionDigest,
        viewer: { kind: 'operator' } };
    } else if (trimmed.startsWith('sk_')) {
      const found = await this.options.merchants.authenticateWithKeyId(trimmed);
      if (found !== undefined) {
        session = { merchantId: found.merchant.id, keyId: found.keyId, operatorKeyDigest: null,
          viewer: { kind: 'merchant', merchantId: found.merchant.id, merchantName: found.merchant.name } };
      }
    }
    if (session === undefined) return undefined;
    const token = randomBytes(32).toString('base64url');
    await deleteExpiredSessions(this.pool, 100);
    await insertSession(this.pool, { tokenDigest: digest(token), merchantId: session.merchantId,
      keyId: session.keyId, operatorKeyDigest: session.operatorKeyDigest, lifetimeSeconds: sessionLifetimeSeconds });
    return { token, viewer: session.viewer };
  }

  /**
   * The viewer of a live session, or undefined (no such session, expired, signed out, key revoked,
   * or an operator's session opened with another operator key than the current one).
   */
  async viewerOf(token: string): Promise<Viewer | undefined> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return undefined;
    const row = await selectLiveSession(this.pool, digest(token), this.operatorSessionDigest);
    if (row === undefined) return undefined;
    return row.merchantId === null ? { kind: 'operator' }
      : { kind: 'merchant', merchantId: row.merchantId, merchantName: row.merchantName ?? row.merchantId };
  }

  async signOut(token: string): Promise<void> {
    await deleteSession(this.pool, digest(token));
  }

  csrfTokenOf(token: string): string {
    return createHmac('sha256', this.options.secretKey).update(`dashboard csrf\0${token}`).digest('base64url');
  }

  /** Whether `presented` is the session's CSRF token (compared in constant time). */
  csrfMatches(token: string, presented: string | undefined): boolean {
    if (presented === undefined) return false;
    const expected = Buffer.from(this.csrfTokenOf(token));
    const given = Buffer.from(presented);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
