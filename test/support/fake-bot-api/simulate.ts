/**
 * What simulated Telegram users do, turned into updates for the bots, with
 * the delivery rules of https://core.telegram.org/bots/api#update and
 * https://core.telegram.org/bots/features#privacy-mode:
 * - a private chat belongs to one bot; group messages go to every bot in the
 *   group, but a bot in privacy mode that is not an admin only sees commands,
 *   replies to itself, mentions of itself and service messages;
 * - message_reaction and chat_member reach a group's bots only when they are
 *   administrators (and opted in through allowed_updates);
 * - my_chat_member tells a bot about its own membership changes.
 */
import type { Chat, ChatMemberUpdated, Location, Message, MessageEntity, MessageReactionUpdated, ReactionType, User } from "grammy/types";
import { validReaction } from "./messages.ts";
import { imageSize, now, type BotState, type ChatState, type MemberStatus, type AdminRights, type World } from "./world.ts";

export interface UserMessageInput {
  from: number;
  chat: number;
  text?: string;
  entities?: MessageEntity[];
  reply_to_message_id?: number;
  message_thread_id?: number;
}

export interface UserMediaInput {
  from: number;
  chat: number;
  bytes: Uint8Array;
  caption?: string;
  caption_entities?: MessageEntity[];
  reply_to_message_id?: number;
  message_thread_id?: number;
}

export interface UserDocumentInput extends UserMediaInput {
  file_name: string;
  mime_type?: string;
}

export interface UserEditInput {
  from: number;
  chat: number;
  message_id: number;
  /** New text (text messages); absent for a live location's move. */
  text?: string;
  entities?: MessageEntity[];
  /** A live location's new position (editMessageLiveLocation by the user's app). */
  location?: Location;
}

export interface UserReactionInput {
  from: number;
  chat: number;
  message_id: number;
  new_reaction: ReactionType[];
  /** Defaults to the reaction this user currently has on the message. */
  old_reaction?: ReactionType[];
}

/** Where a simulated message is posted, and what it answers. */
export interface UserPostInput {
  from: number;
  chat: number;
  reply_to_message_id?: number;
  message_thread_id?: number;
}

/**
 * Telegram's service accounts (https://core.telegram.org/bots/api#message
 * sender_chat): anonymous group admins post as @GroupAnonymousBot, channels
 * in groups as @Channel_Bot, both with `sender_chat` set.
 */
export const GROUP_ANONYMOUS_BOT: User = { id: 1087968824, is_bot: true, first_name: "Group", username: "GroupAnonymousBot" };
export const CHANNEL_BOT: User = { id: 136817688, is_bot: true, first_name: "Channel", username: "Channel_Bot" };

export class Simulation {
  readonly world: World;

  constructor(world: World) {
    this.world = world;
  }

  bot(token: string): BotState {
    const bot = this.world.bots.get(token);
    if (bot === undefined) throw new Error(`FakeBotApi: no bot with token ${token.slice(0, 6)}…`);
    return bot;
  }

  user(id: number): User {
    const user = this.world.users.get(id);
    if (user === undefined) throw new Error(`FakeBotApi: no user ${id}; call addUser first`);
    return user;
  }

  group(chatId: number): ChatState {
    const chat = this.world.group(chatId);
    if (chat === undefined) throw new Error(`FakeBotApi: no group ${chatId}; call addGroup first`);
    return chat;
  }

  /** The chat a user acts in: their private chat with `bot`, or a group they belong to. */
  private chatOf(bot: BotState, from: User, chatId: number): ChatState {
    if (chatId > 0) {
      if (chatId !== from.id) throw new Error(`FakeBotApi: private chat id must be the user id (${from.id})`);
      const chat = this.world.privateChat(bot.user.id, from);
      chat.started = true; // writing to a bot opens (and unblocks) the conversation
      chat.blocked = false;
      return chat;
    }
    const chat = this.group(chatId);
    if (!this.world.isIn(chat, from.id)) throw new Error(`FakeBotApi: user ${from.id} is not in group ${chatId}`);
    if (!this.world.isIn(chat, bot.user.id)) throw new Error(`FakeBotApi: bot ${bot.user.username} is not in group ${chatId}`);
    return chat;
  }

  /** Bots that receive updates from `chat`. */
  private botsOf(chat: ChatState): BotState[] {
    if (chat.chat.type === "private") {
      const botId = Number(chat.key.split(":")[1]);
      const bot = this.world.botById(botId);
      return bot === undefined ? [] : [bot];
    }
    return [...this.world.bots.values()].filter((b) => this.world.isIn(chat, b.user.id));
  }

  private sees(bot: BotState, chat: ChatState, m: Message): boolean {
    if (chat.chat.type === "private" || bot.user.can_read_all_group_messages) return true;
    if (this.world.isAdmin(chat, bot.user.id)) return true;
    if (m.text === undefined && m.caption === undefined) return true; // service messages
    const text = m.text ?? m.caption ?? "";
    if (text.startsWith("/")) return true;
    if (m.reply_to_message?.from?.id === bot.user.id) return true;
    return text.includes(`@${bot.user.username}`);
  }

  /** Delivers a message-like update to every bot of the chat that may see it. */
  deliver(chat: ChatState, type: "message" | "edited_message", m: Message, exceptBotId?: number): void {
    for (const bot of this.botsOf(chat)) {
      if (bot.user.id === exceptBotId || !this.sees(bot, chat, m)) continue;
      bot.updates.push(type, m);
    }
  }

  private newUserMessage(bot: BotState, input: UserPostInput, content: Partial<Message>, as?: User): Message {
    const from = this.user(input.from);
    const chat = this.chatOf(bot, from, input.chat);
    const message = { message_id: chat.nextMessageId++, from: as ?? from, date: now(), chat: chat.chat, ...content } as Message;
    if (input.reply_to_message_id !== undefined) {
      const target = this.world.liveMessage(chat, input.reply_to_message_id);
      if (target === undefined) throw new Error(`FakeBotApi: no message ${input.reply_to_message_id} to reply to`);
      const { reply_to_message: _nested, ...flat } = target.message;
      message.reply_to_message = flat as never;
    }
    const forum = chat.chat.type === "supergroup" && chat.chat.is_forum === true;
    const thread = input.message_thread_id ?? (forum ? message.reply_to_message?.message_thread_id : undefined);
    if (thread !== undefined) {
      message.message_thread_id = thread;
      if (forum) message.is_topic_message = true;
      // In a forum, a message that answers nothing else "replies" to its topic's root,
      // the forum_topic_created service message (as Telegram sends it).
      const root = forum ? chat.topics?.get(thread)?.root : undefined;
      if (root !== undefined && message.reply_to_message === undefined && content.forum_topic_created === undefined) {
        message.reply_to_message = structuredClone(root) as never;
      }
    }
    this.world.storeMessage(chat, message);
    this.deliver(chat, "message", message);
    return message;
  }

  userSends(token: string, input: UserMessageInput): Message {
    const text = input.text ?? "";
    let entities = input.entities;
    // Telegram marks a leading /command as a bot_command entity.
    const command = /^\/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?/.exec(text);
    if (entities === undefined && command) entities = [{ type: "bot_command", offset: 0, length: command[0].length }];
    return this.newUserMessage(this.bot(token), input, { text, ...(entities ? { entities } : {}) });
  }

  /**
   * Any message content documented for Message (a sticker, a location, a
   * poll, a forward, a service message…), given as its Bot API fields.
   */
  userPosts(token: string, input: UserPostInput, content: Partial<Message>): Message {
    return this.newUserMessage(this.bot(token), input, content);
  }

  /**
   * A message posted as a chat: an anonymous admin of the group (no
   * `sender_chat` given: the group itself) or a channel.
   */
  chatPosts(token: string, input: UserPostInput & { sender_chat?: Chat; author_signature?: string }, content: Partial<Message>): Message {
    const group = this.group(input.chat);
    const senderChat = input.sender_chat ?? group.chat;
    const as = senderChat.id === group.chat.id ? GROUP_ANONYMOUS_BOT : CHANNEL_BOT;
    return this.newUserMessage(this.bot(token), input, {
      sender_chat: senderChat,
      ...(input.author_signature === undefined ? {} : { author_signature: input.author_signature }),
      ...content,
    }, as);
  }

  /** A member opens a forum topic: the forum_topic_created service message, whose id is the topic's message_thread_id. */
  userCreatesTopic(token: string, input: { from: number; chat: number; name: string; icon_color?: number }): Message {
    const chat = this.group(input.chat);
    if (!(chat.chat.type === "supergroup" && chat.chat.is_forum === true)) throw new Error("FakeBotApi: topics exist in forum supergroups only");
    const thread = chat.nextMessageId;
    chat.topics ??= new Map();
    const root = { message_id: thread, from: this.user(input.from), date: now(), chat: chat.chat, message_thread_id: thread, is_topic_message: true,
      forum_topic_created: { name: input.name, icon_color: input.icon_color ?? 0x6fb9f0 } } as Message;
    chat.topics.set(thread, { name: input.name, root });
    return this.newUserMessage(this.bot(token), { from: input.from, chat: input.chat, message_thread_id: thread }, { forum_topic_created: root.forum_topic_created! });
  }

  /**
   * A basic group is upgraded to a supergroup (https://core.telegram.org/api/channel#migration):
   * a new chat with a new id and the same members; the old chat gets a
   * migrate_to_chat_id service message and answers every call with 400 and
   * parameters.migrate_to_chat_id; the new one gets migrate_from_chat_id.
   */
  upgradeGroup(chatId: number, newId: number, by: number): { old: Message; new: Message } {
    const old = this.group(chatId);
    if (old.chat.type !== "group") throw new Error("FakeBotApi: only basic groups are upgraded");
    const from = this.user(by);
    const chat: ChatState = {
      key: `g:${newId}`,
      chat: { id: newId, type: "supergroup", title: old.chat.title },
      members: new Map(old.members),
      messages: new Map(),
      nextMessageId: 1,
      started: true,
      blocked: false,
    };
    this.world.chats.set(chat.key, chat);
    const oldMsg = { message_id: old.nextMessageId++, from, date: now(), chat: old.chat, migrate_to_chat_id: newId } as Message;
    this.world.storeMessage(old, oldMsg);
    this.deliver(old, "message", oldMsg);
    old.migratedTo = newId;
    const newMsg = { message_id: chat.nextMessageId++, from, date: now(), chat: chat.chat, migrate_from_chat_id: chatId } as Message;
    this.world.storeMessage(chat, newMsg);
    this.deliver(chat, "message", newMsg);
    return { old: oldMsg, new: newMsg };
  }

  userSendsPhoto(token: string, input: UserMediaInput): Message {
    const size = imageSize(input.bytes);
    if (size === undefined) throw new Error("FakeBotApi: userSendsPhoto needs PNG or JPEG bytes");
    const f = this.world.addFile("photo", input.bytes, size);
    const photo = [{ file_id: f.file_id, file_unique_id: f.file_unique_id, file_size: f.bytes.byteLength, ...size }];
    return this.newUserMessage(this.bot(token), input, { photo, ...captionOf(input) });
  }

  userSendsDocument(token: string, input: UserDocumentInput): Message {
    const f = this.world.addFile("document", input.bytes, {
      file_name: input.file_name,
      ...(input.mime_type === undefined ? {} : { mime_type: input.mime_type }),
    });
    const document = {
      file_id: f.file_id,
      file_unique_id: f.file_unique_id,
      file_size: f.bytes.byteLength,
      file_name: input.file_name,
      ...(input.mime_type === undefined ? {} : { mime_type: input.mime_type }),
    };
    return this.newUserMessage(this.bot(token), input, { document, ...captionOf(input) });
  }

  userEdits(token: string, input: UserEditInput): Message {
    const bot = this.bot(token);
    const from = this.user(input.from);
    const chat = this.chatOf(bot, from, input.chat);
    const stored = this.world.liveMessage(chat, input.message_id);
    if (stored === undefined || stored.message.from?.id !== from.id) {
      throw new Error(`FakeBotApi: user ${from.id} has no message ${input.message_id} in chat ${input.chat}`);
    }
    if (input.location !== undefined) {
      if (stored.message.location?.live_period === undefined) throw new Error("FakeBotApi: only live locations move");
      stored.message.location = { ...input.location, live_period: stored.message.location.live_period };
    }
    if (input.text !== undefined) {
      stored.message.text = input.text;
      if (input.entities) stored.message.entities = input.entities;
      else delete stored.message.entities;
    }
    stored.message.edit_date = now();
    this.deliver(chat, "edited_message", stored.message);
    return structuredClone(stored.message);
  }

  userReacts(token: string, input: UserReactionInput): MessageReactionUpdated {
    const bot = this.bot(token);
    const user = this.user(input.from);
    const chat = this.chatOf(bot, user, input.chat);
    const stored = this.world.liveMessage(chat, input.message_id);
    if (stored === undefined) throw new Error(`FakeBotApi: no message ${input.message_id} in chat ${input.chat}`);
    if (!input.new_reaction.every(validReaction)) throw new Error("FakeBotApi: reaction not in Telegram's emoji list");
    const old_reaction = input.old_reaction ?? stored.reactions.get(user.id) ?? [];
    if (input.new_reaction.length === 0) stored.reactions.delete(user.id);
    else stored.reactions.set(user.id, input.new_reaction);
    const update: MessageReactionUpdated = {
      chat: chat.chat,
      message_id: input.message_id,
      user,
      date: now(),
      old_reaction,
      new_reaction: input.new_reaction,
    };
    // "The bot must be an administrator in the chat" for group reactions.
    for (const b of this.botsOf(chat)) {
      if (chat.chat.type === "private" || this.world.isAdmin(chat, b.user.id)) b.updates.push("message_reaction", update);
    }
    return update;
  }

  /** The user presses Start: Telegram sends "/start" (https://core.telegram.org/bots/features#start). */
  userStartsBot(token: string, userId: number): Message {
    return this.userSends(token, { from: userId, chat: userId, text: "/start" });
  }

  userBlocksBot(token: string, userId: number): ChatMemberUpdated {
    const bot = this.bot(token);
    const user = this.user(userId);
    const chat = this.world.privateChat(bot.user.id, user);
    chat.blocked = true;
    const botAsUser = this.user(bot.user.id);
    const update: ChatMemberUpdated = {
      chat: chat.chat,
      from: user,
      date: now(),
      old_chat_member: { status: "member", user: botAsUser },
      new_chat_member: { status: "kicked", user: botAsUser, until_date: 0 },
    };
    bot.updates.push("my_chat_member", update);
    return update;
  }

  /**
   * Changes a member's status and emits what Telegram emits: my_chat_member to
   * the bot concerned, chat_member to the admin bots, and a service message
   * (new_chat_members / left_chat_member) for joins and leaves.
   */
  setStatus(chatId: number, userId: number, status: MemberStatus, opts: { by?: number; rights?: AdminRights } = {}): ChatMemberUpdated {
    const chat = this.group(chatId);
    const user = this.user(userId);
    const wasIn = this.world.isIn(chat, userId);
    const old_chat_member = this.world.chatMember(chat, user);
    chat.members.set(userId, { status, ...(opts.rights ? { rights: opts.rights } : {}) });
    const new_chat_member = this.world.chatMember(chat, user);
    const creator = [...chat.members].find(([, m]) => m.status === "creator")?.[0];
    const from = this.user(opts.by ?? (status === "left" || (!wasIn && !user.is_bot) ? userId : (creator ?? userId)));
    const update: ChatMemberUpdated = { chat: chat.chat, from, date: now(), old_chat_member, new_chat_member };
    const isIn = this.world.isIn(chat, userId);
    if (wasIn !== isIn) {
      const service = {
        message_id: chat.nextMessageId++,
        from,
        date: now(),
        chat: chat.chat,
        ...(isIn ? { new_chat_members: [user] } : { left_chat_member: user }),
      } as Message;
      this.world.storeMessage(chat, service);
      // A bot removed from the chat no longer hears anything there.
      this.deliver(chat, "message", service);
    }
    for (const bot of this.world.bots.values()) {
      if (bot.user.id === userId) bot.updates.push("my_chat_member", update);
      else if (this.world.isAdmin(chat, bot.user.id)) bot.updates.push("chat_member", update);
    }
    return update;
  }
}

function captionOf(input: UserMediaInput): Partial<Message> {
  return {
    ...(input.caption === undefined ? {} : { caption: input.caption }),
    ...(input.caption_entities === undefined ? {} : { caption_entities: input.caption_entities }),
  };
}
