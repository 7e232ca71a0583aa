import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { nulParameter } from '../../src/http/nul-characters.js';

/** The NUL check walks what the parsers made, and nothing else. */
describe('nulParameter', () => {
  it('names a NUL in a prototype-less form object by its Stripe-style name', () => {
    const form = Object.assign(Object.create(null) as Record<string, unknown>, { metadata: { note: 'a\u0000b' } });
    expect(nulParameter(form, '')).toBe('metadata[note]');
  });

  it('names a NUL in the router\'s params, an object whose prototype is an empty one with none', () => {
    const NullObject = function NullObject() {} as unknown as { new(): Record<string, unknown>; prototype: object };
    NullObject.prototype = Object.create(null) as object;
    const params = new NullObject();
    params.id = 'pi_\u0000';
    expect(nulParameter(params, '')).toBe('id');
  });

  it('names a NUL in an array element', () => {
    expect(nulParameter({ expand: ['data', 'a\u0000'] }, '')).toBe('expand[1]');
  });

  it('passes over a streamed body, whose properties reach the server and loop back on themselves', () => {
    // A reconciliation upload's body is the request stream: walking it never ended (found by penny simulate).
    const body = new Readable({ read() {} }) as Readable & { self?: unknown };
    body.self = body;
    expect(nulParameter(body, '')).toBeUndefined();
  });

  it('passes over a Buffer', () => {
    expect(nulParameter(Buffer.from('a\u0000b'), '')).toBeUndefined();
  });
});
