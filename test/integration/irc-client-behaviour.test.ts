/**
 * What XMPP clients (Gajim, Conversations, Dino) rely on when they use the
 * IRC gateway the way Biboumi users do, against a real Prosody and a real
 * InspIRCd: the XEP-0045 §7.2 join errors they act on, errors for messages
 * IRC refuses, and input they may send that IRC cannot carry.
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
const MUC = "http://jabber.org/protocol/muc";
const STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";
const roomJid = (channel: string) => `${channel}%${SERVER}@${GW}`;

/** The condition element's name and the error type of an error stanza. */
function errorOf(stanza: Element): { condition: string | undefined; type: string | undefined } {
  const error = stanza.getChild("error");
  const condition = error?.children.find((c): c is Element => typeof c !== "string" && c.attrs.xmlns === STANZAS && c.name !== "text");
  return { condition: condition?.name, type: error?.attrs.type };
}

describe("IRC gateway as XMPP clients use it", () => {
  let prosody: ProsodyHandle;
  let ircd: InspircdHandle;
  let gateway: Gateway;
  let romeo: TestClient;
  let juliet: IrcRemote;

  beforeAll(async () => {
    [prosody, ircd] = await Promise.all([
      startProsody({ components: [{ domain: GW, secret: "irc-secret" }], users: [{ username: "romeo", password: "pw" }] }),
      startInspircd(),
    ]);
    gateway = await startTestGateway({
      xmppPort: prosody.componentPort,
      networks: {
        irc: ircTestNetwork(GW, "irc-secret", SERVER, ircd.port, { lingerMs: 500, joinTimeoutMs: 8000 }),
      },
    });
    [romeo, juliet] = await Promise.all([connectClient(prosody, "romeo", "pw"), ircRemote(ircd, "juliet")]);
  });

  afterAll(async () => {
    juliet?.quit();
    await romeo?.stop();
    await gateway?.stop();
    await Promise.all([prosody?.stop(), ircd?.stop()]);
  });

  async function joinError(channel: string, password?: string): Promise<Element> {
    const room = roomJid(channel);
    await romeo.send(xml("presence", { to: `${room}/romeo` }, xml("x", { xmlns: MUC }, password === undefined ? undefined : xml("password", {}, password))));
    return romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `${room}/romeo`, 15_000);
  }

  it("refuses joins with the conditions of XEP-0045 §7.2: key, invite-only, ban, full", async () => {
    const modes: [string, string][] = [
      ["#keyed", "+k sesame"],
      ["#invited", "+i"],
      ["#banned", "+b romeo*!*@*"],
      ["#full", "+l 1"],
    ];
    for (const [channel, mode] of modes) {
      await juliet.join(channel);
      juliet.send(`MODE ${channel} ${mode}`);
      await juliet.waitLine(`${channel} ${mode}`, (l) => l.includes(` MODE ${channel} `) && l.includes(mode.split(" ")[0]!));
    }
    // §7.2.6: a password-protected room (Conversations and Gajim then ask for the password).
    const keyed = await joinError("#keyed");
    expect(keyed.attrs.type).toBe("error");
    expect(errorOf(keyed)).toEqual({ condition: "not-authorized", type: "auth" });
    expect(errorOf(await joinError("#keyed", "wrong"))).toEqual({ condition: "not-authorized", type: "auth" });
    // §7.2.7 members-only, §7.2.8 banned, §7.2.10 maximum number of users.
    expect(errorOf(await joinError("#invited"))).toEqual({ condition: "registration-required", type: "auth" });
    expect(errorOf(await joinError("#banned"))).toEqual({ condition: "forbidden", type: "auth" });
    expect(errorOf(await joinError("#full"))).toEqual({ condition: "service-unavailable", type: "wait" });
    // With the right password the join goes through: self-presence with 110.
    const joined = await joinError("#keyed", "sesame");
    expect(joined.attrs.type).toBeUndefined();
    expect(joined.getChild("x", "http://jabber.org/protocol/muc#user")?.getChildren("status").map((s) => s.attrs.code)).toContain("110");
  });

  it("a private message to a nick nobody has on IRC (401) comes back to its sender as an error", async () => {
    await romeo.send(xml("message", { to: `nobody%${SERVER}@${GW}`, type: "chat", id: "to-nobody" }, xml("body", {}, "anyone?")));
    const bounced = await romeo.waitFor((s) => s.name === "message" && s.attrs.id === "to-nobody", 10_000);
    expect(bounced.attrs.type).toBe("error");
    expect(bounced.attrs.from).toBe(`nobody%${SERVER}@${GW}`);
    expect(errorOf(bounced).condition).toBe("item-not-found");
    expect(bounced.getChildText("body")).toBe("anyone?");
    // A message to someone who is there still goes through, unanswered (1:1 messages are not reflected).
    await romeo.send(xml("message", { to: `juliet%${SERVER}@${GW}`, type: "chat", id: "to-juliet" }, xml("body", {}, "Juliet?")));
    await juliet.waitLine("Juliet gets it", (l) => / PRIVMSG juliet :Juliet\?$/.test(l));
    expect(romeo.inbox.some((s) => s.attrs.id === "to-juliet")).toBe(false);
  });

  it("a line the channel refuses (+m, 404) is an error to the sender, not a reflection", async () => {
    await juliet.join("#quiet");
    const room = roomJid("#quiet");
    await romeo.send(xml("presence", { to: `${room}/romeo` }, xml("x", { xmlns: MUC })));
    await romeo.waitFor((s) => s.name === "message" && s.attrs.from === room && s.getChild("subject") !== undefined, 15_000);
    await romeo.send(xml("message", { to: room, type: "groupchat", id: "loud" }, xml("body", {}, "before +m")));
    expect((await romeo.waitFor((s) => s.attrs.id === "loud", 10_000)).attrs.type).toBe("groupchat");
    juliet.send("MODE #quiet +m");
    await juliet.waitLine("+m", (l) => l.includes(" MODE #quiet ") && l.includes("+m"));
    await romeo.send(xml("message", { to: room, type: "groupchat", id: "muted" }, xml("body", {}, "after +m")));
    const refused = await romeo.waitFor((s) => s.attrs.id === "muted", 10_000);
    expect(refused.attrs.type).toBe("error");
    expect(errorOf(refused).condition).toBe("forbidden");
  });

  it("an empty body is refused rather than reflected as if IRC had it", async () => {
    await romeo.send(xml("message", { to: `juliet%${SERVER}@${GW}`, type: "chat", id: "empty" }, xml("body", {}, "")));
    const refused = await romeo.waitFor((s) => s.attrs.id === "empty", 10_000);
    expect(refused.attrs.type).toBe("error");
    expect(errorOf(refused).condition).toBe("not-acceptable");
  });

  it("a subject change or a kick IRC refuses (482, not an op) is an error to the request", async () => {
    await juliet.join("#ruled");
    const room = roomJid("#ruled");
    await romeo.send(xml("presence", { to: `${room}/romeo` }, xml("x", { xmlns: MUC })));
    await romeo.waitFor((s) => s.name === "message" && s.attrs.from === room && s.getChild("subject") !== undefined, 15_000);
    // XEP-0045 §8.1: a subject change the room does not allow is answered with <forbidden/>.
    await romeo.send(xml("message", { to: room, type: "groupchat", id: "topic" }, xml("subject", {}, "Romeo rules")));
    const refused = await romeo.waitFor((s) => s.attrs.id === "topic", 10_000);
    expect(refused.attrs.type).toBe("error");
    expect(errorOf(refused).condition).toBe("forbidden");
    // §8.2: a kick by someone who may not kick fails; the IQ is not a success.
    const kick = await romeo
      .iq(xml("iq", { type: "set", to: room }, xml("query", { xmlns: "http://jabber.org/protocol/muc#admin" }, xml("item", { nick: "juliet", role: "none" }))), 10_000)
      .catch((e: { condition?: string }) => e);
    expect((kick as { condition?: string }).condition).toBe("forbidden");
    // Once an op, the same requests go through.
    juliet.send("MODE #ruled +o romeo");
    await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `${room}/romeo` && s.getChild("x", "http://jabber.org/protocol/muc#user")?.getChild("item")?.attrs.role === "moderator", 10_000);
    await romeo.send(xml("message", { to: room, type: "groupchat", id: "topic2" }, xml("subject", {}, "Romeo rules")));
    await juliet.waitLine("TOPIC", (l) => / TOPIC #ruled :Romeo rules$/.test(l));
    expect(romeo.inbox.some((s) => s.attrs.id === "topic2" && s.attrs.type === "error")).toBe(false);
  });
});
