import { EventEmitter } from "node:events";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { xml } from "@xmpp/component";
import type { Element } from "@xmpp/xml";
import {
  LEDGER_KEY,
  ensureContact,
  ledgerAdd,
  ledgerHas,
  notePresence,
  readLedger,
  removeContacts,
  takeSubscribed,
  type Ledger,
} from "../../../core/contacts.ts";
import { fail } from "../../../core/errors.ts";
import { silentLogger } from "../../../core/log.ts";
import type { Address } from "../../../core/model.ts";
import type { Network } from "../../../core/network.ts";
import { openStore, type Store } from "../../../core/store/index.ts";
import { Privileges, parsePrivilegeMessage, type RosterAccess } from "../../../core/xmpp/privilege.ts";

const USER = "romeo@localhost";
const STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";

interface Fake {
  net: Network;
  sent: Element[];
  iqs: Element[];
  privileges: Privileges;
}

/** A Network with just what core/contacts.ts uses; `pushError` makes roster pushes fail with that condition. */
function fakeNet(store: Store, options: { grant?: RosterAccess; pushError?: string } = {}): Fake {
  const sent: Element[] = [];
  const iqs: Element[] = [];
  const privileges = new Privileges();
  if (options.grant) privileges.apply({ server: "localhost", roster: options.grant });
  const net = {
    name: "test",
    domain: "test.localhost",
    adapter: { displayName: "Test network" },
    store,
    log: silentLogger(),
    privileges,
    access: { allows: (jid: string) => jid !== "banned@localhost" },
    send: (el: Element) => sent.push(el),
    iq: {
      request: async (el: Element) => {
        iqs.push(el);
        if (options.pushError) {
          throw Object.assign(fail("unavailable", "error answer"), {
            element: xml("iq", { type: "error" }, xml("error", { type: "auth" }, xml(options.pushError, { xmlns: STANZAS }))),
          });
        }
        return xml("iq", { type: "result" });
      },
    },
    jidOf: (a: Address) => `${a.kind === "contact" ? a.contact : "x"}@test.localhost`,
    addressOf: (local: string): Address | undefined => (local.startsWith("#") ? { kind: "room", room: local } : { kind: "contact", contact: local }),
  };
  return { net: net as unknown as Network, sent, iqs, privileges };
}

const item = (iq: Element) => iq.getChild("query", "jabber:iq:roster")!.getChild("item")!;

describe("the contact ledger", () => {
  it("adds once, moves a re-added contact last, and drops the oldest beyond the cap", () => {
    let l: Ledger = [];
    l = ledgerAdd(l, "a", "roster", 3);
    l = ledgerAdd(l, "b", "subscription", 3);
    l = ledgerAdd(l, "a", "subscription", 3);
    expect(l).toEqual([
      ["b", "subscription"],
      ["a", "subscription"],
    ]);
    l = ledgerAdd(l, "c", "roster", 3);
    l = ledgerAdd(l, "d", "roster", 3);
    expect(l.map(([c]) => c)).toEqual(["a", "c", "d"]);
    expect(ledgerHas(l, "b")).toBe(false);
    expect(ledgerHas(l, "d")).toBe(true);
  });

  it("reads a malformed stored value as empty and keeps only well-formed entries", () => {
    expect(readLedger(undefined)).toEqual([]);
    expect(readLedger({ a: 1 })).toEqual([]);
    expect(readLedger([["a", "roster"], ["b", "other"], [3, "roster"], "c"])).toEqual([["a", "roster"]]);
  });
});

describe("ensureContact", () => {
  let store: Store;
  beforeEach(async () => {
    store = await openStore({ url: "memory:" });
  });
  afterEach(() => store.close());

  it("without a grant: one subscription request with the nick, once per contact, remembered in the store", async () => {
    const f = fakeNet(store);
    await ensureContact(f.net, USER, "nurse", "The Nurse");
    await ensureContact(f.net, USER, "nurse", "The Nurse");
    expect(f.iqs).toEqual([]);
    expect(f.sent).toHaveLength(1);
    expect(f.sent[0]!.attrs).toMatchObject({ type: "subscribe", from: "nurse@test.localhost", to: USER });
    expect(f.sent[0]!.getChildText("nick", "http://jabber.org/protocol/nick")).toBe("The Nurse");
    expect(await store.scoped(USER, "test").get(LEDGER_KEY)).toEqual([["nurse", "subscription"]]);

    // A fresh process (no in-memory cache) on the same store does not ask again.
    const restarted = fakeNet(store);
    await ensureContact(restarted.net, USER, "nurse", "The Nurse");
    expect(restarted.sent).toEqual([]);
    // Another user is another roster.
    await ensureContact(restarted.net, "juliet@localhost", "nurse", "The Nurse");
    expect(restarted.sent.map((p) => p.attrs.to)).toEqual(["juliet@localhost"]);
  });

  it("with roster set/both: one roster push (both, name, network group) and no subscription request", async () => {
    const f = fakeNet(store, { grant: "both" });
    await ensureContact(f.net, USER, "nurse", "The Nurse");
    await ensureContact(f.net, USER, "nurse", "The Nurse");
    expect(f.sent).toEqual([]);
    expect(f.iqs).toHaveLength(1);
    expect(f.iqs[0]!.attrs).toMatchObject({ type: "set", to: USER, from: "test.localhost" });
    expect(item(f.iqs[0]!).attrs).toMatchObject({ jid: "nurse@test.localhost", name: "The Nurse", subscription: "both" });
    expect(item(f.iqs[0]!).getChildText("group")).toBe("Test network");
    expect(await store.scoped(USER, "test").get(LEDGER_KEY)).toEqual([["nurse", "roster"]]);
  });

  it("with only roster get, or for a user of another server, asks to subscribe", async () => {
    const f = fakeNet(store, { grant: "get" });
    await ensureContact(f.net, USER, "nurse");
    const g = fakeNet(store, { grant: "both" });
    await ensureContact(g.net, "mercutio@elsewhere.example", "nurse");
    expect([...f.iqs, ...g.iqs]).toEqual([]);
    expect([...f.sent, ...g.sent].map((p) => p.attrs.type)).toEqual(["subscribe", "subscribe"]);
  });

  it("falls back to a subscription request when the server refuses the push, and stops pushing after forbidden", async () => {
    const f = fakeNet(store, { grant: "both", pushError: "forbidden" });
    await ensureContact(f.net, USER, "nurse", "The Nurse");
    expect(f.iqs).toHaveLength(1);
    expect(f.sent.map((p) => p.attrs.type)).toEqual(["subscribe"]);
    expect(f.privileges.canSetRoster(USER)).toBe(false);
    await ensureContact(f.net, USER, "tybalt");
    expect(f.iqs).toHaveLength(1);
    expect(await store.scoped(USER, "test").get(LEDGER_KEY)).toEqual([
      ["nurse", "subscription"],
      ["tybalt", "subscription"],
    ]);
  });

  it("keeps the grant after another failure (one user's push timing out is not a revocation)", async () => {
    const f = fakeNet(store, { grant: "set", pushError: "remote-server-timeout" });
    await ensureContact(f.net, USER, "nurse");
    expect(f.sent.map((p) => p.attrs.type)).toEqual(["subscribe"]);
    expect(f.privileges.canSetRoster(USER)).toBe(true);
  });
});

describe("removeContacts", () => {
  let store: Store;
  beforeEach(async () => {
    store = await openStore({ url: "memory:" });
  });
  afterEach(() => store.close());

  it("removes pushed items, cancels requested subscriptions, and forgets them", async () => {
    const f = fakeNet(store, { grant: "both" });
    await ensureContact(f.net, USER, "nurse", "The Nurse");
    await store.scoped(USER, "test").set(LEDGER_KEY, [...readLedger(await store.scoped(USER, "test").get(LEDGER_KEY)), ["tybalt", "subscription"]]);
    f.iqs.length = 0;

    await removeContacts(f.net, USER);
    expect(f.iqs.map((iq) => item(iq).attrs)).toEqual([{ jid: "nurse@test.localhost", subscription: "remove" }]);
    expect(f.sent.map((p) => [p.attrs.from, p.attrs.type])).toEqual([
      ["tybalt@test.localhost", "unsubscribed"],
      ["tybalt@test.localhost", "unsubscribe"],
    ]);
    expect(await store.scoped(USER, "test").get(LEDGER_KEY)).toBeUndefined();

    // Forgotten, in memory too: seen again, the contact is added again.
    await ensureContact(f.net, USER, "nurse", "The Nurse");
    expect(f.iqs).toHaveLength(2);
  });

  it("cancels subscriptions of pushed items when the grant is gone", async () => {
    const f = fakeNet(store, { grant: "both" });
    await ensureContact(f.net, USER, "nurse");
    f.privileges.clear();
    await removeContacts(f.net, USER);
    expect(f.iqs).toHaveLength(1); // the original push only
    expect(f.sent.map((p) => p.attrs.type)).toEqual(["unsubscribed", "unsubscribe"]);
  });
});

describe("takeSubscribed", () => {
  let store: Store;
  beforeEach(async () => {
    store = await openStore({ url: "memory:" });
  });
  afterEach(() => store.close());

  const subscribed = (from: string, to: string) => xml("presence", { from, to, type: "subscribed" });

  it("answers the user's approval with subscribed and the contact's last presence", () => {
    const f = fakeNet(store);
    notePresence(f.net, USER, "nurse", { show: "dnd", status: "Busy", name: "The Nurse" });
    expect(takeSubscribed(f.net, subscribed(`${USER}/phone`, "nurse@test.localhost"))).toBe(true);
    expect(f.sent.map((p) => p.attrs.type ?? "available")).toEqual(["subscribed", "available"]);
    expect(f.sent[1]!.attrs).toMatchObject({ from: "nurse@test.localhost", to: USER });
    expect(f.sent[1]!.getChildText("show")).toBe("dnd");
    expect(f.sent[1]!.getChildText("status")).toBe("Busy");
  });

  it("answers subscribed alone when no presence is known, and leaves other stanzas to the normal path", () => {
    const f = fakeNet(store);
    expect(takeSubscribed(f.net, subscribed(USER, "tybalt@test.localhost"))).toBe(true);
    expect(f.sent.map((p) => p.attrs.type)).toEqual(["subscribed"]);
    f.sent.length = 0;
    expect(takeSubscribed(f.net, subscribed("banned@localhost", "nurse@test.localhost"))).toBe(false);
    expect(takeSubscribed(f.net, subscribed(USER, "test.localhost"))).toBe(false);
    expect(takeSubscribed(f.net, subscribed(USER, "#verona@test.localhost"))).toBe(false);
    expect(takeSubscribed(f.net, subscribed(USER, "nurse@other.localhost"))).toBe(false);
    expect(takeSubscribed(f.net, xml("presence", { from: USER, to: "nurse@test.localhost", type: "subscribe" }))).toBe(false);
    expect(f.sent).toEqual([]);
  });
});

describe("XEP-0356 privilege advertisements", () => {
  const advert = (from: string, ns: string, perms: Record<string, string>) =>
    xml("message", { from, to: "test.localhost" }, xml("privilege", { xmlns: ns }, ...Object.entries(perms).map(([access, type]) => xml("perm", { access, type }))));

  it("reads the roster permission in both namespace versions, from a bare server domain only", () => {
    expect(parsePrivilegeMessage(advert("localhost", "urn:xmpp:privilege:2", { roster: "both", message: "outgoing" }))).toEqual({ server: "localhost", roster: "both" });
    expect(parsePrivilegeMessage(advert("Localhost", "urn:xmpp:privilege:1", { roster: "set" }))).toEqual({ server: "localhost", roster: "set" });
    expect(parsePrivilegeMessage(advert("localhost", "urn:xmpp:privilege:2", { presence: "roster" }))).toEqual({ server: "localhost", roster: "none" });
    expect(parsePrivilegeMessage(advert("localhost", "urn:xmpp:privilege:2", { roster: "everything" }))).toEqual({ server: "localhost", roster: "none" });
    expect(parsePrivilegeMessage(advert("mallory@localhost", "urn:xmpp:privilege:2", { roster: "both" }))).toBeUndefined();
    expect(parsePrivilegeMessage(advert("localhost/res", "urn:xmpp:privilege:2", { roster: "both" }))).toBeUndefined();
    expect(parsePrivilegeMessage(advert("localhost", "urn:example:other", { roster: "both" }))).toBeUndefined();
  });

  it("keeps grants per server, replaces them on a new advertisement, and forgets them when the stream drops", () => {
    const link = new EventEmitter();
    const p = new Privileges(link as never);
    p.apply({ server: "localhost", roster: "both" });
    p.apply({ server: "example.org", roster: "get" });
    expect(p.canSetRoster("romeo@localhost")).toBe(true);
    expect(p.canSetRoster("romeo@example.org")).toBe(false);
    p.apply({ server: "localhost", roster: "none" });
    expect(p.canSetRoster("romeo@localhost")).toBe(false);
    p.apply({ server: "localhost", roster: "set" });
    link.emit("state", "online");
    expect(p.canSetRoster("romeo@localhost")).toBe(true);
    link.emit("state", "offline");
    expect(p.rosterAccess("localhost")).toBe("none");
    expect(p.rosterAccess("example.org")).toBe("none");
  });
});
