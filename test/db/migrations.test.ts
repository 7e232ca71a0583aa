import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, inject, it } from 'vitest';
import { listMigrationFiles, migrate, migrationsTable } from '../../src/db/migrate.js';
import { createClient, ensureDatabase, withDatabase } from '../../src/db/pool.js';
import { createTestDatabase } from '../support/database.js';

/**
 * The SHA-256 of every migration that has landed (been submitted). A landed migration is never
 * edited: a change is a new migration. Add a file here once it lands.
 */
const landed: readonly (readonly [string, string])[] = [
  ['0001_ledger', 'd7f1320a3b7c6392c9d885231ab2557af90169e2fb0b5e24de4012ad1e9c2562'],
  ['0002_merchants', 'c63aea18f7587b60949efbf36f8300f2299e5ed67eea3d57b1c9431850715296'],
  ['0003_payment_intents', '1109a239b1d3941fa38f5676f784a8eb9086f089337144190593ddcea05be224'],
  ['0004_charges_refunds_sandbox', '8238a43cb86c924d8de76a45f6afa68692bfa8a824579cf17cdaf4ea1f12a69f'],
  ['0005_events_webhooks', 'cb6a300b1b3ff96443e689b64fad2fa42d2b364090df1da4ede6a9c4527e5650'],
  ['0006_outside_world', '5646f253d7825efc2d0de6721064d86f110734d10fbe6e24ccd720bfa6c8b693'],
  ['0007_hot_merchant_row', '205d00175bae52b28eaed131dbe2f013497a4844b239d5318c1d29077848e31e'],
  ['0008_lookup_by_id', '022b376ee5da4f8412b553a4142f7310292ec508587ba918c956cce5d98d0720'],
  ['0009_delivery_list', '1843332a227e05c499b08ced72269b75522684b55a33152b7b8d1de9507d0e78'],
  ['0010_cancel_recovery', '0161dc8769c10fe22081a5656a2ce431b34332d7434b079a9f16df380e891ad7'],
  ['0011_capture_before', 'f5454c381b89d6ca517731a7b64b490f258f500011a9f8f6a99109b2e30f8ac0'],
  ['0012_open_holds', '91427855577792effa2789cb21c539268a3e1ee486eb3f33c351d8da41fda31b'],
  ['0013_finalization_keys', '9c8a93dccd4f3294db5215f0aebcabfd6709bf64338c690b27a1c8f6a15662a0'],
  ['0014_unmatched_event_cases', '49d9f1e2a8274b3023d450f6eb6dd414c093b3a825b7db5ad2e0974316bca501'],
  ['0015_case_resolution', 'b2e898bc94ddcc42bdaf079cc3277fb5119ff7b26f07511202dfbef9385a6439'],
  ['0016_statement_rows', 'da40d772adccc5330926c879623db1f496fd13f2fe8f8617f00879a207652ed1'],
  ['0017_cheap_id_checks', '0592d6cf8520919065707376582a3130d11168994762144a30d757fa729d646d'],
  ['0018_attempt_return_url', '57dfa79947e157f56e7439884bb283330583c306dd1f6aa0d191513a50318778'],
  ['0019_connector_per_charge', '09725b4bbb6d5ba4fab08087137991695a15d11c38d4ddea02b878cbc30335d9'],
  ['0020_refund_customer_payment_method', 'fc59c7701573748193f8201a06ea81ad18fb9fda65cbf2c212e1e07bec34f7d6'],
  ['0021_attempt_authentication_failed', '6e0e63fc18588f7ad17b09cdfe0f74ce764287375be4a294e891f0048a618a15'],
  ['0022_connected_accounts', '6473f3e99b4e9934ea705d0326a31dcb2df06ba59820b4ff6e400697293f3b20'],
  ['0023_sandbox_disputes_payouts', 'd85a860dd6fe7dafcf58581967a468a914396045410dcbeb70a4835ba9867baf'],
  ['0024_balance_transactions', 'a60fd68bdcb706725a7a8d2cfde228d60783989b41607cf46a9caf7c2714ad86'],
  ['0025_payouts', 'ed2430bf0b52247b897a9ce70d548f5f9eec102f6ef799eb5388f952a921bbd5'],
  ['0026_funds_available_immediately', '310a91361dee0329d4a7857d7d4a8cf160d6f5055776222b254899e58b60bff6'],
  ['0027_disputes', 'd63fff682f210b30ebfd024fec0fc17fc16b3bc1bc0795c408011da32b395600'],
  ['0028_connected_account_ledger_accounts', '2736075d3bc6e9e697ad7d395f6efaeb5bc977ab22a457eccabf41e32cacec1f'],
  ['0029_transfers', '6f973f5a773450cc22cf2cec1f17a9dfb5c836662eb8bd9302ec8a7f3c24c2d7'],
  ['0030_destination_charges', '80ff8a38631a48e4823b1d64d2445d87ed29aeb28d08b54c988b232fc5f26a65'],
  ['0031_payout_schedules', 'e164e4ab82716b44a41ed7eb8febb69f3845891589e945b2349163283cc1218e'],
  ['0032_operator_ledger_accounts', '8d0a89a3deb6166c97a7331e098d676a7a8b9e299616d94c4943933b02d08f10'],
  ['0033_reconciliation_imports', 'a3c5e7022439fa6b31cbad8c22a97832309a7717989ce4accd308b9fa67b37ec'],
  ['0035_charge_disputed', '1996c958e39301d8d96aeb5882b8bdc5b4bafef75245cfbd6574981d3454d71f'],
  ['0036_reconciliation_runs', '8db4aefcb34d716dd9f87412ba209a8b32b41af0f17479d9f77cee1940de6ede'],
  ['0037_report_runs', '4620aea44ec67c0ce6dd217dfcad6a053d3a351a3451c3171f8d26636cc7f129'],
  ['0038_reconciliation_record_indexes', '9b0c3642cc2640b5a139a88c04dce628bd77e7ba6efbf358b31a1f4eada75d53'],
  ['0039_reconciliation_record_checks', '96b831efbe2b313202fbddbd51d7c595e416dd365602a2dc16e70a1ad70f1767'],
  ['0040_dashboard', '9ce23d8ca54e82330be8c22773e497e4683b5baf416186171d8196ba12ce6345'],
  ['0041_connector_routing', '156b693abf46183f170c33217674022198b66c95e76c06495fb7f9d2e6d50231'],
  ['0042_reconciliation_csv_content', 'a4ec14ae033373a2adc579825bbe3d6d378b2c088859e0df857e410fbfd814c0'],
  ['0043_connector_account_price', '8549d3c227595c7de05ee69d6682baf35e1d09c357ffca753ca78d699f89edad'],
  ['0044_finalization_psp_reference', 'e33f9ebadc58b307d1fc2c693b437367de6d1d4cfd397d8ba333605acc8795bc'],
  ['0045_payout_resends', '38b178bcce7016196e50ff8fdb6aed1a7235c712e27b7cc747ef7742e90decf6'],
  ['0046_ledger_totals_numeric', '9953c52422c5e03d6194645c56111e5e81f7a3b894a618aeaf5afff36a773377'],
  ['0047_operator_session_key_digest', 'ded84cf13940e68ee4d67434f44749fa47b3791856d496063586925bbe351b77'],
  ['0048_late_settlement_and_payout_remainder', 'ce00edadd21bb9a9b46dc7fc060136af7751ef793647381412e73610edf3bc90'],
  ['0049_settlement_report_files', '802347ced8a89dd6e9f3f1982f0f96201711a60a6896866cb593094dda45993d'],
  ['0050_settlement_report_file_attempts', '4663093f30140d77e259455bbbf0a91b3d2a1c1d54e267c71dac3e2f1a051e35'],
  ['0051_payout_remainders_before_0048', 'cd45abf7950f837d4ef187e4314bef87e216cde1f5c3ecdfdaf41e630008f0df'],
  ['0052_reconciliation_closed_files', '5f9407ab41bffb88c39458b3f40f9a60e3467866faf1be4b5d693faa4ab08683'],
];

describe('migrations', () => {
  it('that have landed are unchanged, byte for byte', async () => {
    const changed: string[] = [];
    for (const [name, digest] of landed) {
      const text = await fs.readFile(fileURLToPath(new URL(`../../src/db/migrations/${name}.sql`, import.meta.url)));
      if (createHash('sha256').update(text).digest('hex') !== digest) changed.push(name);
    }
    expect(changed).toEqual([]);
  });

  it('are all applied to a fresh database cloned from the template', async () => {
    const database = await createTestDatabase();
    const applied = await database.pool.query<{ name: string }>(
      `SELECT name FROM ${migrationsTable} ORDER BY name`,
    );
    expect(applied.rows.map((row) => row.name)).toEqual(await listMigrationFiles());
  });

  it('apply each file exactly once when two processes migrate an empty database at once', async () => {
    const name = `penny_test_${inject('templateDatabase').split('_').at(-1)}_empty_${randomBytes(6).toString('hex')}`;
    await ensureDatabase(inject('serverUrl'), name);
    const url = withDatabase(inject('serverUrl'), name);
    const results = await Promise.all([migrate(url), migrate(url)]);
    const files = await listMigrationFiles();
    expect(results.flatMap((result) => result.applied).sort()).toEqual(files);
    const client = createClient(url);
    await client.connect();
    try {
      const rows = await client.query<{ name: string }>(`SELECT name FROM ${migrationsTable} ORDER BY name`);
      expect(rows.rows.map((row) => row.name)).toEqual(files);
    } finally {
      await client.end();
    }
  });
});
