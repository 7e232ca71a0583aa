import { describe, expect, it } from 'vitest';
import { parseDatabaseUrl } from '../src/database-url.js';
import { withDatabase } from '../src/db/pool.js';

describe('parseDatabaseUrl', () => {
  it('passes a single-host URL on unchanged', () => {
    const url = 'postgres://penny:secret@db.example:6543/penny?sslmode=require&target_session_attrs=read-write';
    const target = parseDatabaseUrl(url);
    expect(target.hosts).toEqual([{ host: 'db.example', port: 6543 }]);
    expect(target.urlFor(0)).toBe(url);
  });

  it('names a socket directory given as host= in the query', () => {
    const target = parseDatabaseUrl('postgres://postgres@localhost:5555/postgres?host=%2Fvar%2Ftmp%2Fpg');
    expect(target.urlFor(0)).toBe('postgres://postgres@localhost:5555/postgres?host=%2Fvar%2Ftmp%2Fpg');
  });

  it("splits a multi-host URL into its hosts, each with the others' user, database and options", () => {
    const target = parseDatabaseUrl(
      'postgres://penny:pw@h1:5432,h2:5433,[::1]:5434,h4/penny?target_session_attrs=read-write&sslmode=disable');
    expect(target.hosts).toEqual([
      { host: 'h1', port: 5432 }, { host: 'h2', port: 5433 }, { host: '::1', port: 5434 }, { host: 'h4', port: 5432 },
    ]);
    expect(target.urlFor(1)).toBe('postgres://penny:pw@h2:5433/penny?sslmode=disable');
    expect(target.urlFor(2)).toBe('postgres://penny:pw@[::1]:5434/penny?sslmode=disable');
  });

  it('refuses a target_session_attrs that would allow a standby', () => {
    expect(() => parseDatabaseUrl('postgres://u@h1,h2/d?target_session_attrs=prefer-standby'))
      .toThrow(/only to the writable primary/);
  });
});

describe('withDatabase', () => {
  it('rewrites the database of a multi-host URL, keeping its hosts and options', () => {
    expect(withDatabase('postgres://u@h1:1,h2:2/old?target_session_attrs=read-write', 'new db'))
      .toBe('postgres://u@h1:1,h2:2/new%20db?target_session_attrs=read-write');
  });
});
