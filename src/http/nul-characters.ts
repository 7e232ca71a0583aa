import type { FastifyInstance } from 'fastify';
import { PennyError } from '../errors.js';

/**
 * PostgreSQL text cannot hold U+0000: a path id, query value or body string carrying one would fail
 * the first statement that reads or writes it, answered as a 500. Every request is checked once,
 * before any route or hook reads it, and one that carries U+0000 in a path parameter, a query or body
 * key or value is refused with 400 `parameter_invalid_string`, naming the parameter.
 */
export function registerNulCharacterCheck(app: FastifyInstance): void {
  // A callback hook: every request passes it, and pays no promise for it.
  app.addHook('preValidation', (request, _reply, done) => {
    const param = nulParameter(request.params, '') ?? nulParameter(request.query, '') ?? nulParameter(request.body, '');
    done(param === undefined ? undefined : new PennyError({ code: 'parameter_invalid_string', param,
      message: `${param} contains a NUL character (U+0000), which Penny cannot store.` }));
  });
}

/**
 * The Stripe-style name (`metadata[note]`) of the first key or string value holding U+0000, else
 * undefined. Iterative, so a body nested as deeply as its size allows cannot overflow the stack.
 */
export function nulParameter(value: unknown, root: string): string | undefined {
  const pending: [unknown, string][] = [[value, root]];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [node, name] = next;
    if (typeof node === 'string') {
      if (node.includes('\u0000')) return name === '' ? 'body' : name;
    } else if (isParsedData(node)) {
      for (const [key, child] of Object.entries(node)) {
        const childName = name === '' ? key : `${name}[${key}]`;
        if (key.includes('\u0000')) return childName;
        pending.push([child, childName]);
      }
    }
  }
  return undefined;
}

/**
 * What a body, query or path parser makes: arrays and plain objects (the form parser's have no
 * prototype; the router's params are find-my-way's NullObject, whose prototype is an empty object
 * with none). Anything else is passed over: a streamed body (a reconciliation upload is the request
 * stream itself, whose properties reach the whole server and loop back on themselves), a Buffer.
 */
function isParsedData(node: unknown): node is Record<string, unknown> {
  if (typeof node !== 'object' || node === null) return false;
  if (Array.isArray(node)) return true;
  let prototype = Object.getPrototypeOf(node) as object | null;
  if (prototype !== null && prototype !== Object.prototype && Reflect.ownKeys(prototype).length === 0) {
    prototype = Object.getPrototypeOf(prototype) as object | null;
  }
  return prototype === Object.prototype || prototype === null;
}
