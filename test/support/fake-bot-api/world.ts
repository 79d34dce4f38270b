/**
 * The simulated Telegram world: bots, people, chats, memberships, messages and
 * files. Object shapes follow https://core.telegram.org/bots/api#available-types
 * (typed with grammY's own Bot API types so a shape drift fails the typecheck).
 */
import { randomBytes } from "node:crypto";
import type {
  Chat,
  ChatMember,
  ChatMemberAdministrator,
  Message,
  ReactionType,
  User,
  UserFromGetMe,
} from "grammy/types";
import { UpdateQueue } from "./updates.ts";

export type MemberStatus = "creator" | "administrator" | "member" | "left" | "kicked";

/** Administrator rights that can be switched off per member (all true by default). */
export type AdminRights = Partial<Omit<ChatMemberAdministrator, "status" | "user">>;

export interface Membership {
  status: MemberStatus;
  rights?: AdminRights;
}

export interface BotState {
  token: string;
  user: UserFromGetMe;
  updates: UpdateQueue;
  webhook: { url: string; allowed_updates?: string[] } | undefined;
}

export interface StoredMessage {
  message: Message;
  /** Bot id when a bot sent it, so edit/delete permissions can be checked. */
  senderBotId: number | undefined;
  deleted: boolean;
  /** Current reactions by sender id (users via message_reaction, bots via setMessageReaction). */
  reactions: Map<number, ReactionType[]>;
}

export interface ChatState {
  /** Private chats are per bot: "p:<botId>:<userId>"; groups are "g:<chatId>". */
  key: string;
  chat: Chat;
  members: Map<number, Membership>;
  messages: Map<number, StoredMessage>;
  nextMessageId: number;
  /** Forum topics by message_thread_id (the id of the topic's forum_topic_created message). */
  topics?: Map<number, { name: string; root: Message }>;
  /** A group upgraded to a supergroup: its new chat id (https://core.telegram.org/bots/api#message migrate_to_chat_id). */
  migratedTo?: number;
  /** Private chats only: the user pressed Start / wrote first, and did not block the bot. */
  started: boolean;
  blocked: boolean;
}

export type FileKind = "photo" | "document" | "voice" | "video" | "audio" | "animation" | "sticker" | "video_note";

export interface StoredFile {
  file_id: string;
  file_unique_id: string;
  file_path: string;
  kind: FileKind;
  bytes: Uint8Array;
  file_name?: string;
  mime_type?: string;
  width?: number;
  height?: number;
}

export const now = (): number => Math.floor(Date.now() / 1000);

const FILE_DIR: Record<FileKind, string> = {
  photo: "photos",
  document: "documents",
  voice: "voice",
  video: "videos",
  audio: "music",
  animation: "animations",
  sticker: "stickers",
  video_note: "video_notes",
};

/** Telegram's documented "Telegram-looking" default extensions per file kind. */
const FILE_EXT: Record<FileKind, string> = {
  photo: "jpg",
  document: "dat",
  voice: "oga",
  video: "mp4",
  audio: "mp3",
  animation: "mp4",
  sticker: "webp",
  video_note: "mp4",
};

export class World {
  readonly bots = new Map<string, BotState>();
  readonly users = new Map<number, User>();
  readonly chats = new Map<string, ChatState>();
  readonly files = new Map<string, StoredFile>();
  /** Profile photos per user, newest first (getUserProfilePhotos). */
  readonly profilePhotos = new Map<number, StoredFile[]>();
  readonly filesByPath = new Map<string, StoredFile>();
  private fileCounter = 0;

  botById(id: number): BotState | undefined {
    for (const bot of this.bots.values()) if (bot.user.id === id) return bot;
    return undefined;
  }

  group(chatId: number): ChatState | undefined {
    return this.chats.get(`g:${chatId}`);
  }

  /** The private chat between a bot and a user, created on first use. */
  privateChat(botId: number, user: User): ChatState {
    const key = `p:${botId}:${user.id}`;
    let state = this.chats.get(key);
    if (state === undefined) {
      const chat: Chat.PrivateChat = { id: user.id, type: "private", first_name: user.first_name };
      if (user.last_name !== undefined) chat.last_name = user.last_name;
      if (user.username !== undefined) chat.username = user.username;
      state = {
        key,
        chat,
        members: new Map([
          [user.id, { status: "member" }],
          [botId, { status: "member" }],
        ]),
        messages: new Map(),
        nextMessageId: 1,
        started: false,
        blocked: false,
      };
      this.chats.set(key, state);
    }
    return state;
  }

  /** A chat as seen by `bot`: a private chat for positive ids, a group otherwise. */
  chatFor(bot: BotState, chatId: number): ChatState | undefined {
    if (chatId > 0) {
      const user = this.users.get(chatId);
      return user === undefined ? undefined : this.privateChat(bot.user.id, user);
    }
    return this.group(chatId);
  }

  statusOf(chat: ChatState, userId: number): MemberStatus {
    return chat.members.get(userId)?.status ?? "left";
  }

  isIn(chat: ChatState, userId: number): boolean {
    const s = this.statusOf(chat, userId);
    return s === "creator" || s === "administrator" || s === "member";
  }

  isAdmin(chat: ChatState, userId: number): boolean {
    const s = this.statusOf(chat, userId);
    return s === "creator" || s === "administrator";
  }

  /** Whether `userId` holds an administrator right (creators hold all). */
  hasRight(chat: ChatState, userId: number, right: keyof AdminRights): boolean {
    const m = chat.members.get(userId);
    if (m?.status === "creator") return true;
    if (m?.status !== "administrator") return false;
    return m.rights?.[right] !== false;
  }

  /** ChatMember object for getChatMember & co (https://core.telegram.org/bots/api#chatmember). */
  chatMember(chat: ChatState, user: User): ChatMember {
    const m = chat.members.get(user.id);
    switch (m?.status) {
      case "creator":
        return { status: "creator", user, is_anonymous: false };
      case "administrator": {
        const forum = chat.chat.type === "supergroup" && chat.chat.is_forum === true;
        return {
          status: "administrator",
          user,
          can_be_edited: false,
          is_anonymous: false,
          can_manage_chat: true,
          can_delete_messages: true,
          can_manage_video_chats: true,
          can_restrict_members: true,
          can_promote_members: false,
          can_change_info: true,
          can_invite_users: true,
          can_post_stories: false,
          can_edit_stories: false,
          can_delete_stories: false,
          can_pin_messages: true,
          can_send_welcome_messages: false,
          ...(forum ? { can_manage_topics: true } : {}),
          ...m.rights,
        };
      }
      case "member":
        return { status: "member", user };
      case "kicked":
        return { status: "kicked", user, until_date: 0 };
      default:
        return { status: "left", user };
    }
  }

  storeMessage(chat: ChatState, message: Message, senderBotId?: number): StoredMessage {
    const stored: StoredMessage = { message, senderBotId, deleted: false, reactions: new Map() };
    chat.messages.set(message.message_id, stored);
    return stored;
  }

  liveMessage(chat: ChatState, messageId: number): StoredMessage | undefined {
    const m = chat.messages.get(messageId);
    return m === undefined || m.deleted ? undefined : m;
  }

  addFile(kind: FileKind, bytes: Uint8Array, extra: Partial<StoredFile> = {}): StoredFile {
    const n = ++this.fileCounter;
    const ext = extra.file_name?.match(/\.([A-Za-z0-9]{1,8})$/)?.[1] ?? FILE_EXT[kind];
    // Real file_ids are opaque base64url strings; keep ours opaque too so nobody parses them.
    const file: StoredFile = {
      ...extra,
      file_id: `${kind.slice(0, 2).toUpperCase()}ACAgIAAxkB${randomBytes(18).toString("base64url")}${n}`,
      file_unique_id: `AQAD${randomBytes(6).toString("base64url")}${n}`,
      file_path: `${FILE_DIR[kind]}/file_${n}.${ext}`,
      kind,
      bytes,
    };
    this.files.set(file.file_id, file);
    this.filesByPath.set(file.file_path, file);
    return file;
  }
}

/** Width and height from a PNG IHDR or JPEG SOF header; undefined if neither. */
export function imageSize(bytes: Uint8Array): { width: number; height: number } | undefined {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length >= 24 && b.readUInt32BE(0) === 0x89504e47 && b.readUInt32BE(4) === 0x0d0a1a0a) {
    return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
  }
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8) {
    let i = 2;
    while (i + 9 < b.length && b[i] === 0xff) {
      const marker = b[i + 1] ?? 0;
      const len = b.readUInt16BE(i + 2);
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        return { height: b.readUInt16BE(i + 5), width: b.readUInt16BE(i + 7) };
      }
      i += 2 + len;
    }
  }
  return undefined;
}
