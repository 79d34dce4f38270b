/**
 * XEP-0425 in the core, without XMPP server or network: a moderator's request
 * becomes the adapter's `moderate` on the network id behind the room's
 * stanza-id, the room announces it, the archive tombstones it; and a network
 * event removed by someone else reaches the user as moderation by the room.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import type { AdapterSession } from "../../../../core/adapter.ts";
import { fail, isEstuaryError } from "../../../../core/errors.ts";
import { handleEvent } from "../../../../core/events.ts";
import { scopeOf } from "../../../../core/ids.ts";
import { silentLogger } from "../../../../core/log.ts";
import type { Address, LegacyEvent } from "../../../../core/model.ts";
import type { Network } from "../../../../core/network.ts";
import type { RoomState } from "../../../../core/rooms.ts";
import { openStore, type Store } from "../../../../core/store/index.ts";
import { moderateIq } from "../../../../core/xmpp/moderate.ts";

const USER = "romeo@localhost";
const PHONE = `${USER}/phone`;
const LAPTOP = `${USER}/laptop`;
const DOMAIN = "test.localhost";
const ROOM = "#lobby";
const ROOM_JID = `${ROOM}@${DOMAIN}`;
const RETRACT = "urn:xmpp:message-retract:1";
const MODERATE = "urn:xmpp:message-moderate:1";

interface Fake {
  net: Network;
  sent: Element[];
  moderated: { room: string; id: string; reason?: string }[];
  tombstones: { user: string; room: string; archiveId: string }[];
  state: RoomState;
}

function fakeNet(store: Store, options: { capability?: boolean; refuse?: boolean; noMethod?: boolean } = {}): Fake {
  const sent: Element[] = [];
  const moderated: Fake["moderated"] = [];
  const tombstones: Fake["tombstones"] = [];
  const state: RoomState = {
    room: ROOM,
    jid: ROOM_JID,
    nick: "Romeo",
    self: { role: "moderator", affiliation: "admin" },
    resources: new Set([PHONE, LAPTOP]),
    occupants: new Map([["Bob", { nick: "Bob", contact: "bob", role: "participant", affiliation: "member" }]]),
  };
  const session: Partial<AdapterSession> = options.noMethod
    ? {}
    : {
        async moderate(room, id, reason) {
          if (options.refuse) throw fail("forbidden", "You are not a moderator there");
          moderated.push({ room, id, ...(reason !== undefined ? { reason } : {}) });
        },
      };
  const net = {
    name: "test",
    domain: DOMAIN,
    adapter: { displayName: "Test network", capabilities: { rooms: true, moderation: options.capability ?? true } },
    store,
    log: silentLogger(),
    archive: {
      async retract(user: string, room: string, archiveId: string) {
        tombstones.push({ user, room, archiveId });
      },
    },
    rooms: {
      get: (user: string, room: string) => (user === USER && room === ROOM ? state : undefined),
      joining: () => undefined,
    },
    sessions: { peek: (user: string) => (user === USER ? session : undefined) },
    send: (el: Element) => sent.push(el),
    jidOf: (a: Address) => `${a.kind === "room" ? a.room : a.kind === "contact" ? a.contact : a.service}@${DOMAIN}`,
    addressOf: (local: string): Address | undefined => (local.startsWith("#") ? { kind: "room", room: local } : { kind: "contact", contact: local }),
  };
  return { net: net as unknown as Network, sent, moderated, tombstones, state };
}

function request(id: string | undefined, opts: { reason?: string; retract?: boolean } = {}): Element {
  return xml(
    "iq",
    { type: "set", id: "mod1", from: PHONE, to: ROOM_JID },
    xml(
      "moderate",
      { xmlns: MODERATE, ...(id !== undefined ? { id } : {}) },
      opts.retract === false ? undefined : xml("retract", { xmlns: RETRACT }),
      opts.reason !== undefined ? xml("reason", {}, opts.reason) : undefined,
    ),
  );
}

const moderate = (f: Fake, stanza: Element, from = { bare: USER, full: PHONE }, to: { local?: string } = { local: ROOM }) => moderateIq(f.net, stanza, from, to);

async function kindOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isEstuaryError(e)) return e.kind;
    throw e;
  }
  return "resolved";
}

describe("a moderator's XEP-0425 request", () => {
  let store: Store;
  const scope = scopeOf(USER, "test", { kind: "room", room: ROOM });

  beforeEach(async () => {
    store = await openStore({ url: "memory:" });
    // Bob's network message m7 reached Romeo with stanza-id sid-7 (core/events.ts links them).
    await store.idmap.link(scope, "m7", ["sid-7"]);
    // Romeo's own message: reflected with the room's stanza-id first, then his client's own id.
    await store.idmap.link(scope, "m8", ["sid-8", "client-8"]);
  });
  afterEach(async () => store.close());

  it("removes the message on the network, tombstones it, and the room announces it to every joined resource", async () => {
    const f = fakeNet(store);
    await moderate(f, request("sid-7", { reason: "Spam" }));
    expect(f.moderated).toEqual([{ room: ROOM, id: "m7", reason: "Spam" }]);
    expect(f.tombstones).toEqual([{ user: USER, room: ROOM_JID, archiveId: "sid-7" }]);
    expect(f.sent.map((s) => s.attrs.to).sort()).toEqual([LAPTOP, PHONE]);
    for (const s of f.sent) {
      // XEP-0425 §3.1: from the bare room, a XEP-0424 retraction of the room's stanza-id, marked as moderated.
      expect(s.attrs).toMatchObject({ type: "groupchat", from: ROOM_JID });
      const retract = s.getChild("retract", RETRACT)!;
      expect(retract.attrs.id).toBe("sid-7");
      expect(retract.getChild("moderated", MODERATE)?.attrs.by).toBe(`${ROOM_JID}/Romeo`);
      expect(retract.getChildText("reason")).toBe("Spam");
      expect(s.getChild("fallback", "urn:xmpp:fallback:0")?.attrs.for).toBe(RETRACT);
      expect(s.getChildText("body")).toBe("A message was removed by a moderator: Spam");
      expect(s.getChild("store", "urn:xmpp:hints")).toBeDefined();
    }
  });

  it("without a reason, none is passed on or announced", async () => {
    const f = fakeNet(store);
    await moderate(f, request("sid-7"));
    expect(f.moderated).toEqual([{ room: ROOM, id: "m7" }]);
    expect(f.sent[0]!.getChild("retract", RETRACT)!.getChild("reason")).toBeUndefined();
  });

  it("a message named by another of its ids is announced under the room's stanza-id", async () => {
    const f = fakeNet(store);
    await moderate(f, request("client-8"));
    expect(f.moderated).toEqual([{ room: ROOM, id: "m8" }]);
    expect(f.sent[0]!.getChild("retract", RETRACT)!.attrs.id).toBe("sid-8");
  });

  it("the network's refusal is forbidden, and nothing is announced or tombstoned", async () => {
    const f = fakeNet(store, { refuse: true });
    expect(await kindOf(moderate(f, request("sid-7")))).toBe("forbidden");
    expect(f.sent).toEqual([]);
    expect(f.tombstones).toEqual([]);
  });

  it("an unknown id is item-not-found (not-found), without asking the network", async () => {
    const f = fakeNet(store);
    expect(await kindOf(moderate(f, request("nope")))).toBe("not-found");
    expect(f.moderated).toEqual([]);
  });

  it("a resource not joined to the room is refused", async () => {
    const f = fakeNet(store);
    expect(await kindOf(moderate(f, request("sid-7"), { bare: USER, full: `${USER}/tablet` }))).toBe("not-acceptable");
    expect(await kindOf(moderate(f, request("sid-7"), { bare: "juliet@localhost", full: "juliet@localhost/x" }))).toBe("not-acceptable");
    expect(f.moderated).toEqual([]);
  });

  it("a network without moderation answers feature-not-implemented (unsupported)", async () => {
    expect(await kindOf(moderate(fakeNet(store, { capability: false }), request("sid-7")))).toBe("unsupported");
    expect(await kindOf(moderate(fakeNet(store, { noMethod: true }), request("sid-7")))).toBe("unsupported");
  });

  it("malformed or misaddressed requests are refused", async () => {
    const f = fakeNet(store);
    expect(await kindOf(moderate(f, request(undefined)))).toBe("bad-request");
    // v0.3.0 defines retraction only.
    expect(await kindOf(moderate(f, request("sid-7", { retract: false })))).toBe("unsupported");
    expect(await kindOf(moderate(f, request("sid-7"), undefined, { local: "bob" }))).toBe("service-unavailable");
    expect(await kindOf(moderate(f, request("sid-7"), undefined, {}))).toBe("service-unavailable");
    expect(f.moderated).toEqual([]);
  });
});

describe("a network message removed by someone else", () => {
  let store: Store;
  const scope = scopeOf(USER, "test", { kind: "room", room: ROOM });

  beforeEach(async () => {
    store = await openStore({ url: "memory:" });
    await store.idmap.link(scope, "m7", ["sid-7"]);
  });
  afterEach(async () => store.close());

  const retract = (extra: Partial<Extract<LegacyEvent, { type: "retract" }>> = {}): LegacyEvent => ({
    type: "retract",
    chat: { kind: "room", room: ROOM },
    from: { nick: "Bob", contact: "bob" },
    id: "m7",
    ...extra,
  });

  it("is XEP-0425 moderation from the room, naming the moderator's occupant JID and the reason", async () => {
    const f = fakeNet(store);
    await handleEvent(f.net, USER, retract({ by: { nick: "Carol/Admin", contact: "carol" }, reason: "Off topic" }));
    expect(f.sent).toHaveLength(2);
    const s = f.sent[0]!;
    expect(s.attrs.from).toBe(ROOM_JID);
    const r = s.getChild("retract", RETRACT)!;
    expect(r.attrs.id).toBe("sid-7");
    // A nick is a resourcepart: cleaned as every other nick the network sends.
    expect(r.getChild("moderated", MODERATE)?.attrs.by).toMatch(new RegExp(`^${ROOM_JID.replace(/[.#]/g, "\\$&")}/Carol`));
    expect(r.getChildText("reason")).toBe("Off topic");
    expect(f.tombstones).toEqual([{ user: USER, room: ROOM_JID, archiveId: "sid-7" }]);
  });

  it("by its author stays the author's XEP-0424 retraction", async () => {
    const f = fakeNet(store);
    await handleEvent(f.net, USER, retract());
    const s = f.sent[0]!;
    expect(s.attrs.from).toBe(`${ROOM_JID}/Bob`);
    expect(s.getChild("retract", RETRACT)?.getChild("moderated", MODERATE)).toBeUndefined();
    expect(f.tombstones).toHaveLength(1);
  });

  it("of a message the user never saw is not announced", async () => {
    const f = fakeNet(store);
    await handleEvent(f.net, USER, retract({ id: "unknown", by: { nick: "Carol" } }));
    expect(f.sent).toEqual([]);
  });
});
