/**
 * The Telegram adapter on its own: real grammY against the fake Bot API,
 * a hand-made SessionContext (in-memory store, recorded events, a stub media
 * publisher and fetch). Covers what the end-to-end test cannot reach
 * through the gateway yet (media) and the edges (offsets across restarts,
 * 401, 429 storms, queue overflow, group membership).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Api } from "grammy";
import type { AdapterSession } from "../../../../core/adapter.ts";
import { plain } from "../../../../core/format/model.ts";
import { FakeBotApi } from "../../../support/fake-bot-api.ts";
import { waitFor } from "../../../support/wait.ts";
import { MemoryStore, openSession, telegramAdapter, type Harness, type SessionOptions } from "./harness.ts";
import { png } from "../../../support/png.ts";

const TOKEN = "424242:AAsession-test";
const BOT_ID = 424242;
const ALICE = 1001;
const BOB = 1002;
const GROUP = -1007001;


let fake: FakeBotApi;
const sessions: AdapterSession[] = [];

/** A session of the test bot (or of `token`), closed after the test. */
async function open(opts: SessionOptions = {}, token = TOKEN, botId = BOT_ID): Promise<Harness> {
  const h = await openSession(fake, token, botId, { botUsername: "estuary_bot", ...opts });
  sessions.push(h.session);
  return h;
}

beforeEach(async () => {
  fake = await FakeBotApi.start();
  fake.addBot({ token: TOKEN, username: "estuary_bot", first_name: "Estuary" });
  fake.addUser({ id: ALICE, first_name: "Alice", last_name: "Liddell", username: "alice" });
  fake.addUser({ id: BOB, first_name: "Alice", last_name: "Liddell" });
});

afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => s.close()));
  await fake.stop();
});

describe("Telegram adapter: registration", () => {
  it("checks the token with getMe and returns the bot's identity", async () => {
    const a = telegramAdapter(fake);
    await expect(a.validateRegistration({ token: "999:wrong" })).rejects.toMatchObject({ kind: "not-acceptable", message: expect.stringMatching(/^Telegram refused this bot token/) });
    await expect(a.validateRegistration({ token: "not a token" })).rejects.toMatchObject({ kind: "not-acceptable" });
    await expect(a.validateRegistration({ token: ` ${TOKEN} ` })).resolves.toEqual({ token: TOKEN, botId: String(BOT_ID), botUsername: "estuary_bot" });
    expect(a.registration.required).toBe(true);
    expect(a.registration.fields).toEqual([expect.objectContaining({ var: "token", type: "text-private", secret: true, required: true })]);
  });
});

describe("Telegram adapter: polling", () => {
  it("goes online and turns a private message into a presence then a formatted message", async () => {
    const h = await open();
    await h.next("status", (e) => e.state === "online");
    fake.userSends(TOKEN, { from: ALICE, chat: ALICE, text: "hi 😀 there", entities: [{ type: "bold", offset: 3, length: 2 }] });
    const msg = await h.next("message");
    const presenceAt = h.events.findIndex((e) => e.type === "presence");
    expect(presenceAt).toBeGreaterThanOrEqual(0);
    expect(presenceAt).toBeLessThan(h.events.indexOf(msg));
    expect(h.events[presenceAt]).toEqual({ type: "presence", contact: String(ALICE), show: "available", name: "Alice Liddell" });
    expect(msg).toMatchObject({ chat: { kind: "direct", contact: "1001" }, from: { nick: "Alice Liddell", contact: "1001" } });
    expect(msg.text.blocks).toEqual([{ type: "line", children: [{ type: "text", text: "hi " }, { type: "bold", children: [{ type: "text", text: "😀" }] }, { type: "text", text: " there" }] }]);
  });

  it("resumes after a restart at the next update: none replayed, none skipped", async () => {
    const store = new MemoryStore();
    const h1 = await open({ store });
    const s1 = h1.session;
    fake.userSends(TOKEN, { from: ALICE, chat: ALICE, text: "one" });
    await h1.next("message", (e) => e.id === "1");
    await waitFor(() => (store.data.get("offset") !== undefined ? true : undefined), { what: "the offset persisted" });
    h1.abort.abort();
    await s1.close();
    fake.userSends(TOKEN, { from: ALICE, chat: ALICE, text: "two" });
    const stored = store.data.get("offset");
    const polls = fake.calls.length;
    const h2 = await open({ store });
    await h2.next("message", (e) => e.id === "2");
    // The new session starts from the persisted offset (the update after the last one emitted).
    expect(fake.calls.slice(polls).find((c) => c.method === "getUpdates")?.params.offset).toBe(stored);
    fake.userSends(TOKEN, { from: ALICE, chat: ALICE, text: "three" });
    await h2.next("message", (e) => e.id === "3");
    const ids = h2.events.flatMap((e) => (e.type === "message" ? [e.id] : []));
    expect(ids).toEqual(["2", "3"]);
  });

  it("says 'bot token revoked' when Telegram answers 401", async () => {
    const h = await open({}, "777:revoked", 777);
    const st = await h.next("status", (e) => e.state === "error");
    expect(st.text).toMatch(/bot token revoked/);
  });

  it("retries getUpdates after server errors and comes back online", async () => {
    fake.failNext("getUpdates", { error_code: 502, description: "Bad Gateway" }, 2);
    const h = await open();
    await h.next("status", (e) => e.state === "degraded");
    await h.next("status", (e) => e.state === "online");
    fake.userSends(TOKEN, { from: ALICE, chat: ALICE, text: "after" });
    await h.next("message");
  });
});

describe("Telegram adapter: messages out", () => {
  it("sends entities (no parse_mode), replies, edits, deletes, reacts and types", async () => {
    const h = await open();
    const s = h.session;
    const first = fake.userSends(TOKEN, { from: ALICE, chat: ALICE, text: "hello" });
    await h.next("message");
    const sent = await s.sendMessage({ kind: "direct", contact: "1001" }, { text: { blocks: [{ type: "line", children: [{ type: "bold", children: [{ type: "text", text: "<b>x</b>" }] }] }] }, replyTo: String(first.message_id) });
    const call = fake.calls.find((c) => c.method === "sendMessage")!;
    expect(call.params.parse_mode).toBeUndefined();
    const rec = fake.sent(TOKEN).at(-1)!;
    expect(rec).toMatchObject({ text: "<b>x</b>", entities: [{ type: "bold", offset: 0, length: 8 }], reply_to_message_id: first.message_id });
    expect(sent.id).toBe(String(rec.message_id));

    await s.correct!({ kind: "direct", contact: "1001" }, sent.id!, { text: plain("fixed") });
    expect(fake.edits(TOKEN).at(-1)).toMatchObject({ message_id: rec.message_id, text: "fixed" });
    await s.react!({ kind: "direct", contact: "1001" }, String(first.message_id), ["👍", "❤️"]);
    expect(fake.message(TOKEN, ALICE, first.message_id)?.reactions.get(BOT_ID)).toEqual([{ type: "emoji", emoji: "❤" }]);
    await s.retract!({ kind: "direct", contact: "1001" }, sent.id!);
    expect(fake.message(TOKEN, ALICE, rec.message_id)?.deleted).toBe(true);
    await s.setTyping!({ kind: "direct", contact: "1001" }, "composing");
    expect(fake.calls.some((c) => c.method === "sendChatAction" && c.params.action === "typing")).toBe(true);
    await expect(s.react!({ kind: "direct", contact: "1001" }, String(first.message_id), ["🦆"])).rejects.toMatchObject({ kind: "not-acceptable" });
  });

  it("splits a text over 4096 UTF-16 units into several messages", async () => {
    const h = await open();
    const s = h.session;
    fake.userSends(TOKEN, { from: ALICE, chat: ALICE, text: "hi" });
    await h.next("message");
    const long = Array.from({ length: 1200 }, (_, i) => `w${i}😀`).join(" ");
    expect(long.length).toBeGreaterThan(4096);
    await s.sendMessage({ kind: "direct", contact: "1001" }, { text: plain(long) });
    const parts = fake.sent(TOKEN).filter((r) => r.method === "sendMessage");
    expect(parts.length).toBeGreaterThan(1);
    for (const p of parts) expect(p.text!.length).toBeLessThanOrEqual(4096);
    expect(parts.map((p) => p.text).join(" ")).toBe(long);
  });

  it("loses nothing in a 429 storm: waits retry_after, keeps the order", async () => {
    const h = await open();
    const s = h.session;
    fake.userSends(TOKEN, { from: ALICE, chat: ALICE, text: "hi" });
    await h.next("message");
    fake.failNext("sendMessage", { error_code: 429, description: "Too Many Requests: retry after 1", parameters: { retry_after: 1 } }, 3);
    const started = Date.now();
    await Promise.all(Array.from({ length: 5 }, (_, i) => s.sendMessage({ kind: "direct", contact: "1001" }, { text: plain(`m${i}`) })));
    expect(fake.sent(TOKEN).map((r) => r.text)).toEqual(["m0", "m1", "m2", "m3", "m4"]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2900);
  });

  it("refuses with rate-limited when Telegram's wait exceeds the retry window, and with queue-full beyond the queue", async () => {
    const h = await open({ adapter: { retryWindowMs: 1500, maxQueuePerChat: 2, rateLimits: { perChatPerSec: 2, perGroupPerMin: 6000, perBotPerSec: 100 } } });
    const s = h.session;
    fake.userSends(TOKEN, { from: ALICE, chat: ALICE, text: "hi" });
    await h.next("message");
    fake.failNext("sendMessage", { error_code: 429, description: "Too Many Requests: retry after 30", parameters: { retry_after: 30 } });
    await expect(s.sendMessage({ kind: "direct", contact: "1001" }, { text: plain("late") })).rejects.toMatchObject({ kind: "rate-limited", retryAfter: 30 });

    const chat = { kind: "direct" as const, contact: "1001" };
    const results = await Promise.allSettled([1, 2, 3].map((i) => s.sendMessage(chat, { text: plain(`q${i}`) })));
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "rejected"]);
    expect((results[2] as PromiseRejectedResult).reason).toMatchObject({ kind: "queue-full" });
    expect(fake.sent(TOKEN).map((r) => r.text)).toEqual(["q1", "q2"]);
  });

  it("tells a person who never wrote to the bot apart with not-allowed", async () => {
    const h = await open();
    const s = h.session;
    await expect(s.sendMessage({ kind: "direct", contact: String(BOB) }, { text: plain("hello?") })).rejects.toMatchObject({ kind: "not-allowed" });
    await expect(s.sendMessage({ kind: "room", room: "nonsense" }, { text: plain("x") })).rejects.toMatchObject({ kind: "not-found" });
  });
});

describe("Telegram adapter: media", () => {
  it("publishes an incoming photo with its caption, and a document with its name", async () => {
    const h = await open();
    const bytes = png(3, 2);
    fake.userSendsPhoto(TOKEN, { from: ALICE, chat: ALICE, bytes, caption: "look", caption_entities: [{ type: "italic", offset: 0, length: 4 }] });
    const photo = await h.next("message");
    expect(photo.attachments).toEqual([{ url: "https://media.example/1/file_1.jpg", name: "file_1.jpg", mediaType: "image/jpeg", size: bytes.byteLength }]);
    expect(Buffer.from(h.published[0]!.data).equals(bytes)).toBe(true);
    expect(photo.text.blocks).toEqual([{ type: "line", children: [{ type: "italic", children: [{ type: "text", text: "look" }] }] }]);
    fake.userSendsDocument(TOKEN, { from: ALICE, chat: ALICE, bytes: new TextEncoder().encode("%PDF"), file_name: "report.pdf", mime_type: "application/pdf" });
    const doc = await h.next("message", (e) => e.attachments?.[0]?.name === "report.pdf");
    expect(doc.attachments?.[0]).toMatchObject({ mediaType: "application/pdf", url: "https://media.example/2/report.pdf" });
  });

  it("says so in the text when there is no HTTP listener or the file is over 20 MB", async () => {
    const h = await open({ media: false });
    const s1 = h.session;
    fake.userSendsPhoto(TOKEN, { from: ALICE, chat: ALICE, bytes: png(1, 1), caption: "cap" });
    const m = await h.next("message");
    expect(m.attachments).toBeUndefined();
    expect(m.text.blocks.map((b) => (b.type === "line" ? b.children.map((c) => (c.type === "text" ? c.text : "")).join("") : ""))).toEqual([
      "[photo: not available — the gateway has no HTTP listener]",
      "cap",
    ]);

    // One poller per bot (Telegram answers a second one 409): the next session takes over with the stored offset.
    await s1.close();
    const h3 = await open({ store: h.ctx.store });
    fake.userSendsDocument(TOKEN, { from: ALICE, chat: ALICE, bytes: new Uint8Array(20 * 1024 * 1024 + 1), file_name: "big.bin" });
    const big = await h3.next("message");
    expect(big.attachments).toBeUndefined();
    expect(JSON.stringify(big.text)).toMatch(/document: too big to fetch \(20\.0 MB; bots can download at most 20 MB\)/);
    expect(h3.published).toEqual([]);
  });

  it("uploads outgoing attachments fetched through ctx.fetch: images as photos, others as documents", async () => {
    const image = png(4, 4);
    const fetched: string[] = [];
    const h = await open({
      fetch: async (url, o) => {
        fetched.push(`${url} ${o?.maxBytes}`);
        return url.endsWith(".png") ? { data: image, mediaType: "image/png", name: "cat.png" } : { data: new TextEncoder().encode("notes"), mediaType: "text/plain" };
      },
    });
    const s = h.session;
    fake.userSends(TOKEN, { from: ALICE, chat: ALICE, text: "hi" });
    await h.next("message");
    const r1 = await s.sendMessage({ kind: "direct", contact: "1001" }, { text: plain("https://files.example/cat.png"), attachments: [{ url: "https://files.example/cat.png" }] });
    const r2 = await s.sendMessage({ kind: "direct", contact: "1001" }, { text: plain("my notes"), attachments: [{ url: "https://files.example/notes.txt" }] });
    expect(fetched).toEqual([`https://files.example/cat.png ${50 * 1024 * 1024}`, `https://files.example/notes.txt ${50 * 1024 * 1024}`]);
    const [photo, doc] = fake.sent(TOKEN);
    expect(photo).toMatchObject({ method: "sendPhoto", media: { kind: "photo", source: "upload" } });
    expect(photo!.caption).toBeUndefined();
    expect(Buffer.from(photo!.media!.bytes).equals(image)).toBe(true);
    expect(doc).toMatchObject({ method: "sendDocument", caption: "my notes", media: { kind: "document", file_name: "notes.txt" } });
    expect([r1.id, r2.id]).toEqual([String(photo!.message_id), String(doc!.message_id)]);
  });
});

describe("Telegram adapter: groups", () => {
  beforeEach(() => {
    fake.addGroup({
      id: GROUP,
      title: "Wonderland",
      type: "supergroup",
      members: [
        { userId: ALICE, status: "creator" },
        { userId: BOB, status: "member" },
      ],
    });
  });

  it("joins with admins as occupants, the title as subject; members appear as they are seen; same names are told apart", async () => {
    fake.addBotToGroup(TOKEN, GROUP, { status: "administrator", by: ALICE });
    const h = await open();
    const s = h.session;
    const snap = await s.joinRoom!("group1007001", "romeo", {});
    expect(snap).toMatchObject({ nick: "romeo", self: { role: "moderator", affiliation: "admin" }, subject: { text: "Wonderland" } });
    expect(snap.occupants).toEqual([{ nick: "Alice Liddell", contact: "1001", role: "moderator", affiliation: "owner" }]);

    fake.userSends(TOKEN, { from: BOB, chat: GROUP, text: "me too" });
    const join = await h.next("join", (e) => e.occupant.contact === "1002");
    expect(join).toEqual({ type: "join", room: "group1007001", occupant: { nick: "Alice Liddell (1002)", contact: "1002", role: "participant", affiliation: "none" } });
    const msg = await h.next("message", (e) => e.chat.kind === "room");
    expect(msg.from).toEqual({ nick: "Alice Liddell (1002)", contact: "1002" });

    fake.setMemberStatus(GROUP, BOB, "administrator");
    expect(await h.next("occupant")).toMatchObject({ occupant: { nick: "Alice Liddell (1002)", role: "moderator", affiliation: "admin" } });
    fake.userLeaves(GROUP, BOB);
    expect(await h.next("part")).toEqual({ type: "part", room: "group1007001", nick: "Alice Liddell (1002)", how: "leave" });
    // Admin bots get both chat_member and the service message: one part only.
    await waitFor(() => (h.events.filter((e) => e.type === "part").length === 1 ? true : undefined));

    await s.setSubject!("group1007001", "Looking glass");
    expect(fake.calls.find((c) => c.method === "setChatTitle")?.params.title).toBe("Looking glass");
  });

  it("refuses rooms of groups the bot is not in, and a title change without rights", async () => {
    const h = await open();
    const s = h.session;
    await expect(s.joinRoom!("group1007001", "romeo", {})).rejects.toMatchObject({ kind: "not-found" });
    await expect(s.joinRoom!("group99", "romeo", {})).rejects.toMatchObject({ kind: "not-found" });
    fake.addBotToGroup(TOKEN, GROUP, { by: ALICE });
    await expect(s.joinRoom!("group1007001", "romeo", {})).resolves.toMatchObject({ self: { role: "participant", affiliation: "none" } });
    await expect(s.setSubject!("group1007001", "Nope")).rejects.toMatchObject({ kind: "not-allowed" });
  });

  it("reports reactions with the user's whole set, and a title change as topic", async () => {
    fake.addBotToGroup(TOKEN, GROUP, { status: "administrator", by: ALICE });
    const h = await open();
    const s = h.session;
    await s.joinRoom!("group1007001", "romeo", {});
    const m = fake.userSends(TOKEN, { from: ALICE, chat: GROUP, text: "react to me" });
    await h.next("message", (e) => e.chat.kind === "room");
    fake.userReacts(TOKEN, { from: BOB, chat: GROUP, message_id: m.message_id, new_reaction: [{ type: "emoji", emoji: "🔥" }, { type: "emoji", emoji: "👍" }] });
    const r = await h.next("reactions");
    expect(r).toMatchObject({ chat: { kind: "room", room: "group1007001" }, id: String(m.message_id), emojis: ["🔥", "👍"], from: { contact: "1002" } });
    fake.userEdits(TOKEN, { from: ALICE, chat: GROUP, message_id: m.message_id, text: "edited" });
    expect(await h.next("edit")).toMatchObject({ id: String(m.message_id), from: { nick: "Alice Liddell" } });

    // Someone else (here another admin bot) renames the group.
    const OTHER = "515151:BBother";
    fake.addBot({ token: OTHER, username: "other_bot", first_name: "Other" });
    fake.addBotToGroup(OTHER, GROUP, { status: "administrator", by: ALICE });
    await new Api(OTHER, { apiRoot: fake.url }).setChatTitle(GROUP, "Looking glass");
    expect(await h.next("topic")).toEqual({ type: "topic", room: "group1007001", text: "Looking glass", by: "Other" });
  });

  it("maps forum topics to their own rooms, both ways", async () => {
    const FORUM = -1008002;
    fake.addGroup({ id: FORUM, title: "Forum", type: "supergroup", is_forum: true, members: [{ userId: ALICE, status: "creator" }] });
    fake.addBotToGroup(TOKEN, FORUM, { status: "administrator", by: ALICE });
    const h = await open();
    const s = h.session;
    const snap = await s.joinRoom!("group1008002~7", "romeo", {});
    expect(snap.subject).toEqual({ text: "Forum" });
    await expect(s.joinRoom!("group1007001~7", "romeo", {})).rejects.toMatchObject({ kind: "not-found" }); // not a forum (and the bot is not in it)
    fake.userSends(TOKEN, { from: ALICE, chat: FORUM, text: "in topic", message_thread_id: 7 });
    expect(await h.next("message", (e) => e.chat.kind === "room")).toMatchObject({ chat: { kind: "room", room: "group1008002~7" } });
    await s.sendMessage({ kind: "room", room: "group1008002~7" }, { text: plain("answer") });
    expect(fake.sent(TOKEN).at(-1)).toMatchObject({ chat_id: FORUM, message_thread_id: 7, text: "answer" });
  });
});
