import fc from 'fast-check';
import type { InjectOptions } from 'fastify';
import qs from 'qs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestLedger, operatorKey, type TestLedger } from '../support/app.js';

/**
 * The whole HTTP API under malformed input: every registered route (read from the server, so a new
 * route is swept without being listed here) gets random bodies, query strings, path ids and headers.
 * Whatever it is sent, an answer is never a 5xx; a 4xx is Stripe's error object with a non-empty
 * type, code and message; and a refused request changed no row of any table (a card decline, the
 * PSP's answer rather than a refusal, is recorded as Stripe records one).
 *
 * Left out, because they cannot be fuzzed safely or answer in another shape by design:
 * - `/v1/test_helpers/clock/advance`: moves the process's controlled clock for every later request.
 * - `/dashboard/…`: the operator's HTML pages (sign-in, session cookies, CSRF-checked forms); they
 *   answer with HTML pages, not the API's error object.
 */
const excludedRoutes: readonly RegExp[] = [/^\/v1\/test_helpers\//, /^\/dashboard/];

/**
 * Runs per route and method (98 of them today, so about 1,500 requests, 20 to 40 s);
 * PENNY_FUZZ_RUNS_PER_ROUTE sets more for a longer hunt.
 */
const runsPerRoute = Number(process.env.PENNY_FUZZ_RUNS_PER_ROUTE ?? 15);

let penny: TestLedger;
let merchantKey: string;
let otherMerchantKey: string;
/** Ids of real objects of every type (and another merchant's), for path parameters. */
const knownIds: string[] = [];
let routes: RouteMethod[] = [];

interface RouteMethod {
  readonly method: string;
  readonly url: string;
  /** The key the route takes: the operator's, or a merchant's secret key. */
  readonly auth: 'operator' | 'merchant';
}

type Auth = 'operator' | 'merchant' | 'other_merchant' | 'none' | 'garbage';

interface FuzzRequest {
  readonly params: readonly string[];
  readonly auth: Auth | 'route';
  readonly query: string | undefined;
  readonly body: Body;
  readonly idempotencyKey: string | readonly string[] | undefined;
  readonly stripeAccount: string | undefined;
}

/** The route tree Fastify prints, read back into full paths with their methods. */
function parseRoutes(printed: string): { url: string; methods: string[] }[] {
  const found: { url: string; methods: string[] }[] = [];
  const stack: string[] = [];
  for (const line of printed.split('\n')) {
    const match = /^([│ ]*)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/u.exec(line);
    if (match === null) continue;
    const depth = [...(match[1] ?? '')].length / 4;
    stack.length = depth;
    stack.push(match[2] ?? '');
    if (match[3] !== undefined) {
      found.push({ url: stack.join(''), methods: match[3].split(', ').filter((method) => method !== 'HEAD') });
    }
  }
  return found;
}

function authorization(auth: Auth): Record<string, string> {
  switch (auth) {
    case 'operator': return { authorization: `Bearer ${operatorKey}` };
    case 'merchant': return { authorization: `Bearer ${merchantKey}` };
    case 'other_merchant': return { authorization: `Bearer ${otherMerchantKey}` };
    case 'none': return {};
    case 'garbage': return { authorization: 'Bearer sk_test_\u0000nope' };
  }
}

async function send(options: InjectOptions) {
  const response = await penny.app.inject(options);
  return { status: response.statusCode, text: response.body, contentType: String(response.headers['content-type']) };
}

/** A form body through qs, as stripe-node writes one; values are strings, objects nest by brackets. */
function form(object: Record<string, unknown>): string {
  return qs.stringify(object, { encode: true });
}

async function seed(): Promise<void> {
  const merchant = await penny.merchants.createMerchant('Fuzz Shop');
  const other = await penny.merchants.createMerchant('Other Fuzz Shop');
  merchantKey = merchant.secretKey;
  otherMerchantKey = other.secretKey;
  knownIds.push(merchant.merchant.id, other.merchant.id);
  const post = async (url: string, body: Record<string, unknown>, key = merchantKey) => {
    const response = await send({ method: 'POST', url, payload: form(body),
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/x-www-form-urlencoded' } });
    expect(response.status, `${url}: ${response.text}`).toBe(200);
    const object = JSON.parse(response.text) as { id: string; latest_charge?: string };
    knownIds.push(object.id);
    return object;
  };
  const intent = await post('/v1/payment_intents',
    { amount: '2000', currency: 'usd', payment_method: 'pm_card_visa', confirm: 'true' });
  if (intent.latest_charge !== undefined) knownIds.push(intent.latest_charge);
  await post('/v1/refunds', { payment_intent: intent.id, amount: '500' });
  await post('/v1/payment_intents', { amount: '1000', currency: 'eur' }, otherMerchantKey);
  const seller = await post('/v1/accounts', { type: 'custom', country: 'US' });
  await post('/v1/webhook_endpoints', { url: 'http://127.0.0.1:9/hook', enabled_events: ['*'] });
  const events = await send({ method: 'GET', url: '/v1/events?limit=1', headers: { authorization: `Bearer ${merchantKey}` } });
  knownIds.push(...(JSON.parse(events.text) as { data: { id: string }[] }).data.map((event) => event.id));
  const asOperator = async (url: string, body: Record<string, unknown>) => {
    const response = await penny.request({ method: 'POST', url, body });
    expect(response.status, `${url}: ${JSON.stringify(response.body)}`).toBe(200);
    knownIds.push(response.body.id as string);
    return response.body.id as string;
  };
  const cash = await asOperator('/v1/ledger/accounts', { currency: 'USD', type: 'asset' });
  const wallet = await asOperator('/v1/ledger/accounts', { currency: 'USD', type: 'liability' });
  await asOperator('/v1/ledger/entries', { external_reference: 'fuzz-hold', pending: true,
    postings: [{ account: cash, direction: 'debit', amount: 700 }, { account: wallet, direction: 'credit', amount: 700 }] });
  const valid = (route: RegExp, body: Record<string, unknown>) => validBodies.push({ route, body });
  valid(/^POST \/v1\/payment_intents$/, { amount: '1000', currency: 'usd', payment_method: 'pm_card_visa',
    confirm: 'true', capture_method: 'manual', metadata: { order: '42' }, description: 'fuzz' });
  valid(/^POST \/v1\/payment_intents\/:id$/, { amount: '1500', description: 'fuzz', metadata: { order: '43' } });
  valid(/^POST \/v1\/payment_intents\/:id\/confirm$/, { payment_method: 'pm_card_visa', return_url: 'https://example.com' });
  valid(/^POST \/v1\/payment_intents\/:id\/capture$/, { amount_to_capture: '500' });
  valid(/^POST \/v1\/payment_intents\/:id\/cancel$/, { cancellation_reason: 'requested_by_customer' });
  valid(/^POST \/v1\/refunds$/, { payment_intent: intent.id, amount: '100', reason: 'requested_by_customer' });
  valid(/^POST \/v1\/refunds$/, { charge: intent.latest_charge, amount: '100', metadata: { a: 'b' } });
  valid(/^POST \/v1\/transfers$/, { amount: '100', currency: 'usd', destination: seller.id, transfer_group: 'group' });
  valid(/^POST \/v1\/(transfers|application_fees)\/:id\/(reversals|refunds)$/, { amount: '10', metadata: { a: 'b' } });
  valid(/^POST \/v1\/accounts$/, { type: 'custom', country: 'US', email: 'seller@example.com' });
  valid(/^POST \/v1\/accounts\/:id$/, { email: 'seller@example.com', metadata: { a: 'b' } });
  valid(/^POST \/v1\/accounts\/:id\/external_accounts$/, { external_account: { object: 'bank_account',
    country: 'US', currency: 'usd', routing_number: '110000000', account_number: '000123456789' } });
  valid(/^POST \/v1\/accounts\/:id\/external_accounts\/:bank$/, { default_for_currency: 'true', metadata: { a: 'b' } });
  valid(/^POST \/v1\/webhook_endpoints/, { url: 'https://example.com/hook',
    enabled_events: ['payment_intent.succeeded'], description: 'hook' });
  valid(/^POST \/v1\/payouts$/, { amount: '100', currency: 'usd', method: 'standard' });
  valid(/^POST \/v1\/ledger\/accounts$/, { currency: 'USD', type: 'asset', code: 'fuzz', owner: 'cus_fuzz' });
  const entry = { external_reference: 'fuzz-entry', postings: [{ account: cash, direction: 'debit', amount: 5 },
    { account: wallet, direction: 'credit', amount: 5 }] };
  valid(/^POST \/v1\/ledger\/entries$/, entry);
  valid(/^POST \/v1\/ledger\/entries\/batch$/, { entries: [entry, { ...entry, external_reference: 'fuzz-entry-2' }] });
  valid(/^POST \/v1\/ledger\/entries\/:id\/(post|void|reverse)$/, { amount: 5, external_reference: 'fuzz-post' });
  valid(/^POST \/v1\/reporting\/report_runs$/, { report_type: 'balance.summary.1',
    parameters: { interval_start: '1700000000', interval_end: '1700086400' } });
  valid(/^POST \/v1\/disputes\/:id$/, { evidence: { uncategorized_text: 'fuzz' }, submit: 'true' });
  valid(/^POST \/v1\/merchants\/:merchant\/connector$/, { connector: 'sandbox' });
  valid(/^POST \/v1\/reconciliation\/runs$/, { as_of: '2026-12-01' });
  valid(/^GET /, { limit: '3', starting_after: intent.id, created: { gte: '1700000000' }, expand: ['data.latest_charge'] });
  valid(/^GET /, { limit: '100', ending_before: seller.id, status: 'succeeded', payment_intent: intent.id });
  knownIds.push(`${seller.id}_nope`, 'ba_nope', 'po_nope', 'tr_nope', 'dp_nope', 'fee_nope', 'br_nope', 'file_nope');
}

/** Which key a route takes: the operator key is refused (401) by the merchant API. */
async function discoverRoutes(): Promise<RouteMethod[]> {
  const found: RouteMethod[] = [];
  for (const { url, methods } of parseRoutes(penny.app.printRoutes({ commonPrefix: false }))) {
    if (excludedRoutes.some((pattern) => pattern.test(url))) continue;
    for (const method of methods) {
      const probe = await send({ method: method as InjectOptions['method'], url: url.replaceAll(/:[a-z]+/g, 'x'),
        headers: { authorization: `Bearer ${operatorKey}` } });
      const code = probe.status === 401 ? (JSON.parse(probe.text) as { error: { code: string } }).error.code : '';
      found.push({ method, url, auth: code === 'api_key_invalid' ? 'merchant' : 'operator' });
    }
  }
  return found;
}

/** `arbitrary` in `percent` of the requests, else undefined. */
function sometimes<T>(arbitrary: fc.Arbitrary<T>, percent: number): fc.Arbitrary<T | undefined> {
  return fc.oneof({ arbitrary: fc.constant(undefined), weight: 100 - percent }, { arbitrary, weight: percent });
}

/** What the API's parameters are called, so random bodies hit real parameters as well as unknown ones. */
const parameterNames = [
  'amount', 'currency', 'payment_method', 'confirm', 'capture_method', 'amount_to_capture', 'description',
  'metadata', 'expand', 'limit', 'starting_after', 'ending_before', 'created', 'payment_intent', 'charge',
  'reason', 'destination', 'transfer_data', 'application_fee_amount', 'on_behalf_of', 'type', 'country',
  'email', 'external_account', 'url', 'enabled_events', 'disabled', 'method', 'statement_descriptor',
  'report_type', 'parameters', 'interval_start', 'interval_end', 'account', 'direction', 'postings',
  'external_reference', 'pending', 'code', 'owner', 'entries', 'status', 'evidence', 'submit', 'settings',
  'business_profile', 'routing_number', 'account_number', 'object', 'id', 'name', 'schedule', 'delay_days',
  'interval', 'file', 'run', 'as_of', 'from', 'to', 'connector', 'note', 'cancellation_reason', 'refund_application_fee',
  'reverse_transfer', 'source_transaction', 'transfer_group', 'payout', 'balance_transaction', 'effective_at',
];

const oddStrings = fc.constantFrom('', ' ', 'NaN', 'Infinity', '-Infinity', '1e309', '-1', '-0', '0', '0.5', '1.999',
  '9007199254740993', '99999999999999999999999999', '0x10', '1_000', '١٢٣', 'true', 'null', 'undefined', '[]', '{}',
  'usd', 'USD', 'xxx', 'pm_card_visa', 'pm_card_chargeDeclined', '*', '\u0000', '\uD800', '%zz', '💸', '../..',
  '<script>', "'; DROP TABLE charges; --", 'http://127.0.0.1:1/x', 'javascript:alert(1)', '2026-13-45',
  '4242424242424242', 'a'.repeat(5000), '253402300800', '-62135596800', '9999-12-31T23:59:59Z', '0001-01-01T00:00:00Z',
  '+275760-09-13T00:00:00Z', '-000001-01-01T00:00:00Z', '2026-02-30T00:00:00Z', '2026-12-07T10:00:00+99:00');

const scalar: fc.Arbitrary<unknown> = fc.oneof(
  oddStrings,
  fc.string({ maxLength: 40 }),
  fc.integer(),
  fc.constantFrom(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, -Number.MAX_SAFE_INTEGER, 1e308, -1e308, 0.1,
    -0.5, 2 ** 63, 1e21),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
);

const fuzzValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true },
    { arbitrary: scalar, weight: 4 },
    { arbitrary: fc.array(tie('value'), { maxLength: 4 }), weight: 1 },
    { arbitrary: fc.dictionary(fc.oneof(fc.constantFrom(...parameterNames), fc.string({ maxLength: 8 })),
      tie('value'), { maxKeys: 4 }), weight: 1 }),
})).value;

/** A deeply nested object: `{a: {a: {a: …}}}`. */
const deepObject = fc.integer({ min: 6, max: 200 }).map((depth) => {
  let value: unknown = '1';
  for (let level = 0; level < depth; level += 1) value = { a: value };
  return value;
});

/**
 * Valid bodies (or queries) of the API's requests, each for the routes its pattern matches
 * (`METHOD /path`; filled once the objects they name exist), to be broken a little. A route none
 * matches (a new one) draws from all of them.
 */
const validBodies: { readonly route: RegExp; readonly body: Record<string, unknown> }[] = [];

/** A valid body with one or two values replaced by wrong ones, or one left out: refusals deep in a route. */
function nearlyValidObject(route: RouteMethod): fc.Arbitrary<Record<string, unknown>> {
  const matching = validBodies.filter((valid) => valid.route.test(`${route.method} ${route.url}`));
  const templates = (matching.length > 0 ? matching : validBodies).map((valid) => valid.body);
  return fc.record({
    template: fc.nat(),
    replaced: fc.array(fc.tuple(fc.nat(), fuzzValue), { minLength: 1, maxLength: 2 }),
    dropped: fc.boolean(),
    added: sometimes(fc.dictionary(fc.constantFrom(...parameterNames), fuzzValue, { minKeys: 1, maxKeys: 1 }), 20),
  }).map(({ template, replaced, dropped, added }) => {
    const object = { ...templates[template % templates.length] };
    const keys = Object.keys(object);
    if (keys.length === 0) return { ...added };
    for (const [index, value] of replaced) object[keys[index % keys.length] as string] = value;
    if (dropped) delete object[keys[(replaced[0]?.[0] ?? 0) % keys.length] as string];
    return { ...object, ...added };
  });
}

const randomObject: fc.Arbitrary<Record<string, unknown>> = fc.dictionary(
  fc.oneof({ arbitrary: fc.constantFrom(...parameterNames), weight: 4 },
    { arbitrary: fc.string({ maxLength: 12 }), weight: 1 }),
  fc.oneof({ arbitrary: fuzzValue, weight: 6 }, { arbitrary: deepObject, weight: 1 }),
  { maxKeys: 6 },
);

/** Form bodies and query strings, most from objects, some that stripe-node never sends. */
function rawForm(objects: fc.Arbitrary<Record<string, unknown>>): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: objects.map(form), weight: 8 },
    fc.constantFrom('a[b][c][d]=', 'a[b][c][d][e][f][g]=1', 'metadata[x][y]=1', 'a[=1', '[a]=1', 'a[b]c=1', '=1&&=',
      'amount[]=1&amount[]=2', 'amount=1&amount=2', 'expand[100]=x', 'expand[0]=a&expand[5]=b',
      'expand[]=1&expand[x]=2', 'metadata=', '__proto__[x]=1', 'constructor[prototype][x]=1', 'a=%zz', 'a=%00',
      'amount=%E2%82%AC', 'a=\u00ff'),
    fc.integer({ min: 1, max: 1100 }).map((count) => Array.from({ length: count }, (_, i) => `metadata[k${i}]=v`).join('&')),
    fc.integer({ min: 1, max: 120 }).map((count) => Array.from({ length: count }, (_, i) => `expand[${i}]=data`).join('&')),
    fc.string({ maxLength: 60 }),
  );
}

function rawJson(objects: fc.Arbitrary<Record<string, unknown>>): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: objects.map((object) => JSON.stringify(object)), weight: 6 },
    { arbitrary: fc.constantFrom('{', '[]', 'null', '"x"', '1', '{"amount": 1e400}', '{"amount": 12345678901234567890}',
      '{"amount": -0}', '{"__proto__": {"x": 1}}', '{"constructor": {"prototype": {"x": 1}}}', '{"a":1,"a":2}',
      '\uFEFF{}', '{"a": "\\ud800"}', '', `${'['.repeat(100_000)}${']'.repeat(100_000)}`), weight: 2 },
    { arbitrary: fc.array(fuzzValue, { maxLength: 3 }).map((array) => JSON.stringify(array)), weight: 1 },
  );
}

const contentTypes = fc.constantFrom('text/plain', 'application/xml', 'multipart/form-data; boundary=x',
  'application/json; charset=utf-16', 'application/x-www-form-urlencoded; charset=latin1', 'application/octet-stream',
  'application/jso', '');

type Body = { readonly contentType: string | undefined; readonly payload: string } | undefined;

function bodyOf(objects: fc.Arbitrary<Record<string, unknown>>): fc.Arbitrary<Body> {
  const forms = rawForm(objects);
  const jsons = rawJson(objects);
  return fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 2 },
    { arbitrary: jsons.map((payload) => ({ contentType: 'application/json', payload })), weight: 4 },
    { arbitrary: forms.map((payload) => ({ contentType: 'application/x-www-form-urlencoded', payload })), weight: 4 },
    { arbitrary: fc.record({ contentType: contentTypes, payload: fc.oneof(forms, jsons) }), weight: 1 },
    { arbitrary: forms.map((payload) => ({ contentType: undefined, payload })), weight: 1 },
  );
}

const pathId = fc.oneof(
  { arbitrary: fc.constantFrom(...['pi_', 'ch_', 're_', 'acct_', 'we_', 'evt_', 'po_', 'tr_', 'la_', 'le_', 'dp_', 'fee_',
    'txn_', 'file_', 'br_', 'rr_', 'case_']).chain((prefix) => fc.stringMatching(/^[A-Za-z0-9]{0,30}$/)
    .map((rest) => `${prefix}${rest}`)), weight: 3 },
  { arbitrary: fc.constantFrom('%00', '%2F', '..', '%20', '%E2%82%AC', '%ff', 'a%25b', '-1', '0', '9'.repeat(40),
    'x'.repeat(2000), 'null', 'undefined', '*'), weight: 2 },
  { arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/), weight: 1 },
);

function fuzzRequest(route: RouteMethod): fc.Arbitrary<FuzzRequest> {
  const paramCount = (route.url.match(/:[a-z]+/g) ?? []).length;
  const reads = route.method === 'GET' || route.method === 'DELETE';
  const objects = fc.oneof(randomObject, nearlyValidObject(route));
  const body = bodyOf(objects);
  return fc.record({
    params: fc.array(fc.oneof({ arbitrary: fc.constantFrom(...knownIds), weight: 2 }, { arbitrary: pathId, weight: 2 }),
      { minLength: paramCount, maxLength: paramCount }),
    auth: fc.oneof({ arbitrary: fc.constant('route' as const), weight: 12 },
      { arbitrary: fc.constantFrom<Auth>('operator', 'merchant', 'other_merchant', 'none', 'garbage'), weight: 1 }),
    query: sometimes(rawForm(objects), reads ? 70 : 20),
    body: reads ? sometimes(body.filter((value) => value !== undefined), 15) : body,
    idempotencyKey: sometimes(fc.oneof(fc.string({ minLength: 1, maxLength: 20 }), fc.constant('k'.repeat(300)),
      fc.constant(''), fc.tuple(fc.constant('dup-key'), fc.constant('dup-key-2'))), 30),
    stripeAccount: sometimes(fc.oneof(fc.constantFrom(...knownIds), fc.constantFrom('', 'acct_', 'acct_nope', ' ',
      'acct_1,acct_2', 'x'.repeat(500))), 10),
  });
}

function injection(route: RouteMethod, request: FuzzRequest): InjectOptions {
  let index = 0;
  const path = route.url.replaceAll(/:[a-z]+/g, () => encodeURIComponent(request.params[index++] ?? '')
    .replaceAll('%25', '%'));
  const headers: Record<string, string | string[]> = authorization(request.auth === 'route' ? route.auth : request.auth);
  if (request.body?.contentType !== undefined) headers['content-type'] = request.body.contentType;
  if (request.idempotencyKey !== undefined) headers['idempotency-key'] = [request.idempotencyKey].flat();
  if (request.stripeAccount !== undefined) headers['stripe-account'] = request.stripeAccount;
  return {
    method: route.method as InjectOptions['method'],
    url: request.query === undefined ? path : `${path}?${request.query}`,
    headers,
    ...(request.body === undefined ? {} : { payload: request.body.payload }),
  };
}

/**
 * Every table's row count and the newest transaction that wrote one of its rows (xmin): an insert,
 * an update and a delete each change one of the two. Cheaper than hashing rows, and as exact.
 */
let snapshotSql = '';

async function snapshot(): Promise<Map<string, string>> {
  const result = await penny.pool.query<{ name: string; digest: string }>(snapshotSql);
  return new Map(result.rows.map((row) => [row.name, row.digest]));
}

/** The status of the idempotency key written last. */
async function lastStoredStatus(): Promise<number | null | undefined> {
  const result = await penny.pool.query<{ status: number | null }>(
    'SELECT response_status AS status FROM idempotency_keys ORDER BY last_run_at DESC LIMIT 1');
  return result.rows[0]?.status;
}

function changedTables(before: Map<string, string>, after: Map<string, string>): string[] {
  return [...after.keys()].filter((name) => before.get(name) !== after.get(name));
}

beforeAll(async () => {
  penny = await createTestLedger({ routing: {} });
  await seed();
  routes = await discoverRoutes();
  const tables = await penny.pool.query<{ name: string }>(
    `SELECT table_name AS name FROM information_schema.tables
     WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name`);
  snapshotSql = tables.rows.map(({ name }) =>
    `SELECT '${name}' AS name, count(*) || ':' || coalesce(max(xmin::text::bigint), 0) AS digest FROM "${name}"`)
    .join(' UNION ALL ');
}, 120_000);

describe('the HTTP API under malformed input', () => {
  it('finds the routes to sweep, with both kinds of key', () => {
    expect(routes.length).toBeGreaterThan(50);
    expect(routes.filter((route) => route.auth === 'merchant').length).toBeGreaterThan(20);
    expect(routes.filter((route) => route.auth === 'operator').length).toBeGreaterThan(15);
  });

  it('answers every request with a 2xx/3xx or an error object, and a refusal writes nothing', async () => {
    // The tables as a refusal left them are the next request's "before" (half the snapshots).
    let unchanged: Map<string, string> | undefined;
    for (const route of routes) {
      await fc.assert(fc.asyncProperty(fuzzRequest(route), async (request) => {
        const options = injection(route, request);
        const before = unchanged ?? await snapshot();
        unchanged = undefined;
        const response = await send(options);
        const label = `${route.method} ${route.url} → ${response.status} ${response.text.slice(0, 300)}`;
        expect(response.status, label).toBeLessThan(500);
        if (response.status < 400) return;
        expect(response.contentType, label).toContain('application/json');
        const error = (JSON.parse(response.text) as { error?: Record<string, unknown> }).error;
        for (const field of ['type', 'code', 'message']) {
          expect(typeof error?.[field] === 'string' && (error[field] as string).length > 0, `${label}: ${field}`).toBe(true);
        }
        // A decline (402 card_error) is not a refusal of the request but the PSP's answer to it: as at
        // Stripe, the intent, its failed charge and their events are recorded.
        if (error?.type === 'card_error') return;
        const after = await snapshot();
        const changed = changedTables(before, after);
        if (request.idempotencyKey !== undefined && changed.length === 1 && changed[0] === 'idempotency_keys') {
          // A refusal that came once the work began (a missing object, a wrong state; not a refused
          // parameter) is the key's answer, stored to be replayed, as Stripe stores it.
          expect(await lastStoredStatus(), label).toBe(response.status);
          return;
        }
        expect(changed, label).toEqual([]);
        unchanged = after;
      }), { numRuns: runsPerRoute });
    }
  }, runsPerRoute * 20_000);
});
