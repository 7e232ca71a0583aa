import dns from 'node:dns';
import net from 'node:net';
import { invalid } from '../validation.js';

/**
 * Where Penny may send webhooks: http(s) URLs whose host resolves only to public addresses, so a
 * merchant cannot aim Penny at its own network (SSRF). The check runs when an endpoint is saved
 * and again on every connection (`guardedLookup`), so a name that later resolves to a private
 * address is refused at delivery too. PENNY_WEBHOOKS_ALLOW_PRIVATE_URLS=true lifts it (tests).
 */
const blocked = new net.BlockList();
for (const [network, prefix] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8],
  ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15],
  ['224.0.0.0', 4], ['240.0.0.0', 4]] as const) {
  blocked.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8],
  ['64:ff9b::', 96], ['2002::', 16], ['::', 96]] as const) {
  blocked.addSubnet(network, prefix, 'ipv6');
}

export function isPrivateAddress(address: string): boolean {
  // An IPv4-mapped IPv6 address is judged by its IPv4 part (BlockList maps rules the same way).
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped !== undefined) return isPrivateAddress(mapped);
  const family = net.isIPv4(address) ? 'ipv4' : net.isIPv6(address) ? 'ipv6' : undefined;
  if (family === undefined) return true;
  return blocked.check(address, family);
}

export const endpointUrlLengthMax = 2048;

/** Parses and checks an endpoint URL; refuses with a 400 naming `url`. */
export async function validateEndpointUrl(value: string, options: { allowPrivate: boolean }): Promise<string> {
  if (value.length > endpointUrlLengthMax || !URL.canParse(value)) throw invalid('url', 'Invalid URL: the url is not a URL.');
  const url = new URL(value);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw invalid('url', 'Invalid URL: a webhook endpoint URL must use http or https.');
  }
  if (url.username !== '' || url.password !== '') {
    throw invalid('url', 'Invalid URL: a webhook endpoint URL must not carry credentials.');
  }
  if (options.allowPrivate) return url.toString();
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const addresses = net.isIP(host) !== 0 ? [host] : await resolveAll(host);
  if (addresses.length === 0 || addresses.some(isPrivateAddress)) {
    throw invalid('url', 'Invalid URL: webhook endpoints must resolve to public addresses.');
  }
  return url.toString();
}

async function resolveAll(host: string): Promise<string[]> {
  try {
    return (await dns.promises.lookup(host, { all: true })).map((entry) => entry.address);
  } catch {
    return [];
  }
}

/**
 * A `lookup` for http.request that refuses to connect to a private address. Node asks for one
 * address or for all of them (`all: true`, to try each family); every address given is checked.
 */
export function guardedLookup(allowPrivate: boolean): net.LookupFunction {
  return ((hostname: string, options: dns.LookupOptions, callback: (...args: unknown[]) => void) => {
    dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error !== null) return callback(error, options.all === true ? [] : '', 0);
      const blocked = allowPrivate ? undefined : addresses.find((entry) => isPrivateAddress(entry.address));
      if (blocked !== undefined || addresses.length === 0) {
        const refusal = Object.assign(new Error(`refused to connect to private address ${blocked?.address ?? hostname}`),
          { code: 'EPRIVATEADDRESS' });
        return callback(refusal, options.all === true ? [] : '', 0);
      }
      if (options.all === true) return callback(null, addresses);
      const [first] = addresses;
      callback(null, first?.address, first?.family);
    });
  }) as net.LookupFunction;
}
