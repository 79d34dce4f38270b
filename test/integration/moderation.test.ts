/**
 * Message moderation (XEP-0425) end to end: a real XMPP client ↔ Prosody ↔
 * Estuary (SQLite store) ↔ the Matrix adapter and the test homeserver, and
 * the Telegram adapter and the fake Bot API. Reads as a conversation: a
 * Matrix moderator removes a spammer's message, Romeo (a moderator himself)
 * removes one from XMPP, a refusal and an unknown id come back as errors,
 * and after a gateway restart an old Matrix reaction's removal still
 * updates the XEP-0444 set.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { xml } from "@xmpp/client";
import type { Element } from "@xmpp/xml";
import { logger as sdkGlobalLogger } from "matrix-js-sdk/lib/logger.js";
import { createMatrixAdapter } from "../../adapters/matrix/index.ts";
import { createTelegramAdapter } from "../../adapters/telegram/index.ts";
import type { Gateway } from "../../core/gateway.ts";
import { FakeBotApi } from "../support/fake-bot-api.ts";
import { startTestGateway, telegramTestNetwork } from "../support/gateway.ts";
import { startProsody, type ProsodyHandle } from "../support/prosody.ts";
import { isMessage, registerIq } from "../support/stanzas.ts";
import { TestHomeserver, type Json } from "../support/test-homeserver.ts";
import { waitFor } from "../support/wait.ts";
import { connectClient, type TestClient } from "../support/xmpp-client.ts";

// Silence the SDK's global loglevel logger (the adapter's own go to pino).
const root = sdkGlobalLogger as unknown as { methodFactory: () => () => void; rebuild(): void };
root.methodFactory = () => () => {};
root.rebuild();

const MX = "matrix.localhost";
const TG = "telegram.localhost";
const LOBBY = `#lobby%hs.test@${MX}`;
const TOKEN = "5550077:AAmoderation-token";
const BOT_ID = 5550077;
const ALICE = 2101;
const MALLORY = 2102;
const GROUP = -1009077;
const GROUP_JID = `group1009077@${TG}`;
const NS = {
  muc: "http://jabber.org/protocol/muc",
  sid: "urn:xmpp:sid:0",
  retract: "urn:xmpp:message-retract:1",
  moderate: "urn:xmpp:message-moderate:1",
  reactions: "urn:xmpp:reactions:0",
};

/** The XEP-0425 §3 request to the room. */
function moderateIq(room: string, id: string, reason?: string): Element {
  return xml(
    "iq",
    { type: "set", to: room },
    xml("moderate", { xmlns: NS.moderate, id }, xml("retract", { xmlns: NS.retract }), reason !== undefined ? xml("reason", {}, reason) : undefined),
  );
}

/** A moderation announcement (XEP-0425 §3.1) from the bare room for `stanzaId`. */
function isModeration(s: Element, room: string, stanzaId: string): boolean {
  return s.name === "message" && s.attrs.from === room && s.getChild("retract", NS.retract)?.attrs.id === stanzaId;
}

const stanzaIdOf = (s: Element): string => s.getChild("stanza-id", NS.sid)!.attrs.id!;

async function errorOf(p: Promise<unknown>): Promise<{ condition?: string; text?: string | null }> {
  try {
    await p;
  } catch (e) {
    const err = e as { condition?: string; element?: Element };
    return { condition: err.condition, text: err.element?.getChildText("text") };
  }
  throw new Error("expected an error");
}

describe("message moderation (XEP-0425) with Matrix and Telegram", () => {
  let prosody: ProsodyHandle;
  let hs: TestHomeserver;
  let fake: FakeBotApi;
  let gateway: Gateway;
  let romeo: TestClient;
  let dir: string;
  let me: string;
  let bob: string;
  let carol: string;
  let lobby: string;

  const start = () =>
    startTestGateway({
      xmppPort: prosody.componentPort,
      networks: {
        matrix: { domain: MX, secret: "mx-secret", options: { retryWindowMs: 3000, syncTimeoutMs: 5000 } },
        telegram: telegramTestNetwork(TG, "tg-secret", fake.url),
      },
      adapters: { matrix: createMatrixAdapter, telegram: createTelegramAdapter },
      storeUrl: `sqlite:${join(dir, "estuary.sqlite")}`,
    });

  const joinLobby = async (): Promise<void> => {
    await romeo.send(xml("presence", { to: `${LOBBY}/romeo` }, xml("x", { xmlns: NS.muc })));
    await romeo.waitFor(
      (s) => s.name === "presence" && s.attrs.from === `${LOBBY}/Romeo` && s.attrs.type === undefined && s.getChild("x", `${NS.muc}#user`)?.getChildByAttr("code", "110") !== undefined,
      10_000,
    );
  };

  const setRomeoLevel = async (level: number): Promise<void> => {
    const current = hs.state(lobby, "m.room.power_levels") as Json;
    hs.asUser(bob).sendState(lobby, "m.room.power_levels", { ...current, users: { ...(current.users as Json), [me]: level } });
    // The level change reaches the gateway (Romeo's own presence in the room changes).
    const affiliation = level >= 50 ? "admin" : "none";
    await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `${LOBBY}/Romeo` && s.getChild("x", `${NS.muc}#user`)?.getChild("item")?.attrs.affiliation === affiliation);
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "estuary-moderation-"));
    [hs, fake, prosody] = await Promise.all([
      TestHomeserver.start({ serverName: "hs.test" }),
      FakeBotApi.start(),
      startProsody({
        components: [
          { domain: MX, secret: "mx-secret" },
          { domain: TG, secret: "tg-secret" },
        ],
        users: [{ username: "romeo", password: "pw" }],
      }),
    ]);
    me = hs.addUser({ localpart: "romeo", password: "romeo-pw", displayname: "Romeo" });
    bob = hs.addUser({ localpart: "bob", password: "bob-pw", displayname: "Bob" });
    carol = hs.addUser({ localpart: "carol", password: "carol-pw", displayname: "Carol" });
    lobby = hs.createRoom(bob, { name: "Lobby", room_alias_name: "lobby", preset: "public_chat" });
    hs.asUser(carol).join(lobby);

    fake.addBot({ token: TOKEN, id: BOT_ID, username: "romeo_mod_bot", first_name: "Romeo's bot" });
    fake.addUser({ id: ALICE, first_name: "Alice" });
    fake.addUser({ id: MALLORY, first_name: "Mallory" });
    fake.addGroup({ id: GROUP, title: "Wonderland", type: "supergroup", members: [{ userId: ALICE, status: "creator" }, { userId: MALLORY, status: "member" }] });
    // A plain member first: Telegram lets only administrator bots delete other people's messages.
    fake.addBotToGroup(TOKEN, GROUP, { status: "member", by: ALICE });

    gateway = await start();
    romeo = await connectClient(prosody, "romeo", "pw");
    for (const [gw, values] of [
      [MX, { homeserver: hs.url, user: "romeo", password: "romeo-pw" }],
      [TG, { token: TOKEN }],
    ] as const) {
      await romeo.iq(registerIq(gw, values));
      await romeo.waitFor((s) => s.name === "presence" && s.attrs.type === "subscribe" && s.attrs.from === gw);
      await romeo.send(xml("presence", { to: gw, type: "subscribed" }));
    }
    await romeo.send(xml("presence"));
    await romeo.send(xml("presence", { to: MX }));
    await romeo.send(xml("presence", { to: TG }));
    await waitFor(() => (hs.waitingSyncs > 0 ? true : undefined), { what: "the Matrix sync", timeout: 10_000 });
    await fake.waitForCall((c) => c.method === "getUpdates" && c.token === TOKEN, 10_000);
    await joinLobby();
  });

  afterAll(async () => {
    await romeo?.stop();
    await gateway?.stop();
    await Promise.all([prosody?.stop(), hs?.stop(), fake?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe("Matrix", () => {
    it("a Matrix moderator redacts Carol's message: the room announces the moderation with the reason, not a retraction by Carol", async () => {
      const spam = hs.asUser(carol).send(lobby, "buy cheap potions");
      const seen = await romeo.waitFor((s) => isMessage(s, `${LOBBY}/Carol`, "buy cheap potions"));
      hs.asUser(bob).redact(lobby, spam, "spam");
      const mod = await romeo.waitFor((s) => isModeration(s, LOBBY, stanzaIdOf(seen)));
      const retract = mod.getChild("retract", NS.retract)!;
      expect(mod.attrs.type).toBe("groupchat");
      expect(retract.getChild("moderated", NS.moderate)?.attrs.by).toBe(`${LOBBY}/Bob`);
      expect(retract.getChildText("reason")).toBe("spam");
      expect(romeo.inbox.some((s) => s.attrs.from === `${LOBBY}/Carol` && s.getChild("retract", NS.retract) !== undefined)).toBe(false);
    });

    it("the Matrix room advertises XEP-0425 in its disco#info", async () => {
      const info = await romeo.iq(xml("iq", { type: "get", to: LOBBY }, xml("query", { xmlns: "http://jabber.org/protocol/disco#info" })));
      const features = info.getChild("query")!.getChildren("feature").map((f) => f.attrs.var);
      expect(features).toContain(NS.moderate);
    });

    it("Carol redacting her own message stays her own XEP-0424 retraction", async () => {
      const oops = hs.asUser(carol).send(lobby, "oops, wrong room");
      const seen = await romeo.waitFor((s) => isMessage(s, `${LOBBY}/Carol`, "oops, wrong room"));
      hs.asUser(carol).redact(lobby, oops);
      const retraction = await romeo.waitFor((s) => s.name === "message" && s.getChild("retract", NS.retract)?.attrs.id === stanzaIdOf(seen));
      expect(retraction.attrs.from).toBe(`${LOBBY}/Carol`);
      expect(retraction.getChild("retract", NS.retract)!.getChild("moderated", NS.moderate)).toBeUndefined();
    });

    it("Romeo, at power level 50, moderates Carol's message from XMPP: the homeserver records the redaction with the reason, the room announces it once", async () => {
      await setRomeoLevel(50);
      const spam = hs.asUser(carol).send(lobby, "more potions");
      const seen = await romeo.waitFor((s) => isMessage(s, `${LOBBY}/Carol`, "more potions"));
      await romeo.iq(moderateIq(LOBBY, stanzaIdOf(seen), "no advertising"));
      const redaction = await hs.waitForEvent(lobby, (e) => e.type === "m.room.redaction" && e.redacts === spam);
      expect(redaction.sender).toBe(me);
      expect(redaction.content).toMatchObject({ reason: "no advertising" });
      const mod = await romeo.waitFor((s) => isModeration(s, LOBBY, stanzaIdOf(seen)));
      expect(mod.getChild("retract", NS.retract)!.getChild("moderated", NS.moderate)?.attrs.by).toBe(`${LOBBY}/Romeo`);
      expect(mod.getChild("retract", NS.retract)!.getChildText("reason")).toBe("no advertising");
      // The sync echo of Romeo's own redaction is not announced a second time (waitFor took the first from the inbox).
      hs.asUser(bob).send(lobby, "marker after moderation");
      await romeo.waitFor((s) => isMessage(s, `${LOBBY}/Bob`, "marker after moderation"));
      expect(romeo.inbox.filter((s) => s.getChild("retract", NS.retract)?.attrs.id === stanzaIdOf(seen))).toEqual([]);
    });

    it("without the power level, Romeo's request is forbidden and nothing is redacted", async () => {
      await setRomeoLevel(0);
      const msg = hs.asUser(carol).send(lobby, "a fine message");
      const seen = await romeo.waitFor((s) => isMessage(s, `${LOBBY}/Carol`, "a fine message"));
      const err = await errorOf(romeo.iq(moderateIq(LOBBY, stanzaIdOf(seen), "I don't like it")));
      expect(err.condition).toBe("forbidden");
      expect(err.text).toMatch(/may not remove/);
      expect(hs.events(lobby).some((e) => e.type === "m.room.redaction" && e.redacts === msg)).toBe(false);
      expect(romeo.inbox.some((s) => isModeration(s, LOBBY, stanzaIdOf(seen)))).toBe(false);
    });

    it("an id the room never gave is item-not-found", async () => {
      const err = await errorOf(romeo.iq(moderateIq(LOBBY, "no-such-stanza-id")));
      expect(err.condition).toBe("item-not-found");
    });

    it("after a gateway restart, removing a reaction made before it updates the XEP-0444 set", async () => {
      hs.asUser(carol).send(lobby, "lunch at noon?");
      const seen = await romeo.waitFor((s) => isMessage(s, `${LOBBY}/Carol`, "lunch at noon?"));
      const target = hs.events(lobby).find((e) => (e.content as Json).body === "lunch at noon?")!.event_id as string;
      const thumbs = hs.asUser(bob).react(lobby, target, "👍");
      hs.asUser(bob).react(lobby, target, "🎉");
      const reactionsOf = (s: Element) => (s.getChild("reactions", NS.reactions)?.attrs.id === stanzaIdOf(seen) ? s.getChild("reactions", NS.reactions)!.getChildren("reaction").map((r) => r.getText()) : undefined);
      await romeo.waitFor((s) => s.attrs.from === `${LOBBY}/Bob` && reactionsOf(s)?.length === 2);

      await gateway.stop();
      romeo.inbox.length = 0;
      gateway = await start();
      await romeo.send(xml("presence", { to: MX }));
      await joinLobby();

      hs.asUser(bob).redact(lobby, thumbs);
      const update = await romeo.waitFor((s) => s.attrs.from === `${LOBBY}/Bob` && reactionsOf(s) !== undefined, 10_000);
      // Bob's whole set: the removed 👍 gone, the 🎉 from before the restart still there.
      expect(reactionsOf(update)).toEqual(["🎉"]);
      expect(romeo.inbox.some((s) => s.getChild("retract", NS.retract) !== undefined)).toBe(false);
      expect(hs.unknownRequests).toEqual([]);
      expect(hs.serverErrors).toEqual([]);
    });
  });

  describe("Telegram", () => {
    let fromMallory: { xmpp: Element; id: number };

    it("joins the group", async () => {
      await romeo.send(xml("presence", { to: TG }));
      await romeo.send(xml("presence", { to: `${GROUP_JID}/romeo` }, xml("x", { xmlns: NS.muc })));
      await romeo.waitFor((s) => s.name === "presence" && s.attrs.from === `${GROUP_JID}/romeo` && s.attrs.type === undefined, 10_000);
      const sent = fake.userSends(TOKEN, { from: MALLORY, chat: GROUP, text: "click my link" });
      fromMallory = { xmpp: await romeo.waitFor((s) => isMessage(s, `${GROUP_JID}/Mallory`, "click my link")), id: sent.message_id };
    });

    it("a bot that is not an administrator may not delete Mallory's message: forbidden, and the message stays", async () => {
      const err = await errorOf(romeo.iq(moderateIq(GROUP_JID, stanzaIdOf(fromMallory.xmpp), "spam")));
      expect(err.condition).toBe("forbidden");
      expect(err.text).toMatch(/can't be deleted/);
      expect(fake.message(TOKEN, GROUP, fromMallory.id)?.deleted).toBeFalsy();
    });

    it("as an administrator the bot deletes it, and the room announces the moderation", async () => {
      fake.setMemberStatus(GROUP, BOT_ID, "administrator", { by: ALICE });
      await romeo.iq(moderateIq(GROUP_JID, stanzaIdOf(fromMallory.xmpp), "spam"));
      expect(fake.message(TOKEN, GROUP, fromMallory.id)?.deleted).toBe(true);
      const mod = await romeo.waitFor((s) => isModeration(s, GROUP_JID, stanzaIdOf(fromMallory.xmpp)));
      expect(mod.getChild("retract", NS.retract)!.getChild("moderated", NS.moderate)?.attrs.by).toBe(`${GROUP_JID}/romeo`);
      expect(mod.getChild("retract", NS.retract)!.getChildText("reason")).toBe("spam");
    });

    it("a message already deleted is item-not-found", async () => {
      const err = await errorOf(romeo.iq(moderateIq(GROUP_JID, stanzaIdOf(fromMallory.xmpp))));
      expect(err.condition).toBe("item-not-found");
    });
  });
});
