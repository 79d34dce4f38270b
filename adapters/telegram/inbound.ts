/**
 * Telegram updates (https://core.telegram.org/bots/api#update) → neutral
 * events. One Update is handled completely (media fetched) before the next,
 * so events keep Telegram's order.
 *
 * - private chat → 1:1 chat with the contact `<user id>`; the first time a
 *   person is seen, a presence with their name (XEP-0172 nick) comes first;
 * - group/supergroup → room `group<abs id>`; forum topic messages → room
 *   `group<abs id>~<thread>`;
 * - edited_message → edit; message_reaction → that user's whole reaction
 *   set; chat_member / new_chat_members / left_chat_member → join/part
 *   (de-duplicated: admin bots get both); new_chat_title → topic;
 *   my_chat_member (the bot removed) → room-closed.
 * Deletions by others are invisible to bots: the Bot API sends no update.
 */
import type { Api } from "grammy";
import type { Chat, ChatMemberUpdated, Message, MessageReactionUpdated, Update, User } from "grammy/types";
import type { SessionContext } from "../../core/adapter.ts";
import { plain, type RichText } from "../../core/format/model.ts";
import type { ChatRef, Sender } from "../../core/model.ts";
import { fromEntities } from "./entities.ts";
import { contactOf, roomOf } from "./ids.ts";
import { fetchIncoming, fileOf } from "./media.ts";
import { ChatMembers, displayName, isPresent } from "./members.ts";

/** Update types asked for: chat_member and message_reaction are opt-in (https://core.telegram.org/bots/api#getupdates). */
export const ALLOWED_UPDATES = ["message", "edited_message", "message_reaction", "chat_member", "my_chat_member"] as const;

const THREAD_MEMORY = 10_000;

export interface InboundDeps {
  ctx: Pick<SessionContext, "emit" | "media" | "log" | "signal">;
  api: Api;
  fileUrl: (path: string) => string;
  botId: number;
  members: ChatMembers;
  /** Topic rooms the user joined, by chat id (events of the whole chat go to each). */
  topicRooms: (chatId: number) => string[];
}

export class Inbound {
  private readonly deps: InboundDeps;
  private readonly seenContacts = new Set<number>();
  /** Forum topic of recent messages: message_reaction updates do not say it. */
  private readonly threads = new Map<string, number>();

  constructor(deps: InboundDeps) {
    this.deps = deps;
  }

  async handle(update: Update): Promise<void> {
    if (update.message) return this.onMessage(update.message, false);
    if (update.edited_message) return this.onMessage(update.edited_message, true);
    if (update.message_reaction) return this.onReaction(update.message_reaction);
    if (update.chat_member) return this.onMember(update.chat_member);
    if (update.my_chat_member) return this.onMyMember(update.my_chat_member);
  }

  private emit: SessionContext["emit"] = (event) => this.deps.ctx.emit(event);

  private isGroup(chat: Chat): boolean {
    return chat.type === "group" || chat.type === "supergroup";
  }

  /** The room of a group message: its forum topic's room, else the group's. */
  private roomFor(m: Message): string {
    const forum = m.chat.type === "supergroup" && m.chat.is_forum === true;
    const thread = forum && m.is_topic_message ? m.message_thread_id : undefined;
    if (thread !== undefined) {
      this.threads.set(`${m.chat.id}:${m.message_id}`, thread);
      if (this.threads.size > THREAD_MEMORY) this.threads.delete(this.threads.keys().next().value!);
    }
    return roomOf(m.chat.id, thread);
  }

  /** Every room of a chat the user may have joined: the group's and its topics'. */
  private roomsOf(chatId: number): string[] {
    return [roomOf(chatId), ...this.deps.topicRooms(chatId)];
  }

  private sender(chat: Chat, user: User | undefined, senderChat: Chat | undefined): Sender {
    if (user === undefined || (senderChat !== undefined && user.is_bot && user.username === "GroupAnonymousBot")) {
      // Anonymous admins and channels post as a chat.
      const title = senderChat && "title" in senderChat ? senderChat.title : "Anonymous";
      return { nick: title ?? "Anonymous" };
    }
    if (!this.isGroup(chat)) return { nick: displayName(user), contact: contactOf(user.id) };
    return { nick: this.deps.members.nickOf(chat.id, user), contact: contactOf(user.id) };
  }

  /** Records a group member as present; a newcomer joins the rooms of the chat first. */
  private seeMember(chatId: number, user: User, status?: "creator" | "administrator" | "member"): void {
    if (user.id === this.deps.botId) return;
    const { occupant, change } = this.deps.members.see(chatId, user, status);
    if (change === undefined) return;
    for (const room of this.roomsOf(chatId)) this.emit({ type: change === "new" ? "join" : "occupant", room, occupant });
  }

  private partMember(chatId: number, userId: number, how: "leave" | "kick" | "ban", by?: string): void {
    const nick = this.deps.members.remove(chatId, userId);
    if (nick === undefined) return;
    for (const room of this.roomsOf(chatId)) this.emit({ type: "part", room, nick, how, ...(by ? { by } : {}) });
  }

  private async onMessage(m: Message, edited: boolean): Promise<void> {
    const group = this.isGroup(m.chat);
    if (!group && m.chat.type !== "private") return; // channels: not bridged
    if (group && m.from && !edited) this.seeMember(m.chat.id, m.from);

    if (group && this.onService(m)) return;

    const chat: ChatRef = group ? { kind: "room", room: this.roomFor(m) } : { kind: "direct", contact: contactOf(m.chat.id) };
    const from = this.sender(m.chat, m.from, m.sender_chat);
    if (!group && m.from && !this.seenContacts.has(m.from.id)) {
      this.seenContacts.add(m.from.id);
      this.emit({ type: "presence", contact: contactOf(m.from.id), show: "available", name: displayName(m.from) });
    }

    const id = String(m.message_id);
    const body = m.text ?? m.caption;
    let text: RichText = body === undefined ? { blocks: [] } : fromEntities(body, m.text !== undefined ? m.entities : m.caption_entities);
    if (edited) {
      this.emit({ type: "edit", chat, from, id, text, ...(m.edit_date ? { at: new Date(m.edit_date * 1000) } : {}) });
      return;
    }
    const file = fileOf(m);
    let attachments;
    if (file) {
      const got = await fetchIncoming(file, { api: this.deps.api, fileUrl: this.deps.fileUrl, media: this.deps.ctx.media, signal: this.deps.ctx.signal });
      if ("attachment" in got) attachments = [got.attachment];
      else text = { blocks: [...plain(got.note).blocks, ...text.blocks] };
    }
    if (text.blocks.length === 0 && attachments === undefined) return; // nothing a client could show (pins, games…)
    const replyTo = m.reply_to_message && !isTopicRoot(m) ? String(m.reply_to_message.message_id) : undefined;
    this.emit({
      type: "message",
      chat,
      from,
      id,
      text,
      ...(replyTo ? { replyTo } : {}),
      ...(attachments ? { attachments } : {}),
    });
  }

  /** Group service messages; true when `m` was one. */
  private onService(m: Message): boolean {
    if (m.new_chat_members) {
      for (const u of m.new_chat_members) this.seeMember(m.chat.id, u);
      return true;
    }
    if (m.left_chat_member) {
      const u = m.left_chat_member;
      this.partMember(m.chat.id, u.id, m.from && m.from.id !== u.id ? "kick" : "leave", m.from && m.from.id !== u.id ? this.deps.members.nickOf(m.chat.id, m.from) : undefined);
      return true;
    }
    if (m.new_chat_title !== undefined) {
      const by = m.from && m.from.id !== this.deps.botId ? this.deps.members.nickOf(m.chat.id, m.from) : undefined;
      for (const room of this.roomsOf(m.chat.id)) this.emit({ type: "topic", room, text: m.new_chat_title, ...(by ? { by } : {}) });
      return true;
    }
    return false;
  }

  /**
   * `new_reaction` is already the user's whole current set on the message
   * (https://core.telegram.org/bots/api#messagereactionupdated), which is
   * exactly XEP-0444's semantics: no per-user state is needed to translate.
   * Custom and paid reactions have no Unicode form and are left out.
   */
  private onReaction(r: MessageReactionUpdated): void {
    const user = r.user;
    const group = this.isGroup(r.chat);
    const emojis = r.new_reaction.flatMap((t) => (t.type === "emoji" ? [t.emoji] : []));
    const thread = this.threads.get(`${r.chat.id}:${r.message_id}`);
    const chat: ChatRef = group ? { kind: "room", room: roomOf(r.chat.id, thread) } : { kind: "direct", contact: contactOf(r.chat.id) };
    if (group && user) this.seeMember(r.chat.id, user);
    const from = this.sender(r.chat, user, r.actor_chat);
    this.emit({ type: "reactions", chat, from, id: String(r.message_id), emojis });
  }

  /** chat_member: status changes of others (admin bots only, opted in through allowed_updates). */
  private onMember(u: ChatMemberUpdated): void {
    if (!this.isGroup(u.chat)) return;
    const user = u.new_chat_member.user;
    const status = u.new_chat_member.status;
    if (isPresent(status)) {
      this.seeMember(u.chat.id, user, status);
      return;
    }
    const by = u.from.id !== user.id ? this.deps.members.nickOf(u.chat.id, u.from) : undefined;
    this.partMember(u.chat.id, user.id, status === "kicked" ? "ban" : by ? "kick" : "leave", by);
  }

  /** my_chat_member: the bot itself was removed from a group (or the private chat blocked). */
  private onMyMember(u: ChatMemberUpdated): void {
    if (!this.isGroup(u.chat)) return;
    const status = u.new_chat_member.status;
    if (isPresent(status)) return;
    const by = u.from.id !== this.deps.botId ? displayName(u.from) : undefined;
    for (const room of this.roomsOf(u.chat.id)) {
      this.emit({ type: "room-closed", room, how: status === "kicked" ? "ban" : "kick", reason: "The bot was removed from this Telegram group", ...(by ? { by } : {}) });
    }
  }
}

/** In forums every topic message "replies" to the topic's creation message: not a real reply. */
function isTopicRoot(m: Message): boolean {
  return m.is_topic_message === true && m.reply_to_message?.message_id === m.message_thread_id;
}
