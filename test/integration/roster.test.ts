/**
 * Network contacts in the user's roster, on a real Prosody 0.12:
 * - with mod_privilege granting the gateway roster access (XEP-0356), a new
 *   contact is pushed into the roster (name, group, subscription both);
 * - without it, the contact asks to subscribe (XEP-0100 §6.2) with its nick,
 *   once, and shows its presence when the user approves.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { xml } from "@xmpp/client";
import type { Element } from "@xmpp/xml";
import { startProsody, type ProsodyHandle, type ProsodyOptions } from "../support/prosody.ts";
import { connectClient, type TestClient } from "../support/xmpp-client.ts";
import { startTestGateway } from "../support/gateway.ts";
import { registerIq } from "../support/stanzas.ts";
import { waitFor } from "../support/wait.ts";
import { TestNetwork } from "../support/test-adapter.ts";
import type { Gateway } from "../../core/gateway.ts";
import type { Network } from "../../core/network.ts";

const GW = "test.localhost";
const NURSE = `nurse@${GW}`;
const NS_ROSTER = "jabber:iq:roster";
const NS_NICK = "http://jabber.org/protocol/nick";

interface Setup {
  prosody: ProsodyHandle;
  gateway: Gateway;
  net: TestNetwork;
  network: Network;
  romeo: TestClient;
}

/** Prosody, Estuary with the test network, and romeo registered and logged in to it. */
async function setUp(extra: Partial<ProsodyOptions>): Promise<Setup> {
  const prosody = await startProsody({ components: [{ domain: GW, secret: "s3cret" }], users: [{ username: "romeo", password: "pw" }], ...extra });
  const net = new TestNetwork();
  const gateway = await startTestGateway({
    xmppPort: prosody.componentPort,
    networks: { test: { domain: GW, secret: "s3cret" } },
    adapters: { test: () => net.adapter() },
  });
  const romeo = await connectClient(prosody, "romeo", "pw");
  // Roster pushes go only to resources that fetched the roster (RFC 6121 §2.1.6).
  await romeo.iq(xml("iq", { type: "get" }, xml("query", { xmlns: NS_ROSTER })));
  await romeo.iq(registerIq(GW, { username: "romeo", password: "right" }));
  await romeo.waitFor((s) => s.name === "presence" && s.attrs.type === "subscribe" && s.attrs.from === GW);
  await romeo.send(xml("presence", { to: GW, type: "subscribed" }));
  await romeo.send(xml("presence", { to: GW }));
  await waitFor(() => (net.sessions.has("romeo@localhost") ? true : undefined), { what: "romeo's session on the test network" });
  return { prosody, gateway, net, network: gateway.networks.get("test")!, romeo };
}

async function tearDown(s: Setup | undefined): Promise<void> {
  await s?.romeo.stop();
  await s?.gateway.stop();
  await s?.prosody.stop();
}

async function rosterItem(client: TestClient, jid: string): Promise<Element | undefined> {
  const res = await client.iq(xml("iq", { type: "get" }, xml("query", { xmlns: NS_ROSTER })));
  return res.getChild("query", NS_ROSTER)?.getChildren("item").find((i) => i.attrs.jid === jid);
}

const isPushFor = (jid: string) => (s: Element) =>
  s.name === "iq" && s.attrs.type === "set" && s.getChild("query", NS_ROSTER)?.getChild("item")?.attrs.jid === jid;
const isSubscribeFrom = (jid: string) => (s: Element) => s.name === "presence" && s.attrs.type === "subscribe" && s.attrs.from === jid;
const isAvailableFrom = (jid: string) => (s: Element) => s.name === "presence" && s.attrs.type === undefined && s.attrs.from === jid;

describe("contacts pushed into the roster with XEP-0356 roster permission", () => {
  let s: Setup;

  beforeAll(async () => {
    s = await setUp({ privilegedEntities: { [GW]: { roster: "both" } } });
    // mod_privilege advertises the grant in a message right after the component authenticates.
    await waitFor(() => (s.network.privileges.canSetRoster("romeo@localhost") ? true : undefined), { what: "the XEP-0356 roster grant" });
  });
  afterAll(() => tearDown(s));

  it("reads the grant the server advertised (urn:xmpp:privilege:2), for its own users only", () => {
    expect(s.network.privileges.rosterAccess("localhost")).toBe("both");
    expect(s.network.privileges.canSetRoster("someone@elsewhere.example")).toBe(false);
  });

  it("pushes a named contact into the roster once, without a subscription request", async () => {
    s.net.emit("romeo@localhost", { type: "presence", contact: "nurse", show: "available", name: "The Nurse" });
    const push = await s.romeo.waitFor(isPushFor(NURSE));
    expect(push.getChild("query", NS_ROSTER)!.getChild("item")!.attrs).toMatchObject({ name: "The Nurse", subscription: "both" });
    // The presence follows the push: a subscription request would have come before it.
    await s.romeo.waitFor(isAvailableFrom(NURSE));
    expect(s.romeo.inbox.filter(isSubscribeFrom(NURSE))).toEqual([]);

    const item = await rosterItem(s.romeo, NURSE);
    expect(item?.attrs).toMatchObject({ name: "The Nurse", subscription: "both" });
    expect(item?.getChildText("group")).toBe("Test network");

    // Seen again: no second push (the presence that follows is the marker).
    s.net.emit("romeo@localhost", { type: "presence", contact: "nurse", show: "away", name: "The Nurse" });
    await s.romeo.waitFor((p) => isAvailableFrom(NURSE)(p) && p.getChildText("show") === "away");
    expect(s.romeo.inbox.filter(isPushFor(NURSE))).toEqual([]);
  });

  it("pushes the sender of a 1:1 message too, named by their nick", async () => {
    s.net.emit("romeo@localhost", {
      type: "message",
      chat: { kind: "direct", contact: "tybalt" },
      from: { nick: "Tybalt", contact: "tybalt" },
      text: { blocks: [{ type: "line", children: [{ type: "text", text: "Boy" }] }] },
    });
    const push = await s.romeo.waitFor(isPushFor(`tybalt@${GW}`));
    expect(push.getChild("query", NS_ROSTER)!.getChild("item")!.attrs.name).toBe("Tybalt");
    await s.romeo.waitFor((m) => m.name === "message" && m.attrs.from === `tybalt@${GW}`);
  });

  it("removes the pushed items when the user unregisters", async () => {
    await s.romeo.iq(xml("iq", { type: "set", to: GW }, xml("query", { xmlns: "jabber:iq:register" }, xml("remove"))));
    const push = await s.romeo.waitFor((p) => isPushFor(NURSE)(p) && p.getChild("query", NS_ROSTER)!.getChild("item")!.attrs.subscription === "remove");
    expect(push).toBeDefined();
    await waitFor(async () => ((await rosterItem(s.romeo, `tybalt@${GW}`)) === undefined ? true : undefined), { what: "tybalt removed" });
    expect(await rosterItem(s.romeo, NURSE)).toBeUndefined();
  });
});

describe("contacts asking to subscribe without roster permission (XEP-0100 §6.2)", () => {
  let s: Setup;

  beforeAll(async () => {
    s = await setUp({});
  });
  afterAll(() => tearDown(s));

  it("has no grant from a server without mod_privilege", () => {
    expect(s.network.privileges.canSetRoster("romeo@localhost")).toBe(false);
  });

  it("asks to subscribe with the contact's nick, once, and shows its presence when approved", async () => {
    s.net.emit("romeo@localhost", { type: "presence", contact: "nurse", show: "dnd", status: "Busy", name: "The Nurse" });
    const sub = await s.romeo.waitFor(isSubscribeFrom(NURSE));
    expect(sub.getChildText("nick", NS_NICK)).toBe("The Nurse");
    await s.romeo.waitFor(isAvailableFrom(NURSE)); // the live presence sent with the request

    await s.romeo.send(xml("presence", { to: NURSE, type: "subscribed" }));
    const shown = await s.romeo.waitFor(isAvailableFrom(NURSE));
    expect(shown.getChildText("show")).toBe("dnd");
    expect(shown.getChildText("status")).toBe("Busy");
    expect((await rosterItem(s.romeo, NURSE))?.attrs.subscription).toBe("from");

    // The client also subscribes back (presence.ts approves): both ways now.
    await s.romeo.send(xml("presence", { to: NURSE, type: "subscribe" }));
    await waitFor(async () => ((await rosterItem(s.romeo, NURSE))?.attrs.subscription === "both" ? true : undefined), { what: "subscription both" });

    // Seen again: no second request before the presence that follows it.
    s.net.emit("romeo@localhost", { type: "presence", contact: "nurse", show: "available", name: "The Nurse" });
    await s.romeo.waitFor((p) => isAvailableFrom(NURSE)(p) && p.getChildText("show") === null);
    expect(s.romeo.inbox.filter(isSubscribeFrom(NURSE))).toEqual([]);
  });

  it("does not ask for a contact seen without a name (IRC away-notify of channel members)", async () => {
    s.net.emit("romeo@localhost", { type: "presence", contact: "bob", show: "away" });
    await s.romeo.waitFor((p) => isAvailableFrom(`bob@${GW}`)(p));
    expect(s.romeo.inbox.filter(isSubscribeFrom(`bob@${GW}`))).toEqual([]);
  });

  it("cancels the subscriptions when the user unregisters", async () => {
    await s.romeo.iq(xml("iq", { type: "set", to: GW }, xml("query", { xmlns: "jabber:iq:register" }, xml("remove"))));
    await waitFor(async () => ((await rosterItem(s.romeo, NURSE))?.attrs.subscription === "none" ? true : undefined), {
      what: "nurse's subscriptions cancelled",
    });
  });
});
