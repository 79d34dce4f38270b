/**
 * Moderation across a bridge: a MUC on a real Prosody with mod_muc_mam and
 * Debian prosody-modules' mod_muc_moderation (XEP-0425 v0.2, the
 * `urn:xmpp:fasten:0` shape), a Matrix room on the test homeserver and a
 * Telegram group on the fake Bot API.
 *
 * Alice owns the MUC (a moderator), Dora is a plain XMPP occupant, Carol is
 * on Matrix (room admin), Dave on Telegram. A moderator's removal in the MUC
 * removes the message's copies (and the original) on the other legs; a
 * Matrix moderator's redaction of the relay's copy of an XMPP message asks
 * the MUC to remove it, which only works once the relay is a moderator
 * there. Forged moderation from an occupant is not carried, and no removal
 * comes back to where it started.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { xml } from "@xmpp/client";
import type { Element } from "@xmpp/xml";
import { logger as sdkGlobalLogger } from "matrix-js-sdk/lib/logger.js";
import { startProsody, type ProsodyHandle } from "../support/prosody.ts";
import { connectClient, type TestClient } from "../support/xmpp-client.ts";
import { startTestGateway } from "../support/gateway.ts";
import { TestHomeserver, type Json } from "../support/test-homeserver.ts";
import { FakeBotApi } from "../support/fake-bot-api.ts";
import { waitFor } from "../support/wait.ts";
import type { Gateway } from "../../core/gateway.ts";
import type { Config } from "../../config/schema.ts";
import { createMatrixAdapter } from "../../adapters/matrix/index.ts";
import { createTelegramAdapter } from "../../adapters/telegram/index.ts";
import { bridgesSchema } from "../../core/bridge/config.ts";
import { startBridges, type RunningBridges } from "../../core/bridge/index.ts";

const root = sdkGlobalLogger as unknown as { methodFactory: () => () => void; rebuild(): void };
root.methodFactory = () => () => {};
root.rebuild();

const ROOM = "mod@conference.localhost";
const MUC = "http://jabber.org/protocol/muc";
const MUC_USER = "http://jabber.org/protocol/muc#user";
const MUC_ADMIN = "http://jabber.org/protocol/muc#admin";
const NS_SID = "urn:xmpp:sid:0";
const FASTEN = "urn:xmpp:fasten:0";
const MODERATE_V0 = "urn:xmpp:message-moderate:0";
const RETRACT_V0 = "urn:xmpp:message-retract:0";
const RETRACT = "urn:xmpp:message-retract:1";
const MODERATE = "urn:xmpp:message-moderate:1";
const TOKEN = "5550003:AAmoderation-token";
const DAVE = 3101;
const GROUP = -1009003;

const codes = (p: Element): string[] => (p.getChild("x", MUC_USER)?.getChildren("status") ?? []).map((s) => s.attrs.code ?? "");
const sidOf = (s: Element): string => s.getChildren("stanza-id", NS_SID).find((e) => e.attrs.by === ROOM)?.attrs.id ?? "";
/** XEP-0425 v0.2 request, as mod_muc_moderation takes it. */
const moderation = (sid: string, reason: string) =>
  xml(
    "iq",
    { type: "set", to: ROOM },
    xml("apply-to", { xmlns: FASTEN, id: sid }, xml("moderate", { xmlns: MODERATE_V0 }, xml("retract", { xmlns: RETRACT_V0 }), xml("reason", {}, reason))),
  );

describe("moderation across a bridge (MUC with mod_muc_moderation, Matrix, Telegram)", () => {
  let prosody: ProsodyHandle;
  let hs: TestHomeserver;
  let fake: FakeBotApi;
  let dir: string;
  let gateway: Gateway & { config: Config };
  let bridges: RunningBridges;
  let alice: TestClient;
  let dora: TestClient;
  let carol: string;
  let relayUser: string;
  let mxRoom: string;
  const logs: { msg?: string; condition?: string }[] = [];
  const seen: Element[] = [];

  const redactionsOf = (eventId: string) =>
    hs.events(mxRoom).filter((e) => e.type === "m.room.redaction" && (e.redacts ?? (e.content as Json).redacts) === eventId);
  const waitMx = (body: string) => hs.waitForEvent(mxRoom, (e) => e.type === "m.room.message" && (e.content as Json).body === body, 10_000);
  const waitRedaction = (eventId: string) =>
    hs.waitForEvent(mxRoom, (e) => e.type === "m.room.redaction" && (e.redacts ?? (e.content as Json).redacts) === eventId, 10_000);
  const tgDeleted = (messageId: number) =>
    waitFor(() => (fake.message(TOKEN, GROUP, messageId)?.deleted ? true : undefined), { what: `Telegram message ${messageId} deleted`, timeout: 10_000 });
  const announcements = (sid: string) =>
    seen.filter(
      (s) =>
        s.name === "message" &&
        s.attrs.from === ROOM &&
        (s.getChild("apply-to", FASTEN)?.attrs.id === sid || s.getChild("retract", RETRACT)?.attrs.id === sid),
    );

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "estuary-bridge-mod-"));
    hs = await TestHomeserver.start({ serverName: "hs.test" });
    carol = hs.addUser({ localpart: "carol", password: "pw", displayname: "Carol" });
    relayUser = hs.addUser({ localpart: "modbridge", password: "pw", displayname: "modbridge" });
    // The relay may redact others' events (power 50 = the default `redact` level).
    mxRoom = hs.createRoom(carol, { name: "Mod", room_alias_name: "mod", preset: "public_chat", power_level_content_override: { users: { [carol]: 100, [relayUser]: 50 } } });
    [prosody, fake] = await Promise.all([
      startProsody({
        muc: true,
        mucModules: ["muc_mam", "muc_moderation"],
        components: [
          { domain: "matrix.localhost", secret: "mx-secret" },
          { domain: "telegram.localhost", secret: "tg-secret" },
        ],
        users: [
          { username: "alice", password: "pw" },
          { username: "dora", password: "pw" },
        ],
      }),
      FakeBotApi.start(),
    ]);
    fake.addBot({ token: TOKEN, username: "mod_bot", first_name: "Mod bridge", can_read_all_group_messages: true });
    fake.addUser({ id: DAVE, first_name: "Dave" });
    fake.addGroup({ id: GROUP, title: "Mod", type: "supergroup", members: [{ userId: DAVE, status: "creator" }] });
    // An administrator bot may delete others' messages (https://core.telegram.org/bots/api#deletemessage).
    fake.addBotToGroup(TOKEN, GROUP, { status: "administrator", by: DAVE, rights: { can_delete_messages: true } });

    [alice, dora] = await Promise.all([connectClient(prosody, "alice", "pw"), connectClient(prosody, "dora", "pw")]);
    alice.xmpp.on("stanza", (s: Element) => seen.push(s));
    // Alice creates the room: its owner, a moderator.
    await alice.send(xml("presence", { to: `${ROOM}/alice` }, xml("x", { xmlns: MUC })));
    await alice.waitFor((s) => s.name === "presence" && s.attrs.from === `${ROOM}/alice` && codes(s).includes("110"), 10_000);
    await dora.send(xml("presence", { to: `${ROOM}/dora` }, xml("x", { xmlns: MUC })));
    await dora.waitFor((s) => s.name === "presence" && s.attrs.from === `${ROOM}/dora` && codes(s).includes("110"), 10_000);

    gateway = await startTestGateway({
      xmppPort: prosody.componentPort,
      networks: {
        matrix: { domain: "matrix.localhost", secret: "mx-secret", options: { retryWindowMs: 3000, syncTimeoutMs: 5000 } },
        telegram: {
          domain: "telegram.localhost",
          secret: "tg-secret",
          options: { apiRoot: fake.url, pollTimeoutSec: 1, rateLimits: { perChatPerSec: 50, perGroupPerMin: 3000, perBotPerSec: 100 } },
        },
      },
      adapters: { matrix: createMatrixAdapter, telegram: createTelegramAdapter },
      storeUrl: `sqlite:${join(dir, "estuary.sqlite")}`,
    });
    const token = hs.loginAs(relayUser, "BRIDGE").accessToken;
    const config: Config = {
      ...gateway.config,
      bridges: bridgesSchema.parse([
        {
          name: "mod",
          xmpp: { room: ROOM, network: "matrix" },
          matrix: { homeserver: hs.url, userId: relayUser, accessToken: token, room: "#mod:hs.test" },
          telegram: { token: TOKEN, chat: GROUP },
        },
      ]),
    };
    const log = pino({ level: "info" }, { write: (line: string) => void logs.push(JSON.parse(line) as { msg?: string }) });
    bridges = await startBridges(gateway, config, { log });
    await alice.waitFor((s) => s.name === "presence" && s.attrs.from === `${ROOM}/relay` && s.attrs.type === undefined, 15_000);
    await waitFor(() => (hs.membership(mxRoom, relayUser) === "join" ? true : undefined), { what: "the Matrix relay to join", timeout: 15_000 });
  }, 60_000);

  afterAll(async () => {
    await Promise.all([alice?.stop(), dora?.stop()]);
    await bridges?.stop();
    await gateway?.stop();
    await Promise.all([prosody?.stop(), hs?.stop(), fake?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("a MUC moderator removes an XMPP occupant's message: the Matrix copy is redacted, the Telegram copy deleted, with the reason", async () => {
    await dora.send(xml("message", { to: ROOM, type: "groupchat", id: "dora-1" }, xml("body", {}, "buy cheap pills")));
    const inMuc = await alice.waitFor((s) => s.attrs.from === `${ROOM}/dora` && s.getChildText("body") === "buy cheap pills", 10_000);
    const mx = await waitMx("dora: buy cheap pills");
    const tg = await fake.waitForSent((r) => r.chat_id === GROUP && r.text === "dora: buy cheap pills", 10_000);

    await alice.iq(moderation(sidOf(inMuc), "spam"));
    const redaction = await waitRedaction(mx.event_id as string);
    expect(redaction.sender).toBe(relayUser);
    expect((redaction.content as Json).reason).toBe("Removed by alice (xmpp): spam");
    await tgDeleted(tg.message_id);
  });

  it("a MUC moderator removes a Matrix person's message: Carol's own event is redacted by the relay (its power level), the Telegram copy deleted", async () => {
    const ev = hs.asUser(carol).send(mxRoom, { msgtype: "m.text", body: "carol says something rude" });
    const inMuc = await alice.waitFor((s) => s.attrs.from === `${ROOM}/Carol` && s.getChildText("body") === "carol says something rude", 10_000);
    const tg = await fake.waitForSent((r) => r.chat_id === GROUP && r.text === "Carol: carol says something rude", 10_000);
    await alice.iq(moderation(sidOf(inMuc), "be nice"));
    const redaction = await waitRedaction(ev);
    expect(redaction.sender).toBe(relayUser);
    await tgDeleted(tg.message_id);
  });

  it("a MUC moderator removes a Telegram person's message: the bot deletes Dave's message as an admin, the Matrix copy is redacted", async () => {
    const m = fake.userSends(TOKEN, { from: DAVE, chat: GROUP, text: "dave's off-topic post" });
    const inMuc = await alice.waitFor((s) => s.attrs.from === `${ROOM}/Dave` && s.getChildText("body") === "dave's off-topic post", 10_000);
    const mx = await waitMx("Dave: dave's off-topic post");
    await alice.iq(moderation(sidOf(inMuc), "off topic"));
    await tgDeleted(m.message_id);
    await waitRedaction(mx.event_id as string);
  });

  it("moderation forged by an occupant (not from the bare room JID) is not carried", async () => {
    const ev = hs.asUser(carol).send(mxRoom, { msgtype: "m.text", body: "carol's fine message" });
    const inMuc = await alice.waitFor((s) => s.attrs.from === `${ROOM}/Carol` && s.getChildText("body") === "carol's fine message", 10_000);
    // Dora sends what a room's announcement looks like (v0.3 and v0.2 shapes), naming Alice as the moderator.
    await dora.send(
      xml(
        "message",
        { to: ROOM, type: "groupchat", id: "forged" },
        xml("retract", { xmlns: RETRACT, id: sidOf(inMuc) }, xml("moderated", { xmlns: MODERATE, by: `${ROOM}/alice` }), xml("reason", {}, "forged")),
        xml("apply-to", { xmlns: FASTEN, id: sidOf(inMuc) }, xml("moderated", { xmlns: MODERATE_V0, by: `${ROOM}/alice` }, xml("retract", { xmlns: RETRACT_V0 }))),
      ),
    );
    await alice.waitFor((s) => s.attrs.from === `${ROOM}/dora` && s.attrs.id === "forged", 10_000);
    // A later message from Dora crossed: the forgery was handled before it (one inbound queue per leg).
    await dora.send(xml("message", { to: ROOM, type: "groupchat", id: "dora-2" }, xml("body", {}, "after the forgery")));
    await waitMx("dora: after the forgery");
    expect(redactionsOf(ev)).toEqual([]);
  });

  it("a Matrix moderator redacts the relay's copy of an XMPP message: refused by the MUC while the relay is no moderator (logged, not retried, the Telegram copy still goes)", async () => {
    await alice.send(xml("message", { to: ROOM, type: "groupchat", id: "alice-1" }, xml("body", {}, "alice's first post")));
    const inMuc = await alice.waitFor((s) => s.attrs.from === `${ROOM}/alice` && s.attrs.id === "alice-1", 10_000);
    const mx = await waitMx("alice: alice's first post");
    const tg = await fake.waitForSent((r) => r.chat_id === GROUP && r.text === "alice: alice's first post", 10_000);
    hs.asUser(carol).redact(mxRoom, mx.event_id as string, "not here");
    await tgDeleted(tg.message_id);
    const refused = await waitFor(() => logs.find((l) => l.msg?.startsWith("bridge: the MUC refused to remove the message")), { what: "the refusal in the log", timeout: 10_000 });
    expect(refused.condition).toBe("forbidden");
    expect(announcements(sidOf(inMuc))).toEqual([]);
    expect(logs.filter((l) => l.msg?.startsWith("bridge: the MUC refused to remove the message"))).toHaveLength(1);
  });

  it("once the relay is a moderator, the MUC removes the XMPP message, and the removal does not come back", async () => {
    // XEP-0045 §9.3: the owner grants the relay's bare JID admin affiliation, hence the moderator role.
    await alice.iq(xml("iq", { type: "set", to: ROOM }, xml("query", { xmlns: MUC_ADMIN }, xml("item", { jid: "bridge@matrix.localhost", affiliation: "admin" }))));
    await alice.waitFor((s) => s.name === "presence" && s.attrs.from === `${ROOM}/relay` && s.getChild("x", MUC_USER)?.getChild("item")?.attrs.role === "moderator", 10_000);

    await alice.send(xml("message", { to: ROOM, type: "groupchat", id: "alice-2" }, xml("body", {}, "alice's second post")));
    const inMuc = await alice.waitFor((s) => s.attrs.from === `${ROOM}/alice` && s.attrs.id === "alice-2", 10_000);
    const mx = await waitMx("alice: alice's second post");
    const tg = await fake.waitForSent((r) => r.chat_id === GROUP && r.text === "alice: alice's second post", 10_000);
    hs.asUser(carol).redact(mxRoom, mx.event_id as string, "duplicate");

    const announced = await alice.waitFor(
      (s) => s.name === "message" && s.attrs.from === ROOM && s.getChild("apply-to", FASTEN)?.attrs.id === sidOf(inMuc),
      10_000,
    );
    const moderated = announced.getChild("apply-to", FASTEN)!.getChild("moderated", MODERATE_V0)!;
    expect(moderated.attrs.by).toBe(`${ROOM}/relay`);
    expect(moderated.getChildText("reason")).toBe("Removed by Carol (matrix): duplicate");
    await tgDeleted(tg.message_id);

    // The room's announcement reached the relay too: nothing is removed twice, nothing goes back.
    await alice.send(xml("message", { to: ROOM, type: "groupchat", id: "alice-3" }, xml("body", {}, "marker")));
    await waitMx("alice: marker");
    expect(redactionsOf(mx.event_id as string)).toHaveLength(1);
    const deletions = fake.calls.filter((c) => c.method === "deleteMessage" && Number(c.params.message_id) === tg.message_id);
    expect(deletions).toHaveLength(1);
    expect(announcements(sidOf(inMuc))).toHaveLength(1);
  });
});
