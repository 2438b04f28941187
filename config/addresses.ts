/**
 * IP addresses and networks in settings (`trusted_proxies`): checked here, used by
 * api/loginLimits.ts.
 */
import { isIP } from 'node:net';

/** An IP address, or a network in CIDR form (`172.16.0.0/12`). */
export function isAddressOrNetwork(entry: string): boolean {
  const [address, bits, extra] = entry.split('/');
  if (extra !== undefined || !address) return false;
  const family = isIP(address);
  if (family === 0) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

/** A comma-separated list of IP addresses or networks (`127.0.0.1, ::1`); refused, naming `where`, when one is not. */
export function parseTrustedProxies(list: string, where: string): string[] {
  const addresses = list.split(',').map((a) => a.trim()).filter((a) => a !== '');
  const wrong = addresses.find((a) => !isAddressOrNetwork(a));
  if (wrong !== undefined) throw new Error(`${where}: "${wrong}" is not an IP address or network; list the proxies' addresses, comma-separated (e.g. 127.0.0.1 or 172.16.0.0/12)`);
  return addresses;
}
