import type { FastifyInstance, FastifyRequest } from 'fastify';
import { PennyError } from '../errors.js';
import type { ConnectorRouting } from '../merchants/connector-routing.js';

/**
 * The operator's API for a merchant's routing (as `penny merchants connector` does):
 * GET /v1/merchants/:merchant/connector shows it; POST routes the merchant's new payments to an
 * Adyen merchant account (`connector=adyen`, `merchant_account`, `api_key`, `hmac_key`,
 * optional `live_prefix`, `endpoint`, and the merchant's Adyen price `fee_basis_points` and
 * `fee_fixed_minor`, whole numbers) or back to the sandbox (`connector=sandbox`). The merchant
 * `default` is the operator's default, for every merchant with no route of its own. The keys are
 * sealed and never answered.
 */
export function registerConnectorRoutingRoutes(app: FastifyInstance, dependencies: {
  routing: ConnectorRouting;
  checkOperator: (request: FastifyRequest) => void;
}): void {
  void app.register(async (scope) => {
    scope.addHook('onRequest', async (request) => dependencies.checkOperator(request));
    scope.get<{ Params: { merchant: string } }>('/v1/merchants/:merchant/connector',
      async (request) => dependencies.routing.route(request.params.merchant));
    scope.post<{ Params: { merchant: string } }>('/v1/merchants/:merchant/connector', async (request) => {
      const body = (typeof request.body === 'object' && request.body !== null ? request.body : {}) as
        Record<string, unknown>;
      const text = (name: string, required: boolean) => {
        const value = body[name];
        if (value === undefined && !required) return undefined;
        if (typeof value !== 'string' || value === '') {
          throw new PennyError({ code: 'parameter_missing', param: name, message: `Missing required param: ${name}.` });
        }
        return value;
      };
      /** A whole number, given as a JSON number or a string of digits; undefined when absent. */
      const whole = (name: string) => {
        const value = body[name];
        if (value === undefined) return undefined;
        const number = typeof value === 'string' && /^\d{1,12}$/.test(value) ? Number(value) : value;
        if (typeof number !== 'number' || !Number.isSafeInteger(number) || number < 0) {
          throw new PennyError({ code: 'parameter_invalid', param: name, message: `${name} must be a whole number.` });
        }
        return number;
      };
      const connector = text('connector', true);
      if (connector === 'sandbox') return dependencies.routing.routeToDefault(request.params.merchant);
      if (connector !== 'adyen') {
        throw new PennyError({ code: 'parameter_invalid', param: 'connector',
          message: 'connector is `adyen` or `sandbox`.' });
      }
      return dependencies.routing.routeToAdyen({ merchantId: request.params.merchant,
        merchantAccount: text('merchant_account', true) ?? '', apiKey: text('api_key', true) ?? '',
        hmacKeyHex: text('hmac_key', true) ?? '', livePrefix: text('live_prefix', false),
        endpoint: text('endpoint', false), feeBasisPoints: whole('fee_basis_points'),
        feeFixedMinor: whole('fee_fixed_minor') === undefined ? undefined : BigInt(whole('fee_fixed_minor') ?? 0) });
    });
  });
}
