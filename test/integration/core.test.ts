/**
 * The core, end to end: a real Prosody with Estuary attached as a component
 * (test adapter), real XMPP clients over c2s. Reads as a user discovering the
 * gateway, registering, chatting with a remote person and joining a room.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { submitForm, mucStatusCodes } from "../support/stanzas.ts";
import { xml } from "@xmpp/client";
import type { Element } from "@xmpp/xml";
import { startProsody, type ProsodyHandle } from "../support/prosody.ts";
import { connectClient, type TestClient } from "../support/xmpp-client.ts";
import { startTestGateway } from "../support/gateway.ts";
import { waitFor } from "../support/wait.ts";
import { TestNetwork } from "../support/test-adapter.ts";
import type { Gateway } from "../../core/gateway.ts";

const GW = "test.localhost";
const NS_REGISTER = "jabber:iq:register";
const NS_DATA = "jabber:x:data";
const NS_MUC_USER = "http://jabber.org/protocol/muc#user";

describe("core gateway on a real Prosody", () => {
  let prosody: ProsodyHandle;
  let gateway: Gateway & { config: import("../../config/schema.ts").Config };
  let net: TestNetwork;
  let romeo: TestClient;
  let juliet: TestClient;

  beforeAll(async () => {
    prosody = await startProsody({
      components: [{ domain: GW, secret: "s3cret" }],
      users: [
        { username: "romeo", password: "pw" },
        { username: "juliet", password: "pw" },
        { username: "mercutio", password: "pw" },
      ],
    });
    net = new TestNetwork();
    gateway = await startTestGateway({
      xmppPort: prosody.componentPort,
      networks: { test: { domain: GW, secret: "s3cret" } },
      adapters: { test: () => net.adapter() },
      admins: ["juliet@localhost"],
    });
    [romeo, juliet] = await Promise.all([connectClient(prosody, "romeo", "pw"), connectClient(prosody, "juliet", "pw")]);
  });

  afterAll(async () => {
    await Promise.all([romeo?.stop(), juliet?.stop()]);
    await gateway?.stop();
    await prosody?.stop();
  });

  it("is discovered as a gateway with the features it implements", async () => {
    const res = await romeo.iq(xml("iq", { type: "get", to: GW }, xml("query", { xmlns: "http://jabber.org/protocol/disco#info" })));
    const q = res.getChild("query")!;
    const identities = q.getChildren("identity").map((i) => `${i.attrs.category}/${i.attrs.type}`);
    expect(identities).toContain("gateway/test");
    expect(identities).toContain("conference/text");
    const features = q.getChildren("feature").map((f) => f.attrs.var);
    expect(features).toEqual(expect.arrayContaining([NS_REGISTER, "http://jabber.org/protocol/commands", "urn:xmpp:ping"]));
  });

  it("answers ping and version, and service-unavailable to an unknown IQ", async () => {
    await expect(romeo.iq(xml("iq", { type: "get", to: GW }, xml("ping", { xmlns: "urn:xmpp:ping" })))).resolves.toBeDefined();
    const v = await romeo.iq(xml("iq", { type: "get", to: GW }, xml("query", { xmlns: "jabber:iq:version" })));
    expect(v.getChild("query")?.getChildText("name")).toBe("Estuary");
    await expect(romeo.iq(xml("iq", { type: "get", to: GW }, xml("query", { xmlns: "urn:example:nothing" })))).rejects.toMatchObject({
      condition: "service-unavailable",
    });
  });

  it("refuses messages before registration with registration-required", async () => {
    await romeo.send(xml("message", { to: `nurse@${GW}`, type: "chat", id: "early" }, xml("body", {}, "hello?")));
    const err = await romeo.waitFor((s) => s.name === "message" && s.attrs.id === "early");
    expect(err.attrs.type).toBe("error");
    expect(err.getChild("error")?.getChild("registration-required")).toBeDefined();
  });

  it("offers a registration form and refuses a wrong or incomplete one with a text", async () => {
    const res = await romeo.iq(xml("iq", { type: "get", to: GW }, xml("query", { xmlns: NS_REGISTER })));
    const vars = res.getChild("query")!.getChild("x", NS_DATA)!.getChildren("field").map((f) => f.attrs.var);
    expect(vars).toEqual(expect.arrayContaining(["username", "password"]));

    await expect(
      romeo.iq(xml("iq", { type: "set", to: GW }, xml("query", { xmlns: NS_REGISTER }, submitForm({ username: "romeo" })))),
    ).rejects.toMatchObject({ condition: "not-acceptable" });
    const wrong = romeo.iq(xml("iq", { type: "set", to: GW }, xml("query", { xmlns: NS_REGISTER }, submitForm({ username: "romeo", password: "wrong" }))));
    const e = await wrong.catch((err: { element?: Element; condition?: string }) => err);
    expect(e).toMatchObject({ condition: "not-acceptable" });
    expect((e as { element: Element }).element.getChildText("text")).toMatch(/wrong password/);
  });

  it("registers, subscribes to the user's presence and logs in when the user is online", async () => {
    await romeo.iq(xml("iq", { type: "set", to: GW }, xml("query", { xmlns: NS_REGISTER }, submitForm({ username: "romeo", password: "right" }))));
    const sub = await romeo.waitFor((s) => s.name === "presence" && s.attrs.type === "subscribe" && s.attrs.from === GW);
    expect(sub).toBeDefined();
    // The user approves and announces themselves to the gateway (what a client does on "subscribed").
    await romeo.send(xml("presence", { to: GW, type: "subscribed" }));
    await romeo.send(xml("presence", { to: GW }));
    const online = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === GW && s.attrs.type === undefined);
    expect(online.getChild("c", "http://jabber.org/protocol/caps")).toBeDefined();
    expect(net.sessions.has("romeo@localhost")).toBe(true);
    // The stored registration never shows the password back.
    const again = await romeo.iq(xml("iq", { type: "get", to: GW }, xml("query", { xmlns: NS_REGISTER })));
    expect(again.getChild("query")!.getChild("registered")).toBeDefined();
    const pw = again.getChild("query")!.getChild("x", NS_DATA)!.getChildren("field").find((f) => f.attrs.var === "password");
    expect(pw?.getChildText("value") ?? null).toBeNull();
  });

  it("carries a 1:1 conversation both ways, with corrections", async () => {
    await romeo.send(xml("message", { to: `nurse@${GW}`, type: "chat", id: "c1" }, xml("body", {}, "Good *morrow*, nurse")));
    const sent = await net.waitForSent((r) => r.op === "send" && r.chat?.kind === "direct" && r.chat.contact === "nurse");
    expect(sent.message?.text.blocks[0]).toEqual({
      type: "line",
      children: [{ type: "text", text: "Good " }, { type: "bold", children: [{ type: "text", text: "morrow" }] }, { type: "text", text: ", nurse" }],
    });
    await romeo.send(xml("message", { to: `nurse@${GW}`, type: "chat", id: "c2" }, xml("body", {}, "Good morrow, nurse!"), xml("replace", { xmlns: "urn:xmpp:message-correct:0", id: "c1" })));
    const corrected = await net.waitForSent((r) => r.op === "correct");
    expect(corrected.target).toBe(sent.target);

    net.emit("romeo@localhost", { type: "message", chat: { kind: "direct", contact: "nurse" }, from: { nick: "nurse", contact: "nurse" }, id: "n1", text: { blocks: [{ type: "line", children: [{ type: "text", text: "God ye good den" }] }] } });
    const incoming = await romeo.waitFor((s) => s.name === "message" && s.attrs.from === `nurse@${GW}` && s.getChildText("body") === "God ye good den");
    expect(incoming.attrs.type).toBe("chat");
    // XEP-0333: the client marks it displayed; the network gets a read receipt for its own id.
    await romeo.send(xml("message", { to: `nurse@${GW}`, type: "chat" }, xml("displayed", { xmlns: "urn:xmpp:chat-markers:0", id: incoming.attrs.id })));
    expect((await net.waitForSent((r) => r.op === "read")).target).toBe("n1");
    net.emit("romeo@localhost", { type: "edit", chat: { kind: "direct", contact: "nurse" }, from: { nick: "nurse", contact: "nurse" }, id: "n1", text: { blocks: [{ type: "line", children: [{ type: "text", text: "God ye good e'en" }] }] } });
    const edit = await romeo.waitFor((s) => s.name === "message" && s.getChild("replace", "urn:xmpp:message-correct:0") !== undefined);
    expect(edit.getChild("replace", "urn:xmpp:message-correct:0")!.attrs.id).toBe(incoming.attrs.id);
    expect(edit.getChildText("body")).toBe("God ye good e'en");
  });

  it("gives a contact's name in its vCard", async () => {
    const res = await romeo.iq(xml("iq", { type: "get", to: `nurse@${GW}` }, xml("vCard", { xmlns: "vcard-temp" })));
    expect(res.getChild("vCard", "vcard-temp")?.getChildText("FN")).toBe("The Nurse");
  });

  it("bounces a message the network cannot deliver with an error to the sender", async () => {
    await romeo.send(xml("message", { to: `nobody@${GW}`, type: "chat", id: "lost" }, xml("body", {}, "anyone?")));
    const err = await romeo.waitFor((s) => s.name === "message" && s.attrs.id === "lost");
    expect(err.attrs.type).toBe("error");
    expect(err.getChild("error")?.getChild("item-not-found")).toBeDefined();
    expect(err.getChild("error")?.getChildText("text")).toMatch(/nobody/);
  });

  it("joins a room: occupants, then self-presence with 110, then the subject; messages are reflected", async () => {
    await romeo.send(xml("presence", { to: `#verona@${GW}/romeo` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })));
    const self = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `#verona@${GW}/romeo`);
    expect(mucStatusCodes(self)).toContain("110");
    const idxSelf = romeo.inbox.length; // everything before self was consumed in order below
    void idxSelf;
    const alice = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `#verona@${GW}/alice`);
    expect(alice.getChild("x", NS_MUC_USER)?.getChild("item")?.attrs.role).toBe("moderator");
    const subject = await romeo.waitFor((s) => s.name === "message" && s.getChild("subject") !== undefined);
    expect(subject.getChildText("subject")).toBe("Welcome to #verona");

    await romeo.send(xml("message", { to: `#verona@${GW}`, type: "groupchat", id: "g1" }, xml("body", {}, "Hello Verona")));
    const reflected = await romeo.waitFor((s) => s.name === "message" && s.attrs.id === "g1" && s.attrs.type === "groupchat");
    expect(reflected.attrs.from).toBe(`#verona@${GW}/romeo`);
    expect(reflected.getChild("stanza-id", "urn:xmpp:sid:0")?.attrs.by).toBe(`#verona@${GW}`);
    const sent = await net.waitForSent((r) => r.op === "send" && r.chat?.kind === "room");
    expect(sent.chat).toEqual({ kind: "room", room: "#verona" });

    net.emit("romeo@localhost", { type: "message", chat: { kind: "room", room: "#verona" }, from: { nick: "alice", contact: "alice" }, id: "a1", text: { blocks: [{ type: "line", children: [{ type: "text", text: "Welcome, romeo" }] }] } });
    const fromAlice = await romeo.waitFor((s) => s.name === "message" && s.attrs.from === `#verona@${GW}/alice`);
    expect(fromAlice.getChildText("body")).toBe("Welcome, romeo");
    expect(fromAlice.getChild("stanza-id", "urn:xmpp:sid:0")?.attrs.id).toBe(fromAlice.attrs.id);
  });

  it("answers disco#info on an occupant as the person's client, not as the room (XEP-0045 §6.7)", async () => {
    const info = (to: string) => romeo.iq(xml("iq", { type: "get", to }, xml("query", { xmlns: "http://jabber.org/protocol/disco#info" })));
    const identities = (q: Element) => q.getChild("query")!.getChildren("identity").map((i) => `${i.attrs.category}/${i.attrs.type}`);
    expect(identities(await info(`#verona@${GW}`))).toEqual(["conference/text"]);
    const occupant = await info(`#verona@${GW}/alice`);
    expect(identities(occupant)).toEqual(["client/pc"]);
    expect(occupant.getChild("query")!.getChildren("feature").map((f) => f.attrs.var)).not.toContain("http://jabber.org/protocol/muc");
    expect(identities(await info(`#verona@${GW}/romeo`))).toEqual(["client/pc"]);
    await expect(info(`#verona@${GW}/nobody`)).rejects.toMatchObject({ condition: "item-not-found" });
  });

  it("survives text XML cannot carry from the network (a bell, an escape, a lone surrogate)", async () => {
    net.emit("romeo@localhost", {
      type: "message",
      chat: { kind: "room", room: "#verona" },
      from: { nick: "mallory\u0001", contact: "mallory" },
      id: "x1",
      text: { blocks: [{ type: "line", children: [{ type: "text", text: "ring\u0007 \u001b[31mred\ud800" }] }] },
    });
    net.emit("romeo@localhost", { type: "message", chat: { kind: "room", room: "#verona" }, from: { nick: "alice", contact: "alice" }, id: "x2", text: { blocks: [{ type: "line", children: [{ type: "text", text: "still here" }] }] } });
    const odd = await romeo.waitFor((s) => s.name === "message" && (s.getChildText("body") ?? "").startsWith("ring"));
    expect(odd.getChildText("body")).toBe("ring\ufffd \ufffd[31mred\ufffd");
    // As a resourcepart, the control character is a "?": the server would refuse U+FFFD there.
    expect(odd.attrs.from).toBe(`#verona@${GW}/mallory?`);
    await romeo.waitFor((s) => s.name === "message" && s.getChildText("body") === "still here");
    expect(gateway.networks.get("test")!.link.state).toBe("online");
  });

  it("tells a nick conflict with <conflict/> and a refused join with its reason", async () => {
    await romeo.send(xml("presence", { to: `#capulet@${GW}/taken` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })));
    const conflict = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `#capulet@${GW}/taken`);
    expect(conflict.attrs.type).toBe("error");
    expect(conflict.getChild("error")?.getChild("conflict")).toBeDefined();
    await romeo.send(xml("presence", { to: `#closed@${GW}/romeo` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })));
    const closed = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `#closed@${GW}/romeo`);
    expect(closed.getChild("error")?.getChild("not-allowed")).toBeDefined();
    expect(closed.getChild("error")?.getChildText("text")).toMatch(/invite only/);
  });

  it("refuses users of other domains and non-admins running admin commands", async () => {
    // juliet is allowed but not registered; the admin list applies per command.
    const cmd = (node: string, c: TestClient) =>
      c.iq(xml("iq", { type: "set", to: GW }, xml("command", { xmlns: "http://jabber.org/protocol/commands", node, action: "execute" })));
    await expect(cmd("admin/stats", romeo)).rejects.toMatchObject({ condition: "forbidden" });
    const stats = await cmd("admin/stats", juliet);
    expect(stats.getChild("command")?.attrs.status).toBe("completed");
    const fields = Object.fromEntries(
      stats.getChild("command")!.getChild("x", "jabber:x:data")!.getChildren("field").map((f) => [f.attrs.var, f.getChildText("value")]),
    );
    // Earlier tests relayed messages both ways: the counts say so.
    expect(fields["messages to the network"]).toMatch(/msg\/s \([1-9]\d* since start\)/);
    expect(fields["messages from the network"]).toMatch(/msg\/s \([1-9]\d* since start\)/);
    expect(fields.component).toBe("online");
  });

  it("lets a user configure a service through XEP-0050, never echoing the stored secret", async () => {
    const NS_CMD = "http://jabber.org/protocol/commands";
    const items = await romeo.iq(xml("iq", { type: "get", to: `net@${GW}` }, xml("query", { xmlns: "http://jabber.org/protocol/disco#items", node: NS_CMD })));
    expect(items.getChild("query")!.getChildren("item").map((i) => i.attrs.node)).toEqual(["configure"]);
    const run = async (values: Record<string, string>) => {
      const first = await romeo.iq(xml("iq", { type: "set", to: `net@${GW}` }, xml("command", { xmlns: NS_CMD, node: "configure", action: "execute" })));
      const cmd = first.getChild("command")!;
      expect(cmd.attrs.status).toBe("executing");
      const shown = Object.fromEntries(cmd.getChild("x", NS_DATA)!.getChildren("field").map((f) => [f.attrs.var, f.getChildText("value")]));
      const done = romeo.iq(
        xml("iq", { type: "set", to: `net@${GW}` }, xml("command", { xmlns: NS_CMD, node: "configure", sessionid: cmd.attrs.sessionid }, submitForm(values))),
      );
      return { shown, done };
    };
    const one = await run({ nick: "romeo_", password: "s3rv3r" });
    expect((await one.done).getChild("command")?.attrs.status).toBe("completed");
    const two = await run({ nick: "romeo__", password: "" });
    expect(two.shown).toEqual({ nick: "romeo_", password: null });
    await two.done;
    expect(await gateway.store.scoped("romeo@localhost", "test").get("server:net")).toEqual({ nick: "romeo__", password: "s3rv3r" });
    const bad = await run({ nick: "romeo the third" });
    await expect(bad.done).rejects.toMatchObject({ condition: "not-acceptable" });
  });

  it("lets an admin ban and unban a user, and announce to every user", async () => {
    const NS_CMD = "http://jabber.org/protocol/commands";
    const mercutio = await connectClient(prosody, "mercutio", "pw");
    try {
      const adminCommand = async (node: string, values: Record<string, string>) => {
        const first = await juliet.iq(xml("iq", { type: "set", to: GW }, xml("command", { xmlns: NS_CMD, node, action: "execute" })));
        const sid = first.getChild("command")!.attrs.sessionid;
        return juliet.iq(xml("iq", { type: "set", to: GW }, xml("command", { xmlns: NS_CMD, node, sessionid: sid }, submitForm(values))));
      };
      await adminCommand("admin/ban", { jid: "mercutio@localhost" });
      await expect(mercutio.iq(xml("iq", { type: "get", to: GW }, xml("query", { xmlns: NS_REGISTER })))).rejects.toMatchObject({ condition: "forbidden" });
      await adminCommand("admin/ban", { jid: "mercutio@localhost", unban: "1" });
      await expect(mercutio.iq(xml("iq", { type: "get", to: GW }, xml("query", { xmlns: NS_REGISTER })))).resolves.toBeDefined();
      // The ban list is persisted for the next start.
      expect(await gateway.store.scoped("~gateway", "core").get("banned")).toEqual([]);

      await adminCommand("admin/announce", { text: "Maintenance at dawn" });
      const note = await romeo.waitFor((s) => s.name === "message" && s.attrs.type === "headline");
      expect(note.getChildText("body")).toBe("Maintenance at dawn");
    } finally {
      await mercutio.stop();
    }
  });

  it("reloads access lists without a restart", async () => {
    gateway.reload({ ...gateway.config, access: { allow: ["localhost"], admins: [] } });
    await expect(
      juliet.iq(xml("iq", { type: "set", to: GW }, xml("command", { xmlns: "http://jabber.org/protocol/commands", node: "admin/stats", action: "execute" }))),
    ).rejects.toMatchObject({ condition: "forbidden" });
    gateway.reload(gateway.config);
  });

  it("lets an admin disconnect a user: their session closes, their registration stays", async () => {
    const NS_CMD = "http://jabber.org/protocol/commands";
    expect(net.sessions.has("romeo@localhost")).toBe(true);
    romeo.inbox.length = 0;
    const first = await juliet.iq(xml("iq", { type: "set", to: GW }, xml("command", { xmlns: NS_CMD, node: "admin/disconnect", action: "execute" })));
    const sid = first.getChild("command")!.attrs.sessionid;
    const done = await juliet.iq(xml("iq", { type: "set", to: GW }, xml("command", { xmlns: NS_CMD, node: "admin/disconnect", sessionid: sid }, submitForm({ jid: "romeo@localhost" }))));
    expect(done.getChild("command")?.getChildText("note")).toMatch(/disconnected/);
    expect(net.sessions.has("romeo@localhost")).toBe(false);
    // Romeo's roster shows the gateway offline (XEP-0100 §4.4).
    await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === GW && s.attrs.type === "unavailable");
    expect(await gateway.store.registrations.get("romeo@localhost", "test")).toBeDefined();
    // Coming online again logs the user back in.
    await romeo.send(xml("presence", { to: GW }));
    await waitFor(() => net.sessions.get("romeo@localhost"), { what: "romeo back" });
  });

  it("unregisters: the session closes and the registration is gone", async () => {
    romeo.inbox.length = 0;
    await romeo.iq(xml("iq", { type: "set", to: GW }, xml("query", { xmlns: NS_REGISTER }, xml("remove"))));
    // The gateway goes offline for the user (Prosody applies the unsubscribe to the roster itself).
    await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === GW && s.attrs.type === "unavailable");
    expect(net.sessions.has("romeo@localhost")).toBe(false);
    expect(await gateway.store.registrations.get("romeo@localhost", "test")).toBeUndefined();
  });
});
