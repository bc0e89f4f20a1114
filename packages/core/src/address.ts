import { BlockList, isIP } from "node:net";

/** Which peers may tell the client's address in `X-Forwarded-For`. */
export type TrustedProxies = readonly string[] | ((address: string) => boolean);

/** Strips the IPv4-mapped IPv6 prefix, so `::ffff:10.0.0.1` and `10.0.0.1` compare equal. */
export function normalizeAddress(address: string): string {
  const a = address.trim();
  return a.toLowerCase().startsWith("::ffff:") && isIP(a.slice(7)) === 4 ? a.slice(7) : a;
}

/**
 * Builds the trust check from a list of addresses and CIDR ranges (`"10.0.0.0/8"`,
 * `"::1"`, `"fd00::/8"`). Throws a `TypeError` on an entry that is neither.
 */
export function proxyMatcher(trusted: TrustedProxies | undefined): (address: string) => boolean {
  if (trusted === undefined) return () => false;
  if (typeof trusted === "function") return (a) => trusted(normalizeAddress(a));
  const list = new BlockList();
  for (const entry of trusted) {
    const [ip, bits] = entry.split("/");
    const family = isIP(ip ?? "");
    if (family === 0)
      throw new TypeError(`trustedProxies: ${JSON.stringify(entry)} is not an IP address or CIDR range`);
    const type = family === 4 ? "ipv4" : "ipv6";
    if (bits === undefined) list.addAddress(ip as string, type);
    else {
      const prefix = Number(bits);
      if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) {
        throw new TypeError(`trustedProxies: bad prefix length in ${JSON.stringify(entry)}`);
      }
      list.addSubnet(ip as string, prefix, type);
    }
  }
  return (address) => {
    const a = normalizeAddress(address);
    const family = isIP(a);
    return family !== 0 && list.check(a, family === 4 ? "ipv4" : "ipv6");
  };
}

/**
 * The client's address: the socket's peer, unless that peer is a trusted proxy, in which case
 * the right-most address of `X-Forwarded-For` that is not itself a trusted proxy. Untrusted
 * peers cannot spoof it: their header is ignored.
 */
export function clientAddress(
  remoteAddress: string,
  forwardedFor: string | string[] | undefined,
  isTrusted: (address: string) => boolean,
): string {
  let current = normalizeAddress(remoteAddress);
  if (!isTrusted(current) || forwardedFor === undefined) return current;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(",") : forwardedFor)
    .split(",")
    .map((h) => normalizeAddress(h))
    .filter((h) => h.length > 0);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i] as string;
    if (isIP(hop) === 0) return current; // garbage in the chain: stop at what we know
    current = hop;
    if (!isTrusted(hop)) return hop;
  }
  return current;
}
