/**
 * History of gateway rooms (XEP-0313 MAM, XEP-0045 join history), on a real
 * Prosody: Romeo's view of a room is archived for him; he pages through it
 * both ways, sees corrections and retractions applied, gets history when he
 * rejoins, and keeps it across a gateway restart, trimmed by retention.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { xml } from "@xmpp/client";
import type { Element } from "@xmpp/xml";
import { startProsody, type ProsodyHandle } from "../support/prosody.ts";
import { connectClient, type TestClient } from "../support/xmpp-client.ts";
import { startTestGateway } from "../support/gateway.ts";
import { TestNetwork } from "../support/test-adapter.ts";
import type { Gateway } from "../../core/gateway.ts";
import { plain } from "../../core/format/model.ts";

const GW = "test.localhost";
const ROOM = `#hall@${GW}`;
const MAM = "urn:xmpp:mam:2";
const RSM = "http://jabber.org/protocol/rsm";
const USER = "romeo@localhost";

describe("room history on a real Prosody", () => {
  let prosody: ProsodyHandle;
  let dir: string;
  let net: TestNetwork;
  let gateway: Gateway;
  let romeo: TestClient;
  let queries = 0;

  const start = async (maxPerRoom = 100_000) => {
    net = new TestNetwork();
    gateway = await startTestGateway({
      xmppPort: prosody.componentPort,
      networks: { test: { domain: GW, secret: "s" } },
      adapters: { test: () => net.adapter() },
      storeUrl: `sqlite:${join(dir, "estuary.sqlite")}`,
      history: { maxPerRoom },
    });
  };
  const say = (id: string, text: string, nick = "alice") =>
    net.emit(USER, { type: "message", chat: { kind: "room", room: "#hall" }, from: { nick, contact: nick }, id, text: plain(text) });
  const joinHall = async (history?: Record<string, string>) => {
    await romeo.send(xml("presence", { to: `${ROOM}/romeo` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" }, history ? xml("history", history) : undefined)));
  };
  /** One MAM page: the forwarded messages (in order) and the <fin/>. */
  const page = async (rsm: Element[], form?: Element): Promise<{ ids: string[]; bodies: (string | null)[]; fin: Element; results: Element[] }> => {
    const queryid = `q${++queries}`;
    const res = await romeo.iq(xml("iq", { type: "set", to: ROOM }, xml("query", { xmlns: MAM, queryid }, form, xml("set", { xmlns: RSM }, ...rsm))));
    const results: Element[] = [];
    for (;;) {
      const i = romeo.inbox.findIndex((s) => s.getChild("result", MAM)?.attrs.queryid === queryid);
      if (i < 0) break;
      results.push(romeo.inbox.splice(i, 1)[0]!);
    }
    const fwd = results.map((r) => r.getChild("result", MAM)!.getChild("forwarded", "urn:xmpp:forward:0")!.getChild("message")!);
    return { ids: results.map((r) => r.getChild("result", MAM)!.attrs.id!), bodies: fwd.map((m) => m.getChildText("body")), fin: res.getChild("fin", MAM)!, results };
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "estuary-history-"));
    prosody = await startProsody({ components: [{ domain: GW, secret: "s" }], users: [{ username: "romeo", password: "pw" }] });
    await start();
    romeo = await connectClient(prosody, "romeo", "pw");
    await romeo.iq(
      xml("iq", { type: "set", to: GW }, xml("query", { xmlns: "jabber:iq:register" }, xml("x", { xmlns: "jabber:x:data", type: "submit" }, xml("field", { var: "username" }, xml("value", {}, "r")), xml("field", { var: "password" }, xml("value", {}, "p"))))),
    );
    await romeo.send(xml("presence", { to: GW }));
    await joinHall();
    await romeo.waitFor((s) => s.name === "message" && s.attrs.from?.startsWith(ROOM) === true && s.getChild("subject") !== undefined);
  });

  afterAll(async () => {
    await romeo?.stop();
    await gateway?.stop();
    await prosody?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("advertises MAM on the room", async () => {
    const info = await romeo.iq(xml("iq", { type: "get", to: ROOM }, xml("query", { xmlns: "http://jabber.org/protocol/disco#info" })));
    const features = info.getChild("query")!.getChildren("feature").map((f) => f.attrs.var);
    expect(features).toEqual(expect.arrayContaining([MAM, `${MAM}#extended`]));
  });

  it("pages through 1000 messages both ways with no gap or duplicate, each with its stanza-id and delay", async () => {
    for (let i = 0; i < 1000; i++) say(`h${i}`, `line ${i}`);
    await romeo.waitFor((s) => s.getChildText("body") === "line 999", 20_000);
    romeo.inbox.length = 0;

    const forward: string[] = [];
    let after: string | undefined;
    let guard = 0;
    for (;;) {
      const p = await page([xml("max", {}, "100"), after ? xml("after", {}, after) : undefined].filter((x): x is Element => !!x));
      forward.push(...(p.bodies as string[]));
      after = p.fin.getChild("set", RSM)?.getChildText("last") ?? undefined;
      if (p.fin.attrs.complete === "true") break;
      expect(++guard).toBeLessThan(20);
    }
    expect(forward).toEqual(Array.from({ length: 1000 }, (_, i) => `line ${i}`));

    const backward: string[] = [];
    let before: string | undefined;
    guard = 0;
    for (;;) {
      const p = await page([xml("max", {}, "100"), xml("before", {}, before ?? "")]);
      backward.unshift(...(p.bodies as string[]));
      before = p.fin.getChild("set", RSM)?.getChildText("first") ?? undefined;
      if (p.fin.attrs.complete === "true") break;
      expect(++guard).toBeLessThan(20);
    }
    expect(backward).toEqual(forward);

    const one = await page([xml("max", {}, "1")]);
    const fwd = one.results[0]!.getChild("result", MAM)!.getChild("forwarded", "urn:xmpp:forward:0")!;
    expect(fwd.getChild("delay", "urn:xmpp:delay")?.attrs.stamp).toMatch(/^\d{4}-/);
    expect(fwd.getChild("message")!.getChild("stanza-id", "urn:xmpp:sid:0")?.attrs.id).toBe(one.ids[0]);
  });

  it("keeps the user's own messages, and applies corrections and retractions", async () => {
    await romeo.send(xml("message", { to: ROOM, type: "groupchat", id: "own1" }, xml("body", {}, "Did my heart love till now?")));
    await romeo.waitFor((s) => s.attrs.id === "own1");
    say("c1", "I am the very pattern of a modern major general");
    say("r1", "something regrettable");
    await romeo.waitFor((s) => s.getChildText("body") === "something regrettable");
    net.emit(USER, { type: "edit", chat: { kind: "room", room: "#hall" }, from: { nick: "alice" }, id: "c1", text: plain("I am the very model of a modern major general") });
    net.emit(USER, { type: "retract", chat: { kind: "room", room: "#hall" }, from: { nick: "alice" }, id: "r1" });
    await romeo.waitFor((s) => s.getChild("retract", "urn:xmpp:message-retract:1") !== undefined);
    const last = await page([xml("max", {}, "3"), xml("before", {})]);
    expect(last.bodies[0]).toBe("Did my heart love till now?");
    expect(last.bodies[1]).toBe("I am the very model of a modern major general");
    expect(last.bodies[2]).toBeNull();
    const tomb = last.results[2]!.getChild("result", MAM)!.getChild("forwarded", "urn:xmpp:forward:0")!.getChild("message")!;
    expect(tomb.getChild("retracted", "urn:xmpp:message-retract:1")).toBeDefined();
    const own = last.results[0]!.getChild("result", MAM)!.getChild("forwarded", "urn:xmpp:forward:0")!.getChild("message")!;
    expect(own.attrs.from).toBe(`${ROOM}/romeo`);
  });

  it("sends the asked-for history on join, after the presences and before the subject", async () => {
    await romeo.send(xml("presence", { to: `${ROOM}/romeo`, type: "unavailable" }));
    await romeo.waitFor((s) => s.name === "presence" && s.attrs.type === "unavailable" && s.attrs.from === `${ROOM}/romeo`);
    romeo.inbox.length = 0;
    await joinHall({ maxstanzas: "3" });
    const subject = await romeo.waitFor((s) => s.getChild("subject") !== undefined && s.attrs.from?.startsWith(ROOM) === true);
    void subject;
    const history = romeo.inbox.filter((s) => s.name === "message" && s.getChild("delay", "urn:xmpp:delay") !== undefined);
    expect(history.map((m) => m.getChildText("body"))).toEqual(["line 999", "Did my heart love till now?", "I am the very model of a modern major general"]);
    const selfIndex = romeo.inbox.findIndex((s) => s.name === "presence" && s.attrs.from === `${ROOM}/romeo`);
    expect(selfIndex).toBeGreaterThanOrEqual(0);
    expect(romeo.inbox.indexOf(history[0]!)).toBeGreaterThan(selfIndex);
  });

  it("keeps the archive across a gateway restart, trimmed by retention", async () => {
    await gateway.stop();
    await start(5);
    // Retention runs right after start: only the newest 5 remain.
    let count = -1;
    for (let tries = 0; tries < 50 && count !== 5; tries++) {
      const p = await page([xml("max", {}, "0")]);
      count = Number(p.fin.getChild("set", RSM)?.getChildText("count") ?? -1);
    }
    expect(count).toBe(5);
    const p = await page([xml("max", {}, "5")]);
    expect(p.bodies.slice(0, 2)).toEqual(["line 998", "line 999"]);
  });
});
