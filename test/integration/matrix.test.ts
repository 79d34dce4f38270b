/**
 * The Matrix adapter end to end: a real XMPP client ↔ Prosody ↔ Estuary
 * (core + Matrix adapter) ↔ the test homeserver ↔ simulated Matrix people.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { submitForm } from "../support/stanzas.ts";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { xml } from "@xmpp/client";
import type { Element } from "@xmpp/xml";
import { logger as sdkGlobalLogger } from "matrix-js-sdk/lib/logger.js";
import { startProsody, type ProsodyHandle } from "../support/prosody.ts";
import { connectClient, type TestClient } from "../support/xmpp-client.ts";
import { startTestGateway } from "../support/gateway.ts";
import { TestHomeserver, type Json } from "../support/test-homeserver.ts";
import { waitFor } from "../support/wait.ts";
import type { Gateway } from "../../core/gateway.ts";
import { createMatrixAdapter } from "../../adapters/matrix/index.ts";
import { formatMatrixId } from "../../adapters/matrix/ids.ts";

// Silence the SDK's global loglevel logger (the adapter's own go to pino).
const root = sdkGlobalLogger as unknown as { methodFactory: () => () => void; rebuild(): void };
root.methodFactory = () => () => {};
root.rebuild();

const GW = "matrix.localhost";
const NS_REGISTER = "jabber:iq:register";
const NS_DATA = "jabber:x:data";
const NS_MUC_USER = "http://jabber.org/protocol/muc#user";

/** The bare JID of a Matrix id on the gateway (the core escapes nothing these ids contain but `:`-free parts). */
function jidOf(id: string): string {
  return `${formatMatrixId(id)}@${GW}`;
}

describe("Matrix adapter on a real Prosody and a test homeserver", () => {
  let prosody: ProsodyHandle;
  let hs: TestHomeserver;
  let gateway: Gateway;
  let romeo: TestClient;
  let dir: string;
  let me: string;
  let bob: string;
  let lobby: string;
  let secret: string;
  const LOBBY = `#lobby%hs.test@${GW}`;

  const start = () =>
    startTestGateway({
      xmppPort: prosody.componentPort,
      networks: { matrix: { domain: GW, secret: "s3cret", options: { retryWindowMs: 3000, syncTimeoutMs: 5000 } } },
      adapters: { matrix: createMatrixAdapter },
      storeUrl: `sqlite:${join(dir, "estuary.sqlite")}`,
    });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "estuary-matrix-"));
    hs = await TestHomeserver.start({ serverName: "hs.test" });
    me = hs.addUser({ localpart: "romeo", password: "romeo-pw", displayname: "Romeo" });
    bob = hs.addUser({ localpart: "bob", password: "bob-pw", displayname: "Bob" });
    lobby = hs.createRoom(bob, { name: "Lobby", topic: "Welcome to the lobby", room_alias_name: "lobby", preset: "public_chat" });
    secret = hs.createRoom(bob, { name: "Secret", invite: [me], initial_state: [{ type: "m.room.encryption", content: { algorithm: "m.megolm.v1.aes-sha2" } }] });
    hs.asUser(me).join(secret);
    prosody = await startProsody({ components: [{ domain: GW, secret: "s3cret" }], users: [{ username: "romeo", password: "pw" }] });
    gateway = await start();
    romeo = await connectClient(prosody, "romeo", "pw");
  });

  afterAll(async () => {
    await romeo?.stop();
    await gateway?.stop();
    await prosody?.stop();
    await hs?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("refuses a wrong password with the server's message, then registers and comes online", async () => {
    const wrong = await romeo
      .iq(xml("iq", { type: "set", to: GW }, xml("query", { xmlns: NS_REGISTER }, submitForm({ homeserver: hs.url, user: "romeo", password: "nope" }))))
      .catch((e: { condition?: string; element?: Element }) => e);
    expect(wrong).toMatchObject({ condition: "not-acceptable" });
    expect((wrong as { element: Element }).element.getChildText("text")).toMatch(/Login failed/);

    await romeo.iq(xml("iq", { type: "set", to: GW }, xml("query", { xmlns: NS_REGISTER }, submitForm({ homeserver: hs.url, user: "romeo", password: "romeo-pw" }))));
    await romeo.waitFor((s) => s.name === "presence" && s.attrs.type === "subscribe" && s.attrs.from === GW);
    await romeo.send(xml("presence", { to: GW, type: "subscribed" }));
    await romeo.send(xml("presence", { to: GW }));
    await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === GW && s.attrs.type === undefined, 10_000);
    // The session syncs: its /sync long poll is parked on the homeserver.
    await waitFor(() => (hs.waitingSyncs > 0 ? true : undefined), { what: "the adapter's sync", timeout: 10_000 });
  });

  it("joins a room by alias: occupants with roles, then self-presence, then the topic as subject", async () => {
    await romeo.send(xml("presence", { to: `${LOBBY}/romeo` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })));
    const bobP = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `${LOBBY}/Bob`);
    expect(bobP.getChild("x", NS_MUC_USER)?.getChild("item")?.attrs).toMatchObject({ role: "moderator", affiliation: "owner", jid: jidOf(bob) });
    const self = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `${LOBBY}/Romeo`);
    expect((self.getChild("x", NS_MUC_USER)?.getChildren("status") ?? []).map((s) => s.attrs.code)).toContain("110");
    const subject = await romeo.waitFor((s) => s.name === "message" && s.getChild("subject") !== undefined);
    expect(subject.getChildText("subject")).toBe("Welcome to the lobby");
    expect(hs.membership(lobby, me)).toBe("join");
  });

  it("lists the account's Matrix rooms in the gateway's disco#items, as bookmark candidates", async () => {
    const other = hs.createRoom(bob, { name: "Garden", preset: "public_chat" });
    await hs.asUser(me).join(other);
    const items = await romeo.iq(xml("iq", { type: "get", to: GW }, xml("query", { xmlns: "http://jabber.org/protocol/disco#items" })));
    const listed = items.getChild("query")!.getChildren("item").map((i) => i.attrs.name);
    expect(listed).toEqual(expect.arrayContaining(["Garden"]));
    expect(items.getChild("query")!.getChildren("item").length).toBeGreaterThanOrEqual(2);
  });

  let fromBob: Element;
  let romeoEventId: string;

  it("carries formatted messages both ways", async () => {
    hs.asUser(bob).send(lobby, { msgtype: "m.text", body: "hello romeo", format: "org.matrix.custom.html", formatted_body: "<b>hello</b> <em>romeo</em>" });
    fromBob = await romeo.waitFor((s) => s.name === "message" && s.attrs.from === `${LOBBY}/Bob` && s.getChild("body") !== undefined);
    expect(fromBob.getChildText("body")).toBe("*hello* _romeo_");

    await romeo.send(xml("message", { to: LOBBY, type: "groupchat", id: "r1" }, xml("body", {}, "hi *bob*")));
    const ev = await hs.waitForEvent(lobby, (e) => e.sender === me && (e.content as Json).body === "hi bob");
    expect(ev.content).toMatchObject({ msgtype: "m.text", format: "org.matrix.custom.html", formatted_body: "hi <strong>bob</strong>" });
    romeoEventId = ev.event_id as string;
    // The room reflects it once, and the sync echo of our own event is not relayed again.
    await romeo.waitFor((s) => s.name === "message" && s.attrs.id === "r1");
    hs.asUser(bob).send(lobby, "marker 1");
    await romeo.waitFor((s) => s.name === "message" && s.getChildText("body") === "marker 1");
    expect(romeo.inbox.filter((s) => s.getChildText("body") === "hi *bob*")).toEqual([]);
  });

  it("a displayed marker (XEP-0333) becomes a Matrix read receipt on that event", async () => {
    const bobEvent = hs.events(lobby).find((e) => e.sender === bob && (e.content as Json).body === "hello romeo")!;
    await romeo.send(xml("message", { to: LOBBY, type: "groupchat" }, xml("displayed", { xmlns: "urn:xmpp:chat-markers:0", id: fromBob.getChild("stanza-id", "urn:xmpp:sid:0")!.attrs.id })));
    await waitFor(() => hs.requests.find((r) => r.path.includes(`/receipt/m.read/${encodeURIComponent(bobEvent.event_id as string)}`)), {
      what: "a read receipt for Bob's message",
    });
  });

  it("edits, reactions, replies and redactions both ways", async () => {
    const bobEvent = hs.events(lobby).find((e) => (e.content as Json).body === "hello romeo")!.event_id as string;
    hs.asUser(bob).edit(lobby, bobEvent, "hello again");
    const edit = await romeo.waitFor((s) => s.name === "message" && s.getChild("replace", "urn:xmpp:message-correct:0") !== undefined);
    expect(edit.getChild("replace", "urn:xmpp:message-correct:0")!.attrs.id).toBe(fromBob.attrs.id);
    expect(edit.getChildText("body")).toBe("hello again");

    const reaction = hs.asUser(bob).react(lobby, romeoEventId, "👍");
    const reacted = await romeo.waitFor((s) => s.name === "message" && s.getChild("reactions", "urn:xmpp:reactions:0") !== undefined);
    expect(reacted.getChild("reactions", "urn:xmpp:reactions:0")!.getChildren("reaction").map((r) => r.getText())).toEqual(["👍"]);
    hs.asUser(bob).redact(lobby, reaction);
    const unreacted = await romeo.waitFor((s) => s.name === "message" && s.getChild("reactions", "urn:xmpp:reactions:0") !== undefined);
    expect(unreacted.getChild("reactions", "urn:xmpp:reactions:0")!.getChildren("reaction")).toEqual([]);

    const replyId = hs.asUser(bob).send(lobby, {
      msgtype: "m.text",
      body: "> <@romeo:hs.test> hi bob\n\nindeed",
      format: "org.matrix.custom.html",
      formatted_body: "<mx-reply><blockquote>hi bob</blockquote></mx-reply>indeed",
      "m.relates_to": { "m.in_reply_to": { event_id: romeoEventId } },
    });
    const reply = await romeo.waitFor((s) => s.name === "message" && s.getChildText("body") === "indeed");
    expect(reply.getChild("reply", "urn:xmpp:reply:0")?.attrs.id).toBeDefined();

    // XMPP → Matrix: correction, reaction set, reply, retraction.
    await romeo.send(xml("message", { to: LOBBY, type: "groupchat", id: "r2" }, xml("body", {}, "hi bob!"), xml("replace", { xmlns: "urn:xmpp:message-correct:0", id: "r1" })));
    const edited = await hs.waitForEvent(lobby, (e) => e.sender === me && (e.content as Json)["m.relates_to"] !== undefined && ((e.content as Json)["m.relates_to"] as Json).rel_type === "m.replace");
    expect(edited.content).toMatchObject({ "m.new_content": { body: "hi bob!" }, "m.relates_to": { event_id: romeoEventId } });

    const bobInXmpp = fromBob.getChild("stanza-id", "urn:xmpp:sid:0")!.attrs.id;
    await romeo.send(xml("message", { to: LOBBY, type: "groupchat", id: "r3" }, xml("reactions", { xmlns: "urn:xmpp:reactions:0", id: bobInXmpp }, xml("reaction", {}, "🎉"), xml("reaction", {}, "❤"))));
    await waitFor(() => {
      const keys = hs.events(lobby).filter((e) => e.type === "m.reaction" && e.sender === me).map((e) => ((e.content as Json)["m.relates_to"] as Json).key);
      return keys.length === 2 ? keys : undefined;
    }, { what: "two reactions" });
    await romeo.send(xml("message", { to: LOBBY, type: "groupchat", id: "r4" }, xml("reactions", { xmlns: "urn:xmpp:reactions:0", id: bobInXmpp }, xml("reaction", {}, "❤"))));
    // The removed one is redacted (redacted events lose their relation), the kept one stays.
    await waitFor(() => {
      const keys = hs.events(lobby).filter((e) => e.type === "m.reaction" && e.sender === me).map((e) => ((e.content as Json)["m.relates_to"] as Json | undefined)?.key);
      return keys.filter(Boolean).length === 1 ? keys : undefined;
    }, { what: "one reaction left" });
    expect(hs.events(lobby).filter((e) => e.type === "m.reaction" && e.sender === me && ((e.content as Json)["m.relates_to"] as Json | undefined)?.key === "❤")).toHaveLength(1);

    await romeo.send(xml("message", { to: LOBBY, type: "groupchat", id: "r5" }, xml("body", {}, "answering"), xml("reply", { xmlns: "urn:xmpp:reply:0", id: reply.attrs.id, to: `${LOBBY}/Bob` })));
    const answered = await hs.waitForEvent(lobby, (e) => (e.content as Json).body === "answering");
    expect(answered.content).toMatchObject({ "m.relates_to": { "m.in_reply_to": { event_id: replyId } } });

    await romeo.send(xml("message", { to: LOBBY, type: "groupchat", id: "r6" }, xml("retract", { xmlns: "urn:xmpp:message-retract:1", id: "r5" })));
    await hs.waitForEvent(lobby, (e) => e.type === "m.room.redaction" && e.sender === me);
    await waitFor(() => (hs.events(lobby).some((e) => e.event_id === answered.event_id && (e.content as Json).body === undefined) ? true : undefined), { what: "the redaction" });

    hs.asUser(bob).redact(lobby, replyId);
    const retracted = await romeo.waitFor((s) => s.name === "message" && s.attrs.from === `${LOBBY}/Bob` && s.getChild("retract", "urn:xmpp:message-retract:1") !== undefined);
    expect(retracted.getChild("retract", "urn:xmpp:message-retract:1")!.attrs.id).toBe(reply.attrs.id);
  });

  it("an edit from someone other than the message's sender is ignored (Client-Server API, validity of replacement events)", async () => {
    const mallory = hs.addUser({ localpart: "mallory", password: "mallory-pw", displayname: "Mallory" });
    hs.asUser(mallory).join(lobby);
    const bobEvent = hs.asUser(bob).send(lobby, { msgtype: "m.text", body: "the meeting is at noon" });
    const original = await romeo.waitFor((s) => s.name === "message" && s.getChildText("body") === "the meeting is at noon");
    hs.asUser(mallory).edit(lobby, bobEvent, "the meeting is cancelled");
    hs.asUser(bob).edit(lobby, bobEvent, "the meeting is at one");
    const edit = await romeo.waitFor((s) => s.name === "message" && s.getChildText("body") === "the meeting is at one");
    expect(edit.getChild("replace", "urn:xmpp:message-correct:0")!.attrs.id).toBe(original.attrs.id);
    // Mallory's replacement came first in the timeline and never reached Romeo.
    expect(romeo.inbox.some((s) => s.getChildText("body") === "the meeting is cancelled")).toBe(false);
  });

  it("typing both ways, and the topic as subject both ways", async () => {
    hs.asUser(bob).setTyping(lobby, true);
    await romeo.waitFor((s) => s.name === "message" && s.attrs.from === `${LOBBY}/Bob` && s.getChild("composing", "http://jabber.org/protocol/chatstates") !== undefined);
    hs.asUser(bob).setTyping(lobby, false);
    await romeo.waitFor((s) => s.name === "message" && s.attrs.from === `${LOBBY}/Bob` && s.getChild("paused", "http://jabber.org/protocol/chatstates") !== undefined);

    await romeo.send(xml("message", { to: LOBBY, type: "groupchat" }, xml("composing", { xmlns: "http://jabber.org/protocol/chatstates" })));
    await waitFor(() => (hs.requests.some((r) => r.method === "PUT" && r.path.includes("/typing/")) ? true : undefined), { what: "a typing request" });

    hs.asUser(bob).sendState(lobby, "m.room.topic", { topic: "New topic" });
    const subj = await romeo.waitFor((s) => s.name === "message" && s.getChildText("subject") === "New topic");
    expect(subj.attrs.from).toBe(`${LOBBY}/Bob`);
    hs.asUser(bob).sendState(lobby, "m.room.power_levels", { ...(hs.state(lobby, "m.room.power_levels") as Json), users: { [bob]: 100, [me]: 50 } });
    await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `${LOBBY}/Romeo` && s.getChild("x", NS_MUC_USER)?.getChild("item")?.attrs.affiliation === "admin");
    await romeo.send(xml("message", { to: LOBBY, type: "groupchat" }, xml("subject", {}, "Set from XMPP")));
    await waitFor(() => ((hs.state(lobby, "m.room.topic") as Json | undefined)?.topic === "Set from XMPP" ? true : undefined), { what: "the topic" });
  });

  it("membership: a join and a kick reach the MUC", async () => {
    const carol = hs.addUser({ localpart: "carol", password: "x", displayname: "Bob" });
    hs.asUser(carol).join(lobby);
    // Two "Bob"s: the newcomer is told apart by their user ID.
    const joined = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `${LOBBY}/Bob (@carol:hs.test)`);
    expect(joined.attrs.type).toBeUndefined();
    hs.asUser(bob).kick(lobby, carol, "out");
    const gone = await romeo.waitFor((s) => s.name === "presence" && s.attrs.type === "unavailable" && s.attrs.from?.startsWith(`${LOBBY}/Bob (`) === true);
    expect((gone.getChild("x", NS_MUC_USER)?.getChildren("status") ?? []).map((s) => s.attrs.code)).toContain("307");
  });

  it("direct chats both ways: a DM room is created and recorded in m.direct", async () => {
    await romeo.send(xml("message", { to: jidOf(bob), type: "chat", id: "d1" }, xml("body", {}, "psst")));
    const dm = await waitFor(() => (hs.accountData(me, "m.direct") as Record<string, string[]> | undefined)?.[bob]?.[0], { what: "m.direct" });
    await hs.waitForEvent(dm, (e) => (e.content as Json).body === "psst" && e.sender === me);
    expect(hs.state(dm, "m.room.member", bob)).toMatchObject({ membership: "invite", is_direct: true });
    hs.asUser(bob).join(dm);
    hs.asUser(bob).send(dm, "psst back");
    const back = await romeo.waitFor((s) => s.name === "message" && s.getChildText("body") === "psst back");
    expect(back.attrs.from).toBe(jidOf(bob));
    expect(back.attrs.type).toBe("chat");
  });

  it("an incoming image without an HTTP listener says so in text", async () => {
    hs.asUser(bob).send(lobby, { msgtype: "m.image", body: "cat.png", url: "mxc://hs.test/abc123", info: { mimetype: "image/png" } });
    const img = await romeo.waitFor((s) => s.name === "message" && (s.getChildText("body") ?? "").startsWith("[image: cat.png"));
    expect(img.getChildText("body")).toBe("[image: cat.png — not available, the gateway has no HTTP listener]");
  });

  it("encrypted rooms: a notice instead of silence, and sends are refused", async () => {
    const SECRET = `${formatMatrixId(secret)}@${GW}`;
    await romeo.send(xml("presence", { to: `${SECRET}/romeo` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })));
    await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `${SECRET}/Romeo`);
    hs.asUser(bob).send(secret, { algorithm: "m.megolm.v1.aes-sha2", ciphertext: "AwgA", sender_key: "k", session_id: "s", device_id: "D" }, "m.room.encrypted");
    const notice = await romeo.waitFor((s) => s.name === "message" && s.attrs.from?.startsWith(SECRET) === true && s.getChild("body") !== undefined);
    expect(notice.getChildText("body")).toBe("[notice] This room is end-to-end encrypted; Estuary cannot read it yet");
    await romeo.send(xml("message", { to: SECRET, type: "groupchat", id: "e1" }, xml("body", {}, "in clear?")));
    const err = await romeo.waitFor((s) => s.name === "message" && s.attrs.id === "e1" && s.attrs.type === "error");
    expect(err.getChild("error")?.getChild("not-allowed")).toBeDefined();
    expect(err.getChild("error")?.getChildText("text")).toMatch(/end-to-end encrypted room/);
    expect(hs.events(secret).some((e) => (e.content as Json).body === "in clear?")).toBe(false);
  });

  it("a send the server keeps rate-limiting beyond the retry window is refused, not dropped", async () => {
    hs.limitNext("PUT /send/", { retryAfterMs: 5000 });
    await romeo.send(xml("message", { to: LOBBY, type: "groupchat", id: "rl1" }, xml("body", {}, "too fast")));
    const err = await romeo.waitFor((s) => s.name === "message" && s.attrs.id === "rl1" && s.attrs.type === "error", 10_000);
    expect(err.getChild("error")?.getChildText("text")).toMatch(/rate-limit/);
  });

  it("a gateway restart on the same store replays nothing", async () => {
    const before = romeo.inbox.length;
    void before;
    await gateway.stop();
    romeo.inbox.length = 0;
    hs.asUser(bob).send(lobby, "while the gateway was away");
    gateway = await start();
    await romeo.send(xml("presence", { to: GW }));
    await romeo.send(xml("presence", { to: `${LOBBY}/romeo` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })));
    // The new gateway's self-presence (110), not a late 332 from the old one's shutdown.
    await romeo.waitFor(
      (s) => s.name === "presence" && s.attrs.from === `${LOBBY}/Romeo` && s.attrs.type === undefined && s.getChild("x", "http://jabber.org/protocol/muc#user")?.getChildByAttr("code", "110") !== undefined,
      10_000,
    );
    hs.asUser(bob).send(lobby, "after restart");
    await romeo.waitFor((s) => s.name === "message" && s.getChildText("body") === "after restart", 10_000);
    // Live messages: nothing old is replayed. Join history (XEP-0203 delayed) may show the past,
    // including what was said while the gateway was away, backfilled from the homeserver.
    const live = romeo.inbox.filter((s) => s.name === "message" && !s.getChild("delay", "urn:xmpp:delay"));
    const history = romeo.inbox.filter((s) => s.name === "message" && s.getChild("delay", "urn:xmpp:delay"));
    expect(history.map((s) => s.getChildText("body"))).toContain("while the gateway was away");
    expect(history.filter((s) => s.getChildText("body") === "while the gateway was away")).toHaveLength(1);
    const bodies = live.map((s) => s.getChildText("body"));
    expect(bodies).not.toContain("hi *bob*");
    expect(bodies).not.toContain("*hello* _romeo_");
    expect(bodies).not.toContain("psst back");
    expect(hs.unknownRequests).toEqual([]);
    expect(hs.serverErrors).toEqual([]);
  });
});
