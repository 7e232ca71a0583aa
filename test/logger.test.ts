import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, lazyChildLogger } from '../src/logger.js';

/** Secrets and card data never reach a log line. */
function capture(): { stream: Writable; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { stream, text: () => text };
}

describe('logs', () => {
  it('log a request without its query string', () => {
    const output = capture();
    createLogger('info', output.stream).info({ req: { method: 'GET', url: '/v1/payment_intents?customer=4242424242424242' } }, 'x');
    expect(output.text()).toContain('"url":"/v1/payment_intents"');
    expect(output.text()).not.toContain('4242');
  });

  it('redact Authorization headers and keys', () => {
    const output = capture();
    createLogger('info', output.stream).info({
      req: { headers: { authorization: 'Bearer sk_test_secretsecret' } },
      headers: { authorization: 'Basic c2tfdGVzdA==' },
      merchant: { secret_key: 'sk_test_anothersecret' },
    }, 'x');
    expect(output.text()).not.toContain('secretsecret');
    expect(output.text()).not.toContain('c2tfdGVzdA');
    expect(output.text()).not.toContain('anothersecret');
  });

  it('redact a secret logged at the top level or two levels down', () => {
    const output = capture();
    createLogger('info', output.stream).info({
      secret_key: 'sk_test_toplevelsecret',
      merchant: { keys: { secret_key: 'sk_test_deepersecret' } },
    }, 'x');
    expect(output.text()).not.toContain('toplevelsecret');
    expect(output.text()).not.toContain('deepersecret');
    expect(output.text()).toContain('[redacted]');
  });

  it('redact a PSP account\'s API key and HMAC key, as a connector\'s options name them', () => {
    const output = capture();
    createLogger('info', output.stream).info({
      account: { apiKey: 'AQEadyenapikey', hmacKeyHex: '44782DEF547AAA06C910C43932B1EB0C' },
      options: { routing: { hmacKey: 'hmackeyvalue', hmac_key: 'hmacsnakevalue' } },
    }, 'x');
    expect(output.text()).not.toContain('adyenapikey');
    expect(output.text()).not.toContain('44782DEF');
    expect(output.text()).not.toContain('hmackeyvalue');
    expect(output.text()).not.toContain('hmacsnakevalue');
  });

  it('give a request\'s line its bindings and redaction when a request logger is made only as it logs', () => {
    const output = capture();
    const request = lazyChildLogger(createLogger('warn', output.stream), { reqId: 'req_lazy1' }, {});
    request.info({ note: 'below the level' }, 'not written');
    request.warn({ merchant: { secret_key: 'sk_test_lazysecret' } }, 'written');
    const lines = output.text().trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ reqId: 'req_lazy1', msg: 'written', merchant: { secret_key: '[redacted]' } });
  });

  it('give a route\'s own level to its request logger', () => {
    const output = capture();
    const request = lazyChildLogger(createLogger('warn', output.stream), { reqId: 'req_lazy2' }, { level: 'info' });
    request.info('written at the route\'s level');
    expect(output.text()).toContain('req_lazy2');
  });
});
