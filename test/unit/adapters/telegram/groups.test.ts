/**
 * What real Telegram groups send beyond plain text, through the adapter
 * against the fake Bot API: forum topics, albums and every kind of
 * content, messages posted as chats, forwards and cross-chat replies,
 * service messages, a group's migration to a supergroup, edits of unseen
 * messages, and a bot kicked out of a group. Nothing may vanish: what has no
 * XMPP form arrives as readable text.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { plain, toPlain } from "../../../../core/format/model.ts";
import type { LegacyEvent } from "../../../../core/model.ts";
import { FakeBotApi } from "../../../support/fake-bot-api.ts";
import { waitFor } from "../../../support/wait.ts";
import { openSession, type Harness } from "./harness.ts";
import { png } from "../../../support/png.ts";

const TOKEN = "434343:AAgroups-test";
const BOT_ID = 434343;
const ALICE = 2001;
const BOB = 2002;
const GROUP = -1009001;
const ROOM = "group1009001";
const FORUM = -1009002;
const FORUM_ROOM = "group1009002";


type Msg = Extract<LegacyEvent, { type: "message" }>;

let fake: FakeBotApi;
let h: Harness;

/** The room message of Telegram message `id` in `room`. */
function messageOf(room: string, id: number): Promise<Msg> {
  return h.next("message", (e) => e.chat.kind === "room" && e.chat.room === room && e.id === String(id));
}

beforeEach(async () => {
  fake = await FakeBotApi.start();
  fake.addBot({ token: TOKEN, username: "estuary_bot", first_name: "Estuary" });
  fake.addUser({ id: ALICE, first_name: "Alice" });
  fake.addUser({ id: BOB, first_name: "Bob" });
  const members = [
    { userId: ALICE, status: "creator" as const },
    { userId: BOB, status: "member" as const },
  ];
  fake.addGroup({ id: GROUP, title: "Wonderland", type: "group", members });
  fake.addGroup({ id: FORUM, title: "Forum", type: "supergroup", is_forum: true, members });
  fake.addBotToGroup(TOKEN, GROUP, { status: "administrator", by: ALICE });
  fake.addBotToGroup(TOKEN, FORUM, { status: "administrator", by: ALICE });
  h = await openSession(fake, TOKEN, BOT_ID);
});

afterEach(async () => {
  await h.session.close();
  await fake.stop();
});

describe("Telegram groups: forum topics", () => {
  it("brings topic messages into the group's room with the topic's name, and sends a reply back into that topic", async () => {
    await h.session.joinRoom!(FORUM_ROOM, "romeo", {});
    const root = fake.userCreatesTopic(TOKEN, { from: ALICE, chat: FORUM, name: "Ideas" });
    const created = await messageOf(FORUM_ROOM, root.message_id);
    expect(created).toMatchObject({ action: true, from: { nick: "Alice" } });
    expect(toPlain(created.text)).toBe("created the topic “Ideas”");

    const m = fake.userSends(TOKEN, { from: BOB, chat: FORUM, text: "what about tea?", message_thread_id: root.message_id });
    const got = await messageOf(FORUM_ROOM, m.message_id);
    expect(toPlain(got.text)).toBe("[Ideas] what about tea?");
    // Every topic message "replies" to the topic's root: that is not shown as a reply.
    expect(got.replyTo).toBeUndefined();

    await h.session.sendMessage({ kind: "room", room: FORUM_ROOM }, { text: plain("yes, tea"), replyTo: String(m.message_id) });
    expect(fake.sent(TOKEN).at(-1)).toMatchObject({ chat_id: FORUM, message_thread_id: root.message_id, reply_to_message_id: m.message_id, text: "yes, tea" });
    // Without a reply, the group's room writes to the General topic.
    await h.session.sendMessage({ kind: "room", room: FORUM_ROOM }, { text: plain("hello all") });
    expect(fake.sent(TOKEN).at(-1)?.message_thread_id).toBeUndefined();

    // Reactions to a topic message land where the message went.
    fake.userReacts(TOKEN, { from: ALICE, chat: FORUM, message_id: m.message_id, new_reaction: [{ type: "emoji", emoji: "👍" }] });
    expect(await h.next("reactions")).toMatchObject({ chat: { kind: "room", room: FORUM_ROOM }, id: String(m.message_id) });
  });

  it("sends a topic's messages to the topic's own room once the user joined it, without the prefix", async () => {
    await h.session.joinRoom!(FORUM_ROOM, "romeo", {});
    const root = fake.userCreatesTopic(TOKEN, { from: ALICE, chat: FORUM, name: "Ideas" });
    await messageOf(FORUM_ROOM, root.message_id);
    const topicRoom = `${FORUM_ROOM}~${root.message_id}`;
    await h.session.joinRoom!(topicRoom, "romeo", {});
    const m = fake.userSends(TOKEN, { from: BOB, chat: FORUM, text: "in the topic", message_thread_id: root.message_id });
    const got = await messageOf(topicRoom, m.message_id);
    expect(toPlain(got.text)).toBe("in the topic");
    expect(h.events.some((e) => e.type === "message" && e.chat.kind === "room" && e.chat.room === FORUM_ROOM && e.id === String(m.message_id))).toBe(false);
  });
});

describe("Telegram groups: content", () => {
  it("relays each photo of an album, the caption with the first, and files of every kind as attachments", async () => {
    await h.session.joinRoom!(ROOM, "romeo", {});
    const photo = (caption?: string) => {
      const f = fake.addFile("photo", png());
      return { photo: [{ ...f, width: 1, height: 1 }], media_group_id: "13001", ...(caption ? { caption } : {}) };
    };
    const a1 = fake.userPosts(TOKEN, { from: ALICE, chat: GROUP }, photo("our trip"));
    const a2 = fake.userPosts(TOKEN, { from: ALICE, chat: GROUP }, photo());
    const first = await messageOf(ROOM, a1.message_id);
    const second = await messageOf(ROOM, a2.message_id);
    expect(toPlain(first.text)).toBe("our trip");
    expect(first.attachments).toHaveLength(1);
    expect(second.attachments).toHaveLength(1);
    expect(second.attachments![0]!.url).not.toBe(first.attachments![0]!.url);

    const bytes = new Uint8Array([1, 2, 3, 4]);
    const cases: [Partial<import("grammy/types").Message>, string][] = [
      [{ sticker: { ...fake.addFile("sticker", bytes), type: "regular", width: 512, height: 512, is_animated: true, is_video: false, emoji: "😀" } }, "application/x-tgsticker"],
      [{ sticker: { ...fake.addFile("sticker", bytes), type: "regular", width: 512, height: 512, is_animated: false, is_video: true } }, "video/webm"],
      [{ video_note: { ...fake.addFile("video_note", bytes), length: 240, duration: 3 } }, "video/mp4"],
      [{ voice: { ...fake.addFile("voice", bytes), duration: 2, mime_type: "audio/ogg" } }, "audio/ogg"],
      [{ animation: { ...fake.addFile("animation", bytes), width: 1, height: 1, duration: 1, mime_type: "video/mp4", file_name: "cat.mp4" } }, "video/mp4"],
      [{ audio: { ...fake.addFile("audio", bytes), duration: 1, mime_type: "audio/mpeg", file_name: "song.mp3" } }, "audio/mpeg"],
    ];
    for (const [content, mediaType] of cases) {
      const m = fake.userPosts(TOKEN, { from: BOB, chat: GROUP }, content);
      const got = await messageOf(ROOM, m.message_id);
      expect(got.attachments?.[0]?.mediaType, JSON.stringify(Object.keys(content))).toBe(mediaType);
    }
  });

  it("says in the text that a file over 20 MB cannot be fetched, naming its size", async () => {
    await h.session.joinRoom!(ROOM, "romeo", {});
    const f = fake.addFile("video", new Uint8Array([1]));
    const m = fake.userPosts(TOKEN, { from: BOB, chat: GROUP }, { video: { ...f, file_size: 45 * 1024 * 1024, width: 1, height: 1, duration: 60 }, caption: "the talk" });
    const got = await messageOf(ROOM, m.message_id);
    expect(got.attachments).toBeUndefined();
    expect(toPlain(got.text)).toBe("[video: too big to fetch (45.0 MB; bots can download at most 20 MB)]\nthe talk");
  });

  it("renders locations, venues, contacts, polls, dice, games and stories as text, and anything unknown as a note", async () => {
    await h.session.joinRoom!(ROOM, "romeo", {});
    const cases: [Partial<import("grammy/types").Message>, string][] = [
      [{ location: { latitude: 48.8584, longitude: 2.2945 } }, "[location: geo:48.8584,2.2945]"],
      [{ location: { latitude: 1.5, longitude: 2.5, live_period: 900 } }, "[live location: geo:1.5,2.5]"],
      [
        { venue: { location: { latitude: 48.8584, longitude: 2.2945 }, title: "Eiffel Tower", address: "Champ de Mars" }, location: { latitude: 48.8584, longitude: 2.2945 } },
        "[venue: Eiffel Tower, Champ de Mars — geo:48.8584,2.2945]",
      ],
      [{ contact: { phone_number: "+33123456789", first_name: "Carol", last_name: "King" } }, "[contact: Carol King, +33123456789]"],
      [
        {
          poll: {
            id: "p1", question: "Tea or coffee?", options: [{ text: "Tea", voter_count: 0 }, { text: "Coffee", voter_count: 0 }], total_voter_count: 0,
            is_closed: false, is_anonymous: true, type: "regular", allows_multiple_answers: false,
          } as never,
        },
        "[poll: Tea or coffee?]\n○ Tea\n○ Coffee\n(vote in Telegram)",
      ],
      [{ dice: { emoji: "🎲", value: 4 } }, "[🎲 4]"],
      [{ game: { title: "Chess", description: "A board game", photo: [] } as never }, "[game: Chess — A board game; play it in Telegram]"],
      [{ story: { chat: { id: -1009001, type: "group", title: "Wonderland" } as never, id: 5 } }, "[a story of Wonderland: open it in Telegram]"],
      [{ some_future_feature: { x: 1 } } as never, "[a Telegram message this gateway cannot show (some_future_feature): open it in Telegram]"],
    ];
    for (const [content, text] of cases) {
      const m = fake.userPosts(TOKEN, { from: BOB, chat: GROUP }, content);
      expect(toPlain((await messageOf(ROOM, m.message_id)).text)).toBe(text);
    }
  });
});

describe("Telegram groups: senders, forwards, replies", () => {
  it("names anonymous admins and channels by their chat and signature, without making them occupants", async () => {
    await h.session.joinRoom!(ROOM, "romeo", {});
    const anon = fake.chatPosts(TOKEN, { from: ALICE, chat: GROUP, author_signature: "Queen" }, { text: "silence!" });
    expect((await messageOf(ROOM, anon.message_id)).from).toEqual({ nick: "Wonderland (Queen)" });
    const channel = { id: -1009999, type: "channel" as const, title: "News" };
    const post = fake.chatPosts(TOKEN, { from: ALICE, chat: GROUP, sender_chat: channel }, { text: "breaking", is_automatic_forward: true });
    expect((await messageOf(ROOM, post.message_id)).from).toEqual({ nick: "News" });
    expect(h.events.some((e) => e.type === "join" && /Group|Channel/.test(e.occupant.nick))).toBe(false);
  });

  it("says who a forward is from (all four MessageOrigin kinds), the inline bot, a quote and a reply to another chat", async () => {
    await h.session.joinRoom!(ROOM, "romeo", {});
    const carol = { id: 3003, is_bot: false, first_name: "Carol" };
    const date = 1_700_000_000;
    const origins: [import("grammy/types").MessageOrigin, string][] = [
      [{ type: "user", date, sender_user: carol }, "Carol"],
      [{ type: "hidden_user", date, sender_user_name: "Dave" }, "Dave"],
      [{ type: "chat", date, sender_chat: { id: -42, type: "group", title: "Elsewhere" }, author_signature: "Eve" }, "Elsewhere (Eve)"],
      [{ type: "channel", date, chat: { id: -1004242, type: "channel", title: "News", username: "newsch" }, message_id: 77 }, "News https://t.me/newsch/77"],
    ];
    for (const [forward_origin, who] of origins) {
      const m = fake.userPosts(TOKEN, { from: BOB, chat: GROUP }, { text: "look", forward_origin });
      expect(toPlain((await messageOf(ROOM, m.message_id)).text)).toBe(`Forwarded from ${who}:\n> look`);
    }
    const via = fake.userPosts(TOKEN, { from: BOB, chat: GROUP }, { text: "a gif", via_bot: { id: 99, is_bot: true, first_name: "Gif", username: "gif" } });
    expect(toPlain((await messageOf(ROOM, via.message_id)).text)).toBe("(via @gif)\na gif");

    const original = fake.userSends(TOKEN, { from: ALICE, chat: GROUP, text: "the quick brown fox" });
    await messageOf(ROOM, original.message_id);
    const quoting = fake.userPosts(TOKEN, { from: BOB, chat: GROUP, reply_to_message_id: original.message_id }, { text: "which fox?", quote: { text: "brown fox", position: 10 } });
    const q = await messageOf(ROOM, quoting.message_id);
    expect(q.replyTo).toBe(String(original.message_id));
    expect(toPlain(q.text)).toBe("> brown fox\nwhich fox?");

    const external = fake.userPosts(TOKEN, { from: BOB, chat: GROUP }, {
      text: "agreed",
      external_reply: { origin: { type: "user", date, sender_user: carol }, chat: { id: -42, type: "group", title: "Elsewhere" }, message_id: 9 },
      quote: { text: "tea is better", position: 0 },
    });
    expect(toPlain((await messageOf(ROOM, external.message_id)).text)).toBe("In reply to Carol in Elsewhere:\n> tea is better\nagreed");
  });
});

describe("Telegram groups: service messages and edits", () => {
  it("shows pins, group creation and video chats as actions of their author", async () => {
    await h.session.joinRoom!(ROOM, "romeo", {});
    const pinned = fake.userSends(TOKEN, { from: ALICE, chat: GROUP, text: "rules: be nice" });
    await messageOf(ROOM, pinned.message_id);
    const { reply_to_message: _r, ...flat } = pinned;
    const cases: [Partial<import("grammy/types").Message>, string][] = [
      [{ pinned_message: flat as never }, "pinned “rules: be nice”"],
      [{ group_chat_created: true }, "created the group “Wonderland”"],
      [{ video_chat_scheduled: { start_date: 1_700_000_000 } }, "scheduled a video chat for 2023-11-14T22:13:20.000Z"],
      [{ video_chat_started: {} }, "started a video chat (join it in Telegram)"],
      [{ video_chat_participants_invited: { users: [{ id: BOB, is_bot: false, first_name: "Bob" }] } }, "invited Bob to the video chat"],
      [{ video_chat_ended: { duration: 125 } }, "ended the video chat (2 min)"],
    ];
    for (const [content, text] of cases) {
      const m = fake.userPosts(TOKEN, { from: ALICE, chat: GROUP }, content);
      const got = await messageOf(ROOM, m.message_id);
      expect(got).toMatchObject({ action: true, from: { nick: "Alice" } });
      expect(toPlain(got.text)).toBe(text);
    }
  });

  it("follows a group upgraded to a supergroup: invites to the new room, closes the old one, and says so on a send or join there", async () => {
    await h.session.joinRoom!(ROOM, "romeo", {});
    fake.upgradeGroup(GROUP, -1009003, ALICE);
    expect(await h.next("invite")).toMatchObject({ room: "group1009003", from: { nick: "Wonderland" } });
    const closed = await h.next("room-closed");
    expect(closed).toMatchObject({ room: ROOM, how: "error" });
    expect(closed.reason).toContain("group1009003");
    await expect(h.session.sendMessage({ kind: "room", room: ROOM }, { text: plain("hello?") })).rejects.toMatchObject({
      kind: "not-found",
      message: expect.stringContaining("group1009003"),
    });
    await expect(h.session.joinRoom!(ROOM, "romeo", {})).rejects.toMatchObject({ kind: "not-found", message: expect.stringContaining("group1009003") });
    await expect(h.session.joinRoom!("group1009003", "romeo", {})).resolves.toMatchObject({ subject: { text: "Wonderland" } });
  });

  it("shows an edit of a message it never saw, and a live location's move, as text", async () => {
    // Sent while the user was not in the room: the gateway never relayed it.
    const unseen = fake.userSends(TOKEN, { from: BOB, chat: GROUP, text: "old text" });
    const live = fake.userPosts(TOKEN, { from: BOB, chat: GROUP }, { location: { latitude: 1, longitude: 2, live_period: 600 } });
    await messageOf(ROOM, live.message_id);
    await h.session.joinRoom!(ROOM, "romeo", {});
    fake.userEdits(TOKEN, { from: BOB, chat: GROUP, message_id: unseen.message_id, text: "new text" });
    const e = await h.next("edit", (x) => x.id === String(unseen.message_id));
    expect(e).toMatchObject({ chat: { kind: "room", room: ROOM }, from: { nick: "Bob", contact: "2002" } });
    expect(toPlain(e.text)).toBe("new text");
    // Telegram sends a live location's moves as edited_message with no text at all.
    fake.userEdits(TOKEN, { from: BOB, chat: GROUP, message_id: live.message_id, location: { latitude: 1.25, longitude: 2 } });
    const moved = await h.next("edit", (x) => x.id === String(live.message_id));
    expect(toPlain(moved.text)).toBe("[live location: geo:1.25,2]");
  });
});

describe("Telegram groups: outgoing limits", () => {
  it("sends a file with a text over the 1024-character caption limit as the file, then the text", async () => {
    await h.session.close();
    h = await openSession(fake, TOKEN, BOT_ID, { fetch: async () => ({ data: new Uint8Array([1, 2, 3]), mediaType: "text/plain", name: "notes.txt" }) });
    await h.session.joinRoom!(ROOM, "romeo", {});
    const long = "word ".repeat(300).trim(); // 1499 characters
    await h.session.sendMessage({ kind: "room", room: ROOM }, { text: plain(long), attachments: [{ url: "https://files.example/notes.txt" }] });
    const [file, text] = fake.sent(TOKEN).slice(-2);
    expect(file).toMatchObject({ method: "sendDocument", chat_id: GROUP });
    expect(file!.caption).toBeUndefined();
    expect(text).toMatchObject({ method: "sendMessage", text: long });
  });
});

describe("Telegram groups: the bot shut out", () => {
  it("closes the room when Telegram answers 403 'bot was kicked', and refuses a send to an unknown chat with not-found", async () => {
    await h.session.joinRoom!(ROOM, "romeo", {});
    fake.failNext("sendMessage", { error_code: 403, description: "Forbidden: bot was kicked from the group chat" });
    await expect(h.session.sendMessage({ kind: "room", room: ROOM }, { text: plain("anyone?") })).rejects.toMatchObject({ kind: "not-allowed" });
    const closed = await h.next("room-closed");
    expect(closed).toMatchObject({ room: ROOM, how: "kick" });
    expect(closed.reason).toContain("bot was kicked");
    await expect(h.session.sendMessage({ kind: "room", room: "group424242" }, { text: plain("hi") })).rejects.toMatchObject({ kind: "not-found" });
    await waitFor(() => (h.events.filter((e) => e.type === "room-closed").length === 1 ? true : undefined));
  });
});
