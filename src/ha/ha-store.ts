import pg from 'pg';
import { pennyDatabase, pennyRole } from './ha-layout.js';

/**
 * The SQL of `penny ha up`: on the cluster's primary, the role `penny` owns the database `penny`
 * (which pg_autoctl created), so Penny migrates into it as an ordinary role, not as a superuser.
 * Both names are constants; the statements can run again.
 */
export async function preparePennyDatabase(primary: { port: number; superuser: string }): Promise<void> {
  const client = new pg.Client({ host: '127.0.0.1', port: primary.port, user: primary.superuser,
    database: pennyDatabase, application_name: 'penny-ha' });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [pennyRole]);
    if (rowCount === 0) await client.query(`CREATE ROLE ${pennyRole} LOGIN`);
    await client.query(`ALTER DATABASE ${pennyDatabase} OWNER TO ${pennyRole}`);
  } finally {
    await client.end();
  }
}
