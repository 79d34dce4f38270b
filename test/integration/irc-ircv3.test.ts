/**
 * IRCv3 extensions no installable IRC server offers (Debian's InspIRCd 3 has
 * neither), against the in-repo FAKE server test/support/fake-ircd.ts, which
 * follows the specifications (and is tested for that in
 * test/unit/support/fake-ircd.test.ts):
 *
 * - draft/relaymsg: a bridge between a MUC on a real Prosody and #bridge on
 *   the fake relays Alice (XMPP) as `alice/xmpp`, not as `<alice>` from the
 *   relay; falls back to the prefix while the server refuses; never relays
 *   its own echoes back; other relays' spoofed nicks are ordinary senders.
 * - chathistory: what was said in a channel while an XMPP user was away
 *   reaches them on join as XEP-0045 history (delay-stamped) and through
 *   MAM, each message once; the adapter asks `CHATHISTORY LATEST` within the
 *   server's limit, gives up in bounded time, and asks nothing of a server
 *   without the capability.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { xml } from "@xmpp/client";
import type { Element } from "@xmpp/xml";
import { startProsody, type ProsodyHandle } from "../support/prosody.ts";
import { connectClient, type TestClient } from "../support/xmpp-client.ts";
import { startTestGateway, ircTestNetwork } from "../support/gateway.ts";
import { FakeIrcd } from "../support/fake-ircd.ts";
import { rawClient, type RawClient } from "../support/fake-ircd/raw-client.ts";
import type { Line } from "../support/fake-ircd/protocol.ts";
import type { Gateway } from "../../core/gateway.ts";
import type { Config } from "../../config/schema.ts";
import { bridgesSchema } from "../../core/bridge/config.ts";
import { startBridges, type RunningBridges } from "../../core/bridge/index.ts";
import { silentLogger } from "../../core/log.ts";
import { toPlain } from "../../core/format/model.ts";
import type { Adapter } from "../../core/adapter.ts";
import type { LegacyEvent } from "../../core/model.ts";
import { createIrcAdapter } from "../../adapters/irc/index.ts";
import { openSession, type Harness } from "../support/adapter-harness.ts";

const GW = "irc.localhost";
const SERVER = "127.0.0.1";
const ROOM = "room@conference.localhost";
const MUC = "http://jabber.org/protocol/muc";
const MUC_USER = "http://jabber.org/protocol/muc#user";
const ALL_CAPS = ["message-tags", "server-time", "batch", "echo-message", "draft/chathistory", "draft/relaymsg"];

const MAM = "urn:xmpp:mam:2";
const DELAY = "urn:xmpp:delay";

const codes = (p: Element): string[] => (p.getChild("x", MUC_USER)?.getChildren("status") ?? []).map((s) => s.attrs.code ?? "");
const nickOf = (l: Line) => l.prefix?.split("!")[0];

describe("IRCv3 on a fake IRC server, through Estuary and a real Prosody", () => {
  let prosody: ProsodyHandle;
  let ircd: FakeIrcd;
  let dir: string;
  let gateway: Gateway & { config: Config };
  let bridges: RunningBridges;
  let alice: TestClient;
  let bob: RawClient;
  /** Every stanza Alice received (the inbox is consumed by waitFor; this is not). */
  const seen: Element[] = [];

  const groupchats = (from: string, body?: string) =>
    seen.filter((s) => s.name === "message" && s.attrs.type === "groupchat" && s.attrs.from === `${ROOM}/${from}` && (body === undefined || s.getChildText("body") === body));
  const bobSees = (what: string, pred: (l: Line) => boolean) => bob.next(what, (l) => l.command === "PRIVMSG" && l.params[0] === "#bridge" && pred(l), 15_000);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "estuary-ircv3-"));
    [prosody, ircd] = await Promise.all([
      startProsody({
        muc: true,
        components: [{ domain: GW, secret: "irc-secret" }],
        users: [
          { username: "alice", password: "pw" },
          { username: "romeo", password: "pw" },
        ],
      }),
      FakeIrcd.start({ chathistoryMax: 50 }),
    ]);
    gateway = await startTestGateway({
      xmppPort: prosody.componentPort,
      networks: {
        irc: ircTestNetwork(GW, "irc-secret", SERVER, ircd.port, { joinTimeoutMs: 8000 }),
      },
      storeUrl: `sqlite:${join(dir, "estuary.sqlite")}`,
    });
    // Bob is first in #bridge, so its operator (the one who can let the relay use RELAYMSG).
    [alice, bob] = await Promise.all([connectClient(prosody, "alice", "pw"), rawClient(ircd.port)]);
    await bob.register("bob", ALL_CAPS);
    bob.send("JOIN #bridge");
    await bob.next("bob in #bridge", (l) => l.command === "366");
    alice.xmpp.on("stanza", (s: Element) => seen.push(s));
    await alice.send(xml("presence", { to: `${ROOM}/alice` }, xml("x", { xmlns: MUC })));
    await alice.waitFor((s) => s.name === "presence" && s.attrs.from === `${ROOM}/alice` && codes(s).includes("110"), 10_000);
    const config: Config = {
      ...gateway.config,
      bridges: bridgesSchema.parse([{ name: "lobby", xmpp: { room: ROOM }, irc: { server: SERVER, channel: "#bridge", nick: "lobbybridge" } }]),
    };
    bridges = await startBridges(gateway, config, { log: silentLogger() });
    await bob.next("the relay joins #bridge", (l) => l.command === "JOIN" && nickOf(l) === "lobbybridge", 15_000);
    await alice.waitFor((s) => s.name === "presence" && s.attrs.from === `${ROOM}/relay` && s.attrs.type === undefined, 15_000);
  }, 60_000);

  afterAll(async () => {
    bob?.close();
    await alice?.stop();
    await bridges?.stop();
    await gateway?.stop();
    await Promise.all([prosody?.stop(), ircd?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("while the server refuses RELAYMSG (the relay is no channel operator) the message goes with the <nick> prefix, once", async () => {
    await alice.send(xml("message", { to: ROOM, type: "groupchat", id: "a0" }, xml("body", {}, "before op")));
    const line = await bobSees("the prefixed line", (l) => l.params[1] === "<alice> before op");
    expect(nickOf(line)).toBe("lobbybridge");
    // It was tried first, and refused.
    expect(ircd.commands("RELAYMSG").map((r) => r.line)).toEqual(["RELAYMSG #bridge alice/xmpp :before op"]);
    expect(bob.lines.filter((l) => l.line.command === "PRIVMSG" && l.line.params[1]?.includes("before op"))).toHaveLength(1);
  });

  it("once the relay is an operator, Alice's messages come from alice/xmpp, tagged with the relay, with formatting and /me", async () => {
    bob.send("MODE #bridge +o lobbybridge");
    // The relay reads its connection in order: once Bob's next line reached the MUC, it has seen the +o.
    bob.send("PRIVMSG #bridge :you are an op now");
    await alice.waitFor((s) => s.name === "message" && s.attrs.from === `${ROOM}/bob` && s.getChildText("body") === "you are an op now", 15_000);
    await alice.send(xml("message", { to: ROOM, type: "groupchat", id: "a1" }, xml("body", {}, "hello from *xmpp*")));
    const line = await bobSees("alice/xmpp's line", (l) => l.params[1] === "hello from \x02xmpp\x02");
    expect(nickOf(line)).toBe("alice/xmpp");
    expect(line.tags.get("draft/relaymsg")).toBe("lobbybridge");
    expect(line.tags.get("msgid")).toMatch(/\S/);

    await alice.send(xml("message", { to: ROOM, type: "groupchat", id: "a2" }, xml("body", {}, "/me waves")));
    const action = await bobSees("alice/xmpp's action", (l) => l.params[1] === "\x01ACTION waves\x01");
    expect(nickOf(action)).toBe("alice/xmpp");

    // A correction has no IRC form: the readable fallback, still from alice/xmpp.
    await alice.send(
      xml("message", { to: ROOM, type: "groupchat", id: "a3" }, xml("body", {}, "hello from XMPP"), xml("replace", { xmlns: "urn:xmpp:message-correct:0", id: "a1" })),
    );
    const fix = await bobSees("the correction", (l) => l.params[1] === "* correction: hello from XMPP");
    expect(nickOf(fix)).toBe("alice/xmpp");
    // Nothing of this went out in the relay's own name.
    expect(bob.lines.filter((l) => l.line.command === "PRIVMSG" && nickOf(l.line) === "lobbybridge")).toHaveLength(1);
  });

  it("Bob's answer reaches the MUC once; the relay's echoes of Alice's lines never come back", async () => {
    bob.send("PRIVMSG #bridge :hi alice");
    await alice.waitFor((s) => s.name === "message" && s.attrs.from === `${ROOM}/bob` && s.getChildText("body") === "hi alice", 15_000);
    // The server sent the relay its own RELAYMSG lines back (echo-message) before Bob's line: had
    // they been taken for messages, they would be in the MUC by now, from alice/xmpp.
    expect(seen.filter((s) => s.name === "message" && s.attrs.from?.startsWith(`${ROOM}/alice/`) === true)).toEqual([]);
    expect(groupchats("bob", "hi alice")).toHaveLength(1);
    expect(groupchats("alice").map((s) => s.getChildText("body"))).toEqual(["before op", "hello from *xmpp*", "/me waves", "hello from XMPP"]);
  });

  it("a message another relay made (tag naming someone else) is an ordinary message from carol/discord", async () => {
    // Bob is an operator too: he plays a second bridge.
    bob.send("RELAYMSG #bridge carol/discord :from discord");
    const m = await alice.waitFor((s) => s.name === "message" && s.attrs.from === `${ROOM}/carol/discord`, 15_000);
    expect(m.getChildText("body")).toBe("from discord");
    bob.send("PRIVMSG #bridge :marker");
    await alice.waitFor((s) => s.name === "message" && s.attrs.from === `${ROOM}/bob` && s.getChildText("body") === "marker", 15_000);
    expect(groupchats("carol/discord")).toHaveLength(1);
  });
  it("CHATHISTORY: what Juliet said while Romeo was away reaches him on join as delayed history and in MAM, each once", async () => {
    const LORE = `#lore%${SERVER}@${GW}`;
    const juliet = await rawClient(ircd.port);
    try {
      await juliet.register("juliet", ALL_CAPS);
      juliet.send("JOIN #lore");
      await juliet.next("juliet in #lore", (l) => l.command === "366");
      for (const t of ["first verse", "second verse", "third verse"]) juliet.send(`PRIVMSG #lore :${t}`);
      juliet.send("TOPIC #lore :Old tales");
      await juliet.next("topic", (l) => l.command === "TOPIC");
      const stored = ircd.history("#lore")!;
      expect(stored.map((m) => m.text)).toEqual(["first verse", "second verse", "third verse"]);

      const romeo = await connectClient(prosody, "romeo", "pw");
      const all: Element[] = [];
      romeo.xmpp.on("stanza", (st: Element) => all.push(st));
      try {
        const joinHistory = async (): Promise<{ body: string; stamp: string | undefined }[]> => {
          await romeo.waitFor((st) => st.attrs.from?.startsWith(LORE) === true && st.getChild("subject") !== undefined, 15_000);
          return all
            .filter((st) => st.name === "message" && st.attrs.from?.startsWith(`${LORE}/`) === true && st.getChild("delay", DELAY) !== undefined)
            .map((st) => ({ body: st.getChildText("body") ?? "", stamp: st.getChild("delay", DELAY)?.attrs.stamp }));
        };
        await romeo.send(xml("presence", { to: `${LORE}/romeo` }, xml("x", { xmlns: MUC }, xml("history", { maxstanzas: "10" }))));
        const first = await joinHistory();
        expect(first.map((h) => h.body)).toEqual(["first verse", "second verse", "third verse"]);
        // Stamped with each message's server-time (XEP-0082 stamps may drop the milliseconds).
        first.forEach((h, i) => expect(Math.abs(new Date(h.stamp ?? 0).getTime() - stored[i]!.time.getTime())).toBeLessThan(1000));
        // Asked once, within the server's limit (CHATHISTORY=50; the core asks for 50 at most).
        expect(ircd.commands("CHATHISTORY").filter((r) => r.nick === "romeo").map((r) => r.line)).toEqual(["CHATHISTORY LATEST #lore * 50"]);

        juliet.send("PRIVMSG #lore :now live");
        const live = await romeo.waitFor((st) => st.name === "message" && st.getChildText("body") === "now live", 10_000);
        expect(live.getChild("delay", DELAY)).toBeUndefined();

        const res = await romeo.iq(xml("iq", { type: "set", to: LORE }, xml("query", { xmlns: MAM, queryid: "lore-q" }, xml("set", { xmlns: "http://jabber.org/protocol/rsm" }, xml("max", {}, "20")))));
        expect(res.getChild("fin", MAM)?.attrs.complete).toBe("true");
        const archived = all
          .filter((st) => st.getChild("result", MAM)?.attrs.queryid === "lore-q")
          .map((st) => st.getChild("result", MAM)!.getChild("forwarded", "urn:xmpp:forward:0")!.getChild("message")!.getChildText("body"));
        expect(archived).toEqual(["first verse", "second verse", "third verse", "now live"]);
        // Nothing of the history came as live chat.
        const undelayed = all.filter((st) => st.name === "message" && st.attrs.from?.startsWith(`${LORE}/`) === true && !st.getChild("delay", DELAY) && !st.getChild("result", MAM));
        expect(undelayed.map((st) => st.getChildText("body")).filter((b) => b !== null)).toEqual(["now live"]);

        // Rejoining: the same history, once each (the ids are known now), the live line included.
        await romeo.send(xml("presence", { to: `${LORE}/romeo`, type: "unavailable" }));
        await romeo.waitFor((st) => st.name === "presence" && st.attrs.from === `${LORE}/romeo` && st.attrs.type === "unavailable");
        all.length = 0;
        romeo.inbox.length = 0;
        await romeo.send(xml("presence", { to: `${LORE}/romeo` }, xml("x", { xmlns: MUC }, xml("history", { maxstanzas: "10" }))));
        expect((await joinHistory()).map((h) => h.body)).toEqual(["first verse", "second verse", "third verse", "now live"]);
      } finally {
        await romeo.stop();
      }
    } finally {
      juliet.close();
    }
  });
});

describe("the IRC adapter's CHATHISTORY against the fake server", () => {
  let ircd: FakeIrcd;
  let bare: FakeIrcd;
  let ann: RawClient;
  let romeo: Harness;
  let plain: Harness;
  const adapterFor = (port: number): Adapter =>
    createIrcAdapter({ servers: { [SERVER]: { port } }, flood: { burst: 50, intervalMs: 0 }, joinTimeoutMs: 2000, lingerMs: 60_000 }, { log: silentLogger() });
  const room = (c: string) => `${c}%${SERVER}`;
  const texts = (ms: LegacyEvent[]) => ms.map((m) => (m.type === "message" ? toPlain(m.text) : ""));

  beforeAll(async () => {
    [ircd, bare] = await Promise.all([FakeIrcd.start({ chathistoryMax: 4 }), FakeIrcd.start({ chathistory: false })]);
    ann = await rawClient(ircd.port);
    await ann.register("ann", ALL_CAPS);
    ann.send("JOIN #old");
    await ann.next("ann in #old", (l) => l.command === "366");
    for (let i = 1; i <= 6; i++) ann.send(`PRIVMSG #old :m${i}`);
    await ann.next("m6 echoed", (l) => l.command === "PRIVMSG" && l.params[1] === "m6");
    romeo = await openSession(adapterFor(ircd.port), "romeo@example.org");
    plain = await openSession(adapterFor(bare.port), "romeo@example.org");
  });

  afterAll(async () => {
    ann?.close();
    await Promise.all([romeo?.session.close(), plain?.session.close()]);
    await Promise.all([ircd?.stop(), bare?.stop()]);
  });

  it("asks LATEST within the server's CHATHISTORY=4 and returns those messages oldest first, as history, never as live events", async () => {
    await romeo.session.joinRoom!(room("#old"), "romeo", {});
    const got = await romeo.session.history!(room("#old"), { limit: 10 });
    expect(ircd.commands("CHATHISTORY").map((r) => r.line)).toEqual(["CHATHISTORY LATEST #old * 4"]);
    const stored = ircd.history("#old")!;
    expect(texts(got)).toEqual(["m3", "m4", "m5", "m6"]);
    expect(got.map((m) => m.id)).toEqual(stored.slice(2).map((m) => m.msgid));
    expect(got.map((m) => m.at?.getTime())).toEqual(stored.slice(2).map((m) => m.time.getTime()));
    expect(got.every((m) => m.history === true && m.from.nick === "ann" && m.chat.kind === "room")).toBe(true);

    const fewer = await romeo.session.history!(room("#old"), { limit: 2 });
    expect(ircd.commands("CHATHISTORY").at(-1)?.line).toBe("CHATHISTORY LATEST #old * 2");
    expect(texts(fewer)).toEqual(["m5", "m6"]);
    // The batches were answers, not chat: no message event for any of them.
    ann.send("PRIVMSG #old :live one");
    await romeo.waitEvent("the live line", (e) => e.type === "message" && toPlain(e.text) === "live one");
    const messages = romeo.events.filter((e) => e.type === "message");
    expect(texts(messages)).toEqual(["live one"]);
    expect(messages[0]).not.toHaveProperty("history");
  });

  it("gives up in bounded time when the server never answers, and the channel stays live", async () => {
    ircd.answerChathistory = false;
    try {
      const t0 = Date.now();
      const got = await romeo.session.history!(room("#old"), { limit: 3 });
      const took = Date.now() - t0;
      expect(got).toEqual([]);
      // joinTimeoutMs is 2000 here: the request waits that long (at most 5 s), not forever.
      expect(took).toBeGreaterThanOrEqual(1900);
      expect(took).toBeLessThan(10_000);
      expect(ircd.commands("CHATHISTORY").at(-1)?.line).toBe("CHATHISTORY LATEST #old * 3");
    } finally {
      ircd.answerChathistory = true;
    }
    ann.send("PRIVMSG #old :still here");
    await romeo.waitEvent("a live line after the timeout", (e) => e.type === "message" && toPlain(e.text) === "still here");
  });

  it("asks nothing of a server without the capability", async () => {
    const helper = await rawClient(bare.port);
    try {
      await helper.register("helper", ["message-tags", "server-time"]);
      helper.send("JOIN #old");
      await helper.next("helper in #old", (l) => l.command === "366");
      helper.send("PRIVMSG #old :said before");
      await plain.session.joinRoom!(room("#old"), "romeo", {});
      expect(await plain.session.history!(room("#old"), { limit: 10 })).toEqual([]);
      expect(bare.commands("CHATHISTORY")).toEqual([]);
      expect(bare.received.some((r) => r.nick === "romeo" && r.line.startsWith("CAP REQ") && r.line.includes("chathistory"))).toBe(false);
    } finally {
      helper.close();
    }
  });
});
