/**
 * The core under stress, on a real Prosody: users who are not allowed,
 * hostile and malformed stanzas, the XMPP server restarting under the
 * gateway, the gateway itself restarting on its SQLite store, and a
 * graceful shutdown. Secrets must never reach a log line.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { xml, component as rawComponent } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import { startProsody, type ProsodyHandle } from "../support/prosody.ts";
import { connectClient, StanzaInbox, type TestClient } from "../support/xmpp-client.ts";
import { startTestGateway } from "../support/gateway.ts";
import { TestNetwork } from "../support/test-adapter.ts";
import { waitFor } from "../support/wait.ts";
import type { Gateway } from "../../core/gateway.ts";
import { createLogger } from "../../core/log.ts";

const GW = "test.localhost";
const SINK = "sink.localhost";
const NS_REGISTER = "jabber:iq:register";
const SECRET_PASSWORD = "hunter2-never-logged";

function registerForm(username: string, password: string): Element {
  return xml(
    "query",
    { xmlns: NS_REGISTER },
    xml("x", { xmlns: "jabber:x:data", type: "submit" }, xml("field", { var: "username" }, xml("value", {}, username)), xml("field", { var: "password" }, xml("value", {}, password))),
  );
}

describe("core resilience on a real Prosody", () => {
  let prosody: ProsodyHandle;
  let dir: string;
  let net: TestNetwork;
  let gateway: Gateway;
  let logText = "";
  const logs = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logText += chunk.toString();
      cb();
    },
  });
  const clients: TestClient[] = [];

  const start = async (): Promise<Gateway> =>
    startTestGateway({
      xmppPort: prosody.componentPort,
      networks: { test: { domain: GW, secret: "gw-secret" } },
      adapters: { test: () => net.adapter() },
      allow: ["romeo@localhost", "juliet@localhost"],
      storeUrl: `sqlite:${join(dir, "estuary.sqlite")}`,
      outboundBuffer: 5,
      reconnect: { initialDelayMs: 3000, maxDelayMs: 6000 },
      logger: createLogger({ level: "trace", destination: logs }),
    });

  const login = async (user: string, resource?: string): Promise<TestClient> => {
    const c = await connectClient(prosody, user, "pw", resource);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "estuary-resilience-"));
    prosody = await startProsody({
      components: [
        { domain: GW, secret: "gw-secret" },
        { domain: SINK, secret: "sink-secret" },
      ],
      users: ["romeo", "juliet", "mallory"].map((username) => ({ username, password: "pw" })),
    });
    net = new TestNetwork();
    gateway = await start();
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop().catch(() => {})));
    await gateway?.stop();
    await prosody?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("refuses a user outside the allowed JIDs everywhere: registration, messages, rooms", async () => {
    const mallory = await login("mallory");
    await expect(mallory.iq(xml("iq", { type: "set", to: GW }, registerForm("m", "x")))).rejects.toMatchObject({ condition: "forbidden" });
    await mallory.send(xml("message", { to: `bob@${GW}`, type: "chat", id: "m1" }, xml("body", {}, "let me in")));
    const bounced = await mallory.waitFor((s) => s.attrs.id === "m1");
    expect(bounced.getChild("error")?.getChild("forbidden")).toBeDefined();
    await mallory.send(xml("presence", { to: `#lobby@${GW}/mallory` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })));
    const refused = await mallory.waitFor((s) => s.name === "presence" && s.attrs.from === `#lobby@${GW}/mallory`);
    expect(refused.attrs.type).toBe("error");
    expect(net.sessions.has("mallory@localhost")).toBe(false);
    expect(net.log.some((r) => r.user === "mallory@localhost")).toBe(false);
  });

  it("registers without a secret reaching any log line, and logs in/out with the user's resources", async () => {
    const a = await login("romeo", "a");
    await a.iq(xml("iq", { type: "set", to: GW }, registerForm("romeo", SECRET_PASSWORD)));
    const b = await login("romeo", "b");
    await a.send(xml("presence", { to: GW }));
    await b.send(xml("presence", { to: GW }));
    await waitFor(() => net.sessions.get("romeo@localhost"), { what: "romeo's session" });
    expect(net.sessions.get("romeo@localhost")?.registration.password).toBe(SECRET_PASSWORD);
    await a.send(xml("presence", { to: GW, type: "unavailable" }));
    await a.iq(xml("iq", { type: "get", to: GW }, xml("ping", { xmlns: "urn:xmpp:ping" }))); // ordered after the presence
    expect(net.sessions.has("romeo@localhost")).toBe(true);
    await b.send(xml("presence", { to: GW, type: "unavailable" }));
    await waitFor(() => !net.sessions.has("romeo@localhost") || undefined, { what: "session closed after the last resource left" });
    expect(logText.length).toBeGreaterThan(0);
    expect(logText).not.toContain(SECRET_PASSWORD);
    expect(logText).not.toContain("gw-secret");
  });

  it("answers every malformed or unknown IQ with a result or an error, and stays up", async () => {
    const juliet = await login("juliet");
    const payload = fc.record({
      type: fc.constantFrom("get", "set", "bogus"),
      payloads: fc.array(
        fc.record({
          name: fc.constantFrom("query", "ping", "command", "x", "vCard", "unknown"),
          xmlns: fc.constantFrom(
            "http://jabber.org/protocol/disco#info",
            "http://jabber.org/protocol/disco#items",
            "jabber:iq:register",
            "jabber:iq:gateway",
            "http://jabber.org/protocol/commands",
            "urn:xmpp:ping",
            "vcard-temp",
            "urn:example:fuzz",
          ),
          node: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
          text: fc.string({ maxLength: 40 }),
        }),
        { minLength: 0, maxLength: 2 },
      ),
      to: fc.constantFrom(GW, `#room@${GW}`, `#room@${GW}/nick`, `someone@${GW}`, `net@${GW}`, `\\5c@${GW}`),
    });
    const samples = fc.sample(payload, { numRuns: 120, seed: 42 });
    let n = 0;
    for (const s of samples) {
      const id = `fuzz-${n++}`;
      await juliet.send(
        xml("iq", { type: s.type, to: s.to, id }, ...s.payloads.map((p) => xml(p.name, { xmlns: p.xmlns, node: p.node }, p.text))),
      );
    }
    // Every get/set must be answered (RFC 6120 §8.2.3); Prosody itself answers the invalid type.
    for (let i = 0; i < samples.length; i++) {
      const reply = await juliet.waitFor((st) => st.name === "iq" && st.attrs.id === `fuzz-${i}`, 10_000);
      expect(["result", "error"]).toContain(reply.attrs.type);
    }
    // Random presences and messages (types, targets, payloads) are answered or ignored, never crash it.
    const other = fc.record({
      name: fc.constantFrom("presence", "message"),
      type: fc.constantFrom(undefined, "chat", "groupchat", "normal", "headline", "error", "subscribe", "unsubscribe", "probe", "unavailable", "bogus"),
      to: fc.constantFrom(GW, `#room@${GW}`, `#room@${GW}/nick`, `#room@${GW}/`, `someone@${GW}`, `net@${GW}`),
      child: fc.constantFrom("body", "subject", "x", "replace", "retract", "reactions", "composing", "displayed", "history"),
      xmlns: fc.constantFrom("jabber:client", "http://jabber.org/protocol/muc", "urn:xmpp:message-correct:0", "urn:xmpp:message-retract:1", "urn:xmpp:reactions:0", "http://jabber.org/protocol/chatstates", "urn:xmpp:chat-markers:0"),
      text: fc.string({ maxLength: 30 }),
      id: fc.string({ maxLength: 8 }),
    });
    for (const s of fc.sample(other, { numRuns: 150, seed: 7 })) {
      await juliet.send(xml(s.name, { type: s.type, to: s.to }, xml(s.child, { xmlns: s.xmlns === "jabber:client" ? undefined : s.xmlns, id: s.id }, s.text)));
    }
    // Leave whatever the fuzz joined (later tests count what the gateway sends while Prosody is down).
    await juliet.send(xml("presence", { to: `#room@${GW}/nick`, type: "unavailable" }));
    await juliet.iq(xml("iq", { type: "get", to: `#room@${GW}` }, xml("query", { xmlns: "http://jabber.org/protocol/disco#info" })));
    expect(gateway.networks.get("test")!.rooms.list("juliet@localhost")).toEqual([]);
    // Messages with oversized bodies and junk extensions get errors, and the gateway still answers.
    await juliet.send(xml("message", { to: `x@${GW}`, type: "chat", id: "huge" }, xml("body", {}, "x".repeat(70_000))));
    const huge = await juliet.waitFor((st) => st.attrs.id === "huge");
    expect(huge.attrs.type).toBe("error");
    await expect(juliet.iq(xml("iq", { type: "get", to: GW }, xml("ping", { xmlns: "urn:xmpp:ping" })))).resolves.toBeDefined();
  });

  it("pings joined resources and drops those that are gone, so no ghost holds a room", async () => {
    const juliet = clients.find((c) => c.bare === "juliet@localhost")!;
    await juliet.iq(xml("iq", { type: "set", to: GW }, registerForm("juliet", "pw")));
    await juliet.send(xml("presence", { to: `#ghost@${GW}/juliet` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })));
    await juliet.waitFor((s) => s.name === "presence" && s.attrs.from === `#ghost@${GW}/juliet`);
    const rooms = gateway.networks.get("test")!.rooms;
    // A resource that vanished without a goodbye (its server restarted under it).
    rooms.get("juliet@localhost", "#ghost")!.resources.add("juliet@localhost/vanished");
    await rooms.verifyResources(5_000);
    expect([...rooms.get("juliet@localhost", "#ghost")!.resources]).toEqual([juliet.jid]);
    // The live resource answered the ping itself (xmpp.js replies to XEP-0199) and stays joined.
    await juliet.send(xml("presence", { to: `#ghost@${GW}/juliet`, type: "unavailable" }));
    await net.waitForSent((r) => r.op === "leave" && r.user === "juliet@localhost");
  });

  it("buffers what it sends while Prosody restarts, flushes it in order, and refuses beyond the bound", async () => {
    const net0 = gateway.networks.get("test")!;
    await prosody.restart();
    // The sink component comes back before the gateway's first retry (1.5 s or more after the restart began).
    const sink = rawComponent({ service: `xmpp://127.0.0.1:${prosody.componentPort}`, domain: SINK, password: "sink-secret" });
    const inbox = new StanzaInbox(sink, "sink");
    await sink.start();
    try {
      expect(net0.link.state).not.toBe("online");
      // What the gateway had to say while the server went down (leave echoes) is already waiting;
      // fill the rest of the buffer (5) and one more.
      const free = 5 - net0.link.buffered;
      expect(free).toBeGreaterThan(0);
      for (let i = 0; i < free; i++) net0.link.send(xml("message", { from: GW, to: `x@${SINK}`, id: `buf-${i}` }, xml("body", {}, `#${i}`)));
      expect(() => net0.link.send(xml("message", { from: GW, to: `x@${SINK}`, id: "overflow" }))).toThrow(/buffer is full/);
      for (let i = 0; i < free; i++) {
        const got = await inbox.waitFor((s) => s.attrs.id?.startsWith("buf-") ?? false, 15_000);
        expect(got.attrs.id).toBe(`buf-${i}`);
      }
      expect(net0.link.state).toBe("online");
    } finally {
      await sink.stop();
    }
  });

  it("keeps registrations across a gateway restart on its SQLite store", async () => {
    await gateway.stop();
    net = new TestNetwork();
    gateway = await start();
    const romeo = await login("romeo", "again");
    await romeo.send(xml("presence", { to: GW }));
    await waitFor(() => net.sessions.get("romeo@localhost"), { what: "romeo logged in from the stored registration" });
    expect(net.sessions.get("romeo@localhost")?.registration.password).toBe(SECRET_PASSWORD);
  });

  it("says goodbye on shutdown: rooms closed with status 332, the gateway unavailable", async () => {
    const romeo = clients.find((c) => c.jid.endsWith("/again"))!;
    await romeo.send(xml("presence", { to: `#verona@${GW}/romeo` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })));
    await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `#verona@${GW}/romeo`);
    await gateway.stop();
    const closed = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `#verona@${GW}/romeo` && s.attrs.type === "unavailable");
    const codes = closed.getChild("x", "http://jabber.org/protocol/muc#user")!.getChildren("status").map((c) => c.attrs.code);
    expect(codes).toEqual(expect.arrayContaining(["110", "332"]));
    await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === GW && s.attrs.type === "unavailable");
  });
});
