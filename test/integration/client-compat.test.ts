/**
 * What the XMPP clients people use (Conversations, Gajim, Dino, Monal,
 * Cheogram, Movim) send to a gateway room, on a real Prosody, and what the
 * specs say the room answers: joins with a show and a history request,
 * XEP-0410 self-pings, two resources in one room, rejoining without leaving,
 * nick changes, XEP-0421 occupant-ids, and MAM (XEP-0313) catch-up and
 * paging the way these clients do it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { xml } from "@xmpp/client";
import type { Element } from "@xmpp/xml";
import { startProsody, type ProsodyHandle } from "../support/prosody.ts";
import { connectClient, type TestClient } from "../support/xmpp-client.ts";
import { startTestGateway } from "../support/gateway.ts";
import { TestNetwork } from "../support/test-adapter.ts";
import { mucStatusCodes, NS_MUC, NS_MUC_USER, registerIq } from "../support/stanzas.ts";
import { waitFor } from "../support/wait.ts";
import type { Gateway } from "../../core/gateway.ts";
import { plain } from "../../core/format/model.ts";

const GW = "test.localhost";
const USER = "romeo@localhost";
const MAM = "urn:xmpp:mam:2";
const RSM = "http://jabber.org/protocol/rsm";
const FWD = "urn:xmpp:forward:0";
const OCCUPANT_ID = "urn:xmpp:occupant-id:0";
const room = (name: string) => `#${name}@${GW}`;

describe("gateway rooms as real clients use them", () => {
  let prosody: ProsodyHandle;
  let net: TestNetwork;
  let gateway: Gateway;
  let phone: TestClient;
  let laptop: TestClient;
  let queries = 0;

  const say = (name: string, id: string, text: string, extra: { nick?: string; at?: Date } = {}) =>
    net.emit(USER, {
      type: "message",
      chat: { kind: "room", room: `#${name}` },
      from: { nick: extra.nick ?? "alice", contact: extra.nick ?? "alice" },
      id,
      text: plain(text),
      ...(extra.at ? { at: extra.at } : {}),
    });
  const isSubject = (name: string) => (s: Element) => s.name === "message" && s.attrs.from?.startsWith(room(name)) === true && s.getChild("subject") !== undefined;
  const selfPresence = (c: TestClient, name: string, nick = "romeo") =>
    c.waitFor((s) => s.name === "presence" && s.attrs.from === `${room(name)}/${nick}` && mucStatusCodes(s).includes("110"));
  /** A MUC join as clients send it; resolves with everything the room sent up to the subject, in order. */
  const join = async (c: TestClient, name: string, opts: { nick?: string; history?: Record<string, string>; children?: Element[] } = {}): Promise<Element[]> => {
    c.inbox.length = 0;
    await c.send(
      xml(
        "presence",
        { to: `${room(name)}/${opts.nick ?? "romeo"}` },
        ...(opts.children ?? []),
        xml("x", { xmlns: NS_MUC }, opts.history ? xml("history", opts.history) : undefined),
      ),
    );
    const subject = await c.waitFor(isSubject(name));
    const before = c.inbox.splice(0, c.inbox.length);
    return [...before.filter((s) => s.attrs.from?.startsWith(room(name)) === true), subject];
  };
  const leave = async (c: TestClient, name: string, nick = "romeo") => {
    await c.send(xml("presence", { to: `${room(name)}/${nick}`, type: "unavailable" }));
    return c.waitFor((s) => s.name === "presence" && s.attrs.type === "unavailable" && s.attrs.from === `${room(name)}/${nick}`);
  };
  const historyBodies = (stanzas: Element[]) =>
    stanzas.filter((s) => s.name === "message" && s.getChild("delay", "urn:xmpp:delay") !== undefined).map((s) => s.getChildText("body"));
  /** One MAM query to a room: the result messages (in order) and the <fin/>. */
  const mam = async (c: TestClient, name: string, opts: { form?: Record<string, string>; rsm?: Element[]; flip?: boolean } = {}) => {
    const queryid = `q${++queries}`;
    const form = opts.form
      ? xml(
          "x",
          { xmlns: "jabber:x:data", type: "submit" },
          xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, MAM)),
          ...Object.entries(opts.form).map(([k, v]) => xml("field", { var: k }, xml("value", {}, v))),
        )
      : undefined;
    const res = await c.iq(
      xml("iq", { type: "set", to: room(name) }, xml("query", { xmlns: MAM, queryid }, form, opts.rsm ? xml("set", { xmlns: RSM }, ...opts.rsm) : undefined)),
    );
    const results: Element[] = [];
    for (;;) {
      const i = c.inbox.findIndex((s) => s.getChild("result", MAM)?.attrs.queryid === queryid);
      if (i < 0) break;
      results.push(c.inbox.splice(i, 1)[0]!);
    }
    const forwarded = results.map((r) => r.getChild("result", MAM)!.getChild("forwarded", FWD)!.getChild("message")!);
    return {
      ids: results.map((r) => r.getChild("result", MAM)!.attrs.id!),
      bodies: forwarded.map((m) => m.getChildText("body")),
      forwarded,
      fin: res.getChild("fin", MAM)!,
      set: res.getChild("fin", MAM)!.getChild("set", RSM),
    };
  };
  const mamError = (c: TestClient, name: string, opts: Parameters<typeof mam>[2]) =>
    mam(c, name, opts).then(
      () => "no error",
      (e: { condition?: string }) => e.condition,
    );

  beforeAll(async () => {
    prosody = await startProsody({ components: [{ domain: GW, secret: "s" }], users: [{ username: "romeo", password: "pw" }] });
    net = new TestNetwork();
    gateway = await startTestGateway({
      xmppPort: prosody.componentPort,
      networks: { test: { domain: GW, secret: "s" } },
      adapters: { test: () => net.adapter() },
    });
    [phone, laptop] = await Promise.all([connectClient(prosody, "romeo", "pw", "phone"), connectClient(prosody, "romeo", "pw", "laptop")]);
    await phone.iq(registerIq(GW, { username: "romeo", password: "pw" }));
    await phone.send(xml("presence", { to: GW }));
    await waitFor(() => net.sessions.get(USER), { what: "romeo logged in" });
  });

  afterAll(async () => {
    await Promise.all([phone?.stop(), laptop?.stop()]);
    await gateway?.stop();
    await prosody?.stop();
  });

  it("XEP-0045 §7.2.3: a join carrying <show>away</show> and a status gets its first self-presence with them; maxstanzas='0' means no history", async () => {
    const joined = await join(phone, "garden", { history: { maxstanzas: "0" }, children: [xml("show", {}, "away"), xml("status", {}, "in the orchard")] });
    const self = joined.find((s) => s.name === "presence" && mucStatusCodes(s).includes("110"))!;
    expect(self.getChildText("show")).toBe("away");
    expect(self.getChildText("status")).toBe("in the orchard");
    expect(mucStatusCodes(self)).toEqual(expect.arrayContaining(["100", "110"]));
    expect(self.getChild("x", NS_MUC_USER)?.getChild("item")?.attrs.jid).toBe(phone.jid);
    // The occupants before the self-presence, then the subject (XEP-0045 §7.2.3 – §7.2.15).
    const order = joined.map((s) => (s.name === "presence" ? s.attrs.from!.split("/")[1] : "subject"));
    expect(order).toEqual(["alice", "bob", "romeo", "subject"]);
    expect(historyBodies(joined)).toEqual([]);
  });

  it("XEP-0045 §7.7: a presence change sent while the network is still answering the join is reflected once the join is done", async () => {
    const release = net.holdJoin("#orchard");
    phone.inbox.length = 0;
    await phone.send(xml("presence", { to: `${room("orchard")}/romeo` }, xml("x", { xmlns: NS_MUC }), xml("show", {}, "away")));
    await net.waitForSent((r) => r.op === "join" && r.chat?.kind === "room" && r.chat.room === "#orchard");
    // The client changes its availability before the room answered (Conversations does on screen-off).
    await phone.send(xml("presence", { to: `${room("orchard")}/romeo` }, xml("show", {}, "dnd"), xml("status", {}, "in a meeting")));
    release();
    // The user's stanzas to one room are handled in order: the join completes with the show it
    // carried, then the change is reflected to the occupant (§7.7), so the client ends on it.
    const first = await selfPresence(phone, "orchard");
    expect(first.getChildText("show")).toBe("away");
    const latest = await phone.waitFor((s) => s !== first && s.name === "presence" && s.attrs.from === `${room("orchard")}/romeo` && mucStatusCodes(s).includes("110"));
    expect(latest.getChildText("show")).toBe("dnd");
    expect(latest.getChildText("status")).toBe("in a meeting");
    // The change did not become a second network join.
    expect(net.log.filter((r) => r.op === "join" && r.chat?.kind === "room" && r.chat.room === "#orchard")).toHaveLength(1);
  });

  it("XEP-0421: every presence the room sends carries one stable occupant-id, the user's own included", async () => {
    const joined = await join(phone, "garden", { history: { maxstanzas: "0" } });
    const ids = new Map(joined.filter((s) => s.name === "presence").map((s) => [s.attrs.from!, s.getChildren("occupant-id", OCCUPANT_ID).map((o) => o.attrs.id)]));
    for (const [from, list] of ids) expect(list, from).toHaveLength(1);
    const self = ids.get(`${room("garden")}/romeo`)![0];
    expect(new Set([...ids.values()].map((l) => l[0])).size).toBe(3);
    // Stable: the same after a presence update.
    await phone.send(xml("presence", { to: `${room("garden")}/romeo` }, xml("show", {}, "dnd")));
    const update = await selfPresence(phone, "garden");
    expect(update.getChild("occupant-id", OCCUPANT_ID)?.attrs.id).toBe(self);
  });

  it("XEP-0421 §4: live messages carry the sender's occupant-id; the room replaces one a client forged in its own message", async () => {
    const joined = await join(phone, "garden", { history: { maxstanzas: "0" } });
    const idOf = (nick: string) =>
      joined.find((s) => s.name === "presence" && s.attrs.from === `${room("garden")}/${nick}`)?.getChild("occupant-id", OCCUPANT_ID)?.attrs.id;
    expect(idOf("alice")).toBeDefined();

    say("garden", "oid-1", "Alice speaks with her own id");
    const fromAlice = await phone.waitFor((s) => s.getChildText("body") === "Alice speaks with her own id");
    expect(fromAlice.getChildren("occupant-id", OCCUPANT_ID).map((o) => o.attrs.id)).toEqual([idOf("alice")]);

    await phone.send(
      xml("message", { type: "groupchat", to: room("garden"), id: "forged-oid" }, xml("body", {}, "I claim to be Alice"), xml("occupant-id", { xmlns: OCCUPANT_ID, id: idOf("alice") })),
    );
    const reflected = await phone.waitFor((s) => s.attrs.id === "forged-oid" && s.attrs.from === `${room("garden")}/romeo`);
    expect(reflected.getChildren("occupant-id", OCCUPANT_ID).map((o) => o.attrs.id)).toEqual([idOf("romeo")]);
    expect(idOf("romeo")).not.toBe(idOf("alice"));
  });

  it("XEP-0045 §6.4: the room's muc#roominfo fields are the user's view of it (occupants with the user, subject)", async () => {
    const rooms = gateway.networks.get("test")!.rooms;
    expect(rooms.roomInfo(USER, "#garden")).toEqual({ occupants: 3, subject: "Welcome to #garden" });
    expect(rooms.roomInfo(USER, "#nowhere")).toEqual({});
    // What a client reads: the XEP-0128 form in the room's disco#info; the test network has no moderation.
    const info = (await phone.iq(xml("iq", { type: "get", to: room("garden") }, xml("query", { xmlns: "http://jabber.org/protocol/disco#info" })))).getChild("query")!;
    const form = info.getChildren("x", "jabber:x:data").find((x) => x.getChildren("field").some((f) => f.attrs.var === "FORM_TYPE" && f.getChildText("value") === "http://jabber.org/protocol/muc#roominfo"));
    const value = (v: string) => form?.getChildren("field").find((f) => f.attrs.var === v)?.getChildText("value");
    expect(value("muc#roominfo_occupants")).toBe("3");
    expect(value("muc#roominfo_subject")).toBe("Welcome to #garden");
    expect(info.getChildren("feature").map((f) => f.attrs.var)).not.toContain("urn:xmpp:message-moderate:1");
  });

  it("XEP-0410: a self-ping from a joined resource is answered; from a resource that is not joined it is not-acceptable", async () => {
    await expect(phone.iq(xml("iq", { type: "get", to: `${room("garden")}/romeo` }, xml("ping", { xmlns: "urn:xmpp:ping" })))).resolves.toBeDefined();
    await expect(laptop.iq(xml("iq", { type: "get", to: `${room("garden")}/romeo` }, xml("ping", { xmlns: "urn:xmpp:ping" })))).rejects.toMatchObject({
      condition: "not-acceptable",
    });
  });

  it("XEP-0045 §7.2: a second resource joins the same room under the same nick; each gets the traffic; one leaving keeps the network membership", async () => {
    const joined = await join(laptop, "garden", { history: { maxstanzas: "0" } });
    expect(joined.filter((s) => s.name === "presence").map((s) => s.attrs.from)).toEqual(
      expect.arrayContaining([`${room("garden")}/alice`, `${room("garden")}/bob`, `${room("garden")}/romeo`]),
    );
    say("garden", "g1", "Both of you hear this");
    await phone.waitFor((s) => s.getChildText("body") === "Both of you hear this");
    await laptop.waitFor((s) => s.getChildText("body") === "Both of you hear this");

    const gone = await leave(laptop, "garden");
    expect(mucStatusCodes(gone)).toContain("110");
    expect(gone.getChild("x", NS_MUC_USER)?.getChild("item")?.attrs.role).toBe("none");
    // The phone is still in, and the network was not left.
    say("garden", "g2", "Still here?");
    await phone.waitFor((s) => s.getChildText("body") === "Still here?");
    expect(net.log.filter((r) => r.op === "leave" && r.chat?.kind === "room" && r.chat.room === "#garden")).toEqual([]);
    expect(phone.inbox.filter((s) => s.name === "presence" && s.attrs.type === "unavailable")).toEqual([]);
  });

  it("XEP-0045 §7.2 rejoin: a join from a resource already in the room (client reconnected, server did not notice) replays the room, without a ghost", async () => {
    const joined = await join(phone, "garden", { history: { maxstanzas: "1" } });
    expect(joined.filter((s) => s.name === "presence").map((s) => s.attrs.from)).toEqual([
      `${room("garden")}/alice`,
      `${room("garden")}/bob`,
      `${room("garden")}/romeo`,
    ]);
    expect(joined.filter((s) => s.attrs.type === "unavailable")).toEqual([]);
    expect(historyBodies(joined)).toEqual(["Still here?"]);
    expect(net.log.filter((r) => r.op === "leave")).toEqual([]);
  });

  it("bookmarks autojoin after a reconnect: the old session's unavailable frees the resource, the same nick joins again with the whole room", async () => {
    await join(laptop, "garden", { history: { maxstanzas: "0" } });
    const rooms = gateway.networks.get("test")!.rooms;
    const full = laptop.jid;
    expect(rooms.isJoined(USER, "#garden", full)).toBe(true);
    await laptop.stop();
    // Prosody tells the room the resource went (RFC 6121 §4.6.3: directed presence), so no ghost stays.
    await waitFor(() => (rooms.isJoined(USER, "#garden", full) ? undefined : true), { what: "laptop gone from #garden" });
    laptop = await connectClient(prosody, "romeo", "pw", "laptop");
    const again = await join(laptop, "garden", { history: { maxstanzas: "0" } });
    expect(again.filter((s) => s.name === "presence").map((s) => s.attrs.from)).toEqual([
      `${room("garden")}/alice`,
      `${room("garden")}/bob`,
      `${room("garden")}/romeo`,
    ]);
    // The phone stayed in throughout: one network membership, never left.
    expect(net.log.filter((r) => r.op === "leave" && r.chat?.kind === "room" && r.chat.room === "#garden")).toEqual([]);
    await leave(laptop, "garden");
  });

  it("XEP-0045 §7.6: a nick change is an unavailable 303 with the new nick, then the self-presence under it, both with the same occupant-id", async () => {
    const before = (await join(phone, "garden", { history: { maxstanzas: "0" } })).find((s) => s.name === "presence" && mucStatusCodes(s).includes("110"))!;
    const id = before.getChild("occupant-id", OCCUPANT_ID)?.attrs.id;
    expect(id).toBeDefined();
    await phone.send(xml("presence", { to: `${room("garden")}/romeo2` }));
    const out = await phone.waitFor((s) => s.name === "presence" && s.attrs.type === "unavailable" && s.attrs.from === `${room("garden")}/romeo`);
    expect(mucStatusCodes(out)).toEqual(expect.arrayContaining(["303", "110"]));
    expect(out.getChild("x", NS_MUC_USER)?.getChild("item")?.attrs.nick).toBe("romeo2");
    expect(out.getChild("occupant-id", OCCUPANT_ID)?.attrs.id).toBe(id);
    const now = await selfPresence(phone, "garden", "romeo2");
    expect(now.getChild("occupant-id", OCCUPANT_ID)?.attrs.id).toBe(id);
    expect((await net.waitForSent((r) => r.op === "nick")).value).toBe("romeo2");
    // Back, for the tests after this one.
    await phone.send(xml("presence", { to: `${room("garden")}/romeo` }));
    await selfPresence(phone, "garden", "romeo");
  });

  it("XEP-0045 §7.2.1: a join without a nickname is jid-malformed, from the room's bare JID", async () => {
    await phone.send(xml("presence", { to: room("nonick") }, xml("x", { xmlns: NS_MUC })));
    const err = await phone.waitFor((s) => s.name === "presence" && s.attrs.type === "error" && s.attrs.from === room("nonick"));
    expect(err.getChild("error")?.getChild("jid-malformed")).toBeDefined();
  });

  describe("history on join and MAM, on a room with dated messages", () => {
    const day = (d: number) => new Date(Date.UTC(2020, 0, d, 12));

    beforeAll(async () => {
      await join(phone, "orchard", { history: { maxstanzas: "0" } });
      for (let d = 1; d <= 5; d++) say("orchard", `o${d}`, `day ${d}`, { at: day(d), nick: d % 2 === 0 ? "bob" : "alice" });
      await phone.waitFor((s) => s.getChildText("body") === "day 5");
      await leave(phone, "orchard");
    });

    it("XEP-0045 §7.2.14: since= sends what came after it; maxchars='0' sends nothing; no history element sends the default", async () => {
      expect(historyBodies(await join(phone, "orchard", { history: { since: "2020-01-03T00:00:00Z" } }))).toEqual(["day 3", "day 4", "day 5"]);
      await leave(phone, "orchard");
      expect(historyBodies(await join(phone, "orchard", { history: { maxchars: "0" } }))).toEqual([]);
      await leave(phone, "orchard");
      expect(historyBodies(await join(phone, "orchard", { history: { since: "2020-01-02T00:00:00Z", maxstanzas: "2" } }))).toEqual(["day 4", "day 5"]);
      await leave(phone, "orchard");
      expect(historyBodies(await join(phone, "orchard"))).toEqual(["day 1", "day 2", "day 3", "day 4", "day 5"]);
    });

    it("XEP-0421: history and MAM results carry the sender's occupant-id, the one of their presence", async () => {
      const joined = await join(phone, "orchard", { history: { maxstanzas: "5" } });
      const aliceId = joined.find((s) => s.name === "presence" && s.attrs.from === `${room("orchard")}/alice`)!.getChild("occupant-id", OCCUPANT_ID)?.attrs.id;
      const fromAlice = joined.filter((s) => s.name === "message" && s.attrs.from === `${room("orchard")}/alice` && s.getChild("body") !== undefined);
      expect(fromAlice.length).toBe(3);
      for (const m of fromAlice) expect(m.getChildren("occupant-id", OCCUPANT_ID).map((o) => o.attrs.id)).toEqual([aliceId]);
      const page = await mam(phone, "orchard", { rsm: [xml("max", {}, "1")] });
      expect(page.forwarded[0]!.getChild("occupant-id", OCCUPANT_ID)?.attrs.id).toBe(aliceId);
    });

    it("XEP-0313 §4.1.2: a start after the end selects nothing: an empty, complete page (as Prosody answers), not an error", async () => {
      const p = await mam(phone, "orchard", { form: { start: "2020-01-04T00:00:00Z", end: "2020-01-02T00:00:00Z" } });
      expect(p.ids).toEqual([]);
      expect(p.fin.attrs.complete).toBe("true");
      expect(p.set?.getChildText("count")).toBe("0");
    });

    it("XEP-0313 time range: start and end are inclusive bounds", async () => {
      const p = await mam(phone, "orchard", { form: { start: day(2).toISOString(), end: day(4).toISOString() } });
      expect(p.bodies).toEqual(["day 2", "day 3", "day 4"]);
      expect(p.fin.attrs.complete).toBe("true");
      // `stable` absent means stable (XEP-0313 §4.3.3): the archive is one database.
      expect(p.fin.attrs.stable === undefined || p.fin.attrs.stable === "true").toBe(true);
    });

    it("Conversations: <before/> empty is the last page, newest last; paging back with <before>first</before> until complete", async () => {
      const last = await mam(phone, "orchard", { rsm: [xml("max", {}, "2"), xml("before")] });
      expect(last.bodies).toEqual(["day 4", "day 5"]);
      expect(last.fin.attrs.complete).toBeUndefined();
      expect(last.set?.getChildText("count")).toBe("5");
      expect(last.set?.getChild("first")?.attrs.index).toBe("3");
      const previous = await mam(phone, "orchard", { rsm: [xml("max", {}, "2"), xml("before", {}, last.set!.getChildText("first")!)] });
      expect(previous.bodies).toEqual(["day 2", "day 3"]);
      const first = await mam(phone, "orchard", { rsm: [xml("max", {}, "2"), xml("before", {}, previous.set!.getChildText("first")!)] });
      expect(first.bodies).toEqual(["day 1"]);
      expect(first.fin.attrs.complete).toBe("true");
    });

    it("Conversations catch-up: form start plus RSM after the last stanza-id it has, forwards until complete", async () => {
      const all = await mam(phone, "orchard", {});
      const p = await mam(phone, "orchard", { form: { start: day(1).toISOString() }, rsm: [xml("max", {}, "2"), xml("after", {}, all.ids[2]!)] });
      expect(p.bodies).toEqual(["day 4", "day 5"]);
      expect(p.fin.attrs.complete).toBe("true");
      expect(p.set?.getChildText("last")).toBe(all.ids[4]);
    });

    it("XEP-0059 §2.7: <max>0</max> gives the count and no messages", async () => {
      const p = await mam(phone, "orchard", { rsm: [xml("max", {}, "0")] });
      expect(p.ids).toEqual([]);
      expect(p.set?.getChildText("count")).toBe("5");
      expect(p.set?.getChild("first")).toBeUndefined();
    });

    it("XEP-0313 §4.3.2: an RSM after/before id or an after-id the archive does not hold is item-not-found; <index/> is feature-not-implemented (XEP-0059 §2.6)", async () => {
      expect(await mamError(phone, "orchard", { rsm: [xml("after", {}, "no-such-id")] })).toBe("item-not-found");
      expect(await mamError(phone, "orchard", { rsm: [xml("before", {}, "no-such-id")] })).toBe("item-not-found");
      expect(await mamError(phone, "orchard", { form: { "after-id": "no-such-id" } })).toBe("item-not-found");
      expect(await mamError(phone, "orchard", { rsm: [xml("max", {}, "2"), xml("index", {}, "2")] })).toBe("feature-not-implemented");
    });

    it("XEP-0313 §4.1.1 in a room archive: with= an occupant JID or a real JID selects that sender's messages", async () => {
      const byNick = await mam(phone, "orchard", { form: { with: `${room("orchard")}/bob` } });
      expect(byNick.bodies).toEqual(["day 2", "day 4"]);
      const byJid = await mam(phone, "orchard", { form: { with: `alice@${GW}` } });
      expect(byJid.bodies).toEqual(["day 1", "day 3", "day 5"]);
      for (const m of byJid.forwarded) expect(m.attrs.from).toBe(`${room("orchard")}/alice`);
    });
  });
});
