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
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { xml } from "@xmpp/client";
import type { Element } from "@xmpp/xml";
import { startProsody, type ProsodyHandle } from "../support/prosody.ts";
import { connectClient, type TestClient } from "../support/xmpp-client.ts";
import { startTestGateway } from "../support/gateway.ts";
import { FakeIrcd } from "../support/fake-ircd.ts";
import { rawClient, type RawClient } from "../support/fake-ircd/raw-client.ts";
import type { Line } from "../support/fake-ircd/protocol.ts";
import type { Gateway } from "../../core/gateway.ts";
import type { Config } from "../../config/schema.ts";
import { bridgesSchema } from "../../core/bridge/config.ts";
import { startBridges, type RunningBridges } from "../../core/bridge/index.ts";
import { silentLogger } from "../../core/log.ts";

const GW = "irc.localhost";
const SERVER = "127.0.0.1";
const ROOM = "room@conference.localhost";
const MUC = "http://jabber.org/protocol/muc";
const MUC_USER = "http://jabber.org/protocol/muc#user";
const ALL_CAPS = ["message-tags", "server-time", "batch", "echo-message", "draft/chathistory", "draft/relaymsg"];

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
        irc: {
          domain: GW,
          secret: "irc-secret",
          options: { servers: { [SERVER]: { port: ircd.port } }, allowedServers: [SERVER], flood: { burst: 50, intervalMs: 0 }, joinTimeoutMs: 8000 },
        },
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
});
