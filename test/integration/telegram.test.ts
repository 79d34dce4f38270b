/**
 * The Telegram adapter end to end: a real XMPP client ↔ a real Prosody ↔
 * Estuary (SQLite store) ↔ the Telegram adapter ↔ the fake Bot API ↔
 * simulated Telegram people. Reads as a user setting up their bot, chatting
 * 1:1 and in a group, surviving a 429 storm and a gateway restart.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isMessage, submitForm } from "../support/stanzas.ts";
import { xml } from "@xmpp/client";
import type { Element } from "@xmpp/xml";
import { createTelegramAdapter } from "../../adapters/telegram/index.ts";
import type { Gateway } from "../../core/gateway.ts";
import { FakeBotApi } from "../support/fake-bot-api.ts";
import { startTestGateway, telegramTestNetwork } from "../support/gateway.ts";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { startProsody, type ProsodyHandle } from "../support/prosody.ts";
import { waitFor } from "../support/wait.ts";
import { connectClient, type TestClient } from "../support/xmpp-client.ts";
import { png } from "../support/png.ts";

const GW = "telegram.localhost";
const TOKEN = "5550001:AAintegration-token";
const BOT_ID = 5550001;
const ALICE = 2001;
const CARL = 2002;
const GROUP = -1009001;
const ROOM = `group1009001@${GW}`;
const NS_REGISTER = "jabber:iq:register";
const NS_DATA = "jabber:x:data";
const NS_MUC_USER = "http://jabber.org/protocol/muc#user";
const NS = {
  replace: "urn:xmpp:message-correct:0",
  retract: "urn:xmpp:message-retract:1",
  reactions: "urn:xmpp:reactions:0",
  reply: "urn:xmpp:reply:0",
  nick: "http://jabber.org/protocol/nick",
};

/** A real PNG (signature, IHDR, IDAT, IEND with CRCs) of the given size. */

describe("Telegram adapter on a real Prosody", () => {
  let prosody: ProsodyHandle;
  let fake: FakeBotApi;
  let gateway: Gateway;
  let romeo: TestClient;
  let dir: string;
  const alice = `${ALICE}@${GW}`;

  const start = () =>
    startTestGateway({
      xmppPort: prosody.componentPort,
      networks: {
        telegram: telegramTestNetwork(GW, "tg-secret", fake.url),
      },
      adapters: { telegram: createTelegramAdapter },
      storeUrl: `sqlite:${join(dir, "estuary.sqlite")}`,
      // The HTTP listener serves Telegram media to XMPP clients.
      http: { host: "127.0.0.1", port: 0, mediaDir: join(dir, "media") },
      // The test's own upload server is on loopback, which the SSRF guard refuses unless allowed.
      fetch: { allowHosts: ["127.0.0.1"] },
    });

  /** The user announces themselves to the gateway; resolves once the bot is polling (gateway presence online). */
  const comeOnline = async (): Promise<void> => {
    await romeo.send(xml("presence", { to: GW }));
    await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === GW && s.attrs.type === undefined && s.getChild("show") === undefined, 10_000);
    await fake.waitForCall((c) => c.method === "getUpdates" && c.token === TOKEN);
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "estuary-telegram-"));
    [prosody, fake] = await Promise.all([
      startProsody({ components: [{ domain: GW, secret: "tg-secret" }], users: [{ username: "romeo", password: "pw" }] }),
      FakeBotApi.start(),
    ]);
    fake.addBot({ token: TOKEN, username: "romeo_bot", first_name: "Romeo's bot" });
    fake.addUser({ id: ALICE, first_name: "Alice", last_name: "Liddell", username: "alice" });
    fake.addUser({ id: CARL, first_name: "Carl" });
    fake.addGroup({
      id: GROUP,
      title: "Wonderland",
      type: "supergroup",
      members: [
        { userId: ALICE, status: "creator" },
        { userId: CARL, status: "member" },
      ],
    });
    fake.addBotToGroup(TOKEN, GROUP, { status: "administrator", by: ALICE });
    gateway = await start();
    romeo = await connectClient(prosody, "romeo", "pw");
  });

  afterAll(async () => {
    await romeo?.stop();
    await gateway?.stop();
    await Promise.all([prosody?.stop(), fake?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("registers with a bot token: a wrong one is refused with a text, the right one brings the bot online", async () => {
    const res = await romeo.iq(xml("iq", { type: "get", to: GW }, xml("query", { xmlns: NS_REGISTER })));
    const fields = res.getChild("query")!.getChild("x", NS_DATA)!.getChildren("field");
    expect(fields.filter((f) => f.attrs.var !== "FORM_TYPE").map((f) => [f.attrs.var, f.attrs.type])).toEqual([["token", "text-private"]]);

    const wrong = await romeo
      .iq(xml("iq", { type: "set", to: GW }, xml("query", { xmlns: NS_REGISTER }, submitForm({ token: "5550001:AAwrong" }))))
      .catch((err: { condition?: string; element?: Element }) => err);
    expect(wrong).toMatchObject({ condition: "not-acceptable" });
    expect((wrong as { element: Element }).element.getChildText("text")).toMatch(/^Telegram refused this bot token/);

    await romeo.iq(xml("iq", { type: "set", to: GW }, xml("query", { xmlns: NS_REGISTER }, submitForm({ token: TOKEN }))));
    await romeo.waitFor((s) => s.name === "presence" && s.attrs.type === "subscribe" && s.attrs.from === GW);
    await romeo.send(xml("presence", { to: GW, type: "subscribed" }));
    await comeOnline();
  });

  let aliceFirst: Element;
  it("delivers a Telegram message with its formatting as XEP-0393, after the sender's nick", async () => {
    fake.userSends(TOKEN, {
      from: ALICE,
      chat: ALICE,
      text: "Hello 🐇 Romeo, see code",
      entities: [
        { type: "bold", offset: 6, length: 2 },
        { type: "italic", offset: 9, length: 5 },
        { type: "code", offset: 20, length: 4 },
      ],
    });
    const presence = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === alice);
    expect(presence.getChildText("nick", NS.nick)).toBe("Alice Liddell");
    aliceFirst = await romeo.waitFor((s) => isMessage(s, alice));
    expect(aliceFirst.attrs.type).toBe("chat");
    expect(aliceFirst.getChildText("body")).toBe("Hello *🐇* _Romeo_, see `code`");
  });

  it("gives the contact's name and profile photo in its vCard", async () => {
    const png = Buffer.from("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a4c60000000049454e44ae426082", "hex");
    fake.setProfilePhoto(ALICE, png);
    const res = await romeo.iq(xml("iq", { type: "get", to: alice }, xml("vCard", { xmlns: "vcard-temp" })));
    const vcard = res.getChild("vCard", "vcard-temp")!;
    expect(vcard.getChildText("FN")).toBe("Alice Liddell");
    expect(Buffer.from(vcard.getChild("PHOTO")!.getChildText("BINVAL")!, "base64")).toEqual(png);
  });

  let romeoReply: { xmppId: string; tgId: number };
  it("sends the user's reply with entities (not markup) and reply_parameters", async () => {
    await romeo.send(
      xml(
        "message",
        { to: alice, type: "chat", id: "r1" },
        xml("body", {}, "Hi *Alice* <b>"),
        xml("reply", { xmlns: NS.reply, to: alice, id: aliceFirst.attrs.id }),
      ),
    );
    const sent = await fake.waitForSent((r) => r.chat_id === ALICE && r.text === "Hi Alice <b>");
    expect(sent.entities).toEqual([{ type: "bold", offset: 3, length: 5 }]);
    expect(sent.reply_to_message_id).toBe(1);
    expect(fake.calls.some((c) => c.method === "sendMessage" && c.params.parse_mode !== undefined)).toBe(false);
    romeoReply = { xmppId: "r1", tgId: sent.message_id };
  });

  it("corrects, reacts and retracts through edit, setMessageReaction and deleteMessage", async () => {
    await romeo.send(xml("message", { to: alice, type: "chat", id: "r2" }, xml("body", {}, "Hi _Alice_"), xml("replace", { xmlns: NS.replace, id: "r1" })));
    await waitFor(() => fake.edits(TOKEN).find((e) => e.message_id === romeoReply.tgId), { what: "the edit" });
    expect(fake.edits(TOKEN).at(-1)).toMatchObject({ text: "Hi Alice", entities: [{ type: "italic", offset: 3, length: 5 }] });

    await romeo.send(xml("message", { to: alice, type: "chat", id: "r3" }, xml("reactions", { xmlns: NS.reactions, id: aliceFirst.attrs.id }, xml("reaction", {}, "👍"))));
    await waitFor(() => fake.message(TOKEN, ALICE, 1)?.reactions.get(BOT_ID), { what: "the reaction" });
    expect(fake.message(TOKEN, ALICE, 1)?.reactions.get(BOT_ID)).toEqual([{ type: "emoji", emoji: "👍" }]);

    await romeo.send(xml("message", { to: alice, type: "chat" }, xml("composing", { xmlns: "http://jabber.org/protocol/chatstates" })));
    const typing = await fake.waitForCall((c) => c.method === "sendChatAction");
    expect(typing.params).toMatchObject({ chat_id: ALICE, action: "typing" });

    await romeo.send(xml("message", { to: alice, type: "chat", id: "r4" }, xml("retract", { xmlns: NS.retract, id: "r1" })));
    await waitFor(() => (fake.message(TOKEN, ALICE, romeoReply.tgId)?.deleted ? true : undefined), { what: "the deletion" });
    expect(romeo.inbox.filter((s) => s.attrs.type === "error")).toEqual([]);
  });

  it("carries Telegram's edits, reactions and replies to the XMPP user", async () => {
    fake.userEdits(TOKEN, { from: ALICE, chat: ALICE, message_id: 1, text: "Hello again" });
    const edit = await romeo.waitFor((s) => isMessage(s, alice, "Hello again"));
    expect(edit.getChild("replace", NS.replace)?.attrs.id).toBe(aliceFirst.attrs.id);

    // A reply to a message the user sent from XMPP points at the user's own stanza id.
    await romeo.send(xml("message", { to: alice, type: "chat", id: "r5" }, xml("body", {}, "Still there?")));
    const mine = await fake.waitForSent((r) => r.text === "Still there?");
    // The core records the id mapping just after Telegram accepted the message (a few ms after the fake logged it);
    // a person answers later than that, the simulated one could be quicker: wait for the mapping like a human would.
    await waitFor(() => gateway.store.idmap.legacyFor(`romeo@localhost\ntelegram\nc:${ALICE}`, "r5"), { what: "the gateway to map r5 to its Telegram id" });
    fake.userSends(TOKEN, { from: ALICE, chat: ALICE, text: "Yes!", reply_to_message_id: mine.message_id });
    const reply = await romeo.waitFor((s) => isMessage(s, alice, "Yes!"));
    expect(reply.getChild("reply", NS.reply)?.attrs.id).toBe("r5");

    fake.userReacts(TOKEN, { from: ALICE, chat: ALICE, message_id: mine.message_id, new_reaction: [{ type: "emoji", emoji: "❤" }, { type: "emoji", emoji: "🔥" }] });
    const reactions = await romeo.waitFor((s) => s.name === "message" && s.getChild("reactions", NS.reactions) !== undefined);
    const el = reactions.getChild("reactions", NS.reactions)!;
    expect(el.attrs.id).toBe("r5");
    expect(el.getChildren("reaction").map((r) => r.getText())).toEqual(["❤", "🔥"]);
  });

  it("relays a Telegram photo as an XEP-0066 link the client can download, with the caption as text", async () => {
    const bytes = png(3, 2);
    fake.userSendsPhoto(TOKEN, { from: ALICE, chat: ALICE, bytes, caption: "a rabbit" });
    const photo = await romeo.waitFor((s) => isMessage(s, alice, "a rabbit"));
    const url = photo.getChild("x", "jabber:x:oob")?.getChildText("url");
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//);
    const res = await fetch(url!);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
  });

  it("joins a group as a MUC: occupants, subject, messages both ways", async () => {
    await romeo.send(xml("presence", { to: `${ROOM}/romeo` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })));
    const owner = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `${ROOM}/Alice Liddell`);
    expect(owner.getChild("x", NS_MUC_USER)?.getChild("item")?.attrs).toMatchObject({ affiliation: "owner", role: "moderator" });
    const self = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `${ROOM}/romeo`);
    expect(self.getChild("x", NS_MUC_USER)?.getChildren("status").map((c) => c.attrs.code)).toContain("110");
    expect(self.getChild("x", NS_MUC_USER)?.getChild("item")?.attrs).toMatchObject({ affiliation: "admin", role: "moderator" });
    const subject = await romeo.waitFor((s) => s.name === "message" && s.attrs.from?.startsWith(ROOM) === true && s.getChild("subject") !== undefined);
    expect(subject.getChildText("subject")).toBe("Wonderland");

    fake.userSends(TOKEN, { from: CARL, chat: GROUP, text: "Who is there?" });
    const carlJoins = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `${ROOM}/Carl`);
    expect(carlJoins.getChild("x", NS_MUC_USER)?.getChild("item")?.attrs).toMatchObject({ role: "participant" });
    const fromCarl = await romeo.waitFor((s) => isMessage(s, `${ROOM}/Carl`, "Who is there?"));
    expect(fromCarl.attrs.type).toBe("groupchat");

    await romeo.send(xml("message", { to: ROOM, type: "groupchat", id: "g1" }, xml("body", {}, "Me, *Romeo*")));
    const sent = await fake.waitForSent((r) => r.chat_id === GROUP && r.text === "Me, Romeo");
    expect(sent.entities).toEqual([{ type: "bold", offset: 4, length: 5 }]);
    const reflected = await romeo.waitFor((s) => s.name === "message" && s.attrs.id === "g1" && s.attrs.from === `${ROOM}/romeo`);
    expect(reflected.attrs.type).toBe("groupchat");

    // XEP-0045 §8.1 subject change → setChatTitle (the bot is an admin here).
    await romeo.send(xml("message", { to: ROOM, type: "groupchat", id: "subj" }, xml("subject", {}, "Looking-glass house")));
    const title = await fake.waitForCall((c) => c.method === "setChatTitle");
    expect(title.params).toMatchObject({ chat_id: GROUP, title: "Looking-glass house" });

    fake.userLeaves(GROUP, CARL);
    const gone = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `${ROOM}/Carl` && s.attrs.type === "unavailable");
    expect(gone).toBeDefined();
  });

  it("uploads an XMPP attachment (OOB URL) to Telegram, and refuses a URL the SSRF guard forbids", async () => {
    const png = Buffer.from("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a4c60000000049454e44ae426082", "hex");
    const server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "image/png" });
      res.end(png);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as AddressInfo).port;
    try {
      const url = `http://127.0.0.1:${port}/rose.png`;
      await romeo.send(xml("message", { to: alice, type: "chat", id: "att1" }, xml("body", {}, url), xml("x", { xmlns: "jabber:x:oob" }, xml("url", {}, url))));
      const photo = await fake.waitForSent((m) => m.chat_id === ALICE && m.media?.kind === "photo");
      expect(Buffer.from(photo.media!.bytes)).toEqual(png);
      // 127.0.0.2 is loopback too, and not in allowHosts: refused, and the sender is told.
      const forbidden = `http://127.0.0.2:${port}/rose.png`;
      await romeo.send(xml("message", { to: alice, type: "chat", id: "att2" }, xml("body", {}, forbidden), xml("x", { xmlns: "jabber:x:oob" }, xml("url", {}, forbidden))));
      const err = await romeo.waitFor((st) => st.attrs.id === "att2" && st.attrs.type === "error");
      expect(err.getChild("error")?.getChildText("text")).toMatch(/private|refused|not allowed/i);
    } finally {
      server.close();
    }
  });

  it("loses nothing in a 429 storm", async () => {
    fake.failNext("sendMessage", { error_code: 429, description: "Too Many Requests: retry after 1", parameters: { retry_after: 1 } }, 3);
    const texts = ["storm 1", "storm 2", "storm 3", "storm 4"];
    for (const [i, text] of texts.entries()) await romeo.send(xml("message", { to: alice, type: "chat", id: `s${i}` }, xml("body", {}, text)));
    await fake.waitForSent((r) => r.text === "storm 4", 15_000);
    expect(fake.sent(TOKEN).filter((r) => r.text?.startsWith("storm")).map((r) => r.text)).toEqual(texts);
    expect(romeo.inbox.filter((s) => s.attrs.type === "error")).toEqual([]);
  });

  it("after a gateway restart on the same store, the next update is delivered once: not replayed, not skipped", async () => {
    const fromAlice = () => romeo.inbox.filter((s) => isMessage(s, alice)).length;
    const stale = fromAlice();
    await gateway.stop();
    fake.userSends(TOKEN, { from: ALICE, chat: ALICE, text: "while you were away" });
    gateway = await start();
    await comeOnline();
    await romeo.waitFor((s) => isMessage(s, alice, "while you were away"), 10_000);
    fake.userSends(TOKEN, { from: ALICE, chat: ALICE, text: "and now" });
    await romeo.waitFor((s) => isMessage(s, alice, "and now"), 10_000);
    // Updates arrive in order: a replay of anything older, or a second copy of the first, would be in the inbox by now.
    expect(fromAlice()).toBe(stale);
  });
});
