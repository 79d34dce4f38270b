/**
 * A conversation between Romeo, on XMPP (a real client on a real Prosody),
 * and Juliet, on IRC (a real client on a real InspIRCd), through Estuary.
 * Addresses are Biboumi's: #chan%server@irc.localhost, nick%server@irc.localhost.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { xml } from "@xmpp/client";
import type { Element } from "@xmpp/xml";
import { startProsody, type ProsodyHandle } from "../support/prosody.ts";
import { startInspircd, type InspircdHandle } from "../support/inspircd.ts";
import { connectClient, type TestClient } from "../support/xmpp-client.ts";
import { startTestGateway, ircTestNetwork } from "../support/gateway.ts";
import { ircRemote, type IrcRemote } from "../support/irc-remote.ts";
import type { Gateway } from "../../core/gateway.ts";

const GW = "irc.localhost";
const SERVER = "127.0.0.1";
const ROOM = `#verona%${SERVER}@${GW}`;
const MUC = "http://jabber.org/protocol/muc";
const MUC_USER = "http://jabber.org/protocol/muc#user";

const codes = (p: Element): string[] => (p.getChild("x", MUC_USER)?.getChildren("status") ?? []).map((s) => s.attrs.code ?? "");
const item = (p: Element) => p.getChild("x", MUC_USER)?.getChild("item");

describe("XMPP ↔ IRC through Estuary", () => {
  let prosody: ProsodyHandle;
  let ircd: InspircdHandle;
  let gateway: Gateway;
  let romeo: TestClient;
  let tybalt: TestClient;
  let juliet: IrcRemote;
  let tybaltNick = "";

  beforeAll(async () => {
    [prosody, ircd] = await Promise.all([
      startProsody({
        components: [{ domain: GW, secret: "irc-secret" }],
        users: [
          { username: "romeo", password: "pw" },
          { username: "tybalt", password: "pw" },
        ],
      }),
      startInspircd(),
    ]);
    gateway = await startTestGateway({
      xmppPort: prosody.componentPort,
      networks: {
        irc: ircTestNetwork(GW, "irc-secret", SERVER, ircd.port, { lingerMs: 500, reconnect: { initialMs: 8000, maxMs: 8000 } }),
      },
    });
    [romeo, tybalt, juliet] = await Promise.all([connectClient(prosody, "romeo", "pw"), connectClient(prosody, "tybalt", "pw"), ircRemote(ircd, "juliet")]);
    await juliet.join("#verona");
    juliet.send("TOPIC #verona :Two households, both alike in dignity");
    await juliet.waitLine("topic set", (l) => l.includes("TOPIC #verona"));
  });

  afterAll(async () => {
    juliet?.quit();
    await Promise.all([romeo?.stop(), tybalt?.stop()]);
    await gateway?.stop();
    await Promise.all([prosody?.stop(), ircd?.stop()]);
  });

  it("Romeo joins #verona: Juliet is there as an op, then his own presence (110), then the topic", async () => {
    await romeo.send(xml("presence", { to: `${ROOM}/romeo` }, xml("x", { xmlns: MUC })));
    const julietP = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `${ROOM}/juliet`, 15_000);
    expect(item(julietP)?.attrs).toMatchObject({ role: "moderator", jid: `juliet%${SERVER}@${GW}` });
    const self = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `${ROOM}/romeo`);
    expect(codes(self)).toContain("110");
    const subject = await romeo.waitFor((s) => s.name === "message" && s.getChild("subject") !== undefined);
    expect(subject.getChildText("subject")).toBe("Two households, both alike in dignity");
    await juliet.waitLine("romeo joined", (l) => /^:romeo!\S+ JOIN :?#verona/i.test(l));
  });

  it("messages flow both ways, reflected with the sender's id, with formatting and actions", async () => {
    await romeo.send(xml("message", { to: ROOM, type: "groupchat", id: "r1" }, xml("body", {}, "But *soft*, what light")));
    const reflected = await romeo.waitFor((s) => s.name === "message" && s.attrs.id === "r1");
    expect(reflected.attrs.from).toBe(`${ROOM}/romeo`);
    expect(reflected.getChild("stanza-id", "urn:xmpp:sid:0")?.attrs.by).toBe(ROOM);
    await juliet.waitLine("romeo's line", (l) => l === `:${l.slice(1).split(" ")[0]} PRIVMSG #verona :But \x02soft\x02, what light`);

    juliet.send("PRIVMSG #verona :\x01ACTION sighs\x01");
    juliet.send("PRIVMSG #verona :Ay \x1dme\x1d");
    const action = await romeo.waitFor((s) => s.name === "message" && s.attrs.from === `${ROOM}/juliet` && s.getChildText("body") === "/me sighs");
    expect(action.attrs.type).toBe("groupchat");
    const styled = await romeo.waitFor((s) => s.name === "message" && s.attrs.from === `${ROOM}/juliet` && s.getChildText("body") === "Ay _me_");
    expect(styled.getChild("stanza-id", "urn:xmpp:sid:0")).toBeDefined();
  });

  it("archives the channel for Romeo: a MAM query returns both sides of the conversation", async () => {
    const res = await romeo.iq(xml("iq", { type: "set", to: ROOM }, xml("query", { xmlns: "urn:xmpp:mam:2", queryid: "irc-q" }, xml("set", { xmlns: "http://jabber.org/protocol/rsm" }, xml("max", {}, "10")))));
    expect(res.getChild("fin", "urn:xmpp:mam:2")?.attrs.complete).toBe("true");
    const bodies = romeo.inbox
      .filter((s) => s.getChild("result", "urn:xmpp:mam:2")?.attrs.queryid === "irc-q")
      .map((s) => s.getChild("result", "urn:xmpp:mam:2")!.getChild("forwarded", "urn:xmpp:forward:0")!.getChild("message")!.getChildText("body"));
    expect(bodies).toEqual(["But *soft*, what light", "/me sighs", "Ay _me_"]);
  });

  it("a channel's server-side history (+H) arrives once, as delayed history before the subject, also after a rejoin", async () => {
    const LORE = `#lore%${SERVER}@${GW}`;
    await juliet.join("#lore");
    juliet.send("MODE #lore +H 20:1h");
    await juliet.waitLine("+H", (l) => / MODE #lore :?\+H/.test(l));
    for (const t of ["first verse", "second verse", "third verse"]) juliet.send(`PRIVMSG #lore :${t}`);
    juliet.send("TOPIC #lore :Old tales");
    await juliet.waitLine("topic", (l) => / TOPIC #lore /.test(l));
    const history = async (): Promise<string[]> => {
      const subject = await romeo.waitFor((st) => st.attrs.from?.startsWith(LORE) === true && st.getChild("subject") !== undefined, 15_000);
      void subject;
      const bodies: string[] = [];
      for (;;) {
        const i = romeo.inbox.findIndex((st) => st.name === "message" && st.attrs.from?.startsWith(`${LORE}/`) === true && st.getChild("delay", "urn:xmpp:delay") !== undefined);
        if (i < 0) break;
        bodies.push(romeo.inbox.splice(i, 1)[0]!.getChildText("body") ?? "");
      }
      return bodies;
    };
    romeo.inbox.length = 0;
    await romeo.send(xml("presence", { to: `${LORE}/romeo` }, xml("x", { xmlns: MUC })));
    // Delivered before the subject: once the subject is there, all history is in the inbox.
    expect(await history()).toEqual(["first verse", "second verse", "third verse"]);
    await romeo.send(xml("presence", { to: `${LORE}/romeo`, type: "unavailable" }));
    await romeo.waitFor((st) => st.name === "presence" && st.attrs.from === `${LORE}/romeo` && st.attrs.type === "unavailable");
    romeo.inbox.length = 0;
    await romeo.send(xml("presence", { to: `${LORE}/romeo` }, xml("x", { xmlns: MUC }, xml("history", { maxstanzas: "10" }))));
    expect(await history()).toEqual(["first verse", "second verse", "third verse"]);
  });

  it("private messages go both ways between nick%server and the XMPP user", async () => {
    juliet.send("PRIVMSG romeo :Wherefore art thou?");
    const pm = await romeo.waitFor((s) => s.name === "message" && s.attrs.from === `juliet%${SERVER}@${GW}`);
    expect(pm.getChildText("body")).toBe("Wherefore art thou?");
    await romeo.send(xml("message", { to: `juliet%${SERVER}@${GW}`, type: "chat", id: "pm1" }, xml("body", {}, "Here, love")));
    await juliet.waitLine("romeo's private answer", (l) => / PRIVMSG juliet :Here, love$/.test(l));
  });

  it("never lets a multi-line body or a subject inject an IRC command", async () => {
    await romeo.send(xml("message", { to: ROOM, type: "groupchat", id: "evil" }, xml("body", {}, "hello\nQUIT :pwned\nJOIN #evil")));
    await juliet.waitLine("last line as text", (l) => / PRIVMSG #verona :JOIN #evil$/.test(l));
    expect(juliet.lines.some((l) => / PRIVMSG #verona :QUIT :pwned$/.test(l.line))).toBe(true);
    expect(juliet.lines.some((l) => /^:romeo!\S+ QUIT/i.test(l.line))).toBe(false);
    // Romeo is still there: a plain line still reaches Juliet.
    await romeo.send(xml("message", { to: ROOM, type: "groupchat", id: "after" }, xml("body", {}, "still here")));
    await juliet.waitLine("still here", (l) => / PRIVMSG #verona :still here$/.test(l));
  });

  it("nick changes: Juliet's is a 303; Romeo's own goes to IRC as NICK", async () => {
    juliet.send("NICK juliet2");
    const gone = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `${ROOM}/juliet` && s.attrs.type === "unavailable");
    expect(codes(gone)).toContain("303");
    expect(item(gone)?.attrs.nick).toBe("juliet2");
    await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `${ROOM}/juliet2` && s.attrs.type === undefined);
    juliet.nick = "juliet2";

    await romeo.send(xml("presence", { to: `${ROOM}/montague` }));
    const renamed = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `${ROOM}/romeo` && s.attrs.type === "unavailable");
    expect(codes(renamed)).toEqual(expect.arrayContaining(["303", "110"]));
    await juliet.waitLine("NICK montague", (l) => /^:romeo!\S+ NICK :?montague$/i.test(l));
  });

  it("a nick change to a nick in use on IRC gets a <conflict/> presence error, and nothing changes", async () => {
    await romeo.send(xml("presence", { to: `${ROOM}/juliet2` }));
    const refused = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `${ROOM}/juliet2` && s.attrs.type === "error");
    expect(refused.getChild("error")?.getChild("conflict", "urn:ietf:params:xml:ns:xmpp-stanzas")).toBeDefined();
    // Still montague: a message is reflected from the old nick.
    await romeo.send(xml("message", { to: ROOM, type: "groupchat", id: "still" }, xml("body", {}, "still Montague")));
    expect((await romeo.waitFor((s) => s.attrs.id === "still")).attrs.from).toBe(`${ROOM}/montague`);
  });

  it("a nick already used on IRC is adjusted by the network and reported with 210", async () => {
    await tybalt.send(xml("presence", { to: `${ROOM}/juliet2` }, xml("x", { xmlns: MUC })));
    const self = await tybalt.waitFor((s) => s.name === "presence" && codes(s).includes("110"), 15_000);
    expect(codes(self)).toContain("210");
    expect(self.attrs.from).not.toBe(`${ROOM}/juliet2`);
    tybaltNick = self.attrs.from!.split("/")[1]!;
  });

  it("an in-room private message reaches the person behind the nick", async () => {
    await romeo.send(xml("message", { to: `${ROOM}/juliet2`, type: "chat", id: "inroom" }, xml("body", {}, "A word, in private")));
    await juliet.waitLine("in-room PM", (l) => / PRIVMSG juliet2 :A word, in private$/.test(l));
  });

  it("Juliet kicks Romeo: he sees a 307 with the reason", async () => {
    juliet.send("KICK #verona montague :Begone");
    const kicked = await romeo.waitFor((s) => s.name === "presence" && s.attrs.type === "unavailable" && codes(s).includes("307"));
    expect(codes(kicked)).toContain("110");
    expect(item(kicked)?.getChildText("reason")).toBe("Begone");
    // He is no longer in the room: a message now is refused, not silently dropped.
    await romeo.send(xml("message", { to: ROOM, type: "groupchat", id: "late" }, xml("body", {}, "wait")));
    const refused = await romeo.waitFor((s) => s.attrs.id === "late");
    expect(refused.attrs.type).toBe("error");
  });

  it("an op on IRC moderates from XMPP: topic, away, and a kick through muc#admin", async () => {
    expect(tybaltNick).not.toBe("");
    juliet.send(`MODE #verona +o ${tybaltNick}`);
    const opped = await tybalt.waitFor((st) => st.name === "presence" && st.attrs.from === `${ROOM}/${tybaltNick}` && item(st)?.attrs.role === "moderator");
    expect(codes(opped)).toContain("110");

    await tybalt.send(xml("message", { to: ROOM, type: "groupchat" }, xml("subject", {}, "A plague o' both your houses")));
    await juliet.waitLine("TOPIC from XMPP", (l) => new RegExp(`^:${tybaltNick}!\\S+ TOPIC #verona :A plague o' both your houses$`, "i").test(l));

    await tybalt.send(xml("presence", { to: `${ROOM}/${tybaltNick}` }, xml("show", {}, "away"), xml("status", {}, "fencing")));
    await juliet.waitLine("AWAY", (l) => new RegExp(`^:${tybaltNick}!\\S+ AWAY :fencing$`, "i").test(l));

    await tybalt.iq(
      xml("iq", { type: "set", to: ROOM }, xml("query", { xmlns: "http://jabber.org/protocol/muc#admin" }, xml("item", { nick: "juliet2", role: "none" }, xml("reason", {}, "Thou art a villain")))),
    );
    await juliet.waitLine("kicked by Tybalt", (l) => new RegExp(`^:${tybaltNick}!\\S+ KICK #verona juliet2 :Thou art a villain$`, "i").test(l));
    const gone = await tybalt.waitFor((st) => st.name === "presence" && st.attrs.from === `${ROOM}/juliet2` && st.attrs.type === "unavailable");
    expect(codes(gone)).toContain("307");
  });

  it("survives an IRC server restart: the room hears of it, and a line typed meanwhile arrives once", async () => {
    tybalt.inbox.length = 0;
    await ircd.restart({
      whileDown: async () => {
        await tybalt.waitFor((st) => st.name === "message" && st.attrs.from === ROOM && /lost/.test(st.getChildText("body") ?? ""), 10_000);
        await tybalt.send(xml("message", { to: ROOM, type: "groupchat", id: "during" }, xml("body", {}, "Is anyone there?")));
      },
    });
    // The nurse is on IRC before the gateway reconnects (its first retry waits at least 4 s).
    const nurse = await ircRemote(ircd, "nurse");
    try {
      await nurse.join("#verona");
      await tybalt.waitFor((st) => st.name === "message" && st.attrs.from === ROOM && /Reconnected/.test(st.getChildText("body") ?? ""), 15_000);
      await nurse.waitLine("the line typed during the outage", (l) => / PRIVMSG #verona :Is anyone there\?$/.test(l), 15_000);
      const reflected = await tybalt.waitFor((st) => st.attrs.id === "during");
      expect(reflected.attrs.type).toBe("groupchat");
      expect(nurse.lines.filter((l) => / PRIVMSG #verona :Is anyone there\?$/.test(l.line))).toHaveLength(1);
    } finally {
      nurse.quit();
    }
  });
});
