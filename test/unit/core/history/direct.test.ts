/**
 * 1:1 archives (history.directMessages): which chats are archived, how a
 * network id leads to its archive id, how a 1:1 message is forwarded in a MAM
 * result, and that retention and unregistering cover 1:1 archives.
 */
import type { Element } from "@xmpp/xml";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Archive, type ArchivedMessage, openArchive } from "../../../../core/history/archive.ts";
import { archiveIdFor, archiveJidOf, archivesDirect, ownIdsScope } from "../../../../core/history/direct.ts";
import { directWithFilter, mamResultMessage } from "../../../../core/history/mam.ts";
import { scopeOf } from "../../../../core/ids.ts";
import type { Address } from "../../../../core/model.ts";
import type { Network } from "../../../../core/network.ts";
import { openStore, type Store } from "../../../../core/store/index.ts";

let parse: (s: string) => Element;
beforeAll(async () => {
  const specifier = "@xmpp/xml/lib/parse.js";
  parse = ((await import(specifier)) as { default: (s: string) => Element }).default;
});

const USER = "juliet@capulet.lit";
const CONTACT = "romeo@irc.gw.lit";

const opened: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of opened.splice(0)) await o.close();
});

/** A Network with what core/history/direct.ts reads. */
function fakeNet(options: { archive?: Archive; direct?: boolean; store?: Store }): Network {
  return {
    name: "irc",
    ...(options.archive ? { archive: options.archive } : {}),
    ...(options.direct !== undefined ? { archiveDirect: options.direct } : {}),
    store: options.store,
    jidOf: (a: Address) => `${a.kind === "room" ? a.room : a.kind === "contact" ? a.contact : a.service}@irc.gw.lit`,
  } as unknown as Network;
}

async function memoryArchive(): Promise<Archive> {
  const a = await openArchive({ url: "memory:" });
  opened.push(a);
  return a;
}

describe("archiveJidOf", () => {
  it("archives rooms whenever there is an archive, 1:1 chats only when enabled, in-room PMs never", async () => {
    const archive = await memoryArchive();
    const on = fakeNet({ archive, direct: true });
    const off = fakeNet({ archive, direct: false });
    const none = fakeNet({ direct: true });
    expect(archiveJidOf(on, { kind: "room", room: "#hall" })).toBe("#hall@irc.gw.lit");
    expect(archiveJidOf(off, { kind: "room", room: "#hall" })).toBe("#hall@irc.gw.lit");
    expect(archiveJidOf(on, { kind: "direct", contact: "romeo" })).toBe(CONTACT);
    expect(archiveJidOf(off, { kind: "direct", contact: "romeo" })).toBeUndefined();
    expect(archiveJidOf(on, { kind: "direct", contact: "romeo", viaRoom: "#hall" })).toBeUndefined();
    // history.enabled false: no archive, whatever directMessages says.
    expect(archiveJidOf(none, { kind: "direct", contact: "romeo" })).toBeUndefined();
    expect(archivesDirect(none)).toBe(false);
    expect(archivesDirect(on)).toBe(true);
  });
});

describe("archiveIdFor", () => {
  it("finds the archive id of the user's own 1:1 message in its own scope, and the client's id stays the chat's first", async () => {
    const store = await openStore({ url: "memory:" });
    opened.push(store);
    const net = fakeNet({ store, archive: await memoryArchive(), direct: true });
    const chat = { kind: "direct" as const, contact: "romeo" };
    // The user's message: the client knows "client-1"; the archive calls it "sid-1".
    await store.idmap.link(scopeOf(USER, "irc", chat), "net-1", ["client-1"]);
    await store.idmap.link(ownIdsScope(USER, "irc", "romeo"), "net-1", ["sid-1"]);
    // A message from the contact: the id the client saw is the archive id.
    await store.idmap.link(scopeOf(USER, "irc", chat), "net-2", ["sid-2"]);
    expect(await archiveIdFor(net, USER, chat, "net-1")).toBe("sid-1");
    expect(await archiveIdFor(net, USER, chat, "net-2")).toBe("sid-2");
    expect(await archiveIdFor(net, USER, chat, "net-3")).toBeUndefined();
    expect(await store.idmap.xmppFor(scopeOf(USER, "irc", chat), "net-1")).toBe("client-1");
    // Another contact's chat shares nothing.
    expect(await archiveIdFor(net, USER, { kind: "direct", contact: "mercutio" }, "net-1")).toBeUndefined();
  });
});

const incoming: ArchivedMessage = {
  archiveId: "sid-in",
  user: USER,
  network: "irc",
  room: CONTACT,
  from: "romeo",
  fromJid: CONTACT,
  at: new Date("2024-05-01T10:00:00Z"),
  body: "But soft!",
};
const outgoing: ArchivedMessage = {
  archiveId: "sid-out",
  user: USER,
  network: "irc",
  room: CONTACT,
  from: USER,
  fromJid: USER,
  at: new Date("2024-05-01T10:01:00Z"),
  body: "Wherefore art thou",
  correctedBody: "Wherefore art thou Romeo?",
  originId: "client-7",
};

describe("mamResultMessage for a 1:1 archive", () => {
  it("forwards an incoming message as type chat from the contact to the user, with delay and the contact's stanza-id", () => {
    const el = mamResultMessage(incoming, { to: `${USER}/balcony`, queryId: "q1", roomJid: CONTACT, direct: true });
    expect(el.toString()).toBe(
      parse(
        `<message from='${CONTACT}' to='${USER}/balcony'>` +
          "<result xmlns='urn:xmpp:mam:2' queryid='q1' id='sid-in'>" +
          "<forwarded xmlns='urn:xmpp:forward:0'>" +
          "<delay xmlns='urn:xmpp:delay' stamp='2024-05-01T10:00:00.000Z'/>" +
          `<message xmlns='jabber:client' type='chat' from='${CONTACT}' to='${USER}' id='sid-in'>` +
          "<body>But soft!</body>" +
          `<stanza-id xmlns='urn:xmpp:sid:0' id='sid-in' by='${CONTACT}'/>` +
          "</message></forwarded></result></message>",
      ).toString(),
    );
  });

  it("forwards the user's own message from the user to the contact, with its origin-id and the corrected text", () => {
    const inner = mamResultMessage(outgoing, { to: `${USER}/balcony`, roomJid: CONTACT, direct: true }).getChild("result")!.getChild("forwarded")!.getChild("message")!;
    expect(inner.attrs).toMatchObject({ type: "chat", from: USER, to: CONTACT, id: "client-7" });
    expect(inner.getChildText("body")).toBe("Wherefore art thou Romeo?");
    expect(inner.getChild("origin-id", "urn:xmpp:sid:0")?.attrs.id).toBe("client-7");
    expect(inner.getChild("stanza-id", "urn:xmpp:sid:0")?.attrs).toMatchObject({ id: "sid-out", by: CONTACT });
  });

  it("forwards a retracted message as a XEP-0424 tombstone without a body", () => {
    const inner = mamResultMessage({ ...incoming, body: "", retracted: true, retractedAt: new Date("2024-05-02T00:00:00Z") }, { to: USER, roomJid: CONTACT, direct: true })
      .getChild("result")!
      .getChild("forwarded")!
      .getChild("message")!;
    expect(inner.getChild("body")).toBeUndefined();
    expect(inner.getChild("retracted", "urn:xmpp:message-retract:1")?.attrs.stamp).toBe("2024-05-02T00:00:00.000Z");
  });
});

describe("directWithFilter", () => {
  it("filters nothing for the contact (bare or full), and by sender for any other JID", () => {
    expect(directWithFilter(CONTACT, CONTACT)).toEqual({});
    expect(directWithFilter(`${CONTACT}/x`, CONTACT)).toEqual({});
    expect(directWithFilter(USER, CONTACT)).toEqual({ withJid: USER });
  });
});

describe("a 1:1 archive in the archive table", () => {
  it("is trimmed by retention per (user, contact) and purged when the user unregisters from the network", async () => {
    let now = Date.UTC(2024, 0, 10);
    const archive = await openArchive({ url: "memory:", now: () => now });
    opened.push(archive);
    const day = 86_400_000;
    for (let i = 0; i < 6; i++) {
      await archive.append({ ...incoming, archiveId: `d${i}`, at: new Date(now - (6 - i) * day) });
    }
    await archive.append({ ...incoming, network: "matrix", room: "romeo@matrix.gw.lit", fromJid: "romeo@matrix.gw.lit", archiveId: "m0", at: new Date(now) });
    // maxAgeDays 5: d0 (6 days old) goes; maxPerRoom 3: of the rest only d3..d5 stay.
    expect(await archive.enforceRetention({ maxAgeMs: 5.5 * day, maxPerRoom: 3 })).toBe(3);
    const page = await archive.query({ user: USER, room: CONTACT, max: 10 });
    expect(page.messages.map((m) => m.archiveId)).toEqual(["d3", "d4", "d5"]);
    await archive.purgeUser(USER, "irc");
    expect((await archive.query({ user: USER, room: CONTACT, max: 10 })).messages).toEqual([]);
    // The user's archive on another network is not theirs on this one.
    expect((await archive.query({ user: USER, room: "romeo@matrix.gw.lit", max: 10 })).messages.map((m) => m.archiveId)).toEqual(["m0"]);
  });
});
