/**
 * Which IP addresses a fetch on a user's behalf may connect to.
 *
 * IPv4: everything but the special-purpose ranges of the IANA IPv4
 * Special-Purpose Address Registry (RFC 6890 and updates) that are not
 * globally reachable, plus multicast (RFC 5771) and the reserved 240/4
 * (RFC 1112 §4, which includes the limited broadcast 255.255.255.255).
 *
 * IPv6: only global unicast 2000::/3 (RFC 4291 §2.4) is considered, minus its
 * special-purpose blocks. Forms that embed an IPv4 address are judged by the
 * embedded address: IPv4-mapped ::ffff:0:0/96 (RFC 4291 §2.5.5.2), the NAT64
 * well-known prefix 64:ff9b::/96 (RFC 6052 §2.1) and 6to4 2002::/16
 * (RFC 3056 §2), so `::ffff:127.0.0.1` or `64:ff9b::a00:1` cannot reach
 * loopback or a private network through a translator.
 */
import { BlockList, isIP, isIPv4 } from "node:net";

const V4_DENIED: Array<[string, number]> = [
  ["0.0.0.0", 8], // "this network", includes the unspecified 0.0.0.0 (RFC 791, RFC 1122 §3.2.1.3)
  ["10.0.0.0", 8], // private (RFC 1918)
  ["100.64.0.0", 10], // shared address space, carrier-grade NAT (RFC 6598)
  ["127.0.0.0", 8], // loopback (RFC 1122)
  ["169.254.0.0", 16], // link-local (RFC 3927), includes the cloud metadata 169.254.169.254
  ["172.16.0.0", 12], // private (RFC 1918)
  ["192.0.0.0", 24], // IETF protocol assignments (RFC 6890)
  ["192.0.2.0", 24], // TEST-NET-1 documentation (RFC 5737)
  ["192.88.99.0", 24], // 6to4 relay anycast, deprecated (RFC 7526)
  ["192.168.0.0", 16], // private (RFC 1918)
  ["198.18.0.0", 15], // benchmarking (RFC 2544)
  ["198.51.100.0", 24], // TEST-NET-2 (RFC 5737)
  ["203.0.113.0", 24], // TEST-NET-3 (RFC 5737)
  ["224.0.0.0", 4], // multicast (RFC 5771)
  ["240.0.0.0", 4], // reserved (RFC 1112) and limited broadcast 255.255.255.255 (RFC 919)
];

const V6_DENIED_IN_GLOBAL: Array<[string, number]> = [
  ["2001::", 23], // IETF protocol assignments: Teredo 2001::/32, ORCHID, benchmarking… (RFC 2928, RFC 6890)
  ["2001:db8::", 32], // documentation (RFC 3849)
  ["3fff::", 20], // documentation (RFC 9637)
];

const deniedV4 = new BlockList();
for (const [net, bits] of V4_DENIED) deniedV4.addSubnet(net, bits, "ipv4");

const globalV6 = new BlockList();
globalV6.addSubnet("2000::", 3, "ipv6");
const deniedV6 = new BlockList();
for (const [net, bits] of V6_DENIED_IN_GLOBAL) deniedV6.addSubnet(net, bits, "ipv6");

/** The eight 16-bit groups of an IPv6 address (zone id dropped), or undefined if malformed. */
export function ipv6Groups(address: string): number[] | undefined {
  let text = address.split("%")[0]!;
  // A trailing dotted quad stands for the last two groups (RFC 4291 §2.2 form 3).
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    if (!isIPv4(dotted[1]!)) return undefined;
    const o = dotted[1]!.split(".").map(Number);
    text = `${text.slice(0, dotted.index)}${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const parse = (s: string): number[] => (s === "" ? [] : s.split(":").map((g) => (/^[0-9a-f]{1,4}$/i.test(g) ? parseInt(g, 16) : NaN)));
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  return groups.some(Number.isNaN) ? undefined : groups;
}

function v4FromGroups(hi: number, lo: number): string {
  return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
}

/** The IPv4 address an IPv6 address carries in a translation/tunnel form, if any. */
export function embeddedIPv4(address: string): string | undefined {
  const g = ipv6Groups(address);
  if (!g) return undefined;
  // IPv4-mapped ::ffff:a.b.c.d (RFC 4291 §2.5.5.2)
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) return v4FromGroups(g[6]!, g[7]!);
  // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052 §2.1)
  if (g[0] === 0x64 && g[1] === 0xff9b && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0) return v4FromGroups(g[6]!, g[7]!);
  // 6to4 2002:V4ADDR::/48 (RFC 3056 §2)
  if (g[0] === 0x2002) return v4FromGroups(g[1]!, g[2]!);
  return undefined;
}

/**
 * True when a fetch must not connect to `address`: any non-public address,
 * and anything that does not parse as an IP address at all.
 */
export function isForbiddenAddress(address: string): boolean {
  const family = isIP(address.split("%")[0]!);
  if (family === 4) return deniedV4.check(address, "ipv4");
  if (family !== 6) return true;
  const v4 = embeddedIPv4(address);
  if (v4 !== undefined) return isForbiddenAddress(v4);
  const plain = address.split("%")[0]!;
  // Outside global unicast: loopback ::1, unspecified ::, link-local fe80::/10,
  // unique-local fc00::/7, multicast ff00::/8, the NAT64 local-use 64:ff9b:1::/48…
  if (!globalV6.check(plain, "ipv6")) return true;
  return deniedV6.check(plain, "ipv6");
}

/**
 * Exemptions from `isForbiddenAddress` (tests, or a deliberately reachable
 * internal host): hostnames (exact, case-insensitive), addresses and CIDRs.
 */
export interface AllowList {
  host(hostname: string): boolean;
  address(address: string): boolean;
}

export function createAllowList(entries: readonly string[] = []): AllowList {
  const hosts = new Set<string>();
  const nets = new BlockList();
  for (const entry of entries) {
    const [ip, bits] = entry.split("/");
    const family = isIP(ip ?? "");
    if (family !== 0 && bits !== undefined) {
      const prefix = Number(bits);
      const max = family === 4 ? 32 : 128;
      if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new Error(`allowHosts: bad prefix length in ${entry}`);
      nets.addSubnet(ip!, prefix, family === 4 ? "ipv4" : "ipv6");
    } else if (family !== 0) {
      nets.addAddress(ip!, family === 4 ? "ipv4" : "ipv6");
    } else {
      hosts.add(entry.toLowerCase().replace(/^\[|\]$/g, ""));
    }
  }
  return {
    host: (hostname) => hosts.has(hostname.toLowerCase()),
    address: (address) => {
      const plain = address.split("%")[0]!;
      const family = isIP(plain);
      return family !== 0 && nets.check(plain, family === 4 ? "ipv4" : "ipv6");
    },
  };
}
