/**
 * Drives the Bot API fake with real grammY (Bot, bot.api.*, bot.start/stop
 * long polling), so the fake is checked against the client the Telegram
 * adapter will use.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Bot, GrammyError, InputFile } from "grammy";
import type { Message, Update } from "grammy/types";
import { FakeBotApi } from "../../support/fake-bot-api.ts";
import { png } from "../../support/png.ts";

const TOKEN = "123456:AAtest-token";
const OTHER = "654321:BBother-token";
const ALICE = 1001;
const BOB = 1002;
const GROUP = -100500;

/** A real, decodable RGBA PNG of the given size (signature, IHDR, IDAT, IEND with CRCs). */
const PNG = png(2, 3);

let fake: FakeBotApi;
const bots: Bot[] = [];

function newBot(token = TOKEN): Bot {
  const bot = new Bot(token, { client: { apiRoot: fake.url } });
  bots.push(bot);
  return bot;
}

/** Rejects the GrammyError a call fails with (fails the test if it resolves). */
async function apiError(p: Promise<unknown>): Promise<GrammyError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GrammyError);
  return err as GrammyError;
}

beforeEach(async () => {
  fake = await FakeBotApi.start();
  fake.addBot({ token: TOKEN, username: "estuary_bot", first_name: "Estuary" });
  fake.addUser({ id: ALICE, first_name: "Alice", username: "alice" });
  fake.addUser({ id: BOB, first_name: "Bob" });
});

afterEach(async () => {
  for (const bot of bots.splice(0)) if (bot.isRunning()) await bot.stop();
  await fake.stop();
});

describe("FakeBotApi: tokens and methods", () => {
  it("getMe answers the bot for its token and 401 Unauthorized for an unknown one", async () => {
    const me = await newBot().api.getMe();
    expect(me).toMatchObject({ id: 123456, is_bot: true, username: "estuary_bot", first_name: "Estuary" });

    const err = await apiError(newBot("999:wrong").api.getMe());
    expect(err.error_code).toBe(401);
    expect(err.description).toBe("Unauthorized");
    await expect(newBot("999:wrong").init()).rejects.toThrow(/401/);
  });

  it("answers 404 Not Found for an unknown method", async () => {
    const res = await fetch(`${fake.url}/bot${TOKEN}/noSuchMethod`, { method: "POST" });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ ok: false, error_code: 404, description: "Not Found" });
  });

  it("accepts form-encoded parameters as well as JSON", async () => {
    fake.userStartsBot(TOKEN, ALICE);
    const res = await fetch(`${fake.url}/bot${TOKEN}/sendMessage`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ chat_id: String(ALICE), text: "form", entities: JSON.stringify([{ type: "bold", offset: 0, length: 4 }]) }),
    });
    expect(res.status).toBe(200);
    expect(fake.sent().at(-1)).toMatchObject({ text: "form", entities: [{ type: "bold", offset: 0, length: 4 }] });
  });
});

describe("FakeBotApi: getUpdates long polling", () => {
  it("a long-polling bot receives an injected message without busy polling", async () => {
    const bot = newBot();
    const got: Message[] = [];
    bot.on("message", (ctx) => void got.push(ctx.message));
    void bot.start({ timeout: 1 });
    await fake.waitForCall((c) => c.method === "getUpdates");

    const sentMsg = fake.userSends(TOKEN, { from: ALICE, chat: ALICE, text: "hello bot" });
    await expect.poll(() => got.length, { timeout: 3000 }).toBe(1);
    expect(got[0]).toMatchObject({ message_id: sentMsg.message_id, text: "hello bot", from: { id: ALICE }, chat: { id: ALICE, type: "private" } });

    // Observation window: with timeout=1 s, ~1.5 s of idling must cost a couple of requests, not hundreds.
    const before = fake.calls.filter((c) => c.method === "getUpdates").length;
    await new Promise((r) => setTimeout(r, 1500));
    const during = fake.calls.filter((c) => c.method === "getUpdates").length - before;
    expect(during).toBeGreaterThanOrEqual(1);
    expect(during).toBeLessThan(10);
  });

  it("blocks for `timeout` seconds and returns [] when nothing happens, earlier when an update arrives", async () => {
    const api = newBot().api;
    const t0 = Date.now();
    expect(await api.getUpdates({ timeout: 1 })).toEqual([]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);

    const pending = api.getUpdates({ timeout: 10 });
    await fake.waitForCall((c) => c.method === "getUpdates" && c.params["timeout"] === 10);
    const t1 = Date.now();
    fake.userSends(TOKEN, { from: ALICE, chat: ALICE, text: "wake up" });
    const updates = await pending;
    expect(Date.now() - t1).toBeLessThan(2000);
    expect(updates.map((u) => u.message?.text)).toEqual(["wake up"]);
  });

  it("offset confirms updates, so a restarted poller does not see them again", async () => {
    const first = newBot();
    const seen1: string[] = [];
    first.on("message:text", (ctx) => void seen1.push(ctx.message.text));
    void first.start({ timeout: 1 });
    fake.userSends(TOKEN, { from: ALICE, chat: ALICE, text: "one" });
    await expect.poll(() => seen1).toEqual(["one"]);
    await first.stop(); // confirms with offset = last update_id + 1

    const second = newBot();
    const seen2: string[] = [];
    second.on("message:text", (ctx) => void seen2.push(ctx.message.text));
    void second.start({ timeout: 1 });
    fake.userSends(TOKEN, { from: ALICE, chat: ALICE, text: "two" });
    await expect.poll(() => seen2).toEqual(["two"]);
  });

  it("update ids increase, limit caps a batch and a negative offset keeps the tail", async () => {
    const api = newBot().api;
    for (const text of ["a", "b", "c"]) fake.userSends(TOKEN, { from: ALICE, chat: ALICE, text });
    const two = await api.getUpdates({ limit: 2 });
    expect(two.map((u) => u.message?.text)).toEqual(["a", "b"]);
    expect(two[1]!.update_id).toBe(two[0]!.update_id + 1);
    const tail = await api.getUpdates({ offset: -1 });
    expect(tail.map((u) => u.message?.text)).toEqual(["c"]);
    expect(await api.getUpdates({ offset: tail[0]!.update_id + 1 })).toEqual([]);
  });

  it("a second concurrent getUpdates terminates the first with 409 Conflict", async () => {
    const api = newBot().api;
    const firstPoll = apiError(api.getUpdates({ timeout: 5 }));
    await fake.waitForCall((c) => c.method === "getUpdates");
    const secondPoll = api.getUpdates({ timeout: 0 });
    const err = await firstPoll;
    expect(err.error_code).toBe(409);
    expect(err.description).toMatch(/^Conflict: terminated by other getUpdates request/);
    expect(await secondPoll).toEqual([]);
  });

  it("getUpdates is refused while a webhook is set", async () => {
    const api = newBot().api;
    await api.setWebhook("https://example.invalid/hook");
    expect((await api.getWebhookInfo()).url).toBe("https://example.invalid/hook");
    expect((await apiError(api.getUpdates())).error_code).toBe(409);
    await api.deleteWebhook();
    expect(await api.getUpdates()).toEqual([]);
  });
});

describe("FakeBotApi: sending", () => {
  it("records sendMessage with entities, reply and thread, and refuses overlong text", async () => {
    const api = newBot().api;
    const incoming = fake.userSends(TOKEN, { from: ALICE, chat: ALICE, text: "question" });
    const entities = [{ type: "bold" as const, offset: 0, length: 5 }];
    const msg = await api.sendMessage(ALICE, "hello world", { entities, reply_parameters: { message_id: incoming.message_id } });
    expect(msg.message_id).toBe(incoming.message_id + 1);
    expect(msg.reply_to_message?.message_id).toBe(incoming.message_id);
    expect(fake.sent(TOKEN)).toEqual([
      expect.objectContaining({ method: "sendMessage", chat_id: ALICE, text: "hello world", entities, reply_to_message_id: incoming.message_id }),
    ]);

    const err = await apiError(api.sendMessage(ALICE, "x".repeat(4097)));
    expect(err.error_code).toBe(400);
    expect(err.description).toBe("Bad Request: message is too long");
    await api.sendMessage(ALICE, "y".repeat(4096)); // exactly at the limit is fine
  });

  it("parses parse_mode HTML into entities and rejects unknown tags", async () => {
    const api = newBot().api;
    fake.userStartsBot(TOKEN, ALICE);
    const msg = await api.sendMessage(ALICE, '<b>bold</b> &amp; <a href="https://x.example/">link</a>', { parse_mode: "HTML" });
    expect(msg.text).toBe("bold & link");
    expect(msg.entities).toEqual([
      { type: "bold", offset: 0, length: 4 },
      { type: "text_link", offset: 7, length: 4, url: "https://x.example/" },
    ]);
    const err = await apiError(api.sendMessage(ALICE, "<blink>x</blink>", { parse_mode: "HTML" }));
    expect(err.description).toMatch(/^Bad Request: can't parse entities: Unsupported start tag "blink"/);
  });

  it("answers 403 for a group the bot is not in and for a user who never started the bot", async () => {
    fake.addGroup({ id: GROUP, title: "G", type: "supergroup", members: [{ userId: ALICE, status: "creator" }] });
    const api = newBot().api;
    const notMember = await apiError(api.sendMessage(GROUP, "hi"));
    expect(notMember.error_code).toBe(403);
    expect(notMember.description).toBe("Forbidden: bot is not a member of the supergroup chat");
    const notStarted = await apiError(api.sendMessage(BOB, "hi"));
    expect(notStarted.description).toBe("Forbidden: bot can't initiate conversation with a user");
    expect((await apiError(api.sendMessage(-42, "hi"))).description).toBe("Bad Request: chat not found");
  });

  it("waitForSent resolves for a message sent later, and for one already sent", async () => {
    const api = newBot().api;
    fake.userStartsBot(TOKEN, ALICE);
    const later = fake.waitForSent((r) => r.text === "later");
    await api.sendMessage(ALICE, "later");
    expect((await later).chat_id).toBe(ALICE);
    expect((await fake.waitForSent((r) => r.text === "later", 10)).text).toBe("later");
    await expect(fake.waitForSent((r) => r.text === "never", 50)).rejects.toThrow(/no matching sent/);
  });
});

describe("FakeBotApi: fault injection", () => {
  it("failNext 429 surfaces as GrammyError with retry_after, then the method works again", async () => {
    const api = newBot().api;
    fake.userStartsBot(TOKEN, ALICE);
    fake.failNext("sendMessage", { error_code: 429, description: "Too Many Requests: retry after 7", parameters: { retry_after: 7 } });
    const err = await apiError(api.sendMessage(ALICE, "x"));
    expect(err.error_code).toBe(429);
    expect(err.parameters.retry_after).toBe(7);
    expect(fake.sent()).toHaveLength(0);
    await api.sendMessage(ALICE, "x");
    expect(fake.sent()).toHaveLength(1);
  });

  it("failNext with a count answers 5xx that many times", async () => {
    const api = newBot().api;
    fake.failNext("getMe", { error_code: 502, description: "Bad Gateway" }, 2);
    expect((await apiError(api.getMe())).error_code).toBe(502);
    expect((await apiError(api.getMe())).description).toBe("Bad Gateway");
    expect((await api.getMe()).username).toBe("estuary_bot");
  });

  it("the per-chat rate limiter answers 429 with retry_after once a chat is over budget", async () => {
    const api = newBot().api;
    fake.userStartsBot(TOKEN, ALICE);
    fake.userStartsBot(TOKEN, BOB);
    fake.setRateLimit({ maxPerChat: 2, windowMs: 60_000 });
    await api.sendMessage(ALICE, "1");
    await api.sendMessage(ALICE, "2");
    const err = await apiError(api.sendMessage(ALICE, "3"));
    expect(err.error_code).toBe(429);
    expect(err.description).toMatch(/^Too Many Requests: retry after \d+$/);
    expect(err.parameters.retry_after).toBeGreaterThan(50);
    await api.sendMessage(BOB, "other chat has its own budget");
  });
});

describe("FakeBotApi: files", () => {
  it("multipart sendPhoto stores the uploaded bytes, and getFile + download returns them", async () => {
    const api = newBot().api;
    fake.userStartsBot(TOKEN, ALICE);
    const msg = await api.sendPhoto(ALICE, new InputFile(PNG, "x.png"), { caption: "<i>pic</i>", parse_mode: "HTML" });
    const size = msg.photo?.at(-1);
    expect(size).toMatchObject({ width: 2, height: 3, file_size: PNG.length });
    expect(msg.caption_entities).toEqual([{ type: "italic", offset: 0, length: 3 }]);
    const rec = fake.sent(TOKEN)[0]!;
    expect(rec.media?.source).toBe("upload");
    expect(Buffer.from(rec.media!.bytes).equals(PNG)).toBe(true);

    const file = await api.getFile(size!.file_id);
    const res = await fetch(`${fake.url}/file/bot${TOKEN}/${file.file_path}`);
    expect(Buffer.from(await res.arrayBuffer()).equals(PNG)).toBe(true);

    // Re-sending by file_id reuses the stored file.
    const again = await api.sendPhoto(ALICE, size!.file_id);
    expect(again.photo?.at(-1)?.file_id).toBe(size!.file_id);
    expect(fake.sent(TOKEN)[1]?.media?.source).toBe("file_id");
  });

  it("sendDocument keeps the file name and refuses an overlong caption", async () => {
    const api = newBot().api;
    fake.userStartsBot(TOKEN, ALICE);
    const msg = await api.sendDocument(ALICE, new InputFile(Buffer.from("%PDF-1.4"), "report.pdf"));
    expect(msg.document).toMatchObject({ file_name: "report.pdf", mime_type: "application/pdf", file_size: 8 });
    const err = await apiError(api.sendDocument(ALICE, new InputFile(Buffer.from("x"), "a.txt"), { caption: "c".repeat(1025) }));
    expect(err.description).toBe("Bad Request: message caption is too long");
    expect((await apiError(api.sendDocument(ALICE, msg.document!.file_id.replace(/.$/, "?")))).error_code).toBe(400);

    // An HTTP URL is really fetched (here from the fake's own download route on loopback).
    const { file_path } = await api.getFile(msg.document!.file_id);
    const byUrl = await api.sendDocument(ALICE, `${fake.url}/file/bot${TOKEN}/${file_path}`);
    expect(byUrl.document?.file_id).not.toBe(msg.document!.file_id);
    expect(fake.sent(TOKEN).at(-1)?.media).toMatchObject({ source: "url", bytes: new Uint8Array(Buffer.from("%PDF-1.4")) });
    const unreachable = await apiError(api.sendDocument(ALICE, `${fake.url}/nothing-here.pdf`));
    expect(unreachable.description).toBe("Bad Request: failed to get HTTP URL content");
  });

  it("getFile + download returns the bytes of a user-sent photo", async () => {
    const bot = newBot();
    const photos: string[] = [];
    bot.on("message:photo", (ctx) => void photos.push(ctx.message.photo.at(-1)!.file_id));
    void bot.start({ timeout: 1 });
    fake.userSendsPhoto(TOKEN, { from: ALICE, chat: ALICE, bytes: PNG, caption: "look" });
    await expect.poll(() => photos.length).toBe(1);
    const file = await bot.api.getFile(photos[0]!);
    expect(file.file_size).toBe(PNG.length);
    const res = await fetch(`${fake.url}/file/bot${TOKEN}/${file.file_path}`);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(PNG)).toBe(true);
    expect((await fetch(`${fake.url}/file/bot999:wrong/${file.file_path}`)).status).toBe(404);
  });
});

describe("FakeBotApi: reactions, edits and deletes", () => {
  it("setMessageReaction is stored and validated; message_reaction updates need opting in", async () => {
    const api = newBot().api;
    const m = fake.userSends(TOKEN, { from: ALICE, chat: ALICE, text: "react to me" });
    expect(await api.setMessageReaction(ALICE, m.message_id, [{ type: "emoji", emoji: "👍" }])).toBe(true);
    expect(fake.message(TOKEN, ALICE, m.message_id)?.reactions.get(123456)).toEqual([{ type: "emoji", emoji: "👍" }]);
    expect((await apiError(api.setMessageReaction(ALICE, m.message_id, [{ type: "emoji", emoji: "🦆" as "👍" }]))).description).toBe(
      "Bad Request: REACTION_INVALID",
    );

    // Default allowed_updates exclude message_reaction: the update is not even created.
    await api.getUpdates({ offset: -1 }).then((u) => api.getUpdates({ offset: (u.at(-1)?.update_id ?? 0) + 1 }));
    fake.userReacts(TOKEN, { from: ALICE, chat: ALICE, message_id: m.message_id, new_reaction: [{ type: "emoji", emoji: "🔥" }] });
    expect(await api.getUpdates()).toEqual([]);

    await api.getUpdates({ allowed_updates: ["message", "message_reaction"] });
    fake.userReacts(TOKEN, { from: ALICE, chat: ALICE, message_id: m.message_id, new_reaction: [{ type: "emoji", emoji: "❤" }] });
    const updates: Update[] = await api.getUpdates();
    expect(updates).toHaveLength(1);
    expect(updates[0]!.message_reaction).toMatchObject({
      chat: { id: ALICE },
      message_id: m.message_id,
      user: { id: ALICE },
      old_reaction: [{ type: "emoji", emoji: "🔥" }],
      new_reaction: [{ type: "emoji", emoji: "❤" }],
    });
  });

  it("editMessageText and deleteMessage answer 400 for unknown ids, and work on the bot's own messages", async () => {
    const api = newBot().api;
    fake.userStartsBot(TOKEN, ALICE);
    const edit = await apiError(api.editMessageText(ALICE, 999, "x"));
    expect(edit.error_code).toBe(400);
    expect(edit.description).toBe("Bad Request: message to edit not found");
    const del = await apiError(api.deleteMessage(ALICE, 999));
    expect(del.description).toBe("Bad Request: message to delete not found");

    const mine = await api.sendMessage(ALICE, "draft");
    const edited = await api.editMessageText(ALICE, mine.message_id, "final");
    expect(edited).toMatchObject({ text: "final", edit_date: expect.any(Number) });
    expect(fake.edits(TOKEN)).toEqual([expect.objectContaining({ chat_id: ALICE, message_id: mine.message_id, text: "final" })]);
    expect((await apiError(api.editMessageText(ALICE, mine.message_id, "final"))).description).toMatch(/^Bad Request: message is not modified/);
    expect(await api.deleteMessage(ALICE, mine.message_id)).toBe(true);
    expect(fake.message(TOKEN, ALICE, mine.message_id)?.deleted).toBe(true);
    expect((await apiError(api.editMessageText(ALICE, mine.message_id, "gone"))).description).toBe("Bad Request: message to edit not found");
  });

  it("user edits arrive as edited_message", async () => {
    const api = newBot().api;
    const m = fake.userSends(TOKEN, { from: ALICE, chat: ALICE, text: "typo" });
    fake.userEdits(TOKEN, { from: ALICE, chat: ALICE, message_id: m.message_id, text: "fixed" });
    const updates = await api.getUpdates();
    expect(updates.map((u) => Object.keys(u).filter((k) => k !== "update_id")[0])).toEqual(["message", "edited_message"]);
    expect(updates[1]!.edited_message).toMatchObject({ message_id: m.message_id, text: "fixed", edit_date: expect.any(Number) });
    expect(updates[0]!.message?.text).toBe("typo"); // the earlier update is a snapshot
  });
});

describe("FakeBotApi: groups", () => {
  beforeEach(() => {
    fake.addBot({ token: OTHER, username: "other_bot", first_name: "Other" });
    fake.addGroup({
      id: GROUP,
      title: "Estuary devs",
      type: "supergroup",
      is_forum: true,
      members: [
        { userId: ALICE, status: "creator" },
        { userId: 123456, status: "administrator", rights: { can_change_info: false } },
        { userId: 654321, status: "member" },
      ],
    });
  });

  it("message ids increase per chat, topics are kept, and both bots in the group get the message", async () => {
    const api = newBot().api;
    const m1 = fake.userSends(TOKEN, { from: ALICE, chat: GROUP, text: "in topic", message_thread_id: 7 });
    const reply = await api.sendMessage(GROUP, "answer", { reply_parameters: { message_id: m1.message_id } });
    expect(reply).toMatchObject({ message_id: m1.message_id + 1, message_thread_id: 7, is_topic_message: true });
    expect((await api.getUpdates()).map((u) => u.message?.text)).toEqual(["in topic"]);
    expect((await newBot(OTHER).api.getUpdates()).map((u) => u.message?.text)).toEqual(["in topic"]);
  });

  it("reports members, admins and count, and setChatTitle needs can_change_info", async () => {
    const api = newBot().api;
    expect(await api.getChatMember(GROUP, ALICE)).toMatchObject({ status: "creator", user: { id: ALICE } });
    expect(await api.getChatMember(GROUP, BOB)).toMatchObject({ status: "left" });
    expect((await api.getChatAdministrators(GROUP)).map((m) => m.user.id).sort()).toEqual([ALICE, 123456].sort());
    expect(await api.getChatMemberCount(GROUP)).toBe(3);
    expect(await api.getChat(GROUP)).toMatchObject({ id: GROUP, type: "supergroup", title: "Estuary devs", is_forum: true });
    expect(await api.getUserProfilePhotos(ALICE)).toEqual({ total_count: 0, photos: [] });

    const refused = await apiError(api.setChatTitle(GROUP, "New"));
    expect(refused.description).toBe("Bad Request: not enough rights to change chat title");
    fake.setMemberStatus(GROUP, 123456, "administrator");
    expect(await api.setChatTitle(GROUP, "New")).toBe(true);
    expect(await api.getChat(GROUP)).toMatchObject({ title: "New" });
  });

  it("joins and leaves produce service messages, chat_member for admin bots, my_chat_member for the bot", async () => {
    const api = newBot().api;
    await api.getUpdates({ allowed_updates: ["message", "chat_member", "my_chat_member"] });
    fake.userJoins(GROUP, BOB);
    fake.userLeaves(GROUP, BOB);
    const updates = await api.getUpdates();
    expect(updates.map((u) => Object.keys(u).find((k) => k !== "update_id"))).toEqual(["message", "chat_member", "message", "chat_member"]);
    expect(updates[0]!.message?.new_chat_members?.[0]?.id).toBe(BOB);
    expect(updates[1]!.chat_member).toMatchObject({ old_chat_member: { status: "left" }, new_chat_member: { status: "member", user: { id: BOB } } });
    expect(updates[2]!.message?.left_chat_member?.id).toBe(BOB);

    // The non-admin bot gets the service messages but no chat_member (it never opted in either).
    const other = newBot(OTHER).api;
    expect((await other.getUpdates()).every((u) => u.message !== undefined)).toBe(true);

    fake.removeBotFromGroup(OTHER, GROUP, { by: ALICE });
    const mine = await other.getUpdates({ offset: -1 });
    expect(mine[0]!.my_chat_member).toMatchObject({ from: { id: ALICE }, new_chat_member: { status: "kicked", user: { id: 654321 } } });
    expect((await apiError(other.sendMessage(GROUP, "still here?"))).description).toBe("Forbidden: bot was kicked from the supergroup chat");
  });

  it("a bot in privacy mode only sees commands and mentions", async () => {
    fake.addBot({ token: "777:private", username: "shy_bot", first_name: "Shy", can_read_all_group_messages: false });
    fake.addBotToGroup("777:private", GROUP, { by: ALICE });
    const api = newBot("777:private").api;
    await api.getUpdates({ offset: -1 }).then((u) => api.getUpdates({ offset: u[0]!.update_id + 1 }));
    fake.userSends(TOKEN, { from: ALICE, chat: GROUP, text: "chatter" });
    fake.userSends(TOKEN, { from: ALICE, chat: GROUP, text: "/help" });
    fake.userSends(TOKEN, { from: ALICE, chat: GROUP, text: "hey @shy_bot" });
    expect((await api.getUpdates()).map((u) => u.message?.text)).toEqual(["/help", "hey @shy_bot"]);
  });
});
