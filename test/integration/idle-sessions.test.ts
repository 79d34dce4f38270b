/**
 * Sessions of a network usable without registration (as IRC) end when
 * nobody uses them, so they cannot pile up to the user limit; a session in
 * use (a room joined, the user online to the gateway) stays.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { xml } from "@xmpp/client";
import { startProsody, type ProsodyHandle } from "../support/prosody.ts";
import { connectClient, type TestClient } from "../support/xmpp-client.ts";
import { startTestGateway } from "../support/gateway.ts";
import { TestNetwork } from "../support/test-adapter.ts";
import { NS_MUC } from "../support/stanzas.ts";
import type { Gateway } from "../../core/gateway.ts";

const GW = "test.localhost";

describe("idle sessions", () => {
  let prosody: ProsodyHandle;
  let gateway: Gateway;
  const net = new TestNetwork();
  net.registrationRequired = false;
  let romeo: TestClient;

  beforeAll(async () => {
    prosody = await startProsody({
      components: [{ domain: GW, secret: "s" }],
      users: [
        { username: "romeo", password: "pw" },
        { username: "juliet", password: "pw" },
      ],
    });
    gateway = await startTestGateway({
      xmppPort: prosody.componentPort,
      networks: { test: { domain: GW, secret: "s" } },
      adapters: { test: () => net.adapter() },
      limits: { maxUsers: 1 },
    });
    romeo = await connectClient(prosody, "romeo", "pw");
  });

  afterAll(async () => {
    await romeo?.stop();
    await gateway?.stop();
    await prosody?.stop();
  });

  it("closes an unused session, keeps one with a room, and closes it once the room is left", async () => {
    const sessions = gateway.networks.get("test")!.sessions;
    await romeo.send(xml("message", { to: `nurse@${GW}`, type: "chat" }, xml("body", {}, "hello")));
    await net.waitForSent((r) => r.op === "send");
    expect(net.sessions.has("romeo@localhost")).toBe(true);
    // Recently active: an hour's idleness is not reached.
    expect(await sessions.closeIdle(3_600_000)).toBe(0);
    expect(await sessions.closeIdle(0)).toBe(1);
    expect(net.sessions.has("romeo@localhost")).toBe(false);

    await romeo.send(xml("presence", { to: `#hall@${GW}/romeo` }, xml("x", { xmlns: NS_MUC })));
    await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `#hall@${GW}/romeo`);
    expect(await sessions.closeIdle(0)).toBe(0);
    await romeo.send(xml("presence", { to: `#hall@${GW}/romeo`, type: "unavailable" }));
    await net.waitForSent((r) => r.op === "leave");
    expect(await sessions.closeIdle(0)).toBe(1);
  });

  it("refuses a user beyond limits.maxUsers with a clear error, and serves them once a place is free", async () => {
    const sessions = gateway.networks.get("test")!.sessions;
    const juliet = await connectClient(prosody, "juliet", "pw");
    try {
      await romeo.send(xml("message", { to: `nurse@${GW}`, type: "chat" }, xml("body", {}, "first")));
      // Romeo's own "first", not the first test's message (the record keeps every send).
      await net.waitForSent((r) => r.op === "send" && r.user === "romeo@localhost" && JSON.stringify(r.message?.text).includes("first"));
      await juliet.send(xml("message", { to: `nurse@${GW}`, type: "chat", id: "full" }, xml("body", {}, "me too")));
      // Waited for, not slept: 15 s rather than the default 5 for a loaded 2-core machine.
      const refused = await juliet.waitFor((st) => st.attrs.id === "full", 15_000);
      expect(refused.attrs.type).toBe("error");
      expect(refused.getChild("error")?.getChildText("text")).toMatch(/user limit/);
      await sessions.closeIdle(0);
      await juliet.send(xml("message", { to: `nurse@${GW}`, type: "chat", id: "later" }, xml("body", {}, "now?")));
      await net.waitForSent((r) => r.op === "send" && r.user === "juliet@localhost" && JSON.stringify(r.message?.text).includes("now?"));
    } finally {
      await juliet.stop();
    }
  });
});
