/**
 * 1:1 chat archives (history.directMessages) on a real Prosody with
 * mod_mam: with the option on, Juliet's chat with a network contact is
 * archived for her in both directions, her correction and the contact's edit
 * and retraction are applied, and a MAM query on the contact's JID pages
 * through it with the stanza-ids she saw live. With the option off nothing
 * of the chat is archived and MAM on the contact JID is refused.
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
import { openArchive } from "../../core/history/archive.ts";
import { plain, toPlain } from "../../core/format/model.ts";

const GW = "test.localhost";
const USER = "juliet@localhost";
const ROMEO = `romeo@${GW}`;
const MAM = "urn:xmpp:mam:2";
const RSM = "http://jabber.org/protocol/rsm";
const SID = "urn:xmpp:sid:0";
const FORWARD = "urn:xmpp:forward:0";
const DISCO_INFO = "http://jabber.org/protocol/disco#info";

let prosody: ProsodyHandle;

beforeAll(async () => {
  // mod_mam on the user's server: its own stanza-id (by the user) must not hide ours (by the contact).
  prosody = await startProsody({ components: [{ domain: GW, secret: "s" }], users: [{ username: "juliet", password: "pw" }], extraModules: ["mam"] });
});
afterAll(async () => {
  await prosody?.stop();
});

interface Session {
  dir: string;
  net: TestNetwork;
  gateway: Gateway;
  juliet: TestClient;
}

async function open(directMessages: boolean): Promise<Session> {
  const dir = await mkdtemp(join(tmpdir(), "estuary-direct-history-"));
  const net = new TestNetwork();
  const gateway = await startTestGateway({
    xmppPort: prosody.componentPort,
    networks: { test: { domain: GW, secret: "s" } },
    adapters: { test: () => net.adapter() },
    storeUrl: `sqlite:${join(dir, "estuary.sqlite")}`,
    history: { directMessages },
  });
  const juliet = await connectClient(prosody, "juliet", "pw");
  await juliet.iq(
    xml("iq", { type: "set", to: GW }, xml("query", { xmlns: "jabber:iq:register" }, xml("x", { xmlns: "jabber:x:data", type: "submit" }, xml("field", { var: "username" }, xml("value", {}, "j")), xml("field", { var: "password" }, xml("value", {}, "p"))))),
  );
  await juliet.send(xml("presence", { to: GW }));
  // The session is open once the gateway says the network is online.
  await juliet.waitFor((s) => s.name === "presence" && s.attrs.from === GW && s.attrs.type === undefined, 10_000);
  return { dir, net, gateway, juliet };
}

async function close(s: Session | undefined): Promise<void> {
  await s?.juliet.stop();
  await s?.gateway.stop();
  if (s) await rm(s.dir, { recursive: true, force: true });
}

/** Romeo, on the network, writes to Juliet; resolves with the message she receives. */
function romeoSays(s: Session, id: string, text: string): Promise<Element> {
  s.net.emit(USER, { type: "message", chat: { kind: "direct", contact: "romeo" }, from: { nick: "romeo", contact: "romeo" }, id, text: plain(text) });
  return s.juliet.waitFor((m) => m.name === "message" && m.attrs.from === ROMEO && m.getChildText("body") === text);
}

/** Juliet writes to Romeo; resolves once the network has it. */
async function julietSays(s: Session, id: string, text: string, replace?: string): Promise<void> {
  await s.juliet.send(
    xml("message", { to: ROMEO, type: "chat", id }, xml("body", {}, text), replace ? xml("replace", { xmlns: "urn:xmpp:message-correct:0", id: replace }) : undefined),
  );
  await s.net.waitForSent((r) => r.chat?.kind === "direct" && r.message !== undefined && toPlain(r.message.text) === text);
  // The gateway handles Juliet's stanzas to one JID in order: once an IQ to Romeo is answered, her
  // message has been handled completely (archived too), before anything Romeo says next.
  await s.juliet.iq(xml("iq", { type: "get", to: ROMEO }, xml("query", { xmlns: DISCO_INFO })));
}

function ourStanzaId(m: Element): string | undefined {
  return m.getChildren("stanza-id", SID).find((e) => e.attrs.by === ROMEO)?.attrs.id;
}

describe("1:1 archive with history.directMessages on", () => {
  let s: Session;
  let queries = 0;
  const liveIds: Record<string, string> = {};

  /** One MAM page from Romeo's JID: the forwarded messages (in order) and the <fin/>. */
  const page = async (rsm: Element[]): Promise<{ ids: string[]; forwarded: Element[]; fin: Element }> => {
    const queryid = `q${++queries}`;
    const res = await s.juliet.iq(xml("iq", { type: "set", to: ROMEO }, xml("query", { xmlns: MAM, queryid }, xml("set", { xmlns: RSM }, ...rsm))));
    const results: Element[] = [];
    for (;;) {
      const i = s.juliet.inbox.findIndex((m) => m.getChild("result", MAM)?.attrs.queryid === queryid);
      if (i < 0) break;
      results.push(s.juliet.inbox.splice(i, 1)[0]!);
    }
    for (const r of results) expect(r.attrs.from).toBe(ROMEO);
    return {
      ids: results.map((r) => r.getChild("result", MAM)!.attrs.id!),
      forwarded: results.map((r) => r.getChild("result", MAM)!.getChild("forwarded", FORWARD)!),
      fin: res.getChild("fin", MAM)!,
    };
  };

  beforeAll(async () => {
    s = await open(true);
  });
  afterAll(async () => {
    await close(s);
  });

  it("advertises MAM and stanza ids on the contact's JID", async () => {
    const info = await s.juliet.iq(xml("iq", { type: "get", to: ROMEO }, xml("query", { xmlns: DISCO_INFO })));
    const features = info.getChild("query")!.getChildren("feature").map((f) => f.attrs.var);
    expect(features).toEqual(expect.arrayContaining([MAM, `${MAM}#extended`, SID]));
    const form = await s.juliet.iq(xml("iq", { type: "get", to: ROMEO }, xml("query", { xmlns: MAM })));
    expect(form.getChild("query", MAM)?.getChild("x", "jabber:x:data")?.getChildren("field").map((f) => f.attrs.var)).toContain("with");
  });

  it("archives the chat both ways, with corrections and retractions applied, and pages through it", async () => {
    const n1 = await romeoSays(s, "n1", "But soft, what light");
    liveIds.n1 = ourStanzaId(n1)!;
    expect(liveIds.n1).toBe(n1.attrs.id);
    await julietSays(s, "a1", "Romeo, Romeo, wherefor art thou");
    await julietSays(s, "a1c", "Romeo, Romeo, wherefore art thou Romeo?", "a1");
    const n2 = await romeoSays(s, "n2", "Shall I hear more");
    liveIds.n2 = ourStanzaId(n2)!;
    await julietSays(s, "a2", "Deny thy father");
    const n3 = await romeoSays(s, "n3", "something regrettable");
    liveIds.n3 = ourStanzaId(n3)!;
    s.net.emit(USER, { type: "edit", chat: { kind: "direct", contact: "romeo" }, from: { nick: "romeo", contact: "romeo" }, id: "n2", text: plain("Shall I hear more, or shall I speak at this?") });
    s.net.emit(USER, { type: "retract", chat: { kind: "direct", contact: "romeo" }, from: { nick: "romeo", contact: "romeo" }, id: "n3" });
    await s.juliet.waitFor((m) => m.attrs.from === ROMEO && m.getChild("replace", "urn:xmpp:message-correct:0")?.attrs.id === liveIds.n2);
    await s.juliet.waitFor((m) => m.attrs.from === ROMEO && m.getChild("retract", "urn:xmpp:message-retract:1")?.attrs.id === liveIds.n3);
    for (const id of Object.values(liveIds)) expect(id).toMatch(/./);

    // Forwards, two at a time.
    const forwarded: Element[] = [];
    const ids: string[] = [];
    let after: string | undefined;
    for (let guard = 0; ; guard++) {
      expect(guard).toBeLessThan(5);
      const p = await page([xml("max", {}, "2"), after ? xml("after", {}, after) : undefined].filter((x): x is Element => !!x));
      forwarded.push(...p.forwarded);
      ids.push(...p.ids);
      expect(p.fin.getChild("set", RSM)?.getChildText("count")).toBe("5");
      after = p.fin.getChild("set", RSM)?.getChildText("last") ?? undefined;
      if (p.fin.attrs.complete === "true") break;
    }
    const messages = forwarded.map((f) => f.getChild("message")!);
    expect(messages.map((m) => m.getChildText("body"))).toEqual([
      "But soft, what light",
      "Romeo, Romeo, wherefore art thou Romeo?",
      "Shall I hear more, or shall I speak at this?",
      "Deny thy father",
      null,
    ]);
    // XEP-0313 §4.2: the original stanza, type chat, from whoever wrote it; a XEP-0203 delay on each.
    expect(messages.map((m) => [m.attrs.type, m.attrs.from, m.attrs.to])).toEqual([
      ["chat", ROMEO, USER],
      ["chat", USER, ROMEO],
      ["chat", ROMEO, USER],
      ["chat", USER, ROMEO],
      ["chat", ROMEO, USER],
    ]);
    for (const f of forwarded) expect(f.getChild("delay", "urn:xmpp:delay")?.attrs.stamp).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    // The archive's ids are the stanza-ids Juliet saw live, and each forwarded message carries its own.
    expect([ids[0], ids[2], ids[4]]).toEqual([liveIds.n1, liveIds.n2, liveIds.n3]);
    expect(messages.map((m) => m.getChildren("stanza-id", SID).find((e) => e.attrs.by === ROMEO)?.attrs.id)).toEqual(ids);
    expect(new Set(ids).size).toBe(5);
    // Juliet's own messages keep her ids (XEP-0359 origin-id).
    expect([messages[1]!.attrs.id, messages[3]!.attrs.id]).toEqual(["a1", "a2"]);
    expect(messages[3]!.getChild("origin-id", SID)?.attrs.id).toBe("a2");
    expect(messages[4]!.getChild("retracted", "urn:xmpp:message-retract:1")).toBeDefined();

    // Backwards from the end, two at a time: the same messages.
    const backward: string[] = [];
    let before = "";
    for (let guard = 0; ; guard++) {
      expect(guard).toBeLessThan(5);
      const p = await page([xml("max", {}, "2"), xml("before", {}, before)]);
      backward.unshift(...p.ids);
      before = p.fin.getChild("set", RSM)?.getChildText("first") ?? "";
      if (p.fin.attrs.complete === "true") break;
    }
    expect(backward).toEqual(ids);
  });

  it("keeps each contact's chat in its own archive", async () => {
    const res = await s.juliet.iq(xml("iq", { type: "set", to: `mercutio@${GW}` }, xml("query", { xmlns: MAM })));
    expect(res.getChild("fin", MAM)?.getChild("set", RSM)?.getChildText("count")).toBe("0");
  });
});

describe("1:1 archive with history.directMessages off (the default)", () => {
  let s: Session;
  beforeAll(async () => {
    s = await open(false);
  });
  afterAll(async () => {
    await close(s);
  });

  it("archives nothing of the chat, and refuses MAM on the contact's JID while rooms keep theirs", async () => {
    const info = await s.juliet.iq(xml("iq", { type: "get", to: ROMEO }, xml("query", { xmlns: DISCO_INFO })));
    expect(info.getChild("query")!.getChildren("feature").map((f) => f.attrs.var)).not.toContain(MAM);

    const n1 = await romeoSays(s, "n1", "Good night, good night");
    expect(ourStanzaId(n1)).toBeUndefined();
    await julietSays(s, "a1", "Parting is such sweet sorrow");

    // RFC 6120 §8.3.3.19: the contact's JID offers no archive.
    for (const iq of [
      xml("iq", { type: "set", to: ROMEO }, xml("query", { xmlns: MAM })),
      xml("iq", { type: "get", to: ROMEO }, xml("query", { xmlns: MAM })),
    ]) {
      const err = await s.juliet.iq(iq).then(
        () => undefined,
        (e: { condition?: string }) => e,
      );
      expect(err?.condition).toBe("service-unavailable");
    }

    // The room archive still works, in the same file: the check below looks at the right place.
    await s.juliet.send(xml("presence", { to: `#hall@${GW}/juliet` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })));
    await s.juliet.waitFor((m) => m.getChild("subject") !== undefined && m.attrs.from?.startsWith(`#hall@${GW}`) === true);
    s.net.emit(USER, { type: "message", chat: { kind: "room", room: "#hall" }, from: { nick: "alice", contact: "alice" }, id: "h1", text: plain("in the hall") });
    await s.juliet.waitFor((m) => m.getChildText("body") === "in the hall");

    await s.juliet.stop();
    await s.gateway.stop();
    const archive = await openArchive({ url: `sqlite:${join(s.dir, "estuary.archive.sqlite")}` });
    try {
      expect((await archive.query({ user: USER, room: ROMEO, max: 10 })).messages).toEqual([]);
      expect((await archive.query({ user: USER, room: `#hall@${GW}`, max: 10 })).messages.map((m) => m.body)).toEqual(["in the hall"]);
    } finally {
      await archive.close();
    }
  });
});
