import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ConnectedAccounts } from '../accounts/account-service.js';
import type { PayoutSchedule } from '../accounts/account-commands.js';
import { presentConnectedAccount, presentPayoutSchedule } from '../accounts/account-presenter.js';
import { limits } from '../config.js';
import { PennyError } from '../errors.js';
import type { MerchantRow } from '../merchants/merchant-store.js';
import type { MerchantService } from '../merchants/merchant-service.js';
import { maskKey, presentedKey } from './operator-auth.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated merchant of a Stripe-compatible request. */
    merchant: MerchantRow | null;
    /**
     * The connected account the request acts as (its `Stripe-Account` header), or null when it acts
     * as the merchant itself.
     */
    actingAccountId: string | null;
  }
  interface FastifyContextConfig {
    /** The route can act as one of the merchant's connected accounts (`Stripe-Account`); others refuse the header. */
    actsAsConnectedAccount?: boolean;
  }
}

/**
 * The Stripe-compatible API, authenticated by a merchant's secret key (Bearer, or HTTP Basic
 * with the key as user name, as Stripe accepts). Every object a route touches belongs to
 * `request.merchant`; another merchant's object is answered as missing.
 */
export function registerMerchantApi(
  app: FastifyInstance,
  dependencies: { merchants: MerchantService; accounts: ConnectedAccounts; requestsPerSecondMax: number },
  routes: (scope: FastifyInstance) => void,
): void {
  app.decorateRequest('merchant', null);
  app.decorateRequest('actingAccountId', null);
  void app.register(async (scope) => {
    scope.addHook('onRequest', async (request) => {
      request.merchant = await authenticateMerchant(request, dependencies.merchants);
    });
    if (dependencies.requestsPerSecondMax > 0) await limitRequestRate(scope, dependencies.requestsPerSecondMax);
    // After the rate limit (its onRequest hook), so a flood of headers costs no look-ups.
    scope.addHook('preValidation', async (request) => {
      request.actingAccountId = await resolveActingAccount(request, dependencies.accounts);
    });
    scope.get('/v1/account', { config: { actsAsConnectedAccount: true } }, async (request) => {
      const merchant = merchantOf(request);
      return request.actingAccountId === null
        ? presentAccount(merchant, await dependencies.accounts.platformPayoutSchedule(merchant.id))
        : presentConnectedAccount(
        await dependencies.accounts.get({ merchantId: merchant.id, id: request.actingAccountId }));
    });
    routes(scope);
  });
}

/**
 * The `Stripe-Account` header: the platform acting as one of its own connected accounts. A route
 * that cannot act as one yet refuses the header (400 `stripe_account_unsupported`) rather than act
 * as the platform; one that can gets the account checked (404 `resource_missing`, naming the
 * header, for another platform's account, a deleted one or a malformed id alike).
 */
async function resolveActingAccount(request: FastifyRequest, accounts: ConnectedAccounts): Promise<string | null> {
  const header = request.headers['stripe-account'];
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined) return null;
  if (request.routeOptions.config.actsAsConnectedAccount !== true) {
    throw new PennyError({
      code: 'stripe_account_unsupported', param: 'Stripe-Account',
      message: `Penny cannot yet serve ${request.method} ${request.routeOptions.url ?? request.url.split('?')[0]} ` +
        'for a connected account: send the request without the Stripe-Account header to act as the platform.',
    });
  }
  return accounts.actingAccount(merchantOf(request).id, value);
}

/**
 * Each merchant may make `requestsPerSecondMax` requests a second (a fixed one-second window,
 * reads and writes together, counted in this process); beyond that Penny answers 429 with code
 * `rate_limit` and a Retry-After header. The check runs after authentication (a bad key gets its
 * 401 uncounted) and before the body is parsed, filtered or handled, so a refused request runs
 * nothing and stores nothing under its idempotency key: the same request may simply be sent again.
 */
async function limitRequestRate(scope: FastifyInstance, requestsPerSecondMax: number): Promise<void> {
  await scope.register(rateLimit, {
    max: requestsPerSecondMax,
    timeWindow: 1000,
    // The plugin adds its hook to each route, after the scope's own onRequest hook
    // (authentication), and onRequest runs before the body is parsed or filtered.
    hook: 'onRequest',
    keyGenerator: (request) => merchantOf(request).id,
    // Windows are kept for this many merchants at once (least recently seen dropped first).
    cache: limits.rateLimitMerchantsTrackedMax,
    errorResponseBuilder: (_request, context) => new PennyError({
      code: 'rate_limit',
      message: `Too many requests hit the API too quickly: this account may make ${context.max} requests ` +
        `a second. Retry after ${context.after}, with exponential backoff.`,
    }),
  });
}

async function authenticateMerchant(request: FastifyRequest, merchants: MerchantService): Promise<MerchantRow> {
  const key = presentedKey(request);
  if (key === undefined) {
    throw new PennyError({
      code: 'api_key_missing',
      message: 'You did not provide an API key. You need to provide your API key in the Authorization ' +
        "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
    });
  }
  const merchant = key.startsWith('sk_') ? await merchants.authenticate(key) : undefined;
  if (merchant === undefined) {
    throw new PennyError({ code: 'api_key_invalid', message: `Invalid API Key provided: ${maskKey(key)}` });
  }
  return merchant;
}

export function merchantOf(request: FastifyRequest): MerchantRow {
  if (request.merchant === null) throw new Error('a merchant route ran without an authenticated merchant');
  return request.merchant;
}

/** Stripe's Account object, as far as Penny has its fields; the rest are null as Stripe sends them. */
function presentAccount(merchant: MerchantRow, schedule: PayoutSchedule) {
  return {
    id: merchant.id,
    object: 'account',
    business_profile: { name: merchant.name },
    business_type: null,
    capabilities: {},
    charges_enabled: true,
    country: null,
    created: Math.floor(Date.parse(merchant.createdAt) / 1000),
    default_currency: null,
    details_submitted: true,
    email: null,
    metadata: {},
    payouts_enabled: true,
    settings: {
      dashboard: { display_name: merchant.name, timezone: 'Etc/UTC' },
      payouts: { debit_negative_balances: true, schedule: presentPayoutSchedule(schedule), statement_descriptor: null },
    },
    type: 'standard',
  };
}
