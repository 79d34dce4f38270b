/**
 * The core conversation of core.test.ts against a real ejabberd 23.01 instead
 * of Prosody: the same gateway and test adapter, attached to ejabberd's
 * ejabberd_service listener (XEP-0114), real clients over ejabberd_c2s. What
 * differs between servers (presence routing to components, roster handling of
 * gateway subscriptions, error bouncing) is exercised here.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { submitForm, mucStatusCodes } from "../support/stanzas.ts";
import { xml } from "@xmpp/client";
import type { Element } from "@xmpp/xml";
import { startEjabberd, type EjabberdHandle } from "../support/ejabberd.ts";
import { connectClient, type TestClient } from "../support/xmpp-client.ts";
import { startTestGateway } from "../support/gateway.ts";
import { TestNetwork } from "../support/test-adapter.ts";
import { waitFor } from "../support/wait.ts";
import type { Gateway } from "../../core/gateway.ts";

const GW = "test.localhost";
const NS_REGISTER = "jabber:iq:register";
const NS_DATA = "jabber:x:data";
const NS_MUC_USER = "http://jabber.org/protocol/muc#user";

describe("core gateway on a real ejabberd", () => {
  let ejabberd: EjabberdHandle;
  let gateway: Gateway;
  let net: TestNetwork;
  let romeo: TestClient;
  let juliet: TestClient;

  beforeAll(async () => {
    ejabberd = await startEjabberd({
      components: [{ domain: GW, secret: "s3cret" }],
      users: [
        { username: "romeo", password: "pw" },
        { username: "juliet", password: "pw" },
      ],
    });
    net = new TestNetwork();
    gateway = await startTestGateway({
      xmppPort: ejabberd.componentPort,
      networks: { test: { domain: GW, secret: "s3cret" } },
      adapters: { test: () => net.adapter() },
    });
    [romeo, juliet] = await Promise.all([connectClient(ejabberd, "romeo", "pw"), connectClient(ejabberd, "juliet", "pw")]);
  }, 30_000);

  afterAll(async () => {
    await Promise.all([romeo?.stop(), juliet?.stop()]);
    await gateway?.stop();
    await ejabberd?.stop();
  }, 20_000);

  it("is discovered as a gateway with the features it implements", async () => {
    const res = await romeo.iq(xml("iq", { type: "get", to: GW }, xml("query", { xmlns: "http://jabber.org/protocol/disco#info" })));
    const q = res.getChild("query")!;
    const identities = q.getChildren("identity").map((i) => `${i.attrs.category}/${i.attrs.type}`);
    expect(identities).toContain("gateway/test");
    const features = q.getChildren("feature").map((f) => f.attrs.var);
    expect(features).toEqual(expect.arrayContaining([NS_REGISTER, "urn:xmpp:ping"]));
  });

  it("answers ping, and service-unavailable to an unknown IQ", async () => {
    await expect(romeo.iq(xml("iq", { type: "get", to: GW }, xml("ping", { xmlns: "urn:xmpp:ping" })))).resolves.toBeDefined();
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

  it("refuses a wrong registration form with a text, accepts the right one and subscribes", async () => {
    const res = await romeo.iq(xml("iq", { type: "get", to: GW }, xml("query", { xmlns: NS_REGISTER })));
    const vars = res.getChild("query")!.getChild("x", NS_DATA)!.getChildren("field").map((f) => f.attrs.var);
    expect(vars).toEqual(expect.arrayContaining(["username", "password"]));

    const wrong = romeo.iq(xml("iq", { type: "set", to: GW }, xml("query", { xmlns: NS_REGISTER }, submitForm({ username: "romeo", password: "wrong" }))));
    const e = await wrong.catch((err: { element?: Element; condition?: string }) => err);
    expect(e).toMatchObject({ condition: "not-acceptable" });
    expect((e as { element: Element }).element.getChildText("text")).toMatch(/wrong password/);
    expect(net.sessions.has("romeo@localhost")).toBe(false);

    await romeo.iq(xml("iq", { type: "set", to: GW }, xml("query", { xmlns: NS_REGISTER }, submitForm({ username: "romeo", password: "right" }))));
    // ejabberd delivers the component's subscribe to the user's bare JID like
    // any inbound subscription request (RFC 6121 §3.1.3).
    const sub = await romeo.waitFor((s) => s.name === "presence" && s.attrs.type === "subscribe" && s.attrs.from === GW);
    // Estuary sends it to the bare JID; ejabberd stamps the full JID of each
    // available resource on delivery (Prosody keeps the bare JID).
    expect(sub.attrs.to?.split("/")[0]).toBe(romeo.bare);
    expect(await gateway.store.registrations.get("romeo@localhost", "test")).toBeDefined();
  });

  it("opens the network session when the user goes online to the gateway", async () => {
    // The user approves and announces themselves (what a client does on "subscribed").
    await romeo.send(xml("presence", { to: GW, type: "subscribed" }));
    await romeo.send(xml("presence", { to: GW }));
    const online = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === GW && s.attrs.type === undefined);
    expect(online.getChild("c", "http://jabber.org/protocol/caps")).toBeDefined();
    expect(net.sessions.has("romeo@localhost")).toBe(true);
  });

  it("carries a 1:1 conversation both ways", async () => {
    await romeo.send(xml("message", { to: `nurse@${GW}`, type: "chat", id: "c1" }, xml("body", {}, "Good *morrow*, nurse")));
    const sent = await net.waitForSent((r) => r.op === "send" && r.chat?.kind === "direct" && r.chat.contact === "nurse");
    expect(sent.user).toBe("romeo@localhost");
    expect(sent.message?.text.blocks[0]).toEqual({
      type: "line",
      children: [{ type: "text", text: "Good " }, { type: "bold", children: [{ type: "text", text: "morrow" }] }, { type: "text", text: ", nurse" }],
    });

    net.emit("romeo@localhost", { type: "message", chat: { kind: "direct", contact: "nurse" }, from: { nick: "nurse", contact: "nurse" }, id: "n1", text: { blocks: [{ type: "line", children: [{ type: "text", text: "God ye good den" }] }] } });
    const incoming = await romeo.waitFor((s) => s.name === "message" && s.attrs.from === `nurse@${GW}` && s.getChildText("body") === "God ye good den");
    expect(incoming.attrs.type).toBe("chat");
    expect(incoming.attrs.to?.split("/")[0]).toBe(romeo.bare);
  });

  it("bounces a message the network cannot deliver with an error to the sender", async () => {
    await romeo.send(xml("message", { to: `nobody@${GW}`, type: "chat", id: "lost" }, xml("body", {}, "anyone?")));
    const err = await romeo.waitFor((s) => s.name === "message" && s.attrs.id === "lost");
    expect(err.attrs.type).toBe("error");
    expect(err.getChild("error")?.getChild("item-not-found")).toBeDefined();
  });

  it("joins a room: occupants, self-presence with 110, the subject; a message is reflected with its id and a stanza-id", async () => {
    await romeo.send(xml("presence", { to: `#verona@${GW}/romeo` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })));
    const self = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `#verona@${GW}/romeo`);
    expect(mucStatusCodes(self)).toContain("110");
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
  });

  it("keeps ejabberd from answering for the gateway: juliet, unregistered, gets the gateway's own refusal", async () => {
    // ejabberd routes a message to a component domain to the component; a
    // refusal must come from Estuary, not a server-generated bounce.
    await juliet.send(xml("message", { to: `nurse@${GW}`, type: "chat", id: "j1" }, xml("body", {}, "hi")));
    const err = await juliet.waitFor((s) => s.name === "message" && s.attrs.id === "j1");
    expect(err.attrs.from).toBe(`nurse@${GW}`);
    expect(err.getChild("error")?.getChild("registration-required")).toBeDefined();
  });

  it("survives an ejabberd restart: the component link comes back and answers a fresh client", async () => {
    const link = gateway.networks.get("test")!.link;
    const states: string[] = [];
    const onState = (s: string): void => {
      states.push(s);
    };
    link.on("state", onState);
    try {
      await ejabberd.restart();
      // The link saw the server go away, then reconnected on its own.
      await waitFor(() => (states.some((s) => s !== "online") && link.state === "online" ? true : undefined), {
        timeout: 15_000,
        what: "the component link to come back online after the restart",
      });
    } finally {
      link.off("state", onState);
    }
    expect(link.state).toBe("online");
    // The old c2s sessions died with the server; accounts persisted in Mnesia.
    await Promise.all([romeo.stop(), juliet.stop()]);
    const fresh = await connectClient(ejabberd, "juliet", "pw", "after-restart");
    try {
      await expect(fresh.iq(xml("iq", { type: "get", to: GW }, xml("ping", { xmlns: "urn:xmpp:ping" })))).resolves.toBeDefined();
    } finally {
      await fresh.stop();
    }
  }, 30_000);
});
