/**
 * Room bridging end to end: one conversation across a MUC on a real Prosody
 * (room@conference.localhost), #bridge on a real InspIRCd and a Matrix room
 * on the test homeserver, through Estuary's bridge (core/bridge).
 *
 * Alice is on XMPP (a real client in the MUC), Bob on IRC (a real client),
 * Carol on Matrix (simulated on the homeserver). Each must see exactly one
 * copy of every message, with the right sender, in order; edits and replies
 * cross; an IRC server restart loses nothing; a gateway restart keeps the id
 * map (edits of earlier messages still land).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { xml } from "@xmpp/client";
import type { Element } from "@xmpp/xml";
import { logger as sdkGlobalLogger } from "matrix-js-sdk/lib/logger.js";
import { startProsody, type ProsodyHandle } from "../support/prosody.ts";
import { startInspircd, type InspircdHandle } from "../support/inspircd.ts";
import { connectClient, type TestClient } from "../support/xmpp-client.ts";
import { startTestGateway } from "../support/gateway.ts";
import { ircRemote, type IrcRemote } from "../support/irc-remote.ts";
import { TestHomeserver, type Json } from "../support/test-homeserver.ts";
import { waitFor } from "../support/wait.ts";
import type { Gateway } from "../../core/gateway.ts";
import type { Config } from "../../config/schema.ts";
import { createMatrixAdapter } from "../../adapters/matrix/index.ts";
import { createTelegramAdapter } from "../../adapters/telegram/index.ts";
import { FakeBotApi } from "../support/fake-bot-api.ts";
import { bridgesSchema } from "../../core/bridge/config.ts";
import { startBridges, type RunningBridges } from "../../core/bridge/index.ts";
import { silentLogger } from "../../core/log.ts";

const root = sdkGlobalLogger as unknown as { methodFactory: () => () => void; rebuild(): void };
root.methodFactory = () => () => {};
root.rebuild();

const ROOM = "room@conference.localhost";
const SERVER = "127.0.0.1";
const MUC = "http://jabber.org/protocol/muc";
const MUC_USER = "http://jabber.org/protocol/muc#user";
const NS_REPLACE = "urn:xmpp:message-correct:0";
const NS_REPLY = "urn:xmpp:reply:0";
const NS_SID = "urn:xmpp:sid:0";
const NS_RETRACT = "urn:xmpp:message-retract:1";
const NS_REACTIONS = "urn:xmpp:reactions:0";
const NS_OOB = "jabber:x:oob";

const codes = (p: Element): string[] => (p.getChild("x", MUC_USER)?.getChildren("status") ?? []).map((s) => s.attrs.code ?? "");

describe("a bridge over a MUC, an IRC channel and a Matrix room", () => {
  let prosody: ProsodyHandle;
  let ircd: InspircdHandle;
  let hs: TestHomeserver;
  let dir: string;
  let gateway: Gateway & { config: Config };
  let bridges: RunningBridges;
  let alice: TestClient;
  let bob: IrcRemote;
  let carol: string;
  let erin: string;
  let relayUser: string;
  let mxRoom: string;
  /** Every stanza Alice received (the inbox is consumed by waitFor; this is not). */
  const seen: Element[] = [];

  const startAll = async () => {
    gateway = await startTestGateway({
      xmppPort: prosody.componentPort,
      networks: {
        irc: {
          domain: "irc.localhost",
          secret: "irc-secret",
          options: {
            servers: { [SERVER]: { port: ircd.port } },
            allowedServers: [SERVER],
            flood: { burst: 50, intervalMs: 0 },
            retryWindowMs: 60_000,
            // Later than Bob's own reconnect after the IRC restart, so he is back in #bridge to see the queued lines.
            // Bob connects as soon as the server is back (~1–3 s on a loaded machine); the relay's retries come
            // every 20 s from the drop, so one landing just after the server is back needs the restart (with the
            // test's own waits while it is down) to take over ~17 s; at 10 s that happened under CI load.
            reconnect: { initialMs: 20_000, maxMs: 20_000 },
          },
        },
        matrix: { domain: "matrix.localhost", secret: "mx-secret", options: { retryWindowMs: 3000, syncTimeoutMs: 5000 } },
      },
      adapters: { matrix: createMatrixAdapter },
      storeUrl: `sqlite:${join(dir, "estuary.sqlite")}`,
      // Media from Matrix is republished here for the other legs (attachments cross as URLs).
      http: { host: "127.0.0.1", port: 0, mediaDir: join(dir, "media") },
    });
    const token = hs.loginAs(relayUser, "BRIDGE").accessToken;
    const config: Config = {
      ...gateway.config,
      bridges: bridgesSchema.parse([
        {
          name: "lobby",
          xmpp: { room: ROOM },
          irc: { server: SERVER, channel: "#bridge", nick: "lobbybridge" },
          matrix: { homeserver: hs.url, userId: relayUser, accessToken: token, room: "#bridge:hs.test" },
          // Join/part lines on IRC only: Matrix and XMPP must not get them.
          joinPartRelay: { irc: true },
        },
      ]),
    };
    bridges = await startBridges(gateway, config, { log: silentLogger() });
  };

  const stopAll = async () => {
    await bridges?.stop();
    await gateway?.stop();
  };

  const fromRoom = (s: Element, nick: string, body?: string) =>
    s.name === "message" && s.attrs.from === `${ROOM}/${nick}` && s.attrs.type === "groupchat" && (body === undefined || s.getChildText("body") === body);
  const xmppCopies = (body: string) => seen.filter((s) => s.name === "message" && s.attrs.type === "groupchat" && s.getChildText("body") === body);
  const ircCopies = (text: string) => bob.lines.filter((l) => l.line.endsWith(` PRIVMSG #bridge :${text}`));
  const mxCopies = (body: string) => hs.events(mxRoom).filter((e) => e.type === "m.room.message" && (e.content as Json).body === body);
  const waitIrc = (text: string, ms = 10_000) => bob.waitLine(`IRC: ${text}`, (l) => l.endsWith(` PRIVMSG #bridge :${text}`), ms);
  const waitMx = (body: string, ms = 10_000) => hs.waitForEvent(mxRoom, (e) => e.type === "m.room.message" && (e.content as Json).body === body, ms);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "estuary-bridge-"));
    hs = await TestHomeserver.start({ serverName: "hs.test" });
    carol = hs.addUser({ localpart: "carol", password: "pw", displayname: "Carol" });
    relayUser = hs.addUser({ localpart: "lobbybridge", password: "pw", displayname: "lobbybridge" });
    erin = hs.addUser({ localpart: "erin", password: "pw", displayname: "Erin" });
    mxRoom = hs.createRoom(carol, { name: "Bridge", room_alias_name: "bridge", preset: "public_chat" });
    [prosody, ircd] = await Promise.all([
      startProsody({
        muc: true,
        components: [
          { domain: "irc.localhost", secret: "irc-secret" },
          { domain: "matrix.localhost", secret: "mx-secret" },
        ],
        users: [
          { username: "alice", password: "pw" },
          { username: "dora", password: "pw" },
        ],
      }),
      startInspircd(),
    ]);
    [alice, bob] = await Promise.all([connectClient(prosody, "alice", "pw"), ircRemote(ircd, "bob")]);
    alice.xmpp.on("stanza", (s: Element) => seen.push(s));
    await alice.send(xml("presence", { to: `${ROOM}/alice` }, xml("x", { xmlns: MUC })));
    await alice.waitFor((s) => s.name === "presence" && s.attrs.from === `${ROOM}/alice` && codes(s).includes("110"), 10_000);
    await bob.join("#bridge");
    await startAll();
  }, 60_000);

  afterAll(async () => {
    bob?.quit();
    await alice?.stop();
    await stopAll();
    await Promise.all([prosody?.stop(), ircd?.stop(), hs?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("the relay is in the MUC, the IRC relay in #bridge, the Matrix relay in the room", async () => {
    await alice.waitFor((s) => s.name === "presence" && s.attrs.from === `${ROOM}/relay` && s.attrs.type === undefined, 15_000);
    await bob.waitLine("relay joins #bridge", (l) => /^:lobbybridge!\S+ JOIN :?#bridge/i.test(l), 15_000);
    await waitFor(() => (hs.membership(mxRoom, relayUser) === "join" ? true : undefined), { timeout: 15_000, what: "the Matrix relay to join" });
  });

  let aliceId: string;
  let bobSid: string;
  let carolEvent: string;

  it("each person's message reaches the two other networks once, from the right sender", async () => {
    aliceId = "alice-1";
    await alice.send(xml("message", { to: ROOM, type: "groupchat", id: aliceId }, xml("body", {}, "hello from *xmpp*")));
    await waitIrc("<alice> hello from \x02xmpp\x02");
    const mx = await waitMx("alice: hello from xmpp");
    expect((mx.content as Json).formatted_body).toBe("<strong>alice</strong>: hello from <strong>xmpp</strong>");
    expect(mx.sender).toBe(relayUser);

    bob.send("PRIVMSG #bridge :hi from irc");
    const fromBob = await alice.waitFor((s) => fromRoom(s, "bob", "hi from irc"), 10_000);
    // The room's stanza-id when it assigns one (MUC MAM), else the id the puppet sent: what XEP-0461 replies name.
    bobSid = fromBob.getChild("stanza-id", NS_SID)?.attrs.id ?? fromBob.attrs.id ?? "";
    expect(bobSid).toMatch(/\S/);
    await waitMx("bob: hi from irc");

    carolEvent = hs.asUser(carol).send(mxRoom, { msgtype: "m.text", body: "hey from matrix" });
    await alice.waitFor((s) => fromRoom(s, "Carol", "hey from matrix"), 10_000);
    await waitIrc("<Carol> hey from matrix");
  });

  it("the puppets are real occupants with JIDs under the gateway's domains", async () => {
    const jidOf = (nick: string) =>
      seen.find((s) => s.name === "presence" && s.attrs.from === `${ROOM}/${nick}` && s.attrs.type === undefined)?.getChild("x", MUC_USER)?.getChild("item")?.attrs.jid;
    expect(jidOf("bob")).toBe(`bob%${SERVER}@irc.localhost/bridge`);
    expect(jidOf("Carol")).toBe("carol%hs.test@matrix.localhost/bridge");
    expect(jidOf("relay")).toBe("bridge@irc.localhost/lobby");
  });

  it("a burst from every side arrives in order, exactly once everywhere, never echoed back", async () => {
    for (let i = 1; i <= 5; i++) {
      await alice.send(xml("message", { to: ROOM, type: "groupchat", id: `a-burst-${i}` }, xml("body", {}, `a${i}`)));
      bob.send(`PRIVMSG #bridge :b${i}`);
      hs.asUser(carol).send(mxRoom, { msgtype: "m.text", body: `c${i}` });
    }
    // Sentinels last: once they are everywhere, everything before them is too (per-leg order).
    await alice.send(xml("message", { to: ROOM, type: "groupchat", id: "a-end" }, xml("body", {}, "a-end")));
    bob.send("PRIVMSG #bridge :b-end");
    hs.asUser(carol).send(mxRoom, { msgtype: "m.text", body: "c-end" });
    await Promise.all([waitIrc("<alice> a-end"), waitIrc("<Carol> c-end"), waitMx("alice: a-end"), waitMx("bob: b-end")]);
    await alice.waitFor((s) => fromRoom(s, "bob", "b-end"), 10_000);
    await alice.waitFor((s) => fromRoom(s, "Carol", "c-end"), 10_000);

    const all = ["1", "2", "3", "4", "5", "-end"];
    for (const i of all) {
      expect(ircCopies(`<alice> a${i}`)).toHaveLength(1);
      expect(ircCopies(`<Carol> c${i}`)).toHaveLength(1);
      expect(mxCopies(`alice: a${i}`)).toHaveLength(1);
      expect(mxCopies(`bob: b${i}`)).toHaveLength(1);
      // Alice: her own reflection once, Bob's and Carol's through their puppets once each.
      expect(xmppCopies(`a${i}`)).toHaveLength(1);
      expect(xmppCopies(`b${i}`).map((s) => s.attrs.from)).toEqual([`${ROOM}/bob`]);
      expect(xmppCopies(`c${i}`).map((s) => s.attrs.from)).toEqual([`${ROOM}/Carol`]);
    }
    // Nothing went back to where it came from, in any form.
    expect(bob.lines.some((l) => / PRIVMSG #bridge :.*\bb[1-5]$/.test(l.line) && !l.line.startsWith(":bob!"))).toBe(false);
    expect(hs.events(mxRoom).some((e) => e.sender === relayUser && /\bc[1-5]$/.test(String((e.content as Json).body)))).toBe(false);
    expect(seen.some((s) => s.name === "message" && s.attrs.from === `${ROOM}/relay` && s.getChild("body"))).toBe(false);
    // In order, per origin, on each other side.
    const order = (lines: string[], prefix: string) => lines.filter((l) => l.startsWith(prefix));
    expect(order(bob.lines.map((l) => l.line.split(" PRIVMSG #bridge :")[1] ?? ""), "<alice> a")).toEqual(all.map((i) => `<alice> a${i}`));
    expect(order(hs.events(mxRoom).map((e) => String((e.content as Json).body)), "bob: b")).toEqual(all.map((i) => `bob: b${i}`));
    expect(seen.filter((s) => s.name === "message" && s.attrs.from === `${ROOM}/Carol`).map((s) => s.getChildText("body")).filter((b) => /^c(\d|-end)$/.test(b ?? ""))).toEqual(
      all.map((i) => `c${i}`),
    );
  });

  it("edits cross: Matrix → XMPP as a correction, → IRC as a marked line; XMPP → Matrix as m.replace", async () => {
    const original = seen.find((s) => fromRoom(s, "Carol", "hey from matrix"))!;
    hs.asUser(carol).edit(mxRoom, carolEvent, "hey from matrix (edited)");
    const corr = await alice.waitFor((s) => fromRoom(s, "Carol", "hey from matrix (edited)"), 10_000);
    expect(corr.getChild("replace", NS_REPLACE)?.attrs.id).toBe(original.attrs.id);
    await waitIrc("* correction: <Carol> hey from matrix (edited)");

    await alice.send(
      xml("message", { to: ROOM, type: "groupchat", id: "alice-1-fix" }, xml("body", {}, "hello from xmpp, fixed"), xml("replace", { xmlns: NS_REPLACE, id: aliceId })),
    );
    const relayed = (await waitMx("alice: hello from xmpp")).event_id;
    const edit = await hs.waitForEvent(mxRoom, (e) => ((e.content as Json)["m.relates_to"] as Json | undefined)?.rel_type === "m.replace" && e.sender === relayUser);
    expect(((edit.content as Json)["m.relates_to"] as Json).event_id).toBe(relayed);
    expect(((edit.content as Json)["m.new_content"] as Json).body).toBe("alice: hello from xmpp, fixed");
    await waitIrc("* correction: <alice> hello from xmpp, fixed");
  });

  it("replies cross: Matrix → XMPP with the reply reference, → IRC addressed; XMPP → Matrix as m.in_reply_to", async () => {
    hs.asUser(carol).reply(mxRoom, (await waitMx("alice: hello from xmpp")).event_id as string, "welcome alice");
    const reply = await alice.waitFor((s) => fromRoom(s, "Carol", "welcome alice"), 10_000);
    const own = seen.find((s) => s.attrs.id === aliceId && s.attrs.from === `${ROOM}/alice`)!;
    const ownSid = own.getChild("stanza-id", NS_SID)?.attrs.id ?? own.attrs.id;
    expect(reply.getChild("reply", NS_REPLY)?.attrs.id).toBe(ownSid);
    await waitIrc("<Carol> alice: welcome alice");

    await alice.send(xml("message", { to: ROOM, type: "groupchat", id: "alice-reply" }, xml("body", {}, "hi bob"), xml("reply", { xmlns: NS_REPLY, id: bobSid })));
    const bobOnMatrix = (await waitMx("bob: hi from irc")).event_id;
    const mx = await waitMx("alice: hi bob");
    expect((((mx.content as Json)["m.relates_to"] as Json)["m.in_reply_to"] as Json).event_id).toBe(bobOnMatrix);
    await waitIrc("<alice> bob: hi bob");
  });

  it("the IRC server goes down and comes back: the other legs keep talking, and IRC gets everything it missed, once", async () => {
    await ircd.restart({
      whileDown: async () => {
        await alice.send(xml("message", { to: ROOM, type: "groupchat", id: "down-1" }, xml("body", {}, "during the outage 1")));
        hs.asUser(carol).send(mxRoom, { msgtype: "m.text", body: "during the outage 2" });
        // XMPP ↔ Matrix do not wait for IRC.
        await waitMx("alice: during the outage 1");
        await alice.waitFor((s) => fromRoom(s, "Carol", "during the outage 2"), 10_000);
      },
    });
    bob = await ircRemote(ircd, "bob");
    await bob.join("#bridge");
    await waitIrc("<alice> during the outage 1", 45_000);
    await waitIrc("<Carol> during the outage 2", 10_000);
    bob.send("PRIVMSG #bridge :back on irc");
    await alice.waitFor((s) => fromRoom(s, "bob", "back on irc"), 15_000);
    await waitMx("bob: back on irc");
    expect(ircCopies("<alice> during the outage 1")).toHaveLength(1);
    expect(ircCopies("<Carol> during the outage 2")).toHaveLength(1);
    expect(mxCopies("alice: during the outage 1")).toHaveLength(1);
    // Its own waits add up past the default 30 s on a loaded 2-core machine (reconnect back-off included).
  }, 100_000);

  it("after a gateway restart, edits of messages sent before it still land on the right message", async () => {
    await stopAll();
    await startAll();
    await bob.waitLine("relay back in #bridge", (l) => /^:lobbybridge!\S+ JOIN :?#bridge/i.test(l) && bob.lines.filter((x) => /^:lobbybridge!\S+ JOIN/i.test(x.line)).length >= 2, 20_000);

    const original = seen.find((s) => fromRoom(s, "Carol", "hey from matrix"))!;
    hs.asUser(carol).edit(mxRoom, carolEvent, "hey from matrix (edited twice)");
    const corr = await alice.waitFor((s) => fromRoom(s, "Carol", "hey from matrix (edited twice)"), 15_000);
    expect(corr.getChild("replace", NS_REPLACE)?.attrs.id).toBe(original.attrs.id);

    await alice.send(
      xml("message", { to: ROOM, type: "groupchat", id: "alice-1-fix2" }, xml("body", {}, "hello again, fixed"), xml("replace", { xmlns: NS_REPLACE, id: aliceId })),
    );
    const relayed = (await waitMx("alice: hello from xmpp")).event_id;
    const edit = await hs.waitForEvent(mxRoom, (e) => ((e.content as Json)["m.new_content"] as Json | undefined)?.body === "alice: hello again, fixed", 15_000);
    expect(((edit.content as Json)["m.relates_to"] as Json).event_id).toBe(relayed);
    // Nothing from before the restart was relayed a second time (no replay of the Matrix timeline or the MUC).
    expect(mxCopies("bob: hi from irc")).toHaveLength(1);
    expect(xmppCopies("hey from matrix")).toHaveLength(1);
    // Bob reconnected after the IRC restart: anything from before it on his new connection would be a replay.
    expect(ircCopies("<Carol> hey from matrix")).toHaveLength(0);
  });

  /** What XEP-0461/0424/0444 name in a MUC: the room's stanza-id when it assigns one, else the id attribute. */
  const refOf = (s: Element) => s.getChild("stanza-id", NS_SID)?.attrs.id ?? s.attrs.id ?? "";

  it("retractions cross: Matrix → XMPP as XEP-0424 from the puppet, → IRC as a line; XMPP → Matrix as a redaction", async () => {
    const ev = hs.asUser(carol).send(mxRoom, { msgtype: "m.text", body: "oops from matrix" });
    const onXmpp = await alice.waitFor((s) => fromRoom(s, "Carol", "oops from matrix"), 10_000);
    await waitIrc("<Carol> oops from matrix");
    hs.asUser(carol).redact(mxRoom, ev);
    const retract = await alice.waitFor((s) => s.attrs.from === `${ROOM}/Carol` && s.getChild("retract", NS_RETRACT) !== undefined, 10_000);
    expect(retract.getChild("retract", NS_RETRACT)?.attrs.id).toBe(refOf(onXmpp));
    await waitIrc("* <Carol> deleted a message");

    await alice.send(xml("message", { to: ROOM, type: "groupchat", id: "alice-oops" }, xml("body", {}, "oops from xmpp")));
    const own = await alice.waitFor((s) => fromRoom(s, "alice", "oops from xmpp"), 10_000);
    const relayed = await waitMx("alice: oops from xmpp");
    await waitIrc("<alice> oops from xmpp");
    await alice.send(
      xml(
        "message",
        { to: ROOM, type: "groupchat", id: "alice-oops-retract" },
        xml("retract", { xmlns: NS_RETRACT, id: refOf(own) }),
        xml("fallback", { xmlns: "urn:xmpp:fallback:0", for: NS_RETRACT }),
        xml("body", {}, "/me retracted a message"),
      ),
    );
    const redaction = await hs.waitForEvent(mxRoom, (e) => e.type === "m.room.redaction" && (e.redacts ?? (e.content as Json).redacts) === relayed.event_id, 10_000);
    expect(redaction.sender).toBe(relayUser);
    await waitIrc("* <alice> deleted a message");
    // The fallback body is not relayed as a message of its own.
    expect(mxCopies("alice: retracted a message")).toHaveLength(0);
  });

  it("reactions cross: Matrix → XMPP as XEP-0444 from the puppet, → IRC as a line; XMPP → Matrix as m.reaction", async () => {
    await alice.send(xml("message", { to: ROOM, type: "groupchat", id: "alice-r" }, xml("body", {}, "react to me")));
    const own = await alice.waitFor((s) => fromRoom(s, "alice", "react to me"), 10_000);
    const relayed = await waitMx("alice: react to me");
    hs.asUser(carol).react(mxRoom, relayed.event_id as string, "👍");
    const r = await alice.waitFor((s) => s.attrs.from === `${ROOM}/Carol` && s.getChild("reactions", NS_REACTIONS) !== undefined, 10_000);
    expect(r.getChild("reactions", NS_REACTIONS)?.attrs.id).toBe(refOf(own));
    expect(r.getChild("reactions", NS_REACTIONS)?.getChildren("reaction").map((x) => x.getText())).toEqual(["👍"]);
    await waitIrc("* Carol reacted 👍 to “alice's message”");

    const ev = hs.asUser(carol).send(mxRoom, { msgtype: "m.text", body: "react to me too" });
    const onXmpp = await alice.waitFor((s) => fromRoom(s, "Carol", "react to me too"), 10_000);
    await alice.send(xml("message", { to: ROOM, type: "groupchat", id: "alice-react" }, xml("reactions", { xmlns: NS_REACTIONS, id: refOf(onXmpp) }, xml("reaction", {}, "🎉"))));
    const mr = await hs.waitForEvent(mxRoom, (e) => e.type === "m.reaction" && e.sender === relayUser, 10_000);
    expect((mr.content as Json)["m.relates_to"]).toEqual({ rel_type: "m.annotation", event_id: ev, key: "🎉" });
    await waitIrc("* alice reacted 🎉 to “Carol's message”");
  });

  it("join and part lines reach IRC, where they are enabled, and neither Matrix nor XMPP", async () => {
    const dora = await connectClient(prosody, "dora", "pw");
    try {
      await dora.send(xml("presence", { to: `${ROOM}/dora` }, xml("x", { xmlns: MUC })));
      await dora.waitFor((s) => s.name === "presence" && s.attrs.from === `${ROOM}/dora` && codes(s).includes("110"), 10_000);
      await waitIrc("* dora joined on xmpp");
      hs.asUser(erin).join(mxRoom);
      await waitIrc("* Erin joined on matrix");
      await dora.send(xml("presence", { to: `${ROOM}/dora`, type: "unavailable" }));
      await waitIrc("* dora left on xmpp");
      hs.asUser(erin).leave(mxRoom);
      await waitIrc("* Erin left on matrix");
    } finally {
      await dora.stop();
    }
    // Sentinel: each leg's deliveries are serial, so once this reached Matrix and XMPP, so would have the lines above.
    bob.send("PRIVMSG #bridge :after the joins");
    await waitMx("bob: after the joins");
    await alice.waitFor((s) => fromRoom(s, "bob", "after the joins"), 10_000);
    expect(hs.events(mxRoom).filter((e) => /(joined|left) on /.test(String((e.content as Json).body ?? "")))).toEqual([]);
    expect(seen.filter((s) => s.name === "message" && /(joined|left) on /.test(s.getChildText("body") ?? "")).map(String)).toEqual([]);
  });

  it("a Matrix image crosses as a URL: on its sender's line on IRC, as OOB (XEP-0066) on XMPP, served by the gateway", async () => {
    const bytes = Buffer.from("\x89PNG\r\n\x1a\nnot really an image");
    const up = await fetch(`${hs.url}/_matrix/media/v3/upload?filename=cat.png`, {
      method: "POST",
      headers: { authorization: `Bearer ${hs.loginAs(carol).accessToken}`, "content-type": "image/png" },
      body: bytes,
    });
    const mxc = ((await up.json()) as { content_uri: string }).content_uri;
    hs.asUser(carol).send(mxRoom, { msgtype: "m.image", body: "cat.png", url: mxc, info: { mimetype: "image/png", size: bytes.length } });
    const onXmpp = await alice.waitFor((s) => s.attrs.from === `${ROOM}/Carol` && s.getChild("x", NS_OOB) !== undefined, 15_000);
    const url = onXmpp.getChild("x", NS_OOB)!.getChildText("url")!;
    expect(url.startsWith(gateway.httpUrl!)).toBe(true);
    expect(onXmpp.getChildText("body")).toBe(url);
    await waitIrc(`<Carol> ${url}`);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(bytes);
  });

  it("the XMPP server restarts: the relay rejoins by itself, the puppets when they next speak", async () => {
    await prosody.restart();
    alice = await connectClient(prosody, "alice", "pw");
    alice.xmpp.on("stanza", (s: Element) => seen.push(s));
    await alice.send(xml("presence", { to: `${ROOM}/alice` }, xml("x", { xmlns: MUC })));
    await alice.waitFor((s) => s.name === "presence" && s.attrs.from === `${ROOM}/alice` && codes(s).includes("110"), 10_000);
    await alice.waitFor((s) => s.name === "presence" && s.attrs.from === `${ROOM}/relay` && s.attrs.type === undefined, 20_000);
    bob.send("PRIVMSG #bridge :irc after the xmpp restart");
    await alice.waitFor((s) => fromRoom(s, "bob", "irc after the xmpp restart"), 15_000);
    hs.asUser(carol).send(mxRoom, { msgtype: "m.text", body: "matrix after the xmpp restart" });
    await alice.waitFor((s) => fromRoom(s, "Carol", "matrix after the xmpp restart"), 15_000);
    await alice.send(xml("message", { to: ROOM, type: "groupchat", id: "after-restart" }, xml("body", {}, "xmpp after the restart")));
    await Promise.all([waitIrc("<alice> xmpp after the restart"), waitMx("alice: xmpp after the restart")]);
  });
});

describe("a bridge over a MUC and a Telegram group (fake Bot API)", () => {
  const TOKEN = "5550002:AAbridge-token";
  const DAVE = 3001;
  const GROUP = -1009002;
  let prosody: ProsodyHandle;
  let fake: FakeBotApi;
  let gateway: Gateway & { config: Config };
  let bridges: RunningBridges;
  let alice: TestClient;
  const seen: Element[] = [];

  beforeAll(async () => {
    [prosody, fake] = await Promise.all([
      startProsody({ muc: true, components: [{ domain: "telegram.localhost", secret: "tg-secret" }], users: [{ username: "alice", password: "pw" }] }),
      FakeBotApi.start(),
    ]);
    fake.addBot({ token: TOKEN, username: "lobby_bot", first_name: "Lobby bridge", can_read_all_group_messages: true });
    fake.addUser({ id: DAVE, first_name: "Dave" });
    fake.addGroup({ id: GROUP, title: "Lobby", type: "supergroup", members: [{ userId: DAVE, status: "creator" }] });
    fake.addBotToGroup(TOKEN, GROUP, { status: "member", by: DAVE });
    alice = await connectClient(prosody, "alice", "pw");
    alice.xmpp.on("stanza", (s: Element) => seen.push(s));
    await alice.send(xml("presence", { to: `${ROOM}/alice` }, xml("x", { xmlns: MUC })));
    await alice.waitFor((s) => s.name === "presence" && s.attrs.from === `${ROOM}/alice` && codes(s).includes("110"), 10_000);
    gateway = await startTestGateway({
      xmppPort: prosody.componentPort,
      networks: {
        telegram: {
          domain: "telegram.localhost",
          secret: "tg-secret",
          options: { apiRoot: fake.url, pollTimeoutSec: 1, rateLimits: { perChatPerSec: 50, perGroupPerMin: 3000, perBotPerSec: 100 } },
        },
      },
      adapters: { telegram: createTelegramAdapter },
    });
    const config: Config = { ...gateway.config, bridges: bridgesSchema.parse([{ name: "tg", xmpp: { room: ROOM }, telegram: { token: TOKEN, chat: GROUP } }]) };
    bridges = await startBridges(gateway, config, { log: silentLogger() });
    await alice.waitFor((s) => s.name === "presence" && s.attrs.from === `${ROOM}/relay` && s.attrs.type === undefined, 15_000);
  }, 60_000);

  afterAll(async () => {
    await alice?.stop();
    await bridges?.stop();
    await gateway?.stop();
    await Promise.all([prosody?.stop(), fake?.stop()]);
  });

  it("XMPP → Telegram with the name in bold (entities), Telegram → XMPP from Dave's puppet, edits cross, once each", async () => {
    await alice.send(xml("message", { to: ROOM, type: "groupchat", id: "t-1" }, xml("body", {}, "hello telegram")));
    const sent = await fake.waitForSent((r) => r.chat_id === GROUP && r.text === "alice: hello telegram", 10_000);
    expect(sent.entities).toEqual([{ type: "bold", offset: 0, length: 5 }]);

    const m = fake.userSends(TOKEN, { from: DAVE, chat: GROUP, text: "hi from telegram" });
    const fromDave = await alice.waitFor((s) => s.name === "message" && s.attrs.from === `${ROOM}/Dave` && s.getChildText("body") === "hi from telegram", 10_000);
    fake.userEdits(TOKEN, { from: DAVE, chat: GROUP, message_id: m.message_id, text: "hi from telegram!" });
    const edit = await alice.waitFor((s) => s.name === "message" && s.attrs.from === `${ROOM}/Dave` && s.getChildText("body") === "hi from telegram!", 10_000);
    expect(edit.getChild("replace", NS_REPLACE)?.attrs.id).toBe(fromDave.attrs.id);

    await alice.send(xml("message", { to: ROOM, type: "groupchat", id: "t-2" }, xml("body", {}, "hello again"), xml("replace", { xmlns: NS_REPLACE, id: "t-1" })));
    await waitFor(() => fake.edits(TOKEN).find((e) => e.text === "alice: hello again"), { timeout: 10_000, what: "the edit on Telegram" });
    expect(fake.edits(TOKEN).find((e) => e.text === "alice: hello again")?.message_id).toBe(sent.message_id);

    // Sentinel, then count: one copy each way, none echoed.
    await alice.send(xml("message", { to: ROOM, type: "groupchat", id: "t-3" }, xml("body", {}, "end")));
    await fake.waitForSent((r) => r.text === "alice: end", 10_000);
    expect(fake.sent(TOKEN).filter((r) => r.text === "alice: hello telegram")).toHaveLength(1);
    expect(fake.sent(TOKEN).some((r) => r.text?.includes("hi from telegram"))).toBe(false);
    expect(seen.filter((s) => s.name === "message" && s.getChildText("body") === "hi from telegram")).toHaveLength(1);
  });
});
