/**
 * FakeBotApi: an in-process FAKE of the Telegram Bot API server for tests.
 * It is not Telegram; it follows the documented request/response shapes of
 * https://core.telegram.org/bots/api closely enough that grammY, pointed at it
 * with `new Bot(token, { client: { apiRoot: fake.url } })`, behaves as in
 * production: real long polling, multipart uploads, file downloads, and the
 * error envelopes (401/400/403/404/409/429) Telegram answers with.
 *
 * Routes (https://core.telegram.org/bots/api#making-requests, #getfile):
 *   POST|GET /bot<token>/<method>        → { ok, result } | { ok:false, error_code, description, parameters? }
 *   GET      /file/bot<token>/<file_path> → the file's bytes
 */
import { EventEmitter } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Chat, ChatMemberUpdated, Message, MessageReactionUpdated, ResponseParameters, User } from "grammy/types";
import { chatMethods } from "./fake-bot-api/chats.ts";
import type { Env, EditRecord, Handler, SentRecord } from "./fake-bot-api/context.ts";
import { mediaMethods } from "./fake-bot-api/media.ts";
import { messageMethods } from "./fake-bot-api/messages.ts";
import { ApiError, Params, parseRequest, sendError, sendJson, sendResult, type Upload } from "./fake-bot-api/protocol.ts";
import {
  Simulation,
  type UserDocumentInput,
  type UserEditInput,
  type UserMediaInput,
  type UserMessageInput,
  type UserPostInput,
  type UserReactionInput,
} from "./fake-bot-api/simulate.ts";
import { UpdateQueue } from "./fake-bot-api/updates.ts";
import { World, type AdminRights, type ChatState, type FileKind, type MemberStatus, type StoredMessage } from "./fake-bot-api/world.ts";

export type { EditRecord, SentMedia, SentRecord } from "./fake-bot-api/context.ts";
export type { AdminRights, MemberStatus, StoredMessage } from "./fake-bot-api/world.ts";
export type { UserDocumentInput, UserEditInput, UserMediaInput, UserMessageInput, UserPostInput, UserReactionInput } from "./fake-bot-api/simulate.ts";
export { CHANNEL_BOT, GROUP_ANONYMOUS_BOT } from "./fake-bot-api/simulate.ts";
export type { FileKind } from "./fake-bot-api/world.ts";

/** One request as received, for assertions. Uploaded files appear as `{ upload: filename, size }`. */
export interface CallRecord {
  token: string;
  method: string;
  params: Record<string, unknown>;
  at: number;
}

export interface InjectedError {
  error_code: number;
  description: string;
  parameters?: ResponseParameters;
}

export interface RateLimit {
  /** Messages a single chat may receive per window before Telegram answers 429. */
  maxPerChat: number;
  windowMs: number;
}

export interface GroupMember {
  userId: number;
  status: MemberStatus;
  /** Administrator rights to switch off (everything is granted by default). */
  rights?: AdminRights;
}

/** Bot API methods by lower-cased name: Telegram matches method names case-insensitively. */
const HANDLERS = new Map<string, Handler>(
  Object.entries({ ...chatMethods, ...messageMethods, ...mediaMethods }).map(([name, h]) => [name.toLowerCase(), h]),
);

export class FakeBotApi {
  readonly url: string;
  /** Every request to a bot method, in arrival order. */
  readonly calls: CallRecord[] = [];
  private readonly server: Server;
  private readonly world = new World();
  private readonly sim = new Simulation(this.world);
  private readonly sentLog: SentRecord[] = [];
  private readonly editLog: EditRecord[] = [];
  private readonly events = new EventEmitter();
  private readonly faults = new Map<string, { error: InjectedError; remaining: number }[]>();
  private rateLimit: RateLimit | undefined;
  private readonly chatSends = new Map<string, number[]>();
  private readonly env: Env;

  private constructor(server: Server, url: string) {
    this.server = server;
    this.url = url;
    this.events.setMaxListeners(0);
    this.env = {
      world: this.world,
      recordSent: (r) => {
        this.sentLog.push(r);
        this.events.emit("sent", r);
      },
      recordEdit: (r) => this.editLog.push(r),
      beforeSend: (chat) => this.floodControl(chat),
      broadcast: (chat, message, exceptBotId) => this.sim.deliver(chat, "message", message, exceptBotId),
    };
  }

  /** Starts the fake on 127.0.0.1 and a free port. */
  static async start(): Promise<FakeBotApi> {
    let fake: FakeBotApi | undefined;
    const server = createServer((req, res) => void fake?.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    });
    const { port } = server.address() as AddressInfo;
    fake = new FakeBotApi(server, `http://127.0.0.1:${port}`);
    return fake;
  }

  async stop(): Promise<void> {
    for (const bot of this.world.bots.values()) bot.updates.release();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  // ── The simulated world ────────────────────────────────────────────────

  addBot(opts: { token: string; id?: number; username: string; first_name: string; can_read_all_group_messages?: boolean }): User {
    const id = opts.id ?? Number(/^(\d+):/.exec(opts.token)?.[1] ?? 7_000_000_000 + this.world.bots.size);
    const user: User = { id, is_bot: true, first_name: opts.first_name, username: opts.username };
    this.world.users.set(id, user);
    this.world.bots.set(opts.token, {
      token: opts.token,
      user: {
        ...user,
        is_bot: true,
        username: opts.username,
        can_join_groups: true,
        // Gateway bots run with privacy mode off; pass false to simulate privacy mode.
        can_read_all_group_messages: opts.can_read_all_group_messages ?? true,
        supports_inline_queries: false,
        can_connect_to_business: false,
        has_main_web_app: false,
        has_topics_enabled: false,
        allows_users_to_create_topics: false,
        can_manage_bots: false,
        supports_join_request_queries: false,
      },
      // update_ids start at an arbitrary point, as on Telegram; never assume 0 or 1.
      updates: new UpdateQueue(100_000 + id % 1000 * 1000),
      webhook: undefined,
    });
    return user;
  }

  addUser(opts: { id: number; first_name: string; last_name?: string; username?: string; language_code?: string }): User {
    const user: User = { is_bot: false, ...opts };
    this.world.users.set(user.id, user);
    return user;
  }

  /** Sets a user's profile photo (what getUserProfilePhotos returns first). */
  setProfilePhoto(userId: number, bytes: Uint8Array): void {
    const file = this.world.addFile("photo", bytes);
    this.world.profilePhotos.set(userId, [file, ...(this.world.profilePhotos.get(userId) ?? [])]);
  }

  /** A group (negative id). Members may include bots (by their id); everyone else must be added with addUser first. */
  addGroup(opts: { id: number; title: string; type: "group" | "supergroup"; is_forum?: boolean; members: GroupMember[] }): void {
    if (opts.id >= 0) throw new Error("FakeBotApi: group ids are negative");
    for (const m of opts.members) this.sim.user(m.userId);
    const chat: ChatState["chat"] =
      opts.type === "group"
        ? { id: opts.id, type: "group", title: opts.title }
        : { id: opts.id, type: "supergroup", title: opts.title, ...(opts.is_forum ? { is_forum: true as const } : {}) };
    this.world.chats.set(`g:${opts.id}`, {
      key: `g:${opts.id}`,
      chat,
      members: new Map(opts.members.map((m) => [m.userId, { status: m.status, ...(m.rights ? { rights: m.rights } : {}) }])),
      messages: new Map(),
      nextMessageId: 1,
      started: true,
      blocked: false,
    });
  }

  /** Someone adds the bot to a group: my_chat_member for the bot, new_chat_members service message. */
  addBotToGroup(token: string, chatId: number, opts: { status?: "member" | "administrator"; by?: number; rights?: AdminRights } = {}): ChatMemberUpdated {
    return this.sim.setStatus(chatId, this.sim.bot(token).user.id, opts.status ?? "member", opts);
  }

  removeBotFromGroup(token: string, chatId: number, opts: { by?: number } = {}): ChatMemberUpdated {
    const chat = this.sim.group(chatId);
    return this.sim.setStatus(chatId, this.sim.bot(token).user.id, chat.chat.type === "supergroup" ? "kicked" : "left", opts);
  }

  userJoins(chatId: number, userId: number, opts: { by?: number } = {}): ChatMemberUpdated {
    return this.sim.setStatus(chatId, userId, "member", opts);
  }

  userLeaves(chatId: number, userId: number): ChatMemberUpdated {
    return this.sim.setStatus(chatId, userId, "left");
  }

  /** Any status change (promotion, ban, …) of a user or bot in a group. */
  setMemberStatus(chatId: number, userId: number, status: MemberStatus, opts: { by?: number; rights?: AdminRights } = {}): ChatMemberUpdated {
    return this.sim.setStatus(chatId, userId, status, opts);
  }

  // ── What simulated users do (each becomes updates for the bots) ───────

  userSends(token: string, input: UserMessageInput): Message {
    return this.sim.userSends(token, input);
  }
  userSendsPhoto(token: string, input: UserMediaInput): Message {
    return this.sim.userSendsPhoto(token, input);
  }
  userSendsDocument(token: string, input: UserDocumentInput): Message {
    return this.sim.userSendsDocument(token, input);
  }
  userEdits(token: string, input: UserEditInput): Message {
    return this.sim.userEdits(token, input);
  }
  /** Any documented Message content (sticker, location, poll, forward_origin, service fields…). */
  userPosts(token: string, input: UserPostInput, content: Partial<Message>): Message {
    return this.sim.userPosts(token, input, content);
  }
  /** A message from an anonymous admin (sender_chat = the group) or a channel (sender_chat given). */
  chatPosts(token: string, input: UserPostInput & { sender_chat?: Chat; author_signature?: string }, content: Partial<Message>): Message {
    return this.sim.chatPosts(token, input, content);
  }
  userCreatesTopic(token: string, input: { from: number; chat: number; name: string; icon_color?: number }): Message {
    return this.sim.userCreatesTopic(token, input);
  }
  upgradeGroup(chatId: number, newId: number, by: number): { old: Message; new: Message } {
    return this.sim.upgradeGroup(chatId, newId, by);
  }
  /** Stores a file (served by getFile and the file route) and returns its Bot API identifiers, for userPosts content. */
  addFile(kind: FileKind, bytes: Uint8Array, extra: { file_name?: string; mime_type?: string } = {}): { file_id: string; file_unique_id: string; file_size: number } {
    const f = this.world.addFile(kind, bytes, extra);
    return { file_id: f.file_id, file_unique_id: f.file_unique_id, file_size: f.bytes.byteLength };
  }
  userReacts(token: string, input: UserReactionInput): MessageReactionUpdated {
    return this.sim.userReacts(token, input);
  }
  /** Opens the private chat the way Telegram does: the user presses Start, the bot gets "/start". */
  userStartsBot(token: string, userId: number): Message {
    return this.sim.userStartsBot(token, userId);
  }
  userBlocksBot(token: string, userId: number): ChatMemberUpdated {
    return this.sim.userBlocksBot(token, userId);
  }

  // ── Assertions ─────────────────────────────────────────────────────────

  /** Messages the bots sent (all bots, or one), in order. */
  sent(token?: string): SentRecord[] {
    return this.sentLog.filter((r) => token === undefined || r.token === token);
  }

  edits(token?: string): EditRecord[] {
    return this.editLog.filter((r) => token === undefined || r.token === token);
  }

  /** Current state of a message (edits, deletion, reactions), as `token`'s bot sees the chat. */
  message(token: string, chatId: number, messageId: number): StoredMessage | undefined {
    return this.world.chatFor(this.sim.bot(token), chatId)?.messages.get(messageId);
  }

  /** Bytes of a file known to the fake, by file_id. */
  fileBytes(fileId: string): Uint8Array | undefined {
    return this.world.files.get(fileId)?.bytes;
  }

  /** Resolves with the first sent message matching `predicate`, already sent or still to come. */
  waitForSent(predicate: (r: SentRecord) => boolean, timeoutMs = 5000): Promise<SentRecord> {
    return this.waitFor("sent", this.sentLog, predicate, timeoutMs);
  }

  /** Resolves with the first call matching `predicate`, already received or still to come. */
  waitForCall(predicate: (c: CallRecord) => boolean, timeoutMs = 5000): Promise<CallRecord> {
    return this.waitFor("call", this.calls, predicate, timeoutMs);
  }

  private waitFor<T>(event: string, log: readonly T[], predicate: (r: T) => boolean, timeoutMs: number): Promise<T> {
    const found = log.find(predicate);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise<T>((resolve, reject) => {
      const listener = (r: T): void => {
        if (!predicate(r)) return;
        clearTimeout(timer);
        this.events.off(event, listener);
        resolve(r);
      };
      const timer = setTimeout(() => {
        this.events.off(event, listener);
        reject(new Error(`FakeBotApi: no matching ${event} within ${timeoutMs} ms (${log.length} so far)`));
      }, timeoutMs);
      this.events.on(event, listener);
    });
  }

  // ── Fault injection ────────────────────────────────────────────────────

  /** The next `count` calls of `method` (any bot) fail with `error`, HTTP status = error_code. */
  failNext(method: string, error: InjectedError, count = 1): void {
    const key = method.toLowerCase();
    const list = this.faults.get(key) ?? [];
    list.push({ error, remaining: count });
    this.faults.set(key, list);
  }

  /**
   * Per-chat flood control on message-creating methods, off by default.
   * Telegram documents ~1 message/s per chat and 20/min per group
   * (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this)
   * and answers 429 with parameters.retry_after.
   */
  setRateLimit(limit: RateLimit | undefined): void {
    this.rateLimit = limit;
    this.chatSends.clear();
  }

  private floodControl(chat: ChatState): void {
    if (this.rateLimit === undefined) return;
    const { maxPerChat, windowMs } = this.rateLimit;
    const t = Date.now();
    const recent = (this.chatSends.get(chat.key) ?? []).filter((at) => at > t - windowMs);
    if (recent.length >= maxPerChat) {
      const retry_after = Math.max(1, Math.ceil(((recent[0] ?? t) + windowMs - t) / 1000));
      throw new ApiError(429, `Too Many Requests: retry after ${retry_after}`, { retry_after });
    }
    recent.push(t);
    this.chatSends.set(chat.key, recent);
  }

  private takeFault(method: string): InjectedError | undefined {
    const list = this.faults.get(method.toLowerCase());
    const head = list?.[0];
    if (list === undefined || head === undefined) return undefined;
    if (--head.remaining <= 0) list.shift();
    return head.error;
  }

  // ── HTTP ───────────────────────────────────────────────────────────────

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? "/", this.url);
      const file = /^\/file\/bot([^/]+)\/(.+)$/.exec(url.pathname);
      if (file) return this.serveFile(res, file[1] ?? "", decodeURIComponent(file[2] ?? ""));
      const route = /^\/bot([^/]+)\/([A-Za-z]*)$/.exec(url.pathname);
      if (!route) throw new ApiError(404, "Not Found");
      const token = decodeURIComponent(route[1] ?? "");
      const method = route[2] ?? "";
      const { params, uploads } = await parseRequest(req, url);
      this.calls.push({ token, method, params: describe(params, uploads), at: Date.now() });
      this.events.emit("call", this.calls.at(-1));
      const bot = this.world.bots.get(token);
      if (bot === undefined) throw new ApiError(401, "Unauthorized");
      const handler = HANDLERS.get(method.toLowerCase());
      if (handler === undefined) throw new ApiError(404, "Not Found");
      const fault = this.takeFault(method);
      if (fault !== undefined) throw new ApiError(fault.error_code, fault.description, fault.parameters);
      const result = await handler({
        env: this.env,
        bot,
        method,
        params: new Params(params, uploads),
        onClose: (cb) => res.once("close", () => !res.writableFinished && cb()),
      });
      sendResult(res, result);
    } catch (err) {
      if (err instanceof ApiError) sendError(res, err);
      else sendJson(res, 500, { ok: false, error_code: 500, description: `Internal Server Error: ${String(err)}` });
    }
  }

  private serveFile(res: ServerResponse, token: string, path: string): void {
    const file = this.world.bots.has(token) ? this.world.filesByPath.get(path) : undefined;
    if (file === undefined) {
      sendJson(res, 404, { ok: false, error_code: 404, description: "Not Found" });
      return;
    }
    res.writeHead(200, { "content-type": file.mime_type ?? "application/octet-stream", "content-length": file.bytes.byteLength });
    res.end(file.bytes);
  }
}

function describe(params: Record<string, unknown>, uploads: Map<string, Upload>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...params };
  for (const [name, u] of uploads) out[name] = { upload: u.filename, size: u.bytes.byteLength };
  return out;
}
