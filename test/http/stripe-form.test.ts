import fc from 'fast-check';
import Fastify, { type FastifyInstance } from 'fastify';
import qs from 'qs';
import { afterEach, describe, expect, it } from 'vitest';
import { PennyError } from '../../src/errors.js';
import { handleError } from '../../src/http/http-errors.js';
import {
  parseStripeForm,
  readStripeBoolean,
  readStripeInteger,
  registerStripeFormParser,
  stripeFormLimits,
} from '../../src/http/stripe-form.js';
import { refusal } from '../support/refusal.js';

/**
 * Stripe's form bodies: what stripe-node and the curl examples send is read into the shape a
 * JSON body would have; what neither sends is refused, never silently reshaped or dropped.
 */

/** The body stripe-node writes for `data` (its stringifyRequestData: qs, brackets left unencoded). */
function asStripeNodeSends(data: Record<string, unknown>): string {
  return qs.stringify(data).replace(/%5B/g, '[').replace(/%5D/g, ']');
}

function expectNotPolluted(): void {
  expect(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted')).toBe(false);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
}

describe('parseStripeForm: what Stripe clients send', () => {
  it('reads metadata[k]=v into a nested object', () => {
    expect(parseStripeForm('metadata[order_id]=6735&metadata[customer]=cus_1'))
      .toEqual({ metadata: { order_id: '6735', customer: 'cus_1' } });
  });

  it('reads transfer_data[destination] into a nested object', () => {
    expect(parseStripeForm('amount=1000&transfer_data[destination]=acct_1&transfer_data[amount]=877'))
      .toEqual({ amount: '1000', transfer_data: { destination: 'acct_1', amount: '877' } });
  });

  it('gives the same array for expand[0]=a&expand[1]=b and expand[]=a&expand[]=b', () => {
    const indexed = parseStripeForm('expand[0]=customer&expand[1]=latest_charge');
    const bracketed = parseStripeForm('expand[]=customer&expand[]=latest_charge');
    expect(indexed).toEqual({ expand: ['customer', 'latest_charge'] });
    expect(bracketed).toEqual(indexed);
  });

  it('reads payment_method_types[0]=card as a one-element array', () => {
    expect(parseStripeForm('payment_method_types[0]=card')).toEqual({ payment_method_types: ['card'] });
  });

  it('puts indexed elements in index order, whatever order they arrive in', () => {
    expect(parseStripeForm('expand[1]=b&expand[0]=a')).toEqual({ expand: ['a', 'b'] });
  });

  it('reads arrays of objects (items[0][price]=…)', () => {
    expect(parseStripeForm('items[0][price]=price_1&items[0][quantity]=2&items[1][price]=price_2')).toEqual({
      items: [{ price: 'price_1', quantity: '2' }, { price: 'price_2' }],
    });
  });

  it('keeps an empty value as the empty string (metadata[k]= unsets one key)', () => {
    expect(parseStripeForm('metadata[old]=&metadata[kept]=yes')).toEqual({ metadata: { old: '', kept: 'yes' } });
  });

  it('keeps an empty metadata= as the empty string (unsets all keys)', () => {
    expect(parseStripeForm('metadata=')).toEqual({ metadata: '' });
  });

  it('reads a name without = as the empty string', () => {
    expect(parseStripeForm('capture')).toEqual({ capture: '' });
  });

  it('decodes percent-encoding and + as a space', () => {
    expect(parseStripeForm('description=Caf%C3%A9+au+lait%20%26%20%3D')).toEqual({ description: 'Café au lait & =' });
  });

  it('treats percent-encoded brackets in names as brackets', () => {
    expect(parseStripeForm('metadata%5Bk%5D=v')).toEqual({ metadata: { k: 'v' } });
  });

  it('keeps dots in names literally (metadata keys may contain dots)', () => {
    expect(parseStripeForm('metadata[order.id]=7')).toEqual({ metadata: { 'order.id': '7' } });
  });

  it('reads an empty body as an empty object', () => {
    expect(parseStripeForm('')).toEqual({});
  });

  it('ignores empty parameters (a=1&&b=2&)', () => {
    expect(parseStripeForm('a=1&&b=2&')).toEqual({ a: '1', b: '2' });
  });

  it('reads back exactly the metadata stripe-node writes, null as the empty string', () => {
    const key = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 })
      .filter((text) => !/[[\]]/.test(text) && text !== '__proto__');
    const value = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 60 }), fc.constant(null));
    fc.assert(fc.property(fc.dictionary(key, value, { minKeys: 1, maxKeys: 50 }), (metadata) => {
      const expected = Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, v ?? '']));
      expect(parseStripeForm(asStripeNodeSends({ metadata }))).toEqual({ metadata: expected });
    }), { numRuns: 300 });
  });
});

describe('parseStripeForm: prototypes', () => {
  afterEach(() => {
    delete (Object.prototype as Record<string, unknown>).polluted;
  });

  it('returns objects without a prototype, at every level', () => {
    const body = parseStripeForm('metadata[k]=v&items[0][price]=p');
    expect(Object.getPrototypeOf(body)).toBeNull();
    expect(Object.getPrototypeOf(body.metadata)).toBeNull();
    expect(Object.getPrototypeOf((body.items as unknown[])[0])).toBeNull();
  });

  it('refuses __proto__[polluted]=1 and leaves Object.prototype alone', () => {
    expect(refusal(() => parseStripeForm('__proto__[polluted]=1')).code).toBe('invalid_form_body');
    expectNotPolluted();
  });

  it('refuses a nested metadata[__proto__][polluted]=1', () => {
    expect(refusal(() => parseStripeForm('metadata[__proto__][polluted]=1')).code).toBe('invalid_form_body');
    expectNotPolluted();
  });

  it('refuses a percent-encoded %5F%5Fproto%5F%5F name', () => {
    expect(refusal(() => parseStripeForm('%5F%5Fproto%5F%5F[polluted]=1')).code).toBe('invalid_form_body');
    expectNotPolluted();
  });

  it('refuses constructor[prototype][polluted]=1 and leaves Object.prototype alone', () => {
    expect(refusal(() => parseStripeForm('constructor[prototype][polluted]=1')).code).toBe('invalid_form_body');
    expectNotPolluted();
  });

  it('keeps metadata[constructor]=x as an ordinary own key, not a prototype', () => {
    const body = parseStripeForm('metadata[constructor]=x&metadata[toString]=y');
    const metadata = body.metadata as Record<string, unknown>;
    expect(Object.getPrototypeOf(metadata)).toBeNull();
    expect(Object.keys(metadata)).toEqual(['constructor', 'toString']);
    expect(metadata.constructor).toBe('x');
  });
});

describe('parseStripeForm: limits and malformed bodies', () => {
  it(`accepts nesting ${stripeFormLimits.depth} brackets deep`, () => {
    expect(parseStripeForm('a[b][c][d][e][f]=1')).toEqual({ a: { b: { c: { d: { e: { f: '1' } } } } } });
  });

  it(`refuses nesting deeper than ${stripeFormLimits.depth} brackets, rather than keeping the rest as a key`, () => {
    expect(refusal(() => parseStripeForm('a[b][c][d][e][f][g]=1')).code).toBe('invalid_form_body');
  });

  it(`accepts an array of ${stripeFormLimits.arrayLimit} elements`, () => {
    const body = Array.from({ length: stripeFormLimits.arrayLimit }, (_, index) => `expand[${index}]=f${index}`);
    const parsed = parseStripeForm(body.join('&'));
    expect(parsed.expand).toHaveLength(stripeFormLimits.arrayLimit);
    expect((parsed.expand as string[])[99]).toBe('f99');
  });

  it('refuses an index at the array limit, rather than turning the array into an object keyed by index', () => {
    // Without throwOnLimitExceeded, qs would give { expand: { 0: 'a', 100: 'x' } }.
    const error = refusal(() => parseStripeForm(`expand[0]=a&expand[${stripeFormLimits.arrayLimit}]=x`));
    expect(error.code).toBe('invalid_form_body');
    expect(error.message).toMatch(/Array limit/);
  });

  it('refuses more than arrayLimit elements written as expand[]', () => {
    const body = Array.from({ length: stripeFormLimits.arrayLimit + 1 }, (_, index) => `expand[]=f${index}`);
    expect(refusal(() => parseStripeForm(body.join('&'))).code).toBe('invalid_form_body');
  });

  it('compacts gaps in indices, keeping every value in index order', () => {
    expect(parseStripeForm('expand[0]=a&expand[2]=c&expand[7]=h')).toEqual({ expand: ['a', 'c', 'h'] });
  });

  it('combines a repeated name into an array, dropping neither value', () => {
    expect(parseStripeForm('currency=usd&currency=eur')).toEqual({ currency: ['usd', 'eur'] });
  });

  it('reads an array given a named key as an object (which an array reader then refuses)', () => {
    expect(parseStripeForm('expand[]=a&expand[x]=b')).toEqual({ expand: { 0: 'a', x: 'b' } });
  });

  it(`accepts ${stripeFormLimits.parameterLimit} parameters`, () => {
    const body = Array.from({ length: stripeFormLimits.parameterLimit }, (_, index) => `k${index}=v`);
    expect(Object.keys(parseStripeForm(body.join('&')))).toHaveLength(stripeFormLimits.parameterLimit);
  });

  it('refuses more parameters than the limit, rather than dropping the rest', () => {
    const body = Array.from({ length: stripeFormLimits.parameterLimit + 1 }, (_, index) => `k${index}=v`);
    expect(refusal(() => parseStripeForm(body.join('&'))).code).toBe('invalid_form_body');
  });

  it.each(['a[b]c=1', 'a[=1', '[a]=1', 'a]=1', 'description=x]=y'])(
    'refuses the malformed name in %s, rather than reading part of it',
    (body) => {
      expect(refusal(() => parseStripeForm(body)).code).toBe('invalid_form_body');
    },
  );

  it.each(['description=%E0%A4%A', 'description=%ZZ', 'description=%ED%A0%80', 'a%E0=1'])(
    'refuses the malformed percent-encoding in %s',
    (body) => {
      expect(refusal(() => parseStripeForm(body)).code).toBe('invalid_form_body');
    },
  );
});

describe('registerStripeFormParser', () => {
  const bodyLimit = 1024;

  /** An app that echoes the parsed body; errors are recorded, then answered by Penny's handleError. */
  async function echoApp(): Promise<{ app: FastifyInstance; errors: unknown[]; handled: string[] }> {
    const app = Fastify();
    const errors: unknown[] = [];
    const handled: string[] = [];
    registerStripeFormParser(app, { bodyLimit });
    app.setErrorHandler((error, request, reply) => {
      errors.push(error);
      handleError(error, request, reply);
    });
    app.post('/echo', async (request) => {
      handled.push(request.url);
      return { body: request.body, prototype: Object.getPrototypeOf(request.body) === null ? 'none' : 'some' };
    });
    await app.ready();
    return { app, errors, handled };
  }

  function post(app: FastifyInstance, payload: string, contentType = 'application/x-www-form-urlencoded') {
    return app.inject({ method: 'POST', url: '/echo', headers: { 'content-type': contentType }, payload });
  }

  it('parses a stripe-node body into request.body', async () => {
    const { app } = await echoApp();
    const payload = asStripeNodeSends({
      amount: 2000, currency: 'usd', metadata: { order: '6735', gone: null }, expand: ['latest_charge'],
    });
    const response = await post(app, payload);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      body: { amount: '2000', currency: 'usd', metadata: { order: '6735', gone: '' }, expand: ['latest_charge'] },
      prototype: 'none',
    });
    await app.close();
  });

  it('parses the curl style expand[]=a the same as expand[0]=a', async () => {
    const { app } = await echoApp();
    const bracketed = await post(app, 'expand[]=customer&expand[]=latest_charge');
    const indexed = await post(app, 'expand[0]=customer&expand[1]=latest_charge');
    expect(bracketed.json()).toEqual({ body: { expand: ['customer', 'latest_charge'] }, prototype: 'none' });
    expect(indexed.json()).toEqual(bracketed.json());
    await app.close();
  });

  it('accepts a charset parameter on the content type', async () => {
    const { app } = await echoApp();
    const response = await post(app, 'description=caf%C3%A9', 'application/x-www-form-urlencoded; charset=utf-8');
    expect(response.json()).toEqual({ body: { description: 'café' }, prototype: 'none' });
    await app.close();
  });

  it('reads an empty body as an empty object (a POST without parameters)', async () => {
    const { app } = await echoApp();
    const response = await post(app, '');
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ body: {}, prototype: 'none' });
    await app.close();
  });

  it('hands a refused body to the error handler as PennyError invalid_form_body, without running the route', async () => {
    const { app, errors, handled } = await echoApp();
    const response = await post(app, 'a[b][c][d][e][f][g]=1');
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({
      error: { type: 'invalid_request_error', code: 'invalid_form_body', message: expect.any(String) },
    });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(PennyError);
    expect(handled).toEqual([]);
    await app.close();
  });

  it('refuses __proto__ over HTTP and leaves Object.prototype alone', async () => {
    const { app, handled } = await echoApp();
    const response = await post(app, '__proto__[polluted]=1&constructor[prototype][polluted]=1');
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ error: { code: 'invalid_form_body' } });
    expect(handled).toEqual([]);
    expectNotPolluted();
    await app.close();
  });

  it('refuses a body over bodyLimit with 413 request_too_large', async () => {
    const { app, handled } = await echoApp();
    const response = await post(app, `description=${'x'.repeat(bodyLimit)}`);
    expect(response.statusCode).toBe(413);
    expect(response.json()).toMatchObject({ error: { code: 'request_too_large' } });
    expect(handled).toEqual([]);
    await app.close();
  });
});

describe('readStripeInteger', () => {
  it.each([['42', 42], ['-7', -7], ['0', 0], ['007', 7], [42, 42], [-7, -7], ['9007199254740991', 2 ** 53 - 1]])(
    'reads %j as %j',
    (value, expected) => {
      expect(readStripeInteger(value, 'amount')).toBe(expected);
    },
  );

  it('reads "-0" as 0', () => {
    expect(Object.is(readStripeInteger('-0', 'amount'), 0)).toBe(true);
  });

  it.each([undefined, null])('reads %j as absent', (value) => {
    expect(readStripeInteger(value, 'amount')).toBeUndefined();
  });

  it.each(['', '4.2', '1e3', ' 5', '5 ', '+5', '0x10', 'abc', '١٢', 4.2, Number.NaN, Infinity, true, {}, ['5']])(
    'refuses %j with parameter_invalid_integer naming the param',
    (value) => {
      const error = refusal(() => readStripeInteger(value, 'amount'));
      expect(error.code).toBe('parameter_invalid_integer');
      expect(error.param).toBe('amount');
      expect(error.message).toContain('amount');
    },
  );

  it.each(['9007199254740992', '-9007199254740992', '99999999999999999999', 2 ** 53, 1e21])(
    'refuses %j, which a number cannot hold exactly',
    (value) => {
      expect(refusal(() => readStripeInteger(value, 'amount')).code).toBe('parameter_invalid_integer');
    },
  );
});

describe('readStripeBoolean', () => {
  it.each([['true', true], ['false', false], [true, true], [false, false]])('reads %j as %j', (value, expected) => {
    expect(readStripeBoolean(value, 'capture')).toBe(expected);
  });

  it.each([undefined, null])('reads %j as absent', (value) => {
    expect(readStripeBoolean(value, 'capture')).toBeUndefined();
  });

  it.each(['', 'TRUE', 'True', '1', '0', 'yes', 'on', ' true', 1, 0, {}, ['true']])(
    'refuses %j with parameter_invalid_boolean naming the param',
    (value) => {
      const error = refusal(() => readStripeBoolean(value, 'capture'));
      expect(error.code).toBe('parameter_invalid_boolean');
      expect(error.param).toBe('capture');
      expect(error.message).toContain('capture');
    },
  );
});

describe('refusals never echo a card number', () => {
  const card = '4242424242424242';

  it('does not quote a value that is not valid percent-encoding', () => {
    const error = refusal(() => parseStripeForm(`metadata[n]=${card}%zz`));
    expect(error.code).toBe('invalid_form_body');
    expect(error.message).not.toContain(card);
  });

  it('does not quote a malformed parameter name that holds a card number', () => {
    const error = refusal(() => parseStripeForm(`metadata[${card}=1`));
    expect(error.code).toBe('invalid_form_body');
    expect(error.message).not.toContain(card);
  });

  it('does not quote a card number given where a boolean was expected', () => {
    const error = refusal(() => readStripeBoolean(card, 'confirm'));
    expect(error.code).toBe('parameter_invalid_boolean');
    expect(error.message).not.toContain(card);
  });

  it('still quotes an ordinary malformed name, so the client can find it', () => {
    expect(refusal(() => parseStripeForm('metadata[a=1')).message).toContain('"metadata[a"');
  });
});
