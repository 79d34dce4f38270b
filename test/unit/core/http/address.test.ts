import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createAllowList, embeddedIPv4, ipv6Groups, isForbiddenAddress } from "../../../../core/http/address.ts";

describe("isForbiddenAddress", () => {
  const refused = [
    ["loopback", "127.0.0.1"],
    ["loopback, other", "127.255.1.2"],
    ["private 10/8", "10.1.2.3"],
    ["private 172.16/12", "172.31.255.1"],
    ["private 192.168/16", "192.168.0.1"],
    ["link-local", "169.254.10.10"],
    ["cloud metadata", "169.254.169.254"],
    ["unspecified", "0.0.0.0"],
    ["this network", "0.1.2.3"],
    ["CGNAT", "100.64.0.1"],
    ["CGNAT, top", "100.127.255.254"],
    ["multicast", "224.0.0.251"],
    ["reserved", "240.0.0.1"],
    ["broadcast", "255.255.255.255"],
    ["documentation", "192.0.2.10"],
    ["benchmarking", "198.19.0.1"],
    ["IPv6 loopback", "::1"],
    ["IPv6 unspecified", "::"],
    ["IPv6 unique-local", "fd12:3456::1"],
    ["IPv6 unique-local fc", "fc00::1"],
    ["IPv6 link-local", "fe80::1"],
    ["IPv6 link-local with zone", "fe80::1%eth0"],
    ["IPv6 multicast", "ff02::1"],
    ["IPv4-mapped loopback", "::ffff:127.0.0.1"],
    ["IPv4-mapped loopback, hex", "::ffff:7f00:1"],
    ["IPv4-mapped private", "::ffff:10.0.0.1"],
    ["IPv4-mapped metadata", "::ffff:169.254.169.254"],
    ["IPv4-compatible (deprecated)", "::127.0.0.1"],
    ["NAT64 of loopback", "64:ff9b::127.0.0.1"],
    ["NAT64 of private, hex", "64:ff9b::a00:1"],
    ["NAT64 local-use prefix", "64:ff9b:1::808:808"],
    ["6to4 of loopback", "2002:7f00:1::1"],
    ["Teredo", "2001:0:4136:e378:8000:63bf:3fff:fdd2"],
    ["IPv6 documentation", "2001:db8::1"],
    ["not an address", "example.org"],
    ["garbage", "1.2.3"],
  ];
  it.each(refused)("refuses %s (%s)", (_what, address) => {
    expect(isForbiddenAddress(address)).toBe(true);
  });

  const allowed = [
    ["public IPv4", "93.184.216.34"],
    ["public IPv4 next to CGNAT", "100.128.0.1"],
    ["public IPv4 next to 172.16/12", "172.32.0.1"],
    ["public IPv6", "2606:4700:4700::1111"],
    ["IPv4-mapped public", "::ffff:8.8.8.8"],
    ["NAT64 of public", "64:ff9b::808:808"],
    ["6to4 of public", "2002:808:808::1"],
  ];
  it.each(allowed)("allows %s (%s)", (_what, address) => {
    expect(isForbiddenAddress(address)).toBe(false);
  });

  it("judges the IPv4-mapped and NAT64 forms of any IPv4 address like the address itself", () => {
    fc.assert(
      fc.property(fc.ipV4(), (v4) => {
        const verdict = isForbiddenAddress(v4);
        expect(isForbiddenAddress(`::ffff:${v4}`)).toBe(verdict);
        expect(isForbiddenAddress(`64:ff9b::${v4}`)).toBe(verdict);
      }),
    );
  });

  it("never allows what is outside global unicast 2000::/3", () => {
    fc.assert(
      fc.property(fc.ipV6(), (v6) => {
        const groups = ipv6Groups(v6);
        expect(groups).toBeDefined();
        const first = groups![0]!;
        if (first < 0x2000 || first > 0x3fff) {
          // Only forms embedding a public IPv4 address may pass outside 2000::/3.
          if (!isForbiddenAddress(v6)) expect(embeddedIPv4(v6)).toBeDefined();
        }
      }),
    );
  });
});

describe("ipv6Groups", () => {
  it("expands compressed forms and trailing dotted quads", () => {
    expect(ipv6Groups("::1")).toEqual([0, 0, 0, 0, 0, 0, 0, 1]);
    expect(ipv6Groups("::ffff:1.2.3.4")).toEqual([0, 0, 0, 0, 0, 0xffff, 0x102, 0x304]);
    expect(ipv6Groups("1:2:3:4:5:6:7:8")).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });
  it("rejects malformed addresses", () => {
    expect(ipv6Groups("1::2::3")).toBeUndefined();
    expect(ipv6Groups("1:2:3")).toBeUndefined();
    expect(ipv6Groups("::ffff:1.2.3.400")).toBeUndefined();
  });
});

describe("createAllowList", () => {
  it("matches hostnames case-insensitively, addresses and CIDRs", () => {
    const allow = createAllowList(["Files.Test", "10.0.0.5", "127.0.0.0/8", "fd00::/8"]);
    expect(allow.host("files.test")).toBe(true);
    expect(allow.host("other.test")).toBe(false);
    expect(allow.address("10.0.0.5")).toBe(true);
    expect(allow.address("10.0.0.6")).toBe(false);
    expect(allow.address("127.3.2.1")).toBe(true);
    expect(allow.address("fd00::1")).toBe(true);
    expect(allow.address("fe80::1")).toBe(false);
  });
  it("rejects a bad prefix length", () => {
    expect(() => createAllowList(["10.0.0.0/33"])).toThrow(/prefix/);
  });
});
