import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { PennyError } from '../src/errors.js';

/** Loads a configuration that must be refused and returns the PennyError it threw. */
function refusal(environment: Record<string, string>): PennyError {
  try {
    loadConfig(environment);
  } catch (error) {
    expect(error).toBeInstanceOf(PennyError);
    return error as PennyError;
  }
  throw new Error('expected the configuration to be refused, but it loaded');
}

describe('loadConfig', () => {
  it('uses the defaults when nothing is set', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 4242,
      host: '127.0.0.1',
      databaseUrl: undefined,
      operatorKey: undefined,
      embeddedPostgresPort: 54329,
      logLevel: 'info',
      ledgerAnchorFile: undefined,
      amountMaxMinor: 9007199254740991n,
      databasePoolSizeMax: 8,
      merchantRequestsPerSecondMax: 100,
    });
    expect(config.dataDirectory).toBe(path.resolve('.penny'));
    expect(config.embeddedPostgresDirectory).toBe(path.resolve('.penny', 'postgres'));
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ PORT: '', HOST: '', DATABASE_URL: '', PENNY_OPERATOR_KEY: '' })).toMatchObject({
      port: 4242, host: '127.0.0.1', databaseUrl: undefined, operatorKey: undefined,
    });
  });

  it('reads every variable it is given', () => {
    const config = loadConfig({
      PORT: '8080',
      HOST: '0.0.0.0',
      DATABASE_URL: 'postgres://penny@db:5432/penny',
      PENNY_DATA_DIR: '/srv/penny',
      PENNY_PG_PORT: '6543',
      PENNY_OPERATOR_KEY: 'k'.repeat(24),
      PENNY_LOG_LEVEL: 'debug',
      PENNY_LEDGER_ANCHOR_FILE: '/srv/anchor.json',
      PENNY_AMOUNT_MAX_MINOR: '100000000',
      PENNY_DB_POOL_SIZE: '20',
      PENNY_CLOCK: 'controlled',
      PENNY_WEBHOOKS_ALLOW_PRIVATE_URLS: 'true',
      PENNY_CONNECTORS_ALLOW_ANY_ENDPOINT: 'true',
      PENNY_SANDBOX_PSP: 'off',
      PENNY_SANDBOX_PSP_PORT: '5000',
      PENNY_AUTHORIZATION_EXPIRY_DAYS: '3',
      PENNY_RATE_LIMIT_PER_SECOND: '0',
      PENNY_FUNDS_AVAILABILITY: 'T+3',
    });
    expect(config).toEqual({
      port: 8080,
      host: '0.0.0.0',
      databaseUrl: 'postgres://penny@db:5432/penny',
      dataDirectory: '/srv/penny',
      embeddedPostgresPort: 6543,
      embeddedPostgresDirectory: '/srv/penny/postgres',
      operatorKey: 'k'.repeat(24),
      logLevel: 'debug',
      ledgerAnchorFile: '/srv/anchor.json',
      amountMaxMinor: 100000000n,
      databasePoolSizeMax: 20,
      clockMode: 'controlled',
      webhooksAllowPrivateUrls: true,
      connectorsAllowAnyEndpoint: true,
      sandboxPsp: false,
      sandboxPspPort: 5000,
      sandboxPspUrl: 'http://127.0.0.1:5000',
      publicUrl: 'http://127.0.0.1:8080',
      sandboxPspWebhookSecret: undefined,
      sandboxPspWebhookUrl: 'http://127.0.0.1:8080/v1/connectors/sandbox/webhooks',
      sandboxPspFaults: undefined,
      authorizationExpiryDays: 3,
      merchantRequestsPerSecondMax: 0,
      fundsAvailability: { kind: 'fixed_delay', delayDays: 3 },
    });
  });

  it('makes funds available at settlement unless PENNY_FUNDS_AVAILABILITY says T+n', () => {
    expect(loadConfig({}).fundsAvailability).toEqual({ kind: 'settlement' });
    expect(loadConfig({ PENNY_FUNDS_AVAILABILITY: 'settlement' }).fundsAvailability).toEqual({ kind: 'settlement' });
    expect(loadConfig({ PENNY_FUNDS_AVAILABILITY: 't+0' }).fundsAvailability).toEqual({ kind: 'fixed_delay', delayDays: 0 });
  });

  it('runs reconciliation daily only when PENNY_RECON_SCHEDULE sets a UTC time, with PENNY_RECON_INBOX resolved', () => {
    expect(loadConfig({}).reconciliationSchedule).toBeUndefined();
    expect(loadConfig({ PENNY_RECON_SCHEDULE: '02:30', PENNY_RECON_INBOX: 'inbox' })).toMatchObject({
      reconciliationSchedule: { hour: 2, minute: 30 }, reconciliationInbox: path.resolve('inbox') });
  });

  it.each(['2:00', '24:00', '02:60', 'nightly'])('refuses PENNY_RECON_SCHEDULE=%s, naming it', (value) => {
    expect(refusal({ PENNY_RECON_SCHEDULE: value })).toMatchObject({ param: 'PENNY_RECON_SCHEDULE' });
  });

  it.each(['T+31', 'T-1', 'daily', 'T+'])('refuses PENNY_FUNDS_AVAILABILITY=%s, naming it', (value) => {
    expect(refusal({ PENNY_FUNDS_AVAILABILITY: value })).toMatchObject({ param: 'PENNY_FUNDS_AVAILABILITY' });
  });

  it.each([['PENNY_RATE_LIMIT_PER_SECOND', '-1'], ['PENNY_RATE_LIMIT_PER_SECOND', 'many'], ['PENNY_CLOCK', 'frozen'], ['PENNY_SANDBOX_PSP', 'yes'], ['PENNY_WEBHOOKS_ALLOW_PRIVATE_URLS', '1'],
    ['PENNY_CONNECTORS_ALLOW_ANY_ENDPOINT', 'yes'],
    ['PENNY_SANDBOX_PSP_URL', 'ftp://psp']])('refuses %s=%j, naming it', (name, value) => {
    expect(refusal({ [name]: value })).toMatchObject({ code: 'invalid_configuration', param: name });
  });

  it.each(['abc', '70000', '65536', '-1', '80.5', ' 80', '0x50'])('refuses PORT=%j, naming PORT', (value) => {
    const error = refusal({ PORT: value });
    expect(error).toMatchObject({ code: 'invalid_configuration', param: 'PORT' });
    expect(error.message).toMatch(/^PORT: /);
  });

  it('accepts PORT=65535', () => {
    expect(loadConfig({ PORT: '65535' }).port).toBe(65535);
  });

  it('keeps PENNY_SANDBOX_PSP_FAULTS as text: the sandbox, not the configuration, owns its shape', () => {
    expect(loadConfig({ PENNY_SANDBOX_PSP_FAULTS: '{bad' }).sandboxPspFaults).toBe('{bad');
  });

  it('takes PENNY_PUBLIC_URL without its trailing slash, and refuses one that is not http(s)', () => {
    expect(loadConfig({ PENNY_PUBLIC_URL: 'https://pay.example/' }).publicUrl).toBe('https://pay.example');
    expect(refusal({ PENNY_PUBLIC_URL: 'ftp://x' })).toMatchObject({ param: 'PENNY_PUBLIC_URL' });
  });

  it('refuses a bad PENNY_PG_PORT, naming PENNY_PG_PORT', () => {
    expect(refusal({ PENNY_PG_PORT: '99999' })).toMatchObject({ param: 'PENNY_PG_PORT' });
  });

  it.each(['mysql://x', 'x', 'http://localhost/penny', 'postgres:/missing-slash',
    'postgres://u@h1,h2/d?target_session_attrs=any', 'postgres://u@h/d?target_session_attrs=read-only',
    'postgres://u@h1:5432,h2:99999/d', 'postgres://u@h1,h2/d?host=/tmp'])(
    'refuses DATABASE_URL=%j, naming DATABASE_URL',
    (value) => {
      const error = refusal({ DATABASE_URL: value });
      expect(error).toMatchObject({ code: 'invalid_configuration', param: 'DATABASE_URL' });
      expect(error.message).toContain('DATABASE_URL');
    },
  );

  it.each(['postgres://u@h/d', 'postgresql://u:p@h:5432/d',
    'postgres://u@h1:5432,h2:5433,h3:5434/d?target_session_attrs=read-write',
    'postgres://u@h1,[::1]:5433/d?target_session_attrs=primary'])('accepts DATABASE_URL=%j', (value) => {
    expect(loadConfig({ DATABASE_URL: value }).databaseUrl).toBe(value);
  });

  it('refuses a PENNY_OPERATOR_KEY shorter than 24 characters', () => {
    const error = refusal({ PENNY_OPERATOR_KEY: 'k'.repeat(23) });
    expect(error).toMatchObject({ code: 'invalid_configuration', param: 'PENNY_OPERATOR_KEY' });
    expect(error.message).toContain('PENNY_OPERATOR_KEY');
  });

  it('accepts a PENNY_OPERATOR_KEY of 24 characters', () => {
    expect(loadConfig({ PENNY_OPERATOR_KEY: 'k'.repeat(24) }).operatorKey).toBe('k'.repeat(24));
  });

  it('refuses PENNY_AMOUNT_MAX_MINOR above 2^53 − 1', () => {
    const error = refusal({ PENNY_AMOUNT_MAX_MINOR: '9007199254740992' });
    expect(error).toMatchObject({ code: 'invalid_configuration', param: 'PENNY_AMOUNT_MAX_MINOR' });
    expect(error.message).toContain('PENNY_AMOUNT_MAX_MINOR');
  });

  it('accepts PENNY_AMOUNT_MAX_MINOR of exactly 2^53 − 1, as a bigint', () => {
    expect(loadConfig({ PENNY_AMOUNT_MAX_MINOR: '9007199254740991' }).amountMaxMinor).toBe(9007199254740991n);
  });

  it.each(['0', '-5', '1.5', '01', 'lots', '1e6'])('refuses PENNY_AMOUNT_MAX_MINOR=%j', (value) => {
    expect(refusal({ PENNY_AMOUNT_MAX_MINOR: value })).toMatchObject({ param: 'PENNY_AMOUNT_MAX_MINOR' });
  });

  it('refuses an unknown PENNY_LOG_LEVEL, naming it', () => {
    expect(refusal({ PENNY_LOG_LEVEL: 'verbose' })).toMatchObject({ param: 'PENNY_LOG_LEVEL' });
  });

  it.each(['0', '101', 'ten'])('refuses PENNY_DB_POOL_SIZE=%j', (value) => {
    expect(refusal({ PENNY_DB_POOL_SIZE: value })).toMatchObject({ param: 'PENNY_DB_POOL_SIZE' });
  });

  it('refuses a HOST with surrounding spaces', () => {
    expect(refusal({ HOST: ' localhost' })).toMatchObject({ param: 'HOST' });
  });
});
