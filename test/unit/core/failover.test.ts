import { describe, expect, it } from "vitest";
import { xml } from "@xmpp/component";
import { isSlotProbe, PROBE_PREFIX } from "../../../core/failover.ts";
import { configSchema } from "../../../config/schema.ts";

describe("isSlotProbe", () => {
  it("takes only probe senders at our own domain", () => {
    const m = (from: string) => xml("message", { from, to: "irc.example.org" });
    expect(isSlotProbe(m(`${PROBE_PREFIX}ab-1@irc.example.org`), "irc.example.org")).toBe(true);
    expect(isSlotProbe(m(`${PROBE_PREFIX}ab-1@IRC.example.org/x`), "irc.example.org")).toBe(true);
    // A user cannot send from our domain, but a probe-like name elsewhere is not ours.
    expect(isSlotProbe(m(`${PROBE_PREFIX}ab-1@example.org`), "irc.example.org")).toBe(false);
    expect(isSlotProbe(m("alice@example.org"), "irc.example.org")).toBe(false);
    expect(isSlotProbe(m("irc.example.org"), "irc.example.org")).toBe(false);
  });
});

describe("xmpp.failover config", () => {
  const base = { access: { allow: ["example.org"] }, networks: { test: { domain: "test.example.org", secret: "s" } } };
  it("parses host:port addresses", () => {
    const c = configSchema.parse({ ...base, xmpp: { failover: { listen: "127.0.0.1:7401", peers: ["shard-2.local:7401", "[::1]:7402"] } } });
    expect(c.xmpp.failover).toEqual({
      listen: { host: "127.0.0.1", port: 7401 },
      peers: [
        { host: "shard-2.local", port: 7401 },
        { host: "::1", port: 7402 },
      ],
    });
  });
  it("refuses a missing port, a bad port and no peers", () => {
    expect(configSchema.safeParse({ ...base, xmpp: { failover: { listen: "127.0.0.1:1", peers: ["a:1"] } } }).success).toBe(true);
    expect(configSchema.safeParse({ ...base, xmpp: { failover: { listen: "127.0.0.1", peers: ["a:1"] } } }).success).toBe(false);
    expect(configSchema.safeParse({ ...base, xmpp: { failover: { listen: "127.0.0.1:70000", peers: ["a:1"] } } }).success).toBe(false);
    expect(configSchema.safeParse({ ...base, xmpp: { failover: { listen: "127.0.0.1:1", peers: [] } } }).success).toBe(false);
  });
});
