import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * Migration 0017 rewrote the id and hash checks without counted repetitions (which PostgreSQL's
 * regular expressions make slow). Each rewritten check must accept exactly what the old one did.
 */
const rewritten = [
  { table: 'ledger_accounts', constraint: 'ledger_accounts_id_check', column: 'id', old: '^lacc_[A-Za-z0-9]{8,64}$' },
  { table: 'ledger_entries', constraint: 'ledger_entries_id_check', column: 'id', old: '^lent_[A-Za-z0-9]{8,64}$' },
  { table: 'ledger_entry_seals', constraint: 'ledger_entry_seals_previous_hash_check', column: 'previous_hash',
    old: '^[0-9a-f]{64}$' },
  { table: 'ledger_entry_seals', constraint: 'ledger_entry_seals_hash_check', column: 'hash', old: '^[0-9a-f]{64}$' },
  { table: 'merchants', constraint: 'merchants_id_check', column: 'id', old: '^acct_[A-Za-z0-9]{8,64}$' },
  { table: 'merchant_api_keys', constraint: 'merchant_api_keys_id_check', column: 'id', old: '^key_[A-Za-z0-9]{8,64}$' },
  { table: 'payment_intents', constraint: 'payment_intents_id_check', column: 'id', old: '^pi_[A-Za-z0-9]{8,64}$' },
  { table: 'payment_attempts', constraint: 'payment_attempts_id_check', column: 'id', old: '^pa_[A-Za-z0-9]{8,64}$' },
  { table: 'charges', constraint: 'charges_id_check', column: 'id', old: '^ch_[A-Za-z0-9]{8,64}$' },
  { table: 'refunds', constraint: 'refunds_id_check', column: 'id', old: '^re_[A-Za-z0-9]{8,64}$' },
  { table: 'events', constraint: 'events_id_check', column: 'id', old: '^evt_[A-Za-z0-9]{8,64}$' },
  { table: 'webhook_endpoints', constraint: 'webhook_endpoints_id_check', column: 'id', old: '^we_[A-Za-z0-9]{8,64}$' },
  { table: 'webhook_deliveries', constraint: 'webhook_deliveries_id_check', column: 'id', old: '^whd_[A-Za-z0-9]{8,64}$' },
  { table: 'recovery_jobs', constraint: 'recovery_jobs_id_check', column: 'id', old: '^rcv_[A-Za-z0-9]{8,64}$' },
  { table: 'payment_cases', constraint: 'payment_cases_id_check', column: 'id', old: '^case_[A-Za-z0-9]{8,64}$' },
] as const;

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase(2);
});

afterAll(async () => {
  await database.pool.end();
});

/** The check's expression as PostgreSQL stores it, without the CHECK keyword. */
async function checkExpression(table: string, constraint: string): Promise<string> {
  const found = await database.pool.query<{ definition: string }>(
    `SELECT pg_get_constraintdef(oid) AS definition FROM pg_constraint
     WHERE conrelid = $1::regclass AND conname = $2 AND contype = 'c'`,
    [table, constraint]);
  const definition = found.rows[0]?.definition;
  expect(definition, `${table}.${constraint} exists`).toBeDefined();
  return (definition as string).replace(/^CHECK /, '');
}

/** Candidates near each rule's edges: the right prefix or a near miss, bodies around both length bounds. */
function candidate(prefix: string): fc.Arbitrary<string> {
  const prefixes = [prefix, prefix.toUpperCase(), prefix.slice(0, -1), `x${prefix}`, ''];
  const lengths = [0, 1, 7, 8, 9, 37, 63, 64, 65, 66];
  const allowed = fc.constantFrom('a', 'Z', '0', '9', 'f', 'g');
  const any = fc.constantFrom('a', 'Z', '0', '9', 'f', 'g', '_', '-', ' ', 'é', '\n');
  return fc.tuple(fc.constantFrom(...prefixes), fc.constantFrom(...lengths), fc.boolean())
    .chain(([head, length, onlyAllowed]) => fc
      .array(onlyAllowed ? allowed : any, { minLength: length, maxLength: length })
      .map((characters) => head + characters.join('')));
}

/** The strings right at and next to each bound, always tried first (random runs may miss them). */
function boundaries(prefix: string): string[] {
  return [0, 1, 7, 8, 9, 63, 64, 65].flatMap((length) => [prefix + 'a'.repeat(length), prefix + '9'.repeat(length)]);
}

describe('id and hash checks (migration 0017)', () => {
  it('no check constraint uses a counted repetition longer than three', async () => {
    const found = await database.pool.query<{ name: string }>(
      `SELECT conrelid::regclass || '.' || conname AS name FROM pg_constraint
       WHERE contype = 'c' AND pg_get_constraintdef(oid) ~ '\\{([0-9]{2,}|[0-9]+,[0-9]*)\\}|\\{[4-9]\\}'`);
    expect(found.rows.map((row) => row.name)).toEqual([]);
  });

  for (const rule of rewritten) {
    it(`${rule.constraint} accepts exactly what ${rule.old} accepted`, async () => {
      const expression = await checkExpression(rule.table, rule.constraint);
      const prefix = rule.old.match(/^\^([a-z]*_)?/)?.[1] ?? '';
      await fc.assert(fc.asyncProperty(fc.array(candidate(prefix), { minLength: 1, maxLength: 50 }), async (values) => {
        // The stored expression names the column; a one-column row source of the same name feeds it.
        const result = await database.pool.query<{ value: string; old: boolean; rewritten: boolean | null }>(
          `SELECT ${rule.column} AS value, ${rule.column} ~ $2 AS old, ${expression} AS rewritten
           FROM unnest($1::text[]) AS candidate(${rule.column})`,
          [values, rule.old]);
        for (const row of result.rows) {
          expect({ value: row.value, accepted: row.rewritten }).toEqual({ value: row.value, accepted: row.old });
        }
      }), { numRuns: 40, examples: [[boundaries(prefix)]] });
    });
  }
});
