import { beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { appendAtCommit, combineWrites, inSavepoint, inTransaction, writeAtCommit } from '../../src/db/pool.js';
import { createTestDatabase } from '../support/database.js';

/** Writes deferred to the end of a transaction run as one statement, atomically with it. */
let pool: pg.Pool;

beforeAll(async () => {
  pool = (await createTestDatabase(2)).pool;
  await pool.query('CREATE TABLE deferred_notes (slot text PRIMARY KEY, note text NOT NULL)');
});

async function notes(): Promise<Record<string, string>> {
  const result = await pool.query<{ slot: string; note: string }>('SELECT slot, note FROM deferred_notes');
  return Object.fromEntries(result.rows.map((row) => [row.slot, row.note]));
}

async function withClient<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    return await work(client);
  } finally {
    client.release();
  }
}

function insertNote(slot: string, note: string) {
  return () => ({ text: 'INSERT INTO deferred_notes (slot, note) VALUES ($1, $2)', values: [slot, note] });
}

describe('combineWrites', () => {
  it('renumbers each statement\'s parameters after the ones before it', () => {
    const combined = combineWrites([
      { text: 'INSERT INTO a VALUES ($1, $2)', values: [1, 2] },
      { text: 'UPDATE b SET x = $2 WHERE id = $1', values: [3, 4] },
    ]);
    expect(combined.text).toBe('WITH deferred_0 AS (INSERT INTO a VALUES ($1, $2)),\n' +
      'deferred_1 AS (UPDATE b SET x = $4 WHERE id = $3)\nSELECT 1');
    expect(combined.values).toEqual([1, 2, 3, 4]);
  });

  it('closes the list with the CTEs and main statement of a write that begins with WITH', () => {
    const combined = combineWrites([
      { text: 'WITH e AS (INSERT INTO a VALUES ($1) RETURNING id) INSERT INTO b SELECT id FROM e', values: [1] },
      { text: 'DELETE FROM c WHERE id = $1', values: [2] },
    ]);
    expect(combined.text).toBe('WITH deferred_1 AS (DELETE FROM c WHERE id = $2),\n' +
      'e AS (INSERT INTO a VALUES ($1) RETURNING id) INSERT INTO b SELECT id FROM e');
    expect(combined.values).toEqual([1, 2]);
  });

  it('refuses two writes that begin with WITH', () => {
    const write = { text: 'WITH e AS (SELECT 1) INSERT INTO a SELECT * FROM e', values: [] };
    expect(() => combineWrites([write, write])).toThrow(/only one/);
  });

  it('refuses a write holding dollar quotes, whose text it could not renumber safely', () => {
    const write = { text: 'INSERT INTO a VALUES ($$x$$)', values: [] };
    expect(() => combineWrites([write, write])).toThrow(/dollar/);
  });
});

describe('writeAtCommit', () => {
  it('runs every deferred write in the transaction, after its other statements', async () => {
    await withClient((client) => inTransaction(client, async () => {
      await writeAtCommit(client, 'one', insertNote('deferred-1', 'first'));
      await writeAtCommit(client, 'two', insertNote('deferred-2', 'second'));
      // Not written yet: nothing else in the transaction may read a deferred write.
      expect((await client.query("SELECT 1 FROM deferred_notes WHERE slot LIKE 'deferred-%'")).rowCount).toBe(0);
    }));
    expect(await notes()).toMatchObject({ 'deferred-1': 'first', 'deferred-2': 'second' });
  });

  it('keeps only the last write of a slot', async () => {
    await withClient((client) => inTransaction(client, async () => {
      await writeAtCommit(client, 'same', insertNote('replaced', 'earlier'));
      await writeAtCommit(client, 'same', insertNote('replaced', 'later'));
    }));
    expect((await notes()).replaced).toBe('later');
  });

  it('writes nothing when the transaction rolls back', async () => {
    await expect(withClient((client) => inTransaction(client, async () => {
      await writeAtCommit(client, 'lost', insertNote('rolled-back', 'never'));
      throw new Error('the work failed');
    }))).rejects.toThrow('the work failed');
    expect((await notes())['rolled-back']).toBeUndefined();
  });

  it('fails the whole transaction when a deferred write fails at commit', async () => {
    await expect(withClient((client) => inTransaction(client, async () => {
      await client.query("INSERT INTO deferred_notes (slot, note) VALUES ('immediate', 'kept?')");
      await writeAtCommit(client, 'bad', () => ({
        text: 'INSERT INTO deferred_notes (slot, note) VALUES ($1, NULL)', values: ['null-note'] }));
    }))).rejects.toThrow(/null value/);
    expect(await notes()).not.toHaveProperty('immediate');
  });

  it('runs at once outside a transaction', async () => {
    await writeAtCommit(pool, 'now', insertNote('at-once', 'written'));
    expect((await notes())['at-once']).toBe('written');
  });
});

describe('inSavepoint', () => {
  function appendNote(client: pg.PoolClient, slot: string) {
    return appendAtCommit(client, 'notes', slot, (slots) => ({
      text: 'INSERT INTO deferred_notes (slot, note) SELECT s, \'appended\' FROM unnest($1::text[]) AS s',
      values: [slots],
    }));
  }

  it('rolls back what a failed savepoint deferred, and keeps what was deferred before it', async () => {
    await withClient((client) => inTransaction(client, async () => {
      await appendNote(client, 'before-savepoint');
      await expect(inSavepoint(client, async () => {
        await appendNote(client, 'inside-failed-savepoint');
        await writeAtCommit(client, 'lone', insertNote('lone-inside', 'never'));
        throw new Error('the step failed');
      })).rejects.toThrow('the step failed');
      await appendNote(client, 'after-savepoint');
    }));
    const written = await notes();
    expect(written).toMatchObject({ 'before-savepoint': 'appended', 'after-savepoint': 'appended' });
    expect(written).not.toHaveProperty('inside-failed-savepoint');
    expect(written).not.toHaveProperty('lone-inside');
  });

  it('keeps what a successful savepoint deferred', async () => {
    await withClient((client) => inTransaction(client, async () => {
      await inSavepoint(client, () => appendNote(client, 'inside-kept-savepoint'));
    }));
    expect((await notes())['inside-kept-savepoint']).toBe('appended');
  });
});

describe('inTransaction inside a transaction it opened', () => {
  it('joins it: nothing of the inner work commits until the outer transaction does', async () => {
    await withClient((client) => inTransaction(client, async () => {
      await inTransaction(client, async () => {
        await client.query("INSERT INTO deferred_notes (slot, note) VALUES ('joined-inner', 'inner')");
      });
      // An inner COMMIT would have made it visible to another connection by now.
      expect((await pool.query("SELECT 1 FROM deferred_notes WHERE slot = 'joined-inner'")).rowCount).toBe(0);
    }));
    expect((await notes())['joined-inner']).toBe('inner');
  });

  it('rolls the inner work back with the outer transaction', async () => {
    await expect(withClient((client) => inTransaction(client, async () => {
      await inTransaction(client, async () => {
        await client.query("INSERT INTO deferred_notes (slot, note) VALUES ('joined-lost', 'inner')");
        await writeAtCommit(client, 'joined', insertNote('joined-deferred', 'inner'));
      });
      throw new Error('the outer work failed');
    }))).rejects.toThrow('the outer work failed');
    expect(await notes()).not.toHaveProperty('joined-lost');
    expect(await notes()).not.toHaveProperty('joined-deferred');
  });

  it('refuses to join with a BEGIN of its own', async () => {
    await expect(withClient((client) => inTransaction(client, async () => {
      await inTransaction(client, async () => undefined, { begin: 'BEGIN; SELECT 1' });
    }))).rejects.toThrow(/cannot join/);
  });
});
