/**
 * Telegram updates (https://core.telegram.org/bots/api#update) → neutral
 * events. One Update is handled completely (media fetched) before the next,
 * so events keep Telegram's order.
 *
 * - private chat → 1:1 chat with the contact `<user id>`; the first time a
 *   person is seen, a presence with their name (XEP-0172 nick) comes first;
 * - group/supergroup → room `group<abs id>`; a forum topic's message goes
 *   to the topic's room `group<abs id>~<thread>` when the user joined it,
 *   else to the group's room prefixed "[topic name] " (README: forum topics);
 * - edited_message → edit (the core shows an edit of an unknown message as
 *   a new one); message_reaction → that user's whole reaction set;
 *   chat_member / new_chat_members / left_chat_member → join/part
 *   (de-duplicated: admin bots get both); new_chat_title → topic;
 *   migrate_to_chat_id → an invitation to the supergroup's room and the old
 *   room closed; my_chat_member (the bot removed) → room-closed;
 * - other service messages (pins, video chats, topics…) → a "/me" message of
 *   their author; content without an XMPP form (locations, polls…),
 *   forwards, inline bots and replies to other chats → text (render.ts);
 *   whatever is left still arrives as a line naming it, never dropped.
 * Deletions by others are invisible to bots: the Bot API sends no update.
 */
import type { Api } from "grammy";
import type { Chat, ChatMemberUpdated, Message, MessageReactionUpdated, Update, User } from "grammy/types";
import type { SessionContext } from "../../core/adapter.ts";
import { plain, type Block, type Inline, type RichText } from "../../core/format/model.ts";
import type { ChatRef, Sender } from "../../core/model.ts";
import { fromEntities } from "./entities.ts";
import { contactOf, roomOf } from "./ids.ts";
import { fetchIncoming, fileOf } from "./media.ts";
import { ChatMembers, displayName, isPresent } from "./members.ts";
import { contentLines, externalReplyLine, originName, serviceAction, unknownLine } from "./render.ts";

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
  /** Forum topic of recent messages ("chat:message"): message_reaction updates do not say it. */
  private readonly threads = new Map<string, number>();
  /** Forum topic names by "chat:thread". */
  private readonly topicNames = new Map<string, string>();

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

  /** The forum topic of a group message, when it is in one (not the General topic). */
  private threadOf(m: Message): number | undefined {
    const forum = m.chat.type === "supergroup" && m.chat.is_forum === true;
    return forum && m.is_topic_message ? m.message_thread_id : undefined;
  }

  /** Topic names, learnt from forum_topic_created/edited and from the topic's root message every topic message replies to. */
  private learnTopic(m: Message, thread: number): void {
    const created = m.forum_topic_created ?? (m.reply_to_message?.message_id === thread ? m.reply_to_message.forum_topic_created : undefined);
    const name = m.forum_topic_edited?.name ?? created?.name;
    if (name !== undefined) remember(this.topicNames, `${m.chat.id}:${thread}`, name);
  }

  /**
   * Where a group message goes: a forum topic's message to the topic's own
   * room when the user joined it, else to the group's room with the topic's
   * name as a prefix (see README: one room per group, topic rooms optional).
   */
  private route(chatId: number, thread: number | undefined): { room: string; topic?: string } {
    if (thread === undefined) return { room: roomOf(chatId) };
    const own = roomOf(chatId, thread);
    if (this.deps.topicRooms(chatId).includes(own)) return { room: own };
    return { room: roomOf(chatId), topic: this.topicNames.get(`${chatId}:${thread}`) ?? `topic ${thread}` };
  }

  /** The forum topic of a message seen or sent, for reactions (their updates do not say it) and replies from XMPP. */
  threadOfMessage(chatId: number, messageId: number): number | undefined {
    return this.threads.get(`${chatId}:${messageId}`);
  }

  noteThread(chatId: number, messageId: number, thread: number): void {
    remember(this.threads, `${chatId}:${messageId}`, thread);
  }

  /** Every room of a chat the user may have joined: the group's and its topics'. */
  private roomsOf(chatId: number): string[] {
    return [roomOf(chatId), ...this.deps.topicRooms(chatId)];
  }

  /**
   * Who wrote: a person, or a chat posting as itself — an anonymous group
   * admin (`from` is @GroupAnonymousBot, `sender_chat` the group) or a
   * channel (a linked channel's automatic forward, or someone posting as
   * their channel); `author_signature` names the admin or author when set.
   */
  private sender(chat: Chat, user: User | undefined, senderChat: Chat | undefined, signature?: string): Sender {
    if (user === undefined || senderChat !== undefined) {
      const title = senderChat && "title" in senderChat && senderChat.title ? senderChat.title : "Anonymous";
      return { nick: signature ? `${title} (${signature})` : title };
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
    if (group && m.from && m.sender_chat === undefined && !edited) this.seeMember(m.chat.id, m.from);

    if (group && this.onMembership(m)) return;

    const thread = group ? this.threadOf(m) : undefined;
    if (thread !== undefined) {
      this.learnTopic(m, thread);
      this.noteThread(m.chat.id, m.message_id, thread);
    }
    const where = group ? this.route(m.chat.id, thread) : undefined;
    const chat: ChatRef = where ? { kind: "room", room: where.room } : { kind: "direct", contact: contactOf(m.chat.id) };
    const from = this.sender(m.chat, m.from, m.sender_chat, m.author_signature);
    if (!group && m.from && !this.seenContacts.has(m.from.id)) {
      this.seenContacts.add(m.from.id);
      this.emit({ type: "presence", contact: contactOf(m.from.id), show: "available", name: displayName(m.from) });
    }
    const id = String(m.message_id);
    const at = new Date((edited && m.edit_date ? m.edit_date : m.date) * 1000);

    const service = serviceAction(m);
    if (service !== undefined) {
      if (edited) return;
      const topic = where?.topic !== undefined && !m.forum_topic_created && !m.forum_topic_edited ? ` (topic “${where.topic}”)` : "";
      this.emit({ type: "message", chat, from, id, text: plain(service + topic), action: true, at });
      return;
    }

    const body = m.text ?? m.caption;
    let text: RichText = body === undefined ? { blocks: [] } : fromEntities(body, m.text !== undefined ? m.entities : m.caption_entities);
    const described = contentLines(m);
    if (described) text = { blocks: [...plain(described.join("\n")).blocks, ...text.blocks] };
    let attachments;
    const file = fileOf(m);
    if (file && !edited) {
      const got = await fetchIncoming(file, { api: this.deps.api, fileUrl: this.deps.fileUrl, media: this.deps.ctx.media, signal: this.deps.ctx.signal });
      if ("attachment" in got) attachments = [got.attachment];
      else text = { blocks: [...plain(got.note).blocks, ...text.blocks] };
    } else if (file && text.blocks.length === 0) {
      // An edit of a file without caption: Telegram replaced the file (editMessageMedia).
      text = plain(`[${file.label} replaced: open it in Telegram]`);
    }
    // Nothing the gateway knows how to show: say so, never drop it.
    if (text.blocks.length === 0 && attachments === undefined) text = plain(unknownLine(m));
    text = this.decorate(m, text, where?.topic);

    if (edited) {
      this.emit({ type: "edit", chat, from, id, text, at });
      return;
    }
    const replyTo = m.reply_to_message && !isTopicRoot(m) ? String(m.reply_to_message.message_id) : undefined;
    this.emit({
      type: "message",
      chat,
      from,
      id,
      text,
      at,
      ...(replyTo ? { replyTo } : {}),
      ...(attachments ? { attachments } : {}),
    });
  }

  /**
   * Headers a client cannot get otherwise: the topic, who a forward is
   * from (its text quoted), the inline bot, the quoted part of a reply, and
   * a reply to a message of another chat (which XEP-0461 cannot point at).
   */
  private decorate(m: Message, text: RichText, topic: string | undefined): RichText {
    const head: Block[] = [];
    let blocks = text.blocks;
    const via = m.via_bot?.username ? ` via @${m.via_bot.username}` : "";
    if (m.forward_origin) {
      head.push(...plain(`Forwarded from ${originName(m.forward_origin)}${via}:`).blocks);
      blocks = [{ type: "quote", children: blocks }];
    } else if (via) {
      head.push(...plain(`(${via.trim()})`).blocks);
    }
    if (m.external_reply) {
      const r = m.external_reply;
      const quoted = m.quote?.text ?? contentLines(r)?.join("\n");
      head.push(...plain(externalReplyLine(r)).blocks);
      if (quoted) head.push({ type: "quote", children: plain(quoted).blocks });
    } else if (m.quote) {
      head.push({ type: "quote", children: plain(m.quote.text).blocks });
    }
    if (m.reply_to_story) head.push(...plain("(in reply to a story)").blocks);
    const out: Block[] = [...head, ...blocks];
    if (topic !== undefined) {
      const first = out[0];
      const prefix: Inline = { type: "text", text: `[${topic}] ` };
      if (first?.type === "line") out[0] = { ...first, children: [prefix, ...first.children] };
      else out.unshift({ type: "line", children: [prefix] });
    }
    return { blocks: out };
  }

  /** Group membership and identity service messages; true when `m` was one. */
  private onMembership(m: Message): boolean {
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
    if (m.migrate_to_chat_id !== undefined) {
      this.migrated(m.chat, m.migrate_to_chat_id);
      return true;
    }
    return false;
  }

  /**
   * A group upgraded to a supergroup gets a new chat id
   * (https://core.telegram.org/bots/api#message migrate_to_chat_id): the old
   * room can no longer be written to. The user is invited to the new room
   * (XEP-0045 §7.8.2) and the old one is closed, saying where it went.
   */
  migrated(chat: Chat, to: number): void {
    const title = "title" in chat && chat.title ? chat.title : "The group";
    const newRoom = roomOf(to);
    this.emit({ type: "invite", room: newRoom, from: { nick: title }, reason: `“${title}” was upgraded to a supergroup, which has a new address: this room` });
    for (const room of this.roomsOf(chat.id)) {
      this.emit({ type: "room-closed", room, how: "error", reason: `This group was upgraded to a supergroup and moved to the room ${newRoom} of this gateway` });
    }
  }

  /** The bot can no longer write to a group (kicked, or the group is gone): its rooms close. */
  closed(chatId: number, reason: string): void {
    for (const room of this.roomsOf(chatId)) this.emit({ type: "room-closed", room, how: "kick", reason });
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
    const chat: ChatRef = group ? { kind: "room", room: this.route(r.chat.id, thread).room } : { kind: "direct", contact: contactOf(r.chat.id) };
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

/** A bounded memory: the oldest entry goes first. */
function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > THREAD_MEMORY) map.delete(map.keys().next().value!);
}

/** In forums every topic message "replies" to the topic's creation message: not a real reply. */
function isTopicRoot(m: Message): boolean {
  return m.is_topic_message === true && m.reply_to_message?.message_id === m.message_thread_id;
}
