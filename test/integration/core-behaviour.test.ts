/**
 * Core behaviour as real clients and admins exercise it, at the edges of the
 * specifications: XEP-0077 cancellation and re-registration, XEP-0050
 * session handling, XEP-0045 presence updates and rejoins, RFC 6121
 * subscription approval. Real Prosody, test adapter, real XMPP clients.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { xml } from "@xmpp/client";
import type { Element } from "@xmpp/xml";
import { startProsody, type ProsodyHandle } from "../support/prosody.ts";
import { connectClient, type TestClient } from "../support/xmpp-client.ts";
import { startTestGateway } from "../support/gateway.ts";
import { TestNetwork } from "../support/test-adapter.ts";
import { mucStatusCodes, NS_MUC, NS_REGISTER, registerIq, submitForm } from "../support/stanzas.ts";
import { waitFor } from "../support/wait.ts";
import type { Gateway } from "../../core/gateway.ts";

const GW = "test.localhost";
const NS_CMD = "http://jabber.org/protocol/commands";

describe("core behaviour at the edges of the specifications", () => {
  let prosody: ProsodyHandle;
  let gateway: Gateway;
  let net: TestNetwork;
  let romeo: TestClient;
  let juliet: TestClient;

  /** Registers the client's user and brings it online to the gateway (XEP-0100 §4.1, §4.4). */
  async function registerOnline(c: TestClient, username: string): Promise<void> {
    await c.iq(registerIq(GW, { username, password: "pw" }));
    await c.send(xml("presence", { to: GW, type: "subscribed" }));
    await c.send(xml("presence", { to: GW }));
    await waitFor(() => net.sessions.get(c.bare), { what: `${c.bare} logged in` });
  }

  async function join(c: TestClient, room: string, nick: string): Promise<void> {
    await c.send(xml("presence", { to: `${room}@${GW}/${nick}` }, xml("x", { xmlns: NS_MUC })));
    await c.waitFor((s) => s.name === "presence" && s.attrs.from === `${room}@${GW}/${nick}` && mucStatusCodes(s).includes("110"));
    await c.waitFor((s) => s.name === "message" && s.attrs.from?.startsWith(`${room}@${GW}`) === true && s.getChild("subject") !== undefined);
  }

  const command = (c: TestClient, attrs: Record<string, string>, ...children: Element[]) =>
    c.iq(xml("iq", { type: "set", to: GW }, xml("command", { xmlns: NS_CMD, ...attrs }, ...children)));

  /** The application-specific condition of a XEP-0050 error (§4.4). */
  const commandCondition = (err: { element?: Element }) => err.element?.getChildElements().find((c) => c.attrs.xmlns === NS_CMD)?.name;

  beforeAll(async () => {
    prosody = await startProsody({
      components: [{ domain: GW, secret: "s3cret" }],
      users: [
        { username: "romeo", password: "pw" },
        { username: "juliet", password: "pw" },
      ],
    });
    net = new TestNetwork();
    gateway = await startTestGateway({ xmppPort: prosody.componentPort, networks: { test: { domain: GW, secret: "s3cret" } }, adapters: { test: () => net.adapter() } });
    [romeo, juliet] = await Promise.all([connectClient(prosody, "romeo", "pw"), connectClient(prosody, "juliet", "pw")]);
    await registerOnline(romeo, "romeo");
  });

  afterAll(async () => {
    await Promise.all([romeo?.stop(), juliet?.stop()]);
    await gateway?.stop();
    await prosody?.stop();
  });

  it("XEP-0077 §3.2: refuses <remove/> with other elements (bad-request) and from someone not registered (registration-required)", async () => {
    const remove = (c: TestClient, ...extra: Element[]) => c.iq(xml("iq", { type: "set", to: GW }, xml("query", { xmlns: NS_REGISTER }, xml("remove"), ...extra)));
    await expect(remove(romeo, xml("username", {}, "romeo"))).rejects.toMatchObject({ condition: "bad-request" });
    expect(await gateway.store.registrations.get("romeo@localhost", "test")).toBeDefined();
    await expect(remove(juliet)).rejects.toMatchObject({ condition: "registration-required" });
  });

  it("XEP-0050 §4.4: an unknown or someone else's session is bad-sessionid; prev is bad-action and the session survives to completion", async () => {
    const unknown = await command(romeo, { node: "status", sessionid: "no-such-session" }).catch((e: { condition?: string; element?: Element }) => e);
    expect(unknown).toMatchObject({ condition: "bad-request" });
    expect(commandCondition(unknown as { element?: Element })).toBe("bad-sessionid");

    const first = await command(romeo, { node: "register", action: "execute" });
    const sid = first.getChild("command")!.attrs.sessionid!;
    // Juliet cannot take over Romeo's session, and trying does not end it.
    const hijack = await command(juliet, { node: "register", sessionid: sid }, submitForm({ username: "juliet", password: "x" })).catch((e: { element?: Element }) => e);
    expect(commandCondition(hijack as { element?: Element })).toBe("bad-sessionid");
    // Single-stage forms offer only complete: prev is refused, and the session stays.
    const prev = await command(romeo, { node: "register", sessionid: sid, action: "prev" }).catch((e: { condition?: string; element?: Element }) => e);
    expect(prev).toMatchObject({ condition: "bad-request" });
    expect(commandCondition(prev as { element?: Element })).toBe("bad-action");
    const nonsense = await command(romeo, { node: "register", sessionid: sid, action: "rewind" }).catch((e: { element?: Element }) => e);
    expect(commandCondition(nonsense as { element?: Element })).toBe("malformed-action");
    // A refused submission (missing field) can be corrected in the same session.
    await expect(command(romeo, { node: "register", sessionid: sid, action: "complete" }, submitForm({ username: "" }))).rejects.toMatchObject({ condition: "not-acceptable" });
    const done = await command(romeo, { node: "register", sessionid: sid, action: "complete" }, submitForm({ username: "romeo", password: "" }));
    expect(done.getChild("command")?.attrs.status).toBe("completed");
    // Completed: the session is gone.
    const again = await command(romeo, { node: "register", sessionid: sid, action: "cancel" }).catch((e: { element?: Element }) => e);
    expect(commandCondition(again as { element?: Element })).toBe("bad-sessionid");
  });

  it("XEP-0045 §7.7: a presence update in a room is reflected to the occupant; a join presence from a joined resource replays the room", async () => {
    await waitFor(() => net.sessions.get("romeo@localhost"), { what: "romeo logged in" });
    await join(romeo, "#plaza", "romeo");
    await romeo.send(xml("presence", { to: `#plaza@${GW}/romeo` }, xml("show", {}, "away"), xml("status", {}, "at lunch")));
    const update = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `#plaza@${GW}/romeo`);
    expect(update.attrs.type).toBeUndefined();
    expect(update.getChildText("show")).toBe("away");
    expect(update.getChildText("status")).toBe("at lunch");
    expect(mucStatusCodes(update)).toContain("110");
    expect((await net.waitForSent((r) => r.op === "presence" && (r.value as { show?: string }).show === "away")).user).toBe("romeo@localhost");

    // A client that lost track of the room (it sends the MUC join again) gets the whole room again.
    romeo.inbox.length = 0;
    await romeo.send(xml("presence", { to: `#plaza@${GW}/romeo` }, xml("x", { xmlns: NS_MUC })));
    await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `#plaza@${GW}/alice`);
    const self = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `#plaza@${GW}/romeo`);
    expect(mucStatusCodes(self)).toEqual(expect.arrayContaining(["110"]));
    const subject = await romeo.waitFor((s) => s.name === "message" && s.getChild("subject") !== undefined);
    expect(subject.getChildText("subject")).toBe("Welcome to #plaza");
    // One network membership: the rejoin did not join the network again.
    expect(net.log.filter((r) => r.op === "leave")).toEqual([]);
  });

  it("RFC 6121 §3.1.5: approving a subscription to a contact is followed by the contact's presence", async () => {
    net.emit("romeo@localhost", { type: "presence", contact: "tybalt", show: "dnd", status: "duelling" });
    await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `tybalt@${GW}`);
    romeo.inbox.length = 0;
    await romeo.send(xml("presence", { to: `tybalt@${GW}`, type: "subscribe" }));
    // (Prosody turns the "subscribed" into a roster push; the presence after it reaches the client.)
    const p = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `tybalt@${GW}` && s.attrs.type === undefined);
    expect(p.getChildText("show")).toBe("dnd");
    expect(p.getChildText("status")).toBe("duelling");
  });

  it("re-registering through the ad-hoc command while online: joined rooms are told they ended (333) and the user is logged in again", async () => {
    const before = net.sessions.get("romeo@localhost");
    expect(before).toBeDefined();
    expect(gateway.networks.get("test")!.rooms.list("romeo@localhost").map((r) => r.room)).toContain("#plaza");
    romeo.inbox.length = 0;
    const first = await command(romeo, { node: "register", action: "execute" });
    const sid = first.getChild("command")!.attrs.sessionid!;
    await command(romeo, { node: "register", sessionid: sid }, submitForm({ username: "romeo-renamed", password: "" }));
    const closed = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `#plaza@${GW}/romeo` && s.attrs.type === "unavailable");
    expect(mucStatusCodes(closed)).toEqual(expect.arrayContaining(["110", "333"]));
    // A new session with the new settings, without the user having to come online again.
    await waitFor(() => {
      const s = net.sessions.get("romeo@localhost");
      return s !== undefined && s !== before ? s : undefined;
    }, { what: "romeo logged in again" });
    expect(net.sessions.get("romeo@localhost")!.registration.username).toBe("romeo-renamed");
    expect(gateway.networks.get("test")!.rooms.list("romeo@localhost")).toEqual([]);
  });

  it("XEP-0077 §3.2: unregistering while in a room tells the room's resources they are out", async () => {
    await join(romeo, "#market", "romeo");
    romeo.inbox.length = 0;
    await romeo.iq(xml("iq", { type: "set", to: GW }, xml("query", { xmlns: NS_REGISTER }, xml("remove"))));
    const closed = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `#market@${GW}/romeo` && s.attrs.type === "unavailable");
    expect(mucStatusCodes(closed)).toEqual(expect.arrayContaining(["110", "333"]));
    expect(net.sessions.has("romeo@localhost")).toBe(false);
  });
});
