/**
 * One XMPP user's Telegram bot: long polling in, paced Bot API calls out.
 *
 * Polling is our own loop over getUpdates (https://core.telegram.org/bots/api#getupdates)
 * rather than grammY's Bot runner, for exactly-once delivery across
 * restarts: the next offset is persisted in the user's store ("offset")
 * only after the update was handed to `ctx.emit`, and getUpdates with that
 * offset confirms everything before it. A restart resumes at the first
 * update not yet emitted: none replayed, none skipped. (Should the process
 * die between emit and persist, that one update comes again: at-least-once
 * at that exact point.) One bot token must be polled by one gateway session
 * only: Telegram answers a second poller with 409 Conflict.
 */
import { Api, GrammyError, InputFile } from "grammy";
import type { ReactionTypeEmoji } from "grammy/types";
import type { AdapterSession, SessionContext } from "../../core/adapter.ts";
import { fail, isEstuaryError, type EstuaryError } from "../../core/errors.ts";
import type { ChatRef, ChatState, ContactId, MessageId, OutgoingMessage, RoomId, RoomSnapshot, SendResult } from "../../core/model.ts";
import { toEntities, type Formatted } from "./entities.ts";
import { apiError } from "./errors.ts";
import { parseContact, parseRoom, roomOf, type ChatTarget } from "./ids.ts";
import { ALLOWED_UPDATES, Inbound } from "./inbound.ts";
import { PHOTO_TYPES, UPLOAD_LIMIT } from "./media.ts";
import { ChatMembers, displayName, isPresent, roleOf } from "./members.ts";
import type { TelegramOptions } from "./options.ts";
import { SendQueue } from "./queue.ts";
import { grammySignal } from "./signal.ts";
import { CAPTION_LIMIT, splitFormatted, TEXT_LIMIT } from "./split.ts";

export const DEFAULT_API_ROOT = "https://api.telegram.org";

export interface BotIdentity {
  token: string;
  botId: number;
  botUsername?: string;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Telegram's reaction list has no emoji variation selectors ("❤" not "❤️"). */
function normaliseEmoji(e: string): string {
  return e.replace(/\uFE0F/g, "");
}

/** Correcting to the same text is a no-op for Telegram, not a failure. */
function notModified(err: unknown): boolean {
  return err instanceof Error && /message is not modified/i.test(err.message);
}

/** Largest avatar put inline in a vCard (XEP-0153 advises small images). */
const AVATAR_MAX_BYTES = 256 * 1024;

export class TelegramSession implements AdapterSession {
  readonly api: Api;
  private readonly ctx: SessionContext;
  private readonly options: TelegramOptions;
  private readonly bot: BotIdentity;
  private readonly apiRoot: string;
  private readonly queue: SendQueue;
  private readonly members = new ChatMembers();
  private readonly inbound: Inbound;
  /** Aborted by close() or by the core's ctx.signal. */
  private readonly abort = new AbortController();
  /** Titles of joined groups, to name one in a notice after it is gone. */
  private readonly titles = new Map<number, string>();
  /** Rooms the user joined, with their Bot API chat. */
  private readonly joined = new Map<RoomId, ChatTarget>();
  private polling: Promise<void> | undefined;
  /** An event of the update being handled was emitted after the core closed the session. */
  private dropped = false;

  constructor(ctx: SessionContext, options: TelegramOptions, bot: BotIdentity) {
    this.ctx = ctx;
    this.options = options;
    this.bot = bot;
    this.apiRoot = options.apiRoot ?? DEFAULT_API_ROOT;
    this.api = new Api(bot.token, { apiRoot: this.apiRoot });
    this.queue = new SendQueue({ ...options.rateLimits, maxQueuePerChat: options.maxQueuePerChat, retryWindowMs: options.retryWindowMs });
    this.inbound = new Inbound({
      ctx: {
        emit: (e) => {
          // The core drops a closed session's events: remember it, so that update is not confirmed.
          if (ctx.signal.aborted) this.dropped = true;
          ctx.emit(e);
        },
        media: ctx.media,
        log: ctx.log,
        signal: this.abort.signal,
      },
      api: this.api,
      fileUrl: (path) => `${this.apiRoot}/file/bot${bot.token}/${path}`,
      botId: bot.botId,
      members: this.members,
      topicRooms: (chatId) => [...this.joined].filter(([, t]) => t.chatId === chatId && t.thread !== undefined).map(([room]) => room),
    });
    if (ctx.signal.aborted) this.abort.abort();
    else ctx.signal.addEventListener("abort", () => this.abort.abort(), { once: true });
  }

  /** Starts the polling loop (returns at once). */
  start(): void {
    this.ctx.emit({ type: "status", state: "connecting" });
    this.polling = this.poll().catch((err: unknown) => {
      this.ctx.log.error({ err: err instanceof Error ? err.message : String(err) }, "telegram polling stopped");
      this.ctx.emit({ type: "status", state: "error", text: "Telegram polling stopped on an internal error" });
    });
  }

  private async poll(): Promise<void> {
    const signal = this.abort.signal;
    let offset = await this.ctx.store.get<number>("offset");
    let delay = this.options.reconnect.initialMs;
    let online = false;
    while (!signal.aborted) {
      let updates;
      try {
        updates = await this.api.getUpdates(
          { ...(offset === undefined ? {} : { offset }), timeout: this.options.pollTimeoutSec, allowed_updates: [...ALLOWED_UPDATES] },
          grammySignal(signal),
        );
      } catch (err) {
        if (signal.aborted) return;
        online = false;
        if (err instanceof GrammyError && (err.error_code === 401 || err.error_code === 404)) {
          // The token was revoked (/revoke in @BotFather): nothing to retry until the user registers a new one.
          this.ctx.emit({ type: "status", state: "error", text: "bot token revoked: register again with a new token from @BotFather" });
          return;
        }
        const why =
          err instanceof GrammyError && err.error_code === 409
            ? "another program is polling this bot, or a webhook is set"
            : err instanceof GrammyError
              ? `Telegram answered ${err.error_code}`
              : "Telegram is unreachable";
        this.ctx.log.warn({ why, retryInMs: delay }, "getUpdates failed");
        this.ctx.emit({ type: "status", state: "degraded", text: `${why}; retrying in ${Math.ceil(delay / 1000)} s` });
        await sleep(delay, signal);
        delay = Math.min(delay * 2, this.options.reconnect.maxMs);
        continue;
      }
      if (!online) {
        online = true;
        delay = this.options.reconnect.initialMs;
        this.ctx.emit({ type: "status", state: "online" });
      }
      for (const update of updates) {
        if (signal.aborted) return;
        this.dropped = false;
        try {
          await this.inbound.handle(update);
        } catch (err) {
          // One malformed update must not stall the bot; it is logged and passed.
          this.ctx.log.error({ err: err instanceof Error ? err.message : String(err), update: update.update_id }, "telegram update not handled");
        }
        // Closed mid-update and its events dropped: leave it unconfirmed, the next session gets it again.
        if (this.dropped) return;
        offset = update.update_id + 1;
        await this.ctx.store.set("offset", offset);
      }
    }
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.queue.stop();
    await this.polling;
  }

  // ── XMPP → Telegram ───────────────────────────────────────────────────

  private target(chat: ChatRef): ChatTarget {
    if (chat.kind === "room") {
      const t = parseRoom(chat.room);
      if (t === undefined) throw fail("not-found", `No such Telegram group: ${chat.room}`);
      return t;
    }
    const userId = parseContact(chat.contact);
    if (userId === undefined) throw fail("not-found", `No such Telegram user: ${chat.contact}`);
    return { chatId: userId };
  }

  private call<T>(chatId: number, what: string, fn: () => Promise<T>): Promise<T> {
    return this.queue.run(chatId, fn).catch((err: unknown) => {
      throw this.chatGone(chatId, err) ?? apiError(err, what);
    });
  }

  /**
   * A group the bot can no longer write to. 403 "bot was kicked from the
   * group chat" / "bot is not a member": its rooms close with the reason
   * (the my_chat_member update may never come, e.g. when it was removed
   * while the gateway was down for more than a day). 400 with
   * `parameters.migrate_to_chat_id` (https://core.telegram.org/bots/api#responseparameters):
   * the group became a supergroup with a new id; the user is pointed there.
   */
  private chatGone(chatId: number, err: unknown): EstuaryError | undefined {
    if (chatId >= 0 || !(err instanceof GrammyError)) return undefined;
    const to = err.parameters.migrate_to_chat_id;
    if (to !== undefined) {
      this.forgetChat(chatId);
      this.inbound.migrated({ id: chatId, type: "group", title: this.titles.get(chatId) ?? "The group" }, to);
      return fail("not-found", `This group was upgraded to a supergroup: its room is now ${roomOf(to)}`, { cause: err });
    }
    if (err.error_code === 403 && /kicked|not a member|chat was deleted|deactivated/i.test(err.description)) {
      const reason = `The bot can no longer write to this Telegram group (${err.description})`;
      this.inbound.closed(chatId, reason);
      this.forgetChat(chatId);
      return fail("not-allowed", reason, { cause: err });
    }
    return undefined;
  }

  private forgetChat(chatId: number): void {
    for (const [room, t] of this.joined) if (t.chatId === chatId) this.joined.delete(room);
  }

  private formatted(message: OutgoingMessage): Formatted {
    const f = toEntities(message.text);
    // Telegram has no /me: an action is sent in italics.
    if (message.action && f.text.length > 0) f.entities = [{ type: "italic", offset: 0, length: f.text.length }, ...f.entities];
    return f;
  }

  async sendMessage(chat: ChatRef, message: OutgoingMessage): Promise<SendResult> {
    const t = this.target(chat);
    let f = this.formatted(message);
    // From the group's room, a reply to a forum topic's message goes into that topic (README: forum topics).
    const threadId = t.thread ?? (message.replyTo === undefined ? undefined : this.inbound.threadOfMessage(t.chatId, Number(message.replyTo)));
    const thread = threadId === undefined ? {} : { message_thread_id: threadId };
    const reply = message.replyTo === undefined ? {} : { reply_parameters: { message_id: Number(message.replyTo), allow_sending_without_reply: true } };
    let firstId: number | undefined;
    if (message.attachments && message.attachments.length > 0) {
      // A client sending a file puts its URL in the body too: that URL is not a caption.
      const urls = new Set(message.attachments.map((a) => a.url));
      if (urls.has(f.text.trim())) f = { text: "", entities: [] };
      const caption = f.text.trim() !== "" && f.text.length <= CAPTION_LIMIT && message.attachments.length === 1 ? f : undefined;
      for (const [i, a] of message.attachments.entries()) {
        const id = await this.sendFile(t, a.url, i === 0 ? caption : undefined, { ...thread, ...(i === 0 ? reply : {}) });
        firstId ??= id;
      }
      if (caption !== undefined || f.text.trim() === "") return { id: String(firstId) };
    }
    if (f.text.trim() === "") throw fail("not-acceptable", "Telegram does not take empty messages");
    for (const [i, part] of splitFormatted(f, TEXT_LIMIT).entries()) {
      const sent = await this.call(t.chatId, "Telegram refused the message", () =>
        this.api.sendMessage(t.chatId, part.text, {
          ...(part.entities.length > 0 ? { entities: part.entities } : {}),
          ...thread,
          ...(i === 0 && firstId === undefined ? reply : {}),
        }),
      );
      firstId ??= sent.message_id;
      if (threadId !== undefined) this.inbound.noteThread(t.chatId, sent.message_id, threadId);
    }
    return { id: String(firstId) };
  }

  private async sendFile(t: ChatTarget, url: string, caption: Formatted | undefined, extra: Record<string, unknown>): Promise<number> {
    const got = await this.ctx.fetch(url, { maxBytes: UPLOAD_LIMIT });
    const name = got.name ?? (decodeURIComponent(new URL(url).pathname.split("/").pop() ?? "") || "file");
    const file = new InputFile(got.data, name);
    const cap = caption ? { caption: caption.text, ...(caption.entities.length > 0 ? { caption_entities: caption.entities } : {}) } : {};
    const photo = got.mediaType !== undefined && PHOTO_TYPES.has(got.mediaType.split(";")[0]!.trim().toLowerCase());
    const sent = await this.call(t.chatId, "Telegram refused the file", async (): Promise<{ message_id: number }> =>
      photo ? this.api.sendPhoto(t.chatId, file, { ...cap, ...extra }) : this.api.sendDocument(t.chatId, file, { ...cap, ...extra }),
    );
    const thread = extra.message_thread_id;
    if (typeof thread === "number") this.inbound.noteThread(t.chatId, sent.message_id, thread);
    return sent.message_id;
  }

  async correct(chat: ChatRef, id: MessageId, message: OutgoingMessage): Promise<SendResult> {
    const t = this.target(chat);
    const f = this.formatted(message);
    if (f.text.trim() === "") throw fail("not-acceptable", "Telegram does not take empty messages");
    if (f.text.length > TEXT_LIMIT) throw fail("not-acceptable", `A corrected message must fit in one Telegram message (${TEXT_LIMIT} characters)`);
    const entities = f.entities.length > 0 ? { entities: f.entities } : {};
    try {
      await this.call(t.chatId, "Telegram refused the correction", () => this.api.editMessageText(t.chatId, Number(id), f.text, entities));
    } catch (err) {
      if (notModified(err)) return { id };
      // A file sent with a caption has no text: its caption is what the correction changes
      // (https://core.telegram.org/bots/api#editmessagecaption).
      if (!(err instanceof Error && /no text in the message to edit/i.test(err.message))) throw err;
      if (f.text.length > CAPTION_LIMIT) throw fail("not-acceptable", `A corrected caption must fit in ${CAPTION_LIMIT} characters`);
      try {
        await this.call(t.chatId, "Telegram refused the correction", () =>
          this.api.editMessageCaption(t.chatId, Number(id), { caption: f.text, ...(f.entities.length > 0 ? { caption_entities: f.entities } : {}) }),
        );
      } catch (err2) {
        if (!notModified(err2)) throw err2;
      }
    }
    return { id };
  }

  async retract(chat: ChatRef, id: MessageId): Promise<void> {
    const t = this.target(chat);
    await this.call(t.chatId, "Telegram refused to delete the message", () => this.api.deleteMessage(t.chatId, Number(id)));
  }

  /**
   * XEP-0425 moderation: deleteMessage on someone else's message, which
   * Telegram allows a bot that is a group administrator with the
   * can_delete_messages right, within 48 hours of sending
   * (https://core.telegram.org/bots/api#deletemessage); otherwise it answers
   * 400 "message can't be deleted", the user's `forbidden`. Telegram keeps no
   * reason for a deletion.
   */
  async moderate(room: RoomId, id: MessageId): Promise<void> {
    const t = this.target({ kind: "room", room });
    try {
      await this.call(t.chatId, "Telegram refused to delete the message", () => this.api.deleteMessage(t.chatId, Number(id)));
    } catch (err) {
      if (isEstuaryError(err) && err.kind === "not-allowed") {
        throw fail("forbidden", `${err.message} (the bot must be an administrator of the group allowed to delete messages)`, { cause: err.cause });
      }
      throw err;
    }
  }

  /**
   * XEP-0444 sends the whole set; a bot may set one reaction per message
   * (https://core.telegram.org/bots/api#setmessagereaction), so the last
   * emoji of the set is the one sent (an empty set clears it).
   */
  async react(chat: ChatRef, id: MessageId, emojis: string[]): Promise<void> {
    const t = this.target(chat);
    const last = emojis.at(-1);
    const reaction: ReactionTypeEmoji[] = last === undefined ? [] : [{ type: "emoji", emoji: normaliseEmoji(last) as ReactionTypeEmoji["emoji"] }];
    await this.call(t.chatId, "Telegram refused the reaction", () => this.api.setMessageReaction(t.chatId, Number(id), reaction));
  }

  async setTyping(chat: ChatRef, state: ChatState): Promise<void> {
    // Telegram shows "typing" for ~5 s per sendChatAction; other states have no counterpart.
    if (state !== "composing") return;
    const t = this.target(chat);
    await this.api.sendChatAction(t.chatId, "typing", t.thread === undefined ? {} : { message_thread_id: t.thread }).catch((err: unknown) => {
      throw apiError(err);
    });
  }

  async joinRoom(room: RoomId, nick: string): Promise<RoomSnapshot> {
    const t = parseRoom(room);
    const notIn = fail("not-found", "The bot is not a member of this Telegram group (add it to the group first)");
    if (t === undefined) throw notIn;
    let info;
    let me;
    try {
      info = await this.api.getChat(t.chatId, grammySignal(this.abort.signal));
      me = await this.api.getChatMember(t.chatId, this.bot.botId, grammySignal(this.abort.signal));
    } catch (err) {
      const to = err instanceof GrammyError ? err.parameters.migrate_to_chat_id : undefined;
      if (to !== undefined) throw fail("not-found", `This group was upgraded to a supergroup: join ${roomOf(to)} instead`);
      const e = apiError(err);
      throw e.kind === "not-found" || e.kind === "not-allowed" || e.kind === "not-acceptable" ? notIn : e;
    }
    if (!isPresent(me.status)) throw notIn;
    if (t.thread !== undefined && !("is_forum" in info && info.is_forum)) throw fail("not-found", "This Telegram group has no topics");
    const admins = await this.api.getChatAdministrators(t.chatId, undefined, grammySignal(this.abort.signal)).catch(() => []);
    // Our own nick first, so nobody else is given it.
    this.members.setSelfNick(t.chatId, nick);
    for (const admin of admins) {
      if (admin.user.id !== this.bot.botId && isPresent(admin.status)) this.members.see(t.chatId, admin.user, admin.status);
    }
    const occupants = this.members.occupants(t.chatId);
    const selfNick = occupants.some((o) => o.nick === nick) ? `${nick} (XMPP)` : nick;
    this.members.setSelfNick(t.chatId, selfNick);
    this.joined.set(room, t);
    const title = "title" in info ? info.title : undefined;
    if (title) this.titles.set(t.chatId, title);
    return {
      nick: selfNick,
      self: roleOf(me.status),
      occupants,
      ...(title ? { subject: { text: title }, name: title } : {}),
    };
  }

  async leaveRoom(room: RoomId): Promise<void> {
    // The bot stays in the group: leaving the MUC only stops relaying it to this user.
    this.joined.delete(room);
  }

  async setSubject(room: RoomId, subject: string): Promise<void> {
    const t = parseRoom(room);
    if (t === undefined) throw fail("not-found", `No such Telegram group: ${room}`);
    try {
      await this.api.setChatTitle(t.chatId, subject);
    } catch (err) {
      const e = apiError(err, "Telegram refused the new title");
      if (/rights/i.test(e.message)) throw fail("not-allowed", "Changing the title needs the bot to be an administrator with the right to change group info");
      throw e;
    }
  }

  async contactInfo(contact: ContactId): Promise<{ name?: string; avatar?: { data: Uint8Array; mediaType: string } } | undefined> {
    const userId = parseContact(contact);
    if (userId === undefined) return undefined;
    try {
      const chat = await this.api.getChat(userId, grammySignal(this.abort.signal));
      if (chat.type !== "private") return undefined;
      const name = displayName({ id: userId, first_name: chat.first_name ?? "", last_name: chat.last_name, username: chat.username });
      const avatar = await this.avatarOf(userId).catch(() => undefined);
      return { name, ...(avatar ? { avatar } : {}) };
    } catch {
      return undefined;
    }
  }

  /** The user's current profile photo, smallest size (an avatar), when the Bot API shows one. */
  private async avatarOf(userId: number): Promise<{ data: Uint8Array; mediaType: string } | undefined> {
    const photos = await this.api.getUserProfilePhotos(userId, { limit: 1 }, grammySignal(this.abort.signal));
    const sizes = photos.photos[0];
    const smallest = sizes?.[0];
    if (!smallest || (smallest.file_size ?? 0) > AVATAR_MAX_BYTES) return undefined;
    const file = await this.api.getFile(smallest.file_id, grammySignal(this.abort.signal));
    if (!file.file_path) return undefined;
    const res = await fetch(`${this.apiRoot}/file/bot${this.bot.token}/${file.file_path}`, { signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(30_000)]) });
    if (!res.ok) return undefined;
    const data = new Uint8Array(await res.arrayBuffer());
    if (data.byteLength > AVATAR_MAX_BYTES) return undefined;
    // Telegram profile photos are JPEG.
    return { data, mediaType: "image/jpeg" };
  }
}
