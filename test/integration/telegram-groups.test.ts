/**
 * Telegram groups as real ones behave, end to end: a real XMPP client ↔ a
 * real Prosody ↔ Estuary ↔ the Telegram adapter ↔ the fake Bot API. A forum
 * supergroup is one MUC whose topic messages carry the topic's name and
 * whose replies go back into the topic; content without an XMPP form
 * arrives as text; a group upgraded to a supergroup invites the user to its
 * new room and closes the old one.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { xml } from "@xmpp/client";
import { createTelegramAdapter } from "../../adapters/telegram/index.ts";
import type { Gateway } from "../../core/gateway.ts";
import { FakeBotApi } from "../support/fake-bot-api.ts";
import { startTestGateway, telegramTestNetwork } from "../support/gateway.ts";
import { startProsody, type ProsodyHandle } from "../support/prosody.ts";
import { isMessage, submitForm } from "../support/stanzas.ts";
import { connectClient, type TestClient } from "../support/xmpp-client.ts";

const GW = "telegram.localhost";
const TOKEN = "5550002:AAgroups-integration";
const ALICE = 2101;
const BOB = 2102;
const FORUM = -1009101;
const FORUM_ROOM = `group1009101@${GW}`;
const GROUP = -9102;
const GROUP_ROOM = `group9102@${GW}`;
const NS_MUC = "http://jabber.org/protocol/muc";
const NS_MUC_USER = "http://jabber.org/protocol/muc#user";
const NS_REPLY = "urn:xmpp:reply:0";
const NS_SID = "urn:xmpp:sid:0";

describe("Telegram groups on a real Prosody", () => {
  let prosody: ProsodyHandle;
  let fake: FakeBotApi;
  let gateway: Gateway;
  let romeo: TestClient;
  let dir: string;

  const enter = async (room: string): Promise<void> => {
    await romeo.send(xml("presence", { to: `${room}/romeo` }, xml("x", { xmlns: NS_MUC })));
    await romeo.waitFor((s) => s.name === "message" && s.attrs.from?.startsWith(room) === true && s.getChild("subject") !== undefined);
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "estuary-telegram-groups-"));
    [prosody, fake] = await Promise.all([
      startProsody({ components: [{ domain: GW, secret: "tg-secret" }], users: [{ username: "romeo", password: "pw" }] }),
      FakeBotApi.start(),
    ]);
    fake.addBot({ token: TOKEN, username: "romeo_bot", first_name: "Romeo's bot" });
    fake.addUser({ id: ALICE, first_name: "Alice" });
    fake.addUser({ id: BOB, first_name: "Bob" });
    const members = [
      { userId: ALICE, status: "creator" as const },
      { userId: BOB, status: "member" as const },
    ];
    fake.addGroup({ id: FORUM, title: "Forum", type: "supergroup", is_forum: true, members });
    fake.addGroup({ id: GROUP, title: "Small group", type: "group", members });
    fake.addBotToGroup(TOKEN, FORUM, { status: "administrator", by: ALICE });
    fake.addBotToGroup(TOKEN, GROUP, { status: "administrator", by: ALICE });
    gateway = await startTestGateway({
      xmppPort: prosody.componentPort,
      networks: { telegram: telegramTestNetwork(GW, "tg-secret", fake.url) },
      adapters: { telegram: createTelegramAdapter },
      storeUrl: `sqlite:${join(dir, "estuary.sqlite")}`,
    });
    romeo = await connectClient(prosody, "romeo", "pw");
    await romeo.iq(xml("iq", { type: "set", to: GW }, xml("query", { xmlns: "jabber:iq:register" }, submitForm({ token: TOKEN }))));
    await romeo.waitFor((s) => s.name === "presence" && s.attrs.type === "subscribe" && s.attrs.from === GW);
    await romeo.send(xml("presence", { to: GW, type: "subscribed" }));
    await romeo.send(xml("presence", { to: GW }));
    await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === GW && s.attrs.type === undefined && s.getChild("show") === undefined, 10_000);
  });

  afterAll(async () => {
    await romeo?.stop();
    await gateway?.stop();
    await Promise.all([prosody?.stop(), fake?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("shows a forum's topics in its room by name, and sends an XMPP reply into the topic", async () => {
    await enter(FORUM_ROOM);
    const root = fake.userCreatesTopic(TOKEN, { from: ALICE, chat: FORUM, name: "Ideas" });
    await romeo.waitFor((s) => isMessage(s, `${FORUM_ROOM}/Alice`, "/me created the topic “Ideas”"));
    fake.userSends(TOKEN, { from: BOB, chat: FORUM, text: "what about tea?", message_thread_id: root.message_id });
    const tea = await romeo.waitFor((s) => isMessage(s, `${FORUM_ROOM}/Bob`, "[Ideas] what about tea?"));
    // XEP-0461 §3: in a groupchat the reply names the room's stanza-id.
    const target = tea.getChild("stanza-id", NS_SID)?.attrs.id ?? tea.attrs.id;
    await romeo.send(
      xml("message", { to: FORUM_ROOM, type: "groupchat", id: "t1" }, xml("body", {}, "yes, tea"), xml("reply", { xmlns: NS_REPLY, id: target, to: `${FORUM_ROOM}/Bob` })),
    );
    const sent = await fake.waitForSent((r) => r.text === "yes, tea");
    expect(sent).toMatchObject({ chat_id: FORUM, message_thread_id: root.message_id });
  });

  it("relays a location as text", async () => {
    fake.userPosts(TOKEN, { from: BOB, chat: FORUM }, { location: { latitude: 48.8584, longitude: 2.2945 } });
    await romeo.waitFor((s) => isMessage(s, `${FORUM_ROOM}/Bob`, "[location: geo:48.8584,2.2945]"));
  });

  it("invites the user to a group's new room when it becomes a supergroup, and closes the old one", async () => {
    await enter(GROUP_ROOM);
    fake.upgradeGroup(GROUP, -1009103, ALICE);
    const invite = await romeo.waitFor((s) => s.name === "message" && s.toString().includes(`group1009103@${GW}`));
    expect(invite).toBeDefined();
    const closed = await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `${GROUP_ROOM}/romeo` && s.attrs.type === "unavailable");
    expect(closed.getChild("x", NS_MUC_USER)).toBeDefined();
  });
});
