import type pg from 'pg';
import { withTransaction, type Queryable } from '../db/pool.js';
import { PennyError } from '../errors.js';
import { SecretBox } from '../security/secret-box.js';
import { selectMerchant } from './merchant-store.js';
import * as store from './connector-routing-store.js';

/**
 * Where a merchant's new payments go: the sandbox (the operator's default) or a PSP account of its
 * own (Adyen). A payment records its connector when it is made, so a change of routing moves no
 * existing payment's captures, refunds, look-ups or recovery. A PSP account's API key and HMAC key
 * are sealed with AES-256-GCM (as webhook secrets are) and are never printed, answered or logged:
 * only the composition root opens them, to build the account's connector.
 */
export const defaultConnectorId = 'sandbox';
/** The name that routes the operator's default instead of one merchant (`penny merchants connector default`). */
export const operatorDefault = 'default';
export const adyenDefaultEndpoint = 'https://checkout-test.adyen.com/v71';

export interface AdyenRouteRequest {
  /** A merchant, or `default`: the operator's default, for every merchant with no route of its own. */
  readonly merchantId: string;
  readonly merchantAccount: string;
  readonly apiKey: string;
  readonly hmacKeyHex: string;
  readonly endpoint?: string | undefined;
  readonly livePrefix?: string | undefined;
  /** The merchant's Adyen price: basis points of each captured amount (0 to 10,000); undefined keeps it. */
  readonly feeBasisPoints?: number | undefined;
  /** …plus a fixed fee, in minor units of the charge's currency (0 to 100,000,000); undefined keeps it. */
  readonly feeFixedMinor?: bigint | undefined;
}

/** A PSP account with its credentials opened, for the composition root to build its connector. */
export interface OpenedConnectorAccount {
  readonly connector: string;
  readonly kind: 'adyen';
  readonly merchantAccount: string;
  readonly endpoint: string;
  readonly livePrefix: string | null;
  readonly apiKey: string;
  readonly hmacKeyHex: string;
  /** The merchant's price at the account: the connector's price list. */
  readonly priceList: { readonly basisPoints: number; readonly fixedMinor: bigint };
  /** Changes when the credentials, endpoint or price change. */
  readonly version: string;
}

/** What is shown of a merchant's routing: never a key. */
export interface ConnectorRouteView {
  readonly merchant: string;
  readonly connector: string;
  readonly merchant_account: string | null;
  readonly endpoint: string | null;
  readonly live_prefix: string | null;
  readonly live: boolean;
  /** The PSP's price Penny expects at capture (the account's; null for the sandbox, whose is its own). */
  readonly fee_basis_points: number | null;
  readonly fee_fixed_minor: bigint | null;
}

export class ConnectorRouting {
  private readonly box: SecretBox;

  /**
   * `allowAnyEndpoint` (PENNY_CONNECTORS_ALLOW_ANY_ENDPOINT, for tests against a local stub) lets
   * an account's endpoint be any http(s) URL; otherwise it must be https on Adyen's own hosts, so
   * that Penny sends the API key nowhere else and never in clear.
   */
  constructor(private readonly pool: pg.Pool, secretKey: string,
    private readonly options: { allowAnyEndpoint: boolean } = { allowAnyEndpoint: false }) {
    this.box = new SecretBox(secretKey, 'connector credentials');
  }

  /** Routes the merchant's new payments to an Adyen merchant account, sealing its credentials. */
  async routeToAdyen(request: AdyenRouteRequest): Promise<ConnectorRouteView> {
    const merchantAccount = request.merchantAccount.trim();
    if (!/^[A-Za-z0-9_.-]{1,80}$/.test(merchantAccount)) {
      throw new PennyError({ code: 'parameter_invalid', param: 'merchant_account',
        message: 'An Adyen merchant account is 1 to 80 letters, digits, `_`, `.` or `-`.' });
    }
    const apiKey = request.apiKey.trim();
    if (apiKey.length < 16 || apiKey.length > 1000 || /\s/.test(apiKey)) {
      throw new PennyError({ code: 'parameter_invalid', param: 'api_key',
        message: 'The Adyen API key must be 16 to 1000 characters with no spaces.' });
    }
    const hmacKeyHex = request.hmacKeyHex.trim();
    if (!/^(?:[0-9A-Fa-f]{2}){16,128}$/.test(hmacKeyHex)) {
      throw new PennyError({ code: 'parameter_invalid', param: 'hmac_key',
        message: 'The Adyen HMAC key must be the hex string from the Customer Area (32 to 256 hex digits).' });
    }
    const livePrefix = request.livePrefix?.trim() || undefined;
    if (livePrefix !== undefined && !/^[A-Za-z0-9-]{1,100}$/.test(livePrefix)) {
      throw new PennyError({ code: 'parameter_invalid', param: 'live_prefix',
        message: 'An Adyen live prefix is letters, digits and `-` (from the Customer Area\'s API URLs).' });
    }
    const endpoint = (request.endpoint?.trim() || (livePrefix === undefined ? adyenDefaultEndpoint
      : `https://${livePrefix}-checkout-live.adyenpayments.com/checkout/v71`)).replace(/\/+$/, '');
    if (!/^https?:\/\/[^\s]+$/.test(endpoint) || endpoint.length > 500) {
      throw new PennyError({ code: 'parameter_invalid', param: 'endpoint',
        message: 'The endpoint is the versioned base URL of Adyen\'s Checkout API (https://…/v71).' });
    }
    if (!this.options.allowAnyEndpoint && !isAdyenHost(endpoint)) {
      throw new PennyError({ code: 'parameter_invalid', param: 'endpoint',
        message: 'The endpoint must be https on Adyen\'s own hosts (adyen.com, adyenpayments.com): Penny sends the '
          + 'API key there. PENNY_CONNECTORS_ALLOW_ANY_ENDPOINT=true allows any URL, for a local test stub.' });
    }
    if (request.feeBasisPoints !== undefined && (!Number.isInteger(request.feeBasisPoints)
      || request.feeBasisPoints < 0 || request.feeBasisPoints > 10_000)) {
      throw new PennyError({ code: 'parameter_invalid', param: 'fee_basis_points',
        message: 'fee_basis_points is a whole number of basis points from 0 to 10000.' });
    }
    if (request.feeFixedMinor !== undefined && (request.feeFixedMinor < 0n || request.feeFixedMinor > 100_000_000n)) {
      throw new PennyError({ code: 'parameter_invalid', param: 'fee_fixed_minor',
        message: 'fee_fixed_minor is a whole number of minor units from 0 to 100000000.' });
    }
    const connector = `adyen:${merchantAccount}`;
    await withTransaction(this.pool, async (client) => {
      await this.mustMerchant(client, request.merchantId);
      await store.upsertConnectorAccount(client, { connector, kind: 'adyen', merchantAccount, endpoint,
        livePrefix: livePrefix ?? null, apiKeySealed: this.box.seal(apiKey),
        hmacKeySealed: this.box.seal(hmacKeyHex), feeBasisPoints: request.feeBasisPoints,
        feeFixedMinor: request.feeFixedMinor });
      await this.setRoute(client, request.merchantId, connector);
    });
    return this.route(request.merchantId);
  }

  /** Routes the merchant's new payments (or the operator's default) to the sandbox. */
  async routeToDefault(merchantId: string): Promise<ConnectorRouteView> {
    await withTransaction(this.pool, async (client) => {
      await this.mustMerchant(client, merchantId);
      await this.setRoute(client, merchantId, defaultConnectorId);
    });
    return this.route(merchantId);
  }

  async route(merchantId: string): Promise<ConnectorRouteView> {
    await this.mustMerchant(this.pool, merchantId);
    const connector = await this.connectorOf(this.pool, merchantId);
    const account = connector === defaultConnectorId ? undefined
      : await store.selectConnectorAccount(this.pool, connector);
    return { merchant: merchantId, connector, merchant_account: account?.merchantAccount ?? null,
      endpoint: account?.endpoint ?? null, live_prefix: account?.livePrefix ?? null,
      live: account !== undefined && account.livePrefix !== null,
      fee_basis_points: account?.feeBasisPoints ?? null, fee_fixed_minor: account?.feeFixedMinor ?? null };
  }

  /** The connector the merchant's new payments go to: its own route, else the operator's default. */
  async connectorOf(db: Queryable, merchantId: string): Promise<string> {
    const routed = merchantId === operatorDefault ? await store.selectOperatorConnector(db)
      : await store.selectRoutedConnector(db, merchantId);
    return routed ?? defaultConnectorId;
  }

  private async setRoute(db: Queryable, merchantId: string, connector: string): Promise<void> {
    if (merchantId === operatorDefault) await store.upsertOperatorConnector(db, connector);
    else await store.upsertMerchantConnector(db, { merchantId, connector });
  }

  /** A PSP account with its credentials opened (for the composition root only). */
  async openAccount(db: Queryable, connector: string): Promise<OpenedConnectorAccount | undefined> {
    const row = await store.selectConnectorAccount(db, connector);
    return row === undefined ? undefined : this.opened(row);
  }

  /** The ids of up to `limit` Adyen accounts, by name: whose keys a webhook naming no account is tried with. */
  accountIds(db: Queryable, limit: number): Promise<string[]> {
    return store.selectConnectorIds(db, { kind: 'adyen', limit });
  }

  async openAccounts(): Promise<OpenedConnectorAccount[]> {
    return (await store.selectConnectorAccounts(this.pool)).map((row) => this.opened(row));
  }

  private opened(row: store.ConnectorAccountRow): OpenedConnectorAccount {
    return { connector: row.connector, kind: row.kind, merchantAccount: row.merchantAccount, endpoint: row.endpoint,
      livePrefix: row.livePrefix, apiKey: this.box.open(row.apiKeySealed), hmacKeyHex: this.box.open(row.hmacKeySealed),
      priceList: { basisPoints: row.feeBasisPoints, fixedMinor: BigInt(row.feeFixedMinor) }, version: row.updatedAt };
  }

  private async mustMerchant(db: Queryable, merchantId: string): Promise<void> {
    if (merchantId !== operatorDefault && await selectMerchant(db, merchantId) === undefined) {
      throw new PennyError({ code: 'resource_missing', param: 'merchant', message: `No such merchant: '${merchantId}'` });
    }
  }
}

/** https on adyen.com or adyenpayments.com (test and live hosts), no port, no credentials in the URL. */
function isAdyenHost(endpoint: string): boolean {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return false;
  }
  const host = url.hostname.toLowerCase();
  return url.protocol === 'https:' && url.port === '' && url.username === '' && url.password === ''
    && (host.endsWith('.adyen.com') || host.endsWith('.adyenpayments.com'));
}
