import { named, type Queryable } from '../db/pool.js';

/** The SQL of settlement pulls, one function per statement. */
export async function selectSettlementPulled(db: Queryable, pull: { connector: string; day: string }):
Promise<boolean> {
  const result = await db.query(named('SELECT 1 FROM settlement_pulls WHERE connector = $1 AND day = $2'),
    [pull.connector, pull.day]);
  return result.rows.length > 0;
}

export async function insertSettlementPull(db: Queryable, pull: { connector: string; day: string;
  settledCount: number }): Promise<void> {
  await db.query(named(`INSERT INTO settlement_pulls (connector, day, settled_count) VALUES ($1, $2, $3)
     ON CONFLICT (connector, day) DO UPDATE SET settled_count = settlement_pulls.settled_count + excluded.settled_count,
       pulled_at = clock_timestamp()`), [pull.connector, pull.day, pull.settledCount]);
}
