/**
 * What an XMPP user tries against Telegram beyond the happy path, on a real
 * Prosody, the fake Bot API and the SQLite store: corrections and
 * retractions of other people's messages (refused: XEP-0308/XEP-0424 business
 * rules), what Telegram's later events name after a correction, and the
 * correction of a file's caption.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { xml } from "@xmpp/client";
import type { Element } from "@xmpp/xml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTelegramAdapter } from "../../adapters/telegram/index.ts";
import type { Gateway } from "../../core/gateway.ts";
import { FakeBotApi } from "../support/fake-bot-api.ts";
import { startTestGateway, telegramTestNetwork } from "../support/gateway.ts";
import { startProsody, type ProsodyHandle } from "../support/prosody.ts";
import { isMessage, submitForm } from "../support/stanzas.ts";
import { waitFor } from "../support/wait.ts";
import { connectClient, type TestClient } from "../support/xmpp-client.ts";

const GW = "telegram.localhost";
const TOKEN = "5550002:AAbehaviour-token";
const BOT_ID = 5550002;
const ALICE = 3001;
const GROUP = -1009002;
const ROOM = `group1009002@${GW}`;
const NS = {
  replace: "urn:xmpp:message-correct:0",
  retract: "urn:xmpp:message-retract:1",
  reactions: "urn:xmpp:reactions:0",
  reply: "urn:xmpp:reply:0",
  sid: "urn:xmpp:sid:0",
  oob: "jabber:x:oob",
};
const PNG = Buffer.from(
  "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a4c60000000049454e44ae426082",
  "hex",
);

describe("Telegram: what a user tries beyond the happy path", () => {
  let prosody: ProsodyHandle;
  let fake: FakeBotApi;
  let gateway: Gateway;
  let romeo: TestClient;
  let dir: string;
  const alice = `${ALICE}@${GW}`;
  const scope = `romeo@localhost\ntelegram\nc:${ALICE}`;

  const errorOf = async (id: string): Promise<Element> => romeo.waitFor((s) => s.name === "message" && s.attrs.id === id && s.attrs.type === "error");
  const calls = (method: string): number => fake.calls.filter((c) => c.method === method).length;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "estuary-telegram-behaviour-"));
    [prosody, fake] = await Promise.all([
      startProsody({ components: [{ domain: GW, secret: "tg-secret" }], users: [{ username: "romeo", password: "pw" }] }),
      FakeBotApi.start(),
    ]);
    fake.addBot({ token: TOKEN, username: "romeo2_bot", first_name: "Romeo's bot" });
    fake.addUser({ id: ALICE, first_name: "Alice" });
    fake.addGroup({ id: GROUP, title: "Garden", type: "supergroup", members: [{ userId: ALICE, status: "creator" }] });
    // An administrator bot may delete anyone's message in the group: only the gateway can stop a wrong deletion.
    fake.addBotToGroup(TOKEN, GROUP, { status: "administrator", by: ALICE, rights: { can_delete_messages: true } });
    gateway = await startTestGateway({
      xmppPort: prosody.componentPort,
      networks: {
        telegram: telegramTestNetwork(GW, "tg-secret", fake.url),
      },
      adapters: { telegram: createTelegramAdapter },
      storeUrl: `sqlite:${join(dir, "estuary.sqlite")}`,
      fetch: { allowHosts: ["127.0.0.1"] },
    });
    romeo = await connectClient(prosody, "romeo", "pw");
    await romeo.iq(xml("iq", { type: "set", to: GW }, xml("query", { xmlns: "jabber:iq:register" }, submitForm({ token: TOKEN }))));
    await romeo.waitFor((s) => s.name === "presence" && s.attrs.type === "subscribe" && s.attrs.from === GW);
    await romeo.send(xml("presence", { to: GW, type: "subscribed" }));
    await romeo.send(xml("presence", { to: GW }));
    await fake.waitForCall((c) => c.method === "getUpdates" && c.token === TOKEN);
  });

  afterAll(async () => {
    await romeo?.stop();
    await gateway?.stop();
    await Promise.all([prosody?.stop(), fake?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("refuses to correct or retract a message Alice sent, in a 1:1 chat: Telegram is asked nothing", async () => {
    const sent = fake.userSends(TOKEN, { from: ALICE, chat: ALICE, text: "my words" });
    const got = await romeo.waitFor((s) => isMessage(s, alice, "my words"));
    const [edits, deletes] = [calls("editMessageText"), calls("deleteMessage")];

    await romeo.send(xml("message", { to: alice, type: "chat", id: "x-retract" }, xml("retract", { xmlns: NS.retract, id: got.attrs.id })));
    const refused = await errorOf("x-retract");
    expect(refused.getChild("error")?.getChild("forbidden", "urn:ietf:params:xml:ns:xmpp-stanzas")).toBeDefined();

    await romeo.send(xml("message", { to: alice, type: "chat", id: "x-correct" }, xml("body", {}, "your words"), xml("replace", { xmlns: NS.replace, id: got.attrs.id })));
    const refused2 = await errorOf("x-correct");
    expect(refused2.getChild("error")?.getChild("forbidden", "urn:ietf:params:xml:ns:xmpp-stanzas")).toBeDefined();

    expect(fake.message(TOKEN, ALICE, sent.message_id)?.deleted).toBeFalsy();
    expect([calls("editMessageText"), calls("deleteMessage")]).toEqual([edits, deletes]);
    expect(fake.sent(TOKEN).some((r) => r.text === "your words")).toBe(false);
  });

  it("refuses to retract someone else's message in a group where the bot could delete it; the user's own goes", async () => {
    await romeo.send(xml("presence", { to: `${ROOM}/romeo` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })));
    await romeo.waitFor((s) => s.name === "message" && s.attrs.from?.startsWith(ROOM) === true && s.getChild("subject") !== undefined);
    const sent = fake.userSends(TOKEN, { from: ALICE, chat: GROUP, text: "keep this" });
    const got = await romeo.waitFor((s) => isMessage(s, `${ROOM}/Alice`, "keep this"));
    const sid = got.getChild("stanza-id", NS.sid)?.attrs.id;
    expect(sid).toBeDefined();

    await romeo.send(xml("message", { to: ROOM, type: "groupchat", id: "g-retract" }, xml("retract", { xmlns: NS.retract, id: sid })));
    await errorOf("g-retract");
    expect(fake.message(TOKEN, GROUP, sent.message_id)?.deleted).toBeFalsy();

    await romeo.send(xml("message", { to: ROOM, type: "groupchat", id: "g-own" }, xml("body", {}, "oops")));
    const mine = await fake.waitForSent((r) => r.chat_id === GROUP && r.text === "oops");
    const reflected = await romeo.waitFor((s) => s.attrs.id === "g-own" && s.attrs.type === "groupchat");
    await romeo.send(
      xml("message", { to: ROOM, type: "groupchat", id: "g-own-retract" }, xml("retract", { xmlns: NS.retract, id: reflected.getChild("stanza-id", NS.sid)!.attrs.id })),
    );
    await waitFor(() => (fake.message(TOKEN, GROUP, mine.message_id)?.deleted ? true : undefined), { what: "the user's own message deleted" });
    expect(romeo.inbox.some((s) => s.attrs.id === "g-own-retract" && s.attrs.type === "error")).toBe(false);
  });

  it("after a correction, Alice's reaction and reply name the original message, and a second correction still applies", async () => {
    await romeo.send(xml("message", { to: alice, type: "chat", id: "c1" }, xml("body", {}, "teh cat")));
    const sent = await fake.waitForSent((r) => r.chat_id === ALICE && r.text === "teh cat");
    await romeo.send(xml("message", { to: alice, type: "chat", id: "c2" }, xml("body", {}, "the cat"), xml("replace", { xmlns: NS.replace, id: "c1" })));
    await waitFor(() => fake.edits(TOKEN).find((e) => e.message_id === sent.message_id && e.text === "the cat"), { what: "the first edit" });
    // The id map is written just after Telegram accepted the edit: wait for it as a person would.
    await waitFor(() => gateway.store.idmap.legacyFor(scope, "c2"), { what: "the correction's id mapped" });

    fake.userReacts(TOKEN, { from: ALICE, chat: ALICE, message_id: sent.message_id, new_reaction: [{ type: "emoji", emoji: "👍" }] });
    const reaction = await romeo.waitFor((s) => s.name === "message" && s.getChild("reactions", NS.reactions) !== undefined);
    expect(reaction.getChild("reactions", NS.reactions)?.attrs.id).toBe("c1");

    fake.userSends(TOKEN, { from: ALICE, chat: ALICE, text: "which cat?", reply_to_message_id: sent.message_id });
    const reply = await romeo.waitFor((s) => isMessage(s, alice, "which cat?"));
    expect(reply.getChild("reply", NS.reply)?.attrs.id).toBe("c1");

    // XEP-0308: every later correction names the original id.
    await romeo.send(xml("message", { to: alice, type: "chat", id: "c3" }, xml("body", {}, "the black cat"), xml("replace", { xmlns: NS.replace, id: "c1" })));
    await waitFor(() => fake.edits(TOKEN).find((e) => e.message_id === sent.message_id && e.text === "the black cat"), { what: "the second edit" });
  });

  it("corrects the caption of a file sent with one (editMessageCaption: the message has no text)", async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "image/png" });
      res.end(PNG);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/rose.png`;
      await romeo.send(xml("message", { to: alice, type: "chat", id: "f1" }, xml("body", {}, "a rose"), xml("x", { xmlns: NS.oob }, xml("url", {}, url))));
      const photo = await fake.waitForSent((r) => r.chat_id === ALICE && r.media?.kind === "photo");
      expect(photo.caption).toBe("a rose");
      await waitFor(() => gateway.store.idmap.legacyFor(scope, "f1"), { what: "the file's id mapped" });

      await romeo.send(xml("message", { to: alice, type: "chat", id: "f2" }, xml("body", {}, "a *red* rose"), xml("replace", { xmlns: NS.replace, id: "f1" })));
      const edit = await waitFor(() => fake.edits(TOKEN).find((e) => e.message_id === photo.message_id), { what: "the caption edit" });
      expect(edit).toMatchObject({ method: "editMessageCaption", caption: "a red rose", caption_entities: [{ type: "bold", offset: 2, length: 3 }] });
      expect(romeo.inbox.some((s) => s.attrs.id === "f2" && s.attrs.type === "error")).toBe(false);
    } finally {
      server.close();
    }
  });

  it("a bot's reaction set is the last emoji of an XEP-0444 set", async () => {
    const sent = fake.userSends(TOKEN, { from: ALICE, chat: ALICE, text: "react to me" });
    const got = await romeo.waitFor((s) => isMessage(s, alice, "react to me"));
    await romeo.send(
      xml("message", { to: alice, type: "chat", id: "rx" }, xml("reactions", { xmlns: NS.reactions, id: got.attrs.id }, xml("reaction", {}, "👍"), xml("reaction", {}, "❤️"))),
    );
    await waitFor(() => fake.message(TOKEN, ALICE, sent.message_id)?.reactions.get(BOT_ID), { what: "the reaction" });
    expect(fake.message(TOKEN, ALICE, sent.message_id)?.reactions.get(BOT_ID)).toEqual([{ type: "emoji", emoji: "❤" }]);
  });
});
