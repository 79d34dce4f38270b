/**
 * Bot, update and chat methods of the fake Bot API: getMe, getUpdates,
 * setWebhook, deleteWebhook, getWebhookInfo, getChat, getChatMember,
 * getChatAdministrators, getChatMemberCount, getUserProfilePhotos, setChatTitle.
 */
import type { ChatFullInfo, Message } from "grammy/types";
import { botUser, readTarget, type Handler } from "./context.ts";
import { ApiError, badRequest } from "./protocol.ts";
import { now } from "./world.ts";

const getMe: Handler = (call) => call.bot.user;

const getUpdates: Handler = (call) => {
  if (call.bot.webhook !== undefined) {
    throw new ApiError(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first");
  }
  const allowed = call.params.json<string[]>("allowed_updates");
  if (allowed !== undefined && !Array.isArray(allowed)) throw badRequest("can't parse allowed_updates JSON object");
  call.bot.updates.setAllowed(allowed);
  return call.bot.updates.poll(
    {
      ...(call.params.int("offset") === undefined ? {} : { offset: call.params.int("offset") }),
      ...(call.params.int("limit") === undefined ? {} : { limit: call.params.int("limit") }),
      ...(call.params.int("timeout") === undefined ? {} : { timeout: call.params.int("timeout") }),
    },
    call.onClose,
  );
};

/** The fake stores the webhook but never calls it: tests use long polling. */
const setWebhook: Handler = (call) => {
  const url = call.params.str("url") ?? "";
  if (url === "") {
    call.bot.webhook = undefined;
    return true;
  }
  if (!/^https:\/\//i.test(url)) throw badRequest("bad webhook: An HTTPS URL must be provided for webhook");
  const allowed = call.params.json<string[]>("allowed_updates");
  call.bot.updates.setAllowed(allowed);
  call.bot.webhook = { url, ...(allowed === undefined ? {} : { allowed_updates: allowed }) };
  if (call.params.bool("drop_pending_updates") === true) call.bot.updates.dropAll();
  return true;
};

const deleteWebhook: Handler = (call) => {
  call.bot.webhook = undefined;
  if (call.params.bool("drop_pending_updates") === true) call.bot.updates.dropAll();
  return true;
};

const getWebhookInfo: Handler = (call) => ({
  url: call.bot.webhook?.url ?? "",
  has_custom_certificate: false,
  pending_update_count: call.bot.updates.size,
  ...(call.bot.webhook?.allowed_updates === undefined ? {} : { allowed_updates: call.bot.webhook.allowed_updates }),
});

const getChat: Handler = (call): ChatFullInfo => {
  const chat = readTarget(call);
  const common = {
    accent_color_id: 0,
    max_reaction_count: 11,
    accepted_gift_types: {
      unlimited_gifts: false,
      limited_gifts: false,
      unique_gifts: false,
      premium_subscription: false,
      gifts_from_channels: false,
    },
  };
  const c = chat.chat;
  switch (c.type) {
    case "private":
      return { ...common, id: c.id, type: "private", first_name: c.first_name, ...(c.last_name ? { last_name: c.last_name } : {}), ...(c.username ? { username: c.username } : {}) };
    case "group":
      return { ...common, id: c.id, type: "group", title: c.title };
    case "supergroup":
      return { ...common, id: c.id, type: "supergroup", title: c.title, ...(c.is_forum ? { is_forum: true as const } : {}) };
    default:
      throw badRequest("chat not found");
  }
};

const getChatMember: Handler = (call) => {
  const chat = readTarget(call);
  const userId = call.params.requireInt("user_id");
  const user = call.env.world.users.get(userId);
  if (user === undefined) throw badRequest("user not found");
  return call.env.world.chatMember(chat, user);
};

const getChatAdministrators: Handler = (call) => {
  const chat = readTarget(call);
  if (chat.chat.type === "private") throw badRequest("there are no administrators in the private chat");
  const { world } = call.env;
  return [...chat.members.keys()]
    .filter((id) => world.isAdmin(chat, id))
    .flatMap((id) => {
      const user = world.users.get(id);
      return user === undefined ? [] : [world.chatMember(chat, user)];
    });
};

const getChatMemberCount: Handler = (call) => {
  const chat = readTarget(call);
  return [...chat.members.keys()].filter((id) => call.env.world.isIn(chat, id)).length;
};

const getUserProfilePhotos: Handler = (call) => {
  const userId = call.params.requireInt("user_id");
  if (!call.env.world.users.has(userId)) throw badRequest("user not found");
  // https://core.telegram.org/bots/api#userprofilephotos: each photo is an array of PhotoSize.
  const photos = call.env.world.profilePhotos.get(userId) ?? [];
  const offset = call.params.int("offset") ?? 0;
  const limit = call.params.int("limit") ?? 100;
  const page = photos.slice(offset, offset + limit).map((f) => [
    { file_id: f.file_id, file_unique_id: f.file_unique_id, file_size: f.bytes.byteLength, width: 160, height: 160 },
  ]);
  return { total_count: photos.length, photos: page };
};

/** https://core.telegram.org/bots/api#setchattitle: 1-128 characters, needs can_change_info. */
const setChatTitle: Handler = (call) => {
  const chat = readTarget(call);
  const c = chat.chat;
  if (c.type === "private") throw badRequest("chat is not a group or a supergroup");
  const { world } = call.env;
  if (!world.hasRight(chat, call.bot.user.id, "can_change_info")) throw badRequest("not enough rights to change chat title");
  const title = (call.params.str("title") ?? "").trim();
  if (title === "") throw badRequest("CHAT_TITLE_EMPTY");
  if (title.length > 128) throw badRequest("chat title is too long");
  if ("title" in c && c.title === title) throw badRequest("CHAT_NOT_MODIFIED");
  // New object: messages stored earlier keep the chat as it was when they were sent.
  chat.chat = { ...c, title } as typeof c;
  const service = {
    message_id: chat.nextMessageId++,
    from: botUser(call.bot),
    date: now(),
    chat: chat.chat,
    new_chat_title: title,
  } as Message;
  world.storeMessage(chat, service, call.bot.user.id);
  call.env.broadcast(chat, service, call.bot.user.id);
  return true;
};

export const chatMethods: Record<string, Handler> = {
  getMe,
  getUpdates,
  setWebhook,
  deleteWebhook,
  getWebhookInfo,
  getChat,
  getChatMember,
  getChatAdministrators,
  getChatMemberCount,
  getChatMembersCount: getChatMemberCount,
  getUserProfilePhotos,
  setChatTitle,
};
