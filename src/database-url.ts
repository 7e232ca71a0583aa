/**
 * A libpq-style connection URL, single- or multi-host
 * (`postgres://user@h1:5432,h2:5433/db?target_session_attrs=read-write`), split into its hosts.
 * `pg` takes one host per connection, so Penny keeps the list itself (src/db/primary.ts tries the
 * hosts in turn for the writable primary). Kernel: config validates DATABASE_URL with it.
 */
export interface DatabaseHost {
  readonly host: string;
  readonly port: number;
}

export interface DatabaseTarget {
  /** The hosts in the order given; one entry (possibly a socket directory) for a single-host URL. */
  readonly hosts: readonly DatabaseHost[];
  /** The single-host URL pg is given for the host at `index`; a single-host URL is passed on unchanged. */
  urlFor(index: number): string;
}

const defaultPort = 5432;
/** What target_session_attrs may say: Penny always wants the writable primary. */
const primaryAttributes = ['read-write', 'primary'];
const urlShape = /^(postgres(?:ql)?:\/\/)([^@/?#]*@)?([^/?#]*)(.*)$/s;

/**
 * Splits a connection URL into its hosts. Throws an Error (its message names the problem) on a URL
 * Penny cannot use: a target_session_attrs other than read-write or primary, a multi-host URL that
 * also gives `host=` in its query.
 */
export function parseDatabaseUrl(url: string): DatabaseTarget {
  const match = urlShape.exec(url);
  if (match === null) throw new Error('must be a postgres:// or postgresql:// connection URL');
  const [, scheme = '', userinfo = '', hostList = '', rest = ''] = match;
  const query = new URLSearchParams(rest.includes('?') ? rest.slice(rest.indexOf('?') + 1).split('#')[0] : '');
  const attributes = query.get('target_session_attrs');
  if (attributes !== null && !primaryAttributes.includes(attributes)) {
    throw new Error(`target_session_attrs=${attributes}: Penny connects only to the writable primary ` +
      '(use read-write or primary, or leave it out)');
  }
  if (!hostList.includes(',')) {
    // pg reads a single-host URL itself, as always; the host here only names it in messages.
    const single = hostList === '' ? { host: query.get('host') ?? 'localhost', port: Number(query.get('port') ?? defaultPort) }
      : readableHost(hostList);
    return { hosts: [single], urlFor: () => url };
  }
  if (query.has('host')) throw new Error('gives hosts both before the path and as host= in the query');
  const hosts = hostList.split(',').map(parseHost);
  query.delete('target_session_attrs');
  const pathPart = rest.split(/[?#]/)[0] ?? '';
  const queryText = query.toString();
  return {
    hosts,
    urlFor(index: number): string {
      const host = hosts[index];
      if (host === undefined) throw new Error(`no host ${index} in the connection URL`);
      const name = host.host.includes(':') ? `[${host.host}]` : host.host;
      return `${scheme}${userinfo}${name}:${host.port}${pathPart}${queryText === '' ? '' : `?${queryText}`}`;
    },
  };
}

function readableHost(text: string): DatabaseHost {
  try {
    return parseHost(text);
  } catch {
    return { host: text, port: defaultPort };
  }
}

function parseHost(text: string): DatabaseHost {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  const plain = /^([^:[\]]+)(?::(\d+))?$/.exec(text);
  const found = bracketed ?? plain;
  if (found === null || found[1] === undefined) throw new Error(`cannot read the host "${text}"`);
  const port = found[2] === undefined ? defaultPort : Number(found[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new Error(`the port of "${text}" is not a port`);
  return { host: decodeURIComponent(found[1]), port };
}

/** Rewrites the database name (the path) of a connection URL, single- or multi-host. */
export function replaceDatabase(url: string, database: string): string {
  const match = urlShape.exec(url);
  if (match === null) throw new Error('not a postgres:// connection URL');
  const [, scheme = '', userinfo = '', hostList = '', rest = ''] = match;
  const tail = rest.replace(/^[^?#]*/, '');
  return `${scheme}${userinfo}${hostList}/${encodeURIComponent(database)}${tail}`;
}
