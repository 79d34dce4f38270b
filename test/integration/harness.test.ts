/**
 * The integration harness itself, against a real Prosody: a raw XEP-0114
 * component and two c2s clients exchange messages, Prosody enforces one
 * component connection per domain, and restart() brings the server back.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { component, xml, type Component } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import { startProsody, type ProsodyHandle } from "../support/prosody.ts";
import { connectClient, StanzaInbox, type TestClient } from "../support/xmpp-client.ts";
import { freePort } from "../support/ports.ts";
import { onceEvent, waitFor } from "../support/wait.ts";

const GW = "gw.localhost";
const SECRET = "harness-secret";

function attachComponent(p: ProsodyHandle): Component {
  const c = component({ service: `xmpp://127.0.0.1:${p.componentPort}`, domain: GW, password: SECRET });
  c.reconnect.stop();
  return c;
}

const isChat = (body: string) => (s: Element) => s.is("message") && s.getChildText("body") === body;

describe("integration harness (real Prosody)", () => {
  let prosody: ProsodyHandle;
  let gw: Component;
  let gwInbox: StanzaInbox;
  const gwErrors: Error[] = [];
  let alice: TestClient;
  let bob: TestClient;

  beforeAll(async () => {
    prosody = await startProsody({
      components: [{ domain: GW, secret: SECRET }],
      users: [
        { username: "alice", password: "alice-pw" },
        { username: "bob", password: "bob-pw" },
      ],
      muc: true,
    });
    gw = attachComponent(prosody);
    gw.on("error", (err) => gwErrors.push(err));
    gwInbox = new StanzaInbox(gw, GW);
    await gw.start();
    [alice, bob] = await Promise.all([
      connectClient(prosody, "alice", "alice-pw", "test"),
      connectClient(prosody, "bob", "bob-pw", "test"),
    ]);
  });

  afterAll(async () => {
    await Promise.all([alice?.stop(), bob?.stop(), gw?.stop().catch(() => {})]);
    await prosody?.stop();
  });

  it("binds loopback ports and exposes its log", async () => {
    expect(prosody.domain).toBe("localhost");
    expect(prosody.mucDomain).toBe("conference.localhost");
    expect(prosody.c2sPort).not.toBe(prosody.componentPort);
    expect(prosody.logs()).toContain(`Activated service 'c2s' on [127.0.0.1]:${prosody.c2sPort}`);
    expect(prosody.logs()).toContain(`Activated service 'component' on [127.0.0.1]:${prosody.componentPort}`);
  });

  it("logs clients in with full JIDs", () => {
    expect(alice.jid).toBe("alice@localhost/test");
    expect(alice.bare).toBe("alice@localhost");
    expect(bob.jid).toBe("bob@localhost/test");
  });

  it("delivers a chat message from one user to another", async () => {
    await alice.send(xml("message", { to: bob.jid, type: "chat", id: "m1" }, xml("body", {}, "hello bob")));
    const got = await bob.waitFor(isChat("hello bob"));
    expect(got.attrs.from).toBe(alice.jid);
    expect(got.attrs.id).toBe("m1");
  });

  it("waitFor also finds stanzas that arrived before the call, and consumes them", async () => {
    await alice.send(xml("message", { to: bob.jid, type: "chat" }, xml("body", {}, "early")));
    // Wait until it sits in the inbox without consuming it, then consume.
    await waitFor(() => bob.inbox.find(isChat("early")), { what: "the early message in bob's inbox" });
    await bob.waitFor(isChat("early"));
    expect(bob.inbox.find(isChat("early"))).toBeUndefined();
    await expect(bob.waitFor(isChat("early"), 200)).rejects.toThrow(/no matching stanza/);
  });

  it("answers iq with a result, and rejects with the <error/> on type=error", async () => {
    const result = await alice.iq(xml("iq", { type: "get", to: "localhost" }, xml("query", { xmlns: "http://jabber.org/protocol/disco#info" })));
    expect(result.attrs.type).toBe("result");
    expect(result.getChild("query", "http://jabber.org/protocol/disco#info")?.getChildren("feature").length).toBeGreaterThan(0);

    const err = await alice
      .iq(xml("iq", { type: "get", to: "localhost" }, xml("query", { xmlns: "urn:example:nothing" })))
      .then(() => undefined, (e: unknown) => e as { condition?: string; element?: Element });
    expect(err?.condition).toBe("service-unavailable");
    expect(err?.element?.name).toBe("error");
    // The reply went to the caller, not the inbox.
    expect(alice.inbox.some((s) => s.is("iq"))).toBe(false);
  });

  it("routes a user's message to the component with the right from/to, and the reply back", async () => {
    await alice.send(xml("message", { to: `x@${GW}`, type: "chat", id: "to-gw" }, xml("body", {}, "hi gateway")));
    const atGw = await gwInbox.waitFor(isChat("hi gateway"));
    expect(atGw.attrs.from).toBe(alice.jid);
    expect(atGw.attrs.to).toBe(`x@${GW}`);
    expect(atGw.attrs.id).toBe("to-gw");

    await gw.send(xml("message", { from: `x@${GW}/bridge`, to: alice.jid, type: "chat" }, xml("body", {}, "hi alice")));
    const back = await alice.waitFor(isChat("hi alice"));
    expect(back.attrs.from).toBe(`x@${GW}/bridge`);
  });

  it("refuses a second component connection for the same domain while the first holds it", async () => {
    const second = attachComponent(prosody);
    const errors: Error[] = [];
    second.on("error", (e) => errors.push(e));
    const outcome = await second.start().then(
      () => "online",
      (e: unknown) => e as Error & { condition?: string },
    );
    await second.stop().catch(() => {});
    expect(outcome).not.toBe("online");
    expect(typeof outcome === "string" ? outcome : outcome.condition).toBe("conflict");

    // The first connection is unaffected.
    await alice.send(xml("message", { to: `y@${GW}`, type: "chat" }, xml("body", {}, "still there?")));
    const atGw = await gwInbox.waitFor(isChat("still there?"));
    expect(atGw.attrs.to).toBe(`y@${GW}`);
  });

  it("serves MUC at conference.localhost with instant rooms", async () => {
    const room = `harness@${prosody.mucDomain}`;
    await alice.send(xml("presence", { to: `${room}/alice` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })));
    const self = await alice.waitFor((s) => s.is("presence") && s.attrs.from === `${room}/alice`);
    const statuses = self
      .getChild("x", "http://jabber.org/protocol/muc#user")
      ?.getChildren("status")
      .map((st) => st.attrs.code);
    // XEP-0045 §7.2: 110 marks self-presence; 201 a newly created (instant, unlocked) room.
    expect(statuses).toContain("110");
    expect(statuses).toContain("201");
  });

  it("adds users while running", async () => {
    await prosody.addUser("carol", "carol-pw");
    const carol = await connectClient(prosody, "carol", "carol-pw", undefined, { presence: false });
    try {
      expect(carol.bare).toBe("carol@localhost");
      await expect(connectClient(prosody, "carol", "wrong")).rejects.toThrow(/not-authorized/);
    } finally {
      await carol.stop();
    }
  });

  it("restarts on the same ports, keeping accounts", async () => {
    const { c2sPort, componentPort } = prosody;
    const disconnected = onceEvent(alice.xmpp, "disconnect", { timeout: 10_000 });
    const gwDown = onceEvent(gw, "disconnect", { timeout: 10_000 });
    await prosody.restart();
    await Promise.all([disconnected, gwDown]);
    expect(prosody.c2sPort).toBe(c2sPort);
    expect(prosody.componentPort).toBe(componentPort);

    await alice.stop();
    await gw.stop().catch(() => {});
    alice = await connectClient(prosody, "alice", "alice-pw", "again");
    expect(alice.jid).toBe("alice@localhost/again");

    gw = attachComponent(prosody);
    gw.on("error", (err) => gwErrors.push(err));
    gwInbox = new StanzaInbox(gw, GW);
    await gw.start();
    await alice.send(xml("message", { to: `x@${GW}`, type: "chat" }, xml("body", {}, "after restart")));
    const atGw = await gwInbox.waitFor(isChat("after restart"));
    expect(atGw.attrs.from).toBe(alice.jid);
  });
});

describe("support helpers", () => {
  it("freePort returns distinct bindable loopback ports", async () => {
    const [a, b] = await Promise.all([freePort(), freePort()]);
    expect(a).toBeGreaterThan(0);
    expect(b).toBeGreaterThan(0);
  });

  it("waitFor names what it waited for on timeout", async () => {
    await expect(waitFor(() => undefined, { timeout: 50, what: "Godot" })).rejects.toThrow(/waiting for Godot/);
  });

  it("startProsody quotes odd component secrets safely in the Lua config", async () => {
    const secret = 'q"uo\\te\n]] end --';
    const p = await startProsody({ components: [{ domain: GW, secret }] });
    const c = component({ service: `xmpp://127.0.0.1:${p.componentPort}`, domain: GW, password: secret });
    c.reconnect.stop();
    c.on("error", () => {});
    try {
      await c.start();
      expect(c.status).toBe("online");
    } finally {
      await c.stop().catch(() => {});
      await p.stop();
    }
  });
});
