/**
 * Two things Biboumi users rely on, against a real Prosody and a real
 * InspIRCd: the IRC server's channel list as disco#items on the server's JID,
 * paged with XEP-0059, and invitations both ways (XEP-0045 §7.8.2).
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
const SERVER_JID = `${SERVER}@${GW}`;
const MUC = "http://jabber.org/protocol/muc";
const MUC_USER = "http://jabber.org/protocol/muc#user";
const ITEMS = "http://jabber.org/protocol/disco#items";
const INFO = "http://jabber.org/protocol/disco#info";
const RSM = "http://jabber.org/protocol/rsm";
const STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";
const roomJid = (channel: string) => `${channel}%${SERVER}@${GW}`;

function conditionOf(stanza: Element): string | undefined {
  const error = stanza.getChild("error");
  return error?.children.find((c): c is Element => typeof c !== "string" && c.attrs.xmlns === STANZAS && c.name !== "text")?.name;
}

describe("IRC channel list and invitations", () => {
  let prosody: ProsodyHandle;
  let ircd: InspircdHandle;
  let gateway: Gateway;
  let romeo: TestClient;
  let mercutio: TestClient;
  let tybalt: IrcRemote;
  let benvolio: IrcRemote;

  beforeAll(async () => {
    [prosody, ircd] = await Promise.all([
      startProsody({
        components: [{ domain: GW, secret: "irc-secret" }],
        users: [
          { username: "romeo", password: "pw" },
          { username: "mercutio", password: "pw" },
        ],
      }),
      startInspircd(),
    ]);
    gateway = await startTestGateway({
      xmppPort: prosody.componentPort,
      networks: { irc: ircTestNetwork(GW, "irc-secret", SERVER, ircd.port, { lingerMs: 60_000, joinTimeoutMs: 8000 }) },
    });
    [romeo, mercutio, tybalt, benvolio] = await Promise.all([
      connectClient(prosody, "romeo", "pw"),
      connectClient(prosody, "mercutio", "pw"),
      ircRemote(ircd, "tybalt"),
      ircRemote(ircd, "benvolio"),
    ]);
  });

  afterAll(async () => {
    tybalt?.quit();
    benvolio?.quit();
    await Promise.all([romeo?.stop(), mercutio?.stop()]);
    await gateway?.stop();
    await Promise.all([prosody?.stop(), ircd?.stop()]);
  });

  async function join(channel: string): Promise<void> {
    const room = roomJid(channel);
    await romeo.send(xml("presence", { to: `${room}/romeo` }, xml("x", { xmlns: MUC })));
    await romeo.waitFor((s) => s.name === "message" && s.attrs.from === room && s.getChild("subject") !== undefined, 15_000);
  }

  function items(query: { rsm?: Element[] } = {}): Promise<Element> {
    return romeo
      .iq(xml("iq", { type: "get", to: SERVER_JID }, xml("query", { xmlns: ITEMS }, query.rsm ? xml("set", { xmlns: RSM }, ...query.rsm) : undefined)), 20_000)
      .then((r) => r.getChild("query", ITEMS)!);
  }

  const jidsOf = (q: Element) => q.getChildren("item").map((i) => i.attrs.jid as string);

  it("lists the server's public channels on its JID, paged with RSM", async () => {
    const channels = ["#list-a", "#list-b", "#list-c", "#list-d", "#list-e"];
    for (const [i, c] of channels.entries()) {
      await tybalt.join(c);
      // IRC formatting in a topic (bold here) is not shown as control characters.
      tybalt.send(`TOPIC ${c} :${i === 0 ? "\x02Bold\x02 start" : `Topic of ${c}`}`);
      await tybalt.waitLine(`topic of ${c}`, (l) => l.includes(` TOPIC ${c} `));
    }
    // A secret channel (+s) is not listed by the server, so not by the gateway either.
    await tybalt.join("#list-secret");
    tybalt.send("MODE #list-secret +s");
    await tybalt.waitLine("+s", (l) => l.includes(" MODE #list-secret ") && l.includes("+s"));

    // The server's JID says it has items and pages them (XEP-0059 §4).
    const info = await romeo.iq(xml("iq", { type: "get", to: SERVER_JID }, xml("query", { xmlns: INFO })), 10_000);
    const features = info.getChild("query", INFO)!.getChildren("feature").map((f) => f.attrs.var);
    expect(features).toEqual(expect.arrayContaining([ITEMS, RSM]));

    const all = await items();
    const expected = channels.map(roomJid).sort();
    expect(jidsOf(all)).toEqual(expected);
    expect(all.getChild("set", RSM)?.getChildText("count")).toBe("5");
    const names = new Map(all.getChildren("item").map((i) => [i.attrs.jid as string, i.attrs.name as string]));
    expect(names.get(roomJid("#list-a"))).toBe("#list-a (1): Bold start");
    expect(names.get(roomJid("#list-c"))).toBe("#list-c (1): Topic of #list-c");

    // Five channels, two per page: 2 + 2 + 1, then nothing after the last.
    const pages: Element[] = [];
    let after: string | undefined;
    for (let n = 0; n < 4; n++) {
      const page = await items({ rsm: [xml("max", {}, "2"), ...(after ? [xml("after", {}, after)] : [])] });
      pages.push(page);
      after = page.getChild("set", RSM)?.getChildText("last") ?? undefined;
    }
    expect(pages.map((p) => jidsOf(p).length)).toEqual([2, 2, 1, 0]);
    expect(pages.flatMap(jidsOf)).toEqual(expected);
    for (const [n, p] of pages.slice(0, 3).entries()) {
      const set = p.getChild("set", RSM)!;
      expect(set.getChildText("count")).toBe("5");
      expect(set.getChild("first")?.attrs.index).toBe(String(n * 2));
      expect(set.getChildText("first")).toBe(jidsOf(p)[0]);
      expect(set.getChildText("last")).toBe(jidsOf(p).at(-1));
    }
    const empty = pages[3]!.getChild("set", RSM)!;
    expect(empty.getChild("first")).toBeUndefined();
    expect(empty.getChildText("count")).toBe("5");

    // The last page (empty <before/>, §2.5), and an unknown UID (§2.4).
    expect(jidsOf(await items({ rsm: [xml("max", {}, "2"), xml("before")] }))).toEqual(expected.slice(3));
    const unknown = await items({ rsm: [xml("after", {}, roomJid("#nowhere"))] }).catch((e: { condition?: string }) => e);
    expect((unknown as { condition?: string }).condition).toBe("item-not-found");

  });

  it("an invitation to a person on IRC becomes INVITE, and a hostile reason injects nothing", async () => {
    await join("#inv-out");
    await benvolio.join("#inv-out");
    const room = roomJid("#inv-out");
    await romeo.send(
      xml(
        "message",
        { to: room, id: "invite-tybalt" },
        xml("x", { xmlns: MUC_USER }, xml("invite", { to: `tybalt%${SERVER}@${GW}` }, xml("reason", {}, "come in\r\nPRIVMSG #inv-out :pwned\r\nQUIT :x"))),
      ),
    );
    await tybalt.waitLine("INVITE from romeo", (l) => / INVITE tybalt :?#inv-out$/i.test(l) && l.startsWith(":romeo!"));
    // A line romeo sends afterwards reaches the channel; nothing he did not send came before it.
    await romeo.send(xml("message", { to: room, type: "groupchat", id: "marker" }, xml("body", {}, "marker")));
    await benvolio.waitLine("marker", (l) => l.includes("PRIVMSG #inv-out :marker"));
    expect(benvolio.lines.some((l) => l.line.includes("pwned"))).toBe(false);
    expect(benvolio.lines.some((l) => / QUIT /.test(l.line) && l.line.startsWith(":romeo!"))).toBe(false);
    expect(romeo.inbox.some((s) => s.attrs.id === "invite-tybalt" && s.attrs.type === "error")).toBe(false);
  });

  it("an invitation IRC refuses, or a wrong one, comes back as an error", async () => {
    const room = roomJid("#inv-out");
    const invite = (id: string, to: string | undefined, target = room) =>
      romeo.send(xml("message", { to: target, id }, xml("x", { xmlns: MUC_USER }, xml("invite", to === undefined ? {} : { to }))));
    // 401 ERR_NOSUCHNICK.
    await invite("invite-ghost", `ghost%${SERVER}@${GW}`);
    const ghost = await romeo.waitFor((s) => s.attrs.id === "invite-ghost", 10_000);
    expect(ghost.attrs.type).toBe("error");
    expect(ghost.attrs.from).toBe(room);
    expect(conditionOf(ghost)).toBe("item-not-found");
    // 443 ERR_USERONCHANNEL: benvolio is already there.
    await invite("invite-there", `benvolio%${SERVER}@${GW}`);
    expect(conditionOf(await romeo.waitFor((s) => s.attrs.id === "invite-there", 10_000))).toBe("conflict");
    // No address, or one that is no person.
    await invite("invite-none", undefined);
    expect(conditionOf(await romeo.waitFor((s) => s.attrs.id === "invite-none", 10_000))).toBe("bad-request");
    await invite("invite-room", roomJid("#list-a"));
    expect(conditionOf(await romeo.waitFor((s) => s.attrs.id === "invite-room", 10_000))).toBe("bad-request");
    // From a room romeo is not in.
    await invite("invite-outside", `tybalt%${SERVER}@${GW}`, roomJid("#list-b"));
    expect(conditionOf(await romeo.waitFor((s) => s.attrs.id === "invite-outside", 10_000))).toBe("not-acceptable");
  });

  it("an invitation to a fellow XMPP user is sent by the room (XEP-0045 §7.8.2)", async () => {
    const room = roomJid("#inv-out");
    await romeo.send(xml("message", { to: room, id: "invite-mercutio" }, xml("x", { xmlns: MUC_USER }, xml("invite", { to: mercutio.bare }, xml("reason", {}, "join us")))));
    const got = await mercutio.waitFor((s) => s.name === "message" && s.attrs.from === room, 10_000);
    const invite = got.getChild("x", MUC_USER)?.getChild("invite");
    expect(invite?.attrs.from).toBe(romeo.bare);
    expect(invite?.getChildText("reason")).toBe("join us");
    expect(got.getChildText("body")).toContain(room);
  });

  it("an IRC INVITE reaches the user as an invitation from the room", async () => {
    await tybalt.join("#inv-in");
    tybalt.send("INVITE romeo #inv-in");
    await tybalt.waitLine("341", (l) => / 341 tybalt romeo :?#inv-in/i.test(l));
    const room = roomJid("#inv-in");
    const got = await romeo.waitFor((s) => s.name === "message" && s.attrs.from === room && s.getChild("x", MUC_USER)?.getChild("invite") !== undefined, 10_000);
    expect(got.attrs.to).toBe(romeo.bare);
    expect(got.getChild("x", MUC_USER)!.getChild("invite")!.attrs.from).toBe(`tybalt%${SERVER}@${GW}`);
    // The client can act on it: joining works (the channel is not even +i here).
    await join("#inv-in");
  });
});
