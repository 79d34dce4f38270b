/**
 * What a method handler of the fake Bot API sees, and the records the fake
 * keeps for test assertions.
 */
import type { Message, MessageEntity, User } from "grammy/types";
import { ApiError, badRequest, forbidden, type Params } from "./protocol.ts";
import type { BotState, ChatState, FileKind, World } from "./world.ts";

export interface SentMedia {
  kind: FileKind;
  file_id: string;
  file_unique_id: string;
  file_size: number;
  file_name?: string;
  mime_type?: string;
  /** How the bot supplied the file. */
  source: "upload" | "url" | "file_id";
  url?: string;
  bytes: Uint8Array;
}

/** One message a bot sent, as it was at sending time. */
export interface SentRecord {
  token: string;
  botId: number;
  method: string;
  chat_id: number;
  message_id: number;
  message_thread_id?: number;
  text?: string;
  entities?: MessageEntity[];
  caption?: string;
  caption_entities?: MessageEntity[];
  reply_to_message_id?: number;
  media?: SentMedia;
  /** The Message object returned to the bot. */
  message: Message;
  at: number;
}

/** One successful edit by a bot. */
export interface EditRecord {
  token: string;
  botId: number;
  method: string;
  chat_id: number;
  message_id: number;
  text?: string;
  entities?: MessageEntity[];
  caption?: string;
  caption_entities?: MessageEntity[];
  message: Message;
  at: number;
}

export interface Env {
  world: World;
  recordSent(record: SentRecord): void;
  recordEdit(record: EditRecord): void;
  /** Per-chat flood control; throws a 429 ApiError when the chat is over its budget. */
  beforeSend(chat: ChatState): void;
  /** Delivers a message (service messages included) to the other bots in a group. */
  broadcast(chat: ChatState, message: Message, exceptBotId: number): void;
}

export interface Call {
  env: Env;
  bot: BotState;
  method: string;
  params: Params;
  onClose(cb: () => void): void;
}

export type Handler = (call: Call) => unknown;

/** The short User object that appears as `from` of a bot's messages. */
export function botUser(bot: BotState): User {
  return { id: bot.user.id, is_bot: true, first_name: bot.user.first_name, username: bot.user.username };
}

/**
 * A basic group upgraded to a supergroup answers every call with 400 and
 * the new id in `parameters.migrate_to_chat_id`
 * (https://core.telegram.org/bots/api#responseparameters).
 */
function checkMigrated(chat: ChatState): void {
  if (chat.migratedTo !== undefined) {
    throw new ApiError(400, "Bad Request: group chat was upgraded to a supergroup chat", { migrate_to_chat_id: chat.migratedTo });
  }
}

function groupKind(chat: ChatState): string {
  return chat.chat.type === "supergroup" ? "supergroup" : "group";
}

/**
 * A chat the bot may send to, with the documented 403s
 * (https://core.telegram.org/bots/faq — bots can't initiate conversations).
 */
export function sendTarget(call: Call): ChatState {
  const { world } = call.env;
  const id = call.params.chatId();
  if (typeof id === "string") throw badRequest("chat not found");
  if (id > 0) {
    const user = world.users.get(id);
    if (user === undefined) throw badRequest("chat not found");
    if (user.is_bot) throw forbidden("bot can't send messages to bots");
    const chat = world.privateChat(call.bot.user.id, user);
    if (chat.blocked) throw forbidden("bot was blocked by the user");
    if (!chat.started) throw forbidden("bot can't initiate conversation with a user");
    return chat;
  }
  const chat = world.group(id);
  if (chat === undefined) throw badRequest("chat not found");
  checkMigrated(chat);
  const status = world.statusOf(chat, call.bot.user.id);
  if (status === "kicked") throw forbidden(`bot was kicked from the ${groupKind(chat)} chat`);
  if (status === "left") throw forbidden(`bot is not a member of the ${groupKind(chat)} chat`);
  return chat;
}

/** A chat the bot may look at (getChat, getChatMember, edits, deletes). */
export function readTarget(call: Call): ChatState {
  const { world } = call.env;
  const id = call.params.chatId();
  if (typeof id === "string") throw badRequest("chat not found");
  const chat = world.chatFor(call.bot, id);
  if (chat === undefined) throw badRequest("chat not found");
  if (chat.chat.type === "private") {
    if (!chat.started && chat.messages.size === 0) throw badRequest("chat not found");
    return chat;
  }
  checkMigrated(chat);
  const status = world.statusOf(chat, call.bot.user.id);
  if (status === "kicked") throw forbidden(`bot was kicked from the ${groupKind(chat)} chat`);
  if (status === "left") throw badRequest("chat not found");
  return chat;
}
