import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/** `penny merchants connector`, as an operator runs it: the built bin, in its own process. */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = path.join(root, 'dist', 'src', 'cli', 'penny.js');
const apiKey = 'AQE_cli_test_api_key_0123456789abcdef';
const hmacKey = '44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056';

let database: TestDatabase;
let directory: string;

function penny(args: string[], environment: Record<string, string> = {}):
Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME,
      DATABASE_URL: database.url, PENNY_DATA_DIR: directory, ...environment } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  database = await createTestDatabase();
  directory = await fs.mkdtemp(path.join('/var/tmp', 'penny-cli-connector-'));
  await fs.writeFile(path.join(directory, 'api-key'), `${apiKey}\n`, { mode: 0o600 });
  await fs.writeFile(path.join(directory, 'hmac-key'), `${hmacKey}\n`, { mode: 0o600 });
});

describe('penny merchants connector', () => {
  it('routes a merchant to an Adyen merchant account, sealing its keys and never printing them', async () => {
    const created = await penny(['merchants', 'create', '--name', 'CLI Adyen Shop', '--json']);
    const merchant = (JSON.parse(created.stdout) as { id: string }).id;
    const routed = await penny(['merchants', 'connector', merchant, '--connector', 'adyen', '--merchant-account',
      'CliShopECOM', '--api-key-file', path.join(directory, 'api-key'), '--hmac-key-file',
      path.join(directory, 'hmac-key'), '--json']);
    expect(routed.code).toBe(0);
    expect(JSON.parse(routed.stdout)).toEqual({ merchant, connector: 'adyen:CliShopECOM',
      merchant_account: 'CliShopECOM', endpoint: 'https://checkout-test.adyen.com/v71', live_prefix: null,
      live: false, fee_basis_points: 0, fee_fixed_minor: 0 });
    const shown = await penny(['merchants', 'connector', merchant]);
    expect(shown.stdout).toContain('Adyen merchant account CliShopECOM (test');
    for (const output of [routed.stdout, routed.stderr, shown.stdout, shown.stderr]) {
      expect(output).not.toContain(apiKey);
      expect(output.toLowerCase()).not.toContain(hmacKey.toLowerCase());
    }
    const row = await database.pool.query('SELECT row_to_json(a)::text AS text FROM connector_accounts a');
    expect(JSON.stringify(row.rows)).not.toContain(apiKey);
    const back = await penny(['merchants', 'connector', merchant, '--connector', 'sandbox', '--json']);
    expect(JSON.parse(back.stdout)).toMatchObject({ connector: 'sandbox' });
  });

  it('carries the merchant\'s Adyen price (--fee-basis-points, --fee-fixed), kept when routed again', async () => {
    const created = await penny(['merchants', 'create', '--name', 'CLI Priced Shop', '--json']);
    const merchant = (JSON.parse(created.stdout) as { id: string }).id;
    const keys = ['--api-key-file', path.join(directory, 'api-key'), '--hmac-key-file', path.join(directory, 'hmac-key')];
    const routed = await penny(['merchants', 'connector', merchant, '--connector', 'adyen', '--merchant-account',
      'CliPricedECOM', ...keys, '--fee-basis-points', '130', '--fee-fixed', '12', '--json']);
    expect(routed.code).toBe(0);
    expect(JSON.parse(routed.stdout)).toMatchObject({ fee_basis_points: 130, fee_fixed_minor: 12 });
    const again = await penny(['merchants', 'connector', merchant, '--connector', 'adyen', '--merchant-account',
      'CliPricedECOM', ...keys]);
    expect(again.stdout).toContain('fee 130 bp + 12 minor units');
    const bad = await penny(['merchants', 'connector', merchant, '--connector', 'adyen', '--merchant-account',
      'CliPricedECOM', ...keys, '--fee-basis-points', '1.5']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--fee-basis-points');
  });

  it('refuses --connector adyen without its key files, and an HMAC key that is not hex', async () => {
    const created = await penny(['merchants', 'create', '--name', 'CLI Other Shop', '--json']);
    const merchant = (JSON.parse(created.stdout) as { id: string }).id;
    const missing = await penny(['merchants', 'connector', merchant, '--connector', 'adyen', '--merchant-account', 'X']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('--api-key-file');
    await fs.writeFile(path.join(directory, 'bad-hmac'), 'not-hex-at-all');
    const bad = await penny(['merchants', 'connector', merchant, '--connector', 'adyen', '--merchant-account', 'X',
      '--api-key-file', path.join(directory, 'api-key'), '--hmac-key-file', path.join(directory, 'bad-hmac')]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('HMAC key');
    expect(bad.stderr).not.toContain('not-hex-at-all');
  });

  it('sends the API key only to Adyen over https: another host, or http, is refused unless allowed for a test stub',
    async () => {
      const created = await penny(['merchants', 'create', '--name', 'CLI Endpoint Shop', '--json']);
      const merchant = (JSON.parse(created.stdout) as { id: string }).id;
      const route = (endpoint: string, environment: Record<string, string> = {}) => penny(['merchants', 'connector',
        merchant, '--connector', 'adyen', '--merchant-account', 'EndpointECOM', '--api-key-file',
        path.join(directory, 'api-key'), '--hmac-key-file', path.join(directory, 'hmac-key'), '--endpoint', endpoint,
        '--json'], environment);
      for (const endpoint of ['http://checkout-test.adyen.com/v71', 'https://169.254.169.254/v71',
        'https://adyen.com.example.org/v71', 'https://checkout-test.adyen.com:8443/v71']) {
        const refused = await route(endpoint);
        expect(refused.code, endpoint).toBe(1);
        expect(refused.stdout, endpoint).toContain('https on Adyen');
      }
      expect((await route('https://abc-checkout-live.adyenpayments.com/checkout/v71')).code).toBe(0);
      const stub = await route('http://127.0.0.1:9/v71', { PENNY_CONNECTORS_ALLOW_ANY_ENDPOINT: 'true' });
      expect(stub.code).toBe(0);
      expect(JSON.parse(stub.stdout)).toMatchObject({ endpoint: 'http://127.0.0.1:9/v71' });
    });
});
