/**
 * Message methods of the fake Bot API: sendMessage, editMessageText,
 * editMessageCaption, deleteMessage(s), setMessageReaction, sendChatAction.
 * Limits and error wordings follow https://core.telegram.org/bots/api#sendmessage
 * and the errors Telegram returns in production.
 */
import type { Message, MessageEntity, ReactionType, ReplyParameters } from "grammy/types";
import { botUser, readTarget, sendTarget, type Call, type Handler } from "./context.ts";
import { parseHtml } from "./html.ts";
import { badRequest, type Params } from "./protocol.ts";
import { now, type ChatState, type StoredMessage } from "./world.ts";

export const TEXT_LIMIT = 4096;
export const CAPTION_LIMIT = 1024;

/** Text (or caption) after entity parsing, with its entities. */
export function formatted(
  params: Params,
  textField: "text" | "caption",
): { text: string; entities: MessageEntity[] | undefined } {
  const raw = params.str(textField) ?? "";
  const entitiesField = textField === "text" ? "entities" : "caption_entities";
  const given = params.json<MessageEntity[]>(entitiesField);
  if (given !== undefined) {
    if (!Array.isArray(given) || given.some((e) => typeof e?.type !== "string" || !Number.isInteger(e.offset) || !Number.isInteger(e.length))) {
      throw badRequest(`can't parse ${entitiesField} JSON object`);
    }
    // Explicit entities win over parse_mode, as documented.
    return { text: raw, entities: given.length > 0 ? given : undefined };
  }
  const mode = params.str("parse_mode");
  if (mode === undefined || mode === "") return { text: raw, entities: undefined };
  if (mode.toLowerCase() !== "html") {
    // Telegram knows Markdown and MarkdownV2 too; this fake deliberately only parses HTML.
    throw badRequest(`unsupported parse_mode (the fake Bot API only implements HTML): ${mode}`);
  }
  const parsed = parseHtml(raw);
  return { text: parsed.text, entities: parsed.entities.length > 0 ? parsed.entities : undefined };
}

/** The reply target from reply_parameters or the older reply_to_message_id. */
function replyTarget(call: Call, chat: ChatState): StoredMessage | undefined {
  const rp = call.params.json<ReplyParameters>("reply_parameters");
  const id = rp?.message_id ?? call.params.int("reply_to_message_id");
  if (id === undefined) return undefined;
  const allow = rp?.allow_sending_without_reply ?? call.params.bool("allow_sending_without_reply") ?? false;
  const otherChat = rp?.chat_id !== undefined && String(rp.chat_id) !== String(chat.chat.id);
  const target = otherChat ? undefined : call.env.world.liveMessage(chat, id);
  if (target === undefined && !allow) throw badRequest("message to be replied not found");
  return target;
}

/** message_thread_id: forum topic id, or the root of a reply thread elsewhere. */
function threadFor(call: Call, chat: ChatState, reply: StoredMessage | undefined): number | undefined {
  const given = call.params.int("message_thread_id");
  const forum = chat.chat.type === "supergroup" && chat.chat.is_forum === true;
  if (given === undefined) return forum ? reply?.message.message_thread_id : undefined;
  if (forum) return given;
  if (chat.chat.type === "private" || call.env.world.liveMessage(chat, given) === undefined) {
    throw badRequest("message thread not found");
  }
  return given;
}

/** Strips the nested reply, as Telegram only nests one level of reply_to_message. */
function asReply(message: Message): Message {
  const { reply_to_message: _drop, ...rest } = message;
  return rest as Message;
}

/**
 * Validates reply/thread, applies flood control, allocates the next message id
 * of the chat and stores the bot's message.
 */
export function createBotMessage(call: Call, chat: ChatState, content: Partial<Message>): StoredMessage {
  const reply = replyTarget(call, chat);
  const thread = threadFor(call, chat, reply);
  call.env.beforeSend(chat);
  const message = {
    message_id: chat.nextMessageId++,
    from: botUser(call.bot),
    date: now(),
    chat: chat.chat,
    ...content,
  } as Message;
  if (thread !== undefined) {
    message.message_thread_id = thread;
    if (chat.chat.type === "supergroup" && chat.chat.is_forum === true) message.is_topic_message = true;
  }
  if (reply !== undefined) message.reply_to_message = asReply(reply.message) as Message.CommonMessage as never;
  return call.env.world.storeMessage(chat, message, call.bot.user.id);
}

export function recordSent(call: Call, chat: ChatState, stored: StoredMessage, extra: Partial<import("./context.ts").SentRecord> = {}): void {
  const m = stored.message;
  call.env.recordSent({
    token: call.bot.token,
    botId: call.bot.user.id,
    method: call.method,
    chat_id: chat.chat.id,
    message_id: m.message_id,
    ...(m.message_thread_id === undefined ? {} : { message_thread_id: m.message_thread_id }),
    ...(m.text === undefined ? {} : { text: m.text }),
    ...(m.entities === undefined ? {} : { entities: m.entities }),
    ...(m.caption === undefined ? {} : { caption: m.caption }),
    ...(m.caption_entities === undefined ? {} : { caption_entities: m.caption_entities }),
    ...(m.reply_to_message === undefined ? {} : { reply_to_message_id: m.reply_to_message.message_id }),
    ...extra,
    message: structuredClone(m),
    at: Date.now(),
  });
}

const sendMessage: Handler = (call) => {
  const chat = sendTarget(call);
  const { text, entities } = formatted(call.params, "text");
  if (text.trim() === "") throw badRequest("message text is empty");
  if (text.length > TEXT_LIMIT) throw badRequest("message is too long");
  const stored = createBotMessage(call, chat, { text, ...(entities ? { entities } : {}) });
  recordSent(call, chat, stored);
  return stored.message;
};

/** The bot's own live message addressed by chat_id + message_id, for edits. */
function editable(call: Call): { chat: ChatState; stored: StoredMessage } {
  if (call.params.has("inline_message_id")) throw badRequest("the fake Bot API does not implement inline messages");
  const chat = readTarget(call);
  const stored = call.env.world.liveMessage(chat, call.params.requireInt("message_id"));
  if (stored === undefined) throw badRequest("message to edit not found");
  if (stored.senderBotId !== call.bot.user.id) throw badRequest("message can't be edited");
  return { chat, stored };
}

const NOT_MODIFIED =
  "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message";

function finishEdit(call: Call, chat: ChatState, stored: StoredMessage, field: "text" | "caption"): Message {
  const m = stored.message;
  m.edit_date = now();
  const entities = field === "text" ? m.entities : m.caption_entities;
  call.env.recordEdit({
    token: call.bot.token,
    botId: call.bot.user.id,
    method: call.method,
    chat_id: chat.chat.id,
    message_id: m.message_id,
    [field]: m[field],
    ...(entities === undefined ? {} : { [field === "text" ? "entities" : "caption_entities"]: entities }),
    message: structuredClone(m),
    at: Date.now(),
  });
  return m;
}

const editMessageText: Handler = (call) => {
  const { chat, stored } = editable(call);
  const m = stored.message;
  if (m.text === undefined) throw badRequest("there is no text in the message to edit");
  const { text, entities } = formatted(call.params, "text");
  if (text.trim() === "") throw badRequest("message text is empty");
  if (text.length > TEXT_LIMIT) throw badRequest("MESSAGE_TOO_LONG");
  if (text === m.text && JSON.stringify(entities ?? []) === JSON.stringify(m.entities ?? [])) throw badRequest(NOT_MODIFIED);
  m.text = text;
  if (entities) m.entities = entities;
  else delete m.entities;
  return finishEdit(call, chat, stored, "text");
};

const editMessageCaption: Handler = (call) => {
  const { chat, stored } = editable(call);
  const m = stored.message;
  if (m.text !== undefined) throw badRequest("there is no caption in the message to edit");
  const { text, entities } = formatted(call.params, "caption");
  if (text.length > CAPTION_LIMIT) throw badRequest("message caption is too long");
  if (text === (m.caption ?? "") && JSON.stringify(entities ?? []) === JSON.stringify(m.caption_entities ?? [])) {
    throw badRequest(NOT_MODIFIED);
  }
  if (text === "") delete m.caption;
  else m.caption = text;
  if (entities) m.caption_entities = entities;
  else delete m.caption_entities;
  return finishEdit(call, chat, stored, "caption");
};

/**
 * "Bots can delete outgoing messages in private chats, groups, and
 * supergroups. Bots can delete incoming messages in private chats. If the bot
 * is an administrator of a group, it can delete any message there."
 * (https://core.telegram.org/bots/api#deletemessage)
 */
function mayDelete(call: Call, chat: ChatState, stored: StoredMessage): boolean {
  if (stored.senderBotId === call.bot.user.id || chat.chat.type === "private") return true;
  return call.env.world.hasRight(chat, call.bot.user.id, "can_delete_messages");
}

const deleteMessage: Handler = (call) => {
  const chat = readTarget(call);
  const stored = call.env.world.liveMessage(chat, call.params.requireInt("message_id"));
  if (stored === undefined) throw badRequest("message to delete not found");
  if (!mayDelete(call, chat, stored)) throw badRequest("message can't be deleted");
  stored.deleted = true;
  return true;
};

const deleteMessages: Handler = (call) => {
  const chat = readTarget(call);
  const ids = call.params.json<number[]>("message_ids");
  if (!Array.isArray(ids) || ids.length === 0 || ids.length > 100) throw badRequest("message_ids is empty or too long");
  // "If some of the specified messages can't be found, they are skipped."
  for (const id of ids) {
    const stored = call.env.world.liveMessage(chat, Number(id));
    if (stored !== undefined && mayDelete(call, chat, stored)) stored.deleted = true;
  }
  return true;
};

/** The emoji list of https://core.telegram.org/bots/api#reactiontypeemoji. */
export const REACTION_EMOJI: ReadonlySet<string> = new Set([..."👍👎❤🔥🥰👏😁🤔🤯😱🤬😢🎉🤩🤮💩🙏👌🕊🤡🥱🥴😍🐳🌚🌭💯🤣⚡🍌🏆💔🤨😐🍓🍾💋🖕😈😴😭🤓👻👀🎃🙈😇😨🤝✍🤗🫡🎅🎄☃💅🤪🗿🆒💘🙉🦄😘💊🙊😎👾🤷😡"].concat(["❤‍🔥", "👨‍💻", "🤷‍♂", "🤷‍♀"]));

export function validReaction(r: ReactionType): boolean {
  return r.type === "emoji" && REACTION_EMOJI.has(r.emoji);
}

const setMessageReaction: Handler = (call) => {
  const chat = readTarget(call);
  const stored = call.env.world.liveMessage(chat, call.params.requireInt("message_id"));
  if (stored === undefined) throw badRequest("message to react not found");
  const reaction = call.params.json<ReactionType[]>("reaction") ?? [];
  if (!Array.isArray(reaction) || !reaction.every(validReaction)) throw badRequest("REACTION_INVALID");
  // "bots can set up to one reaction per message" (non-premium limit).
  if (reaction.length > 1) throw badRequest("REACTIONS_TOO_MANY");
  if (reaction.length === 0) stored.reactions.delete(call.bot.user.id);
  else stored.reactions.set(call.bot.user.id, reaction);
  return true;
};

/** https://core.telegram.org/bots/api#sendchataction */
const CHAT_ACTIONS = new Set([
  "typing",
  "upload_photo",
  "record_video",
  "upload_video",
  "record_voice",
  "upload_voice",
  "upload_document",
  "choose_sticker",
  "find_location",
  "record_video_note",
  "upload_video_note",
]);

const sendChatAction: Handler = (call) => {
  sendTarget(call);
  if (!CHAT_ACTIONS.has(call.params.str("action") ?? "")) throw badRequest("wrong parameter action in request");
  return true;
};

export const messageMethods: Record<string, Handler> = {
  sendMessage,
  editMessageText,
  editMessageCaption,
  deleteMessage,
  deleteMessages,
  setMessageReaction,
  sendChatAction,
};
