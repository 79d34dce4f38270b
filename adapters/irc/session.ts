/**
 * One AdapterSession per XMPP user: one IrcConnection per IRC server the user
 * uses, opened on the first join or message to that server and closed
 * `lingerMs` after its last channel is left with no private chat meanwhile.
 */
import { createHash } from "node:crypto";
import type { AdapterSession, SessionContext } from "../../core/adapter.ts";
import { fail, isEstuaryError } from "../../core/errors.ts";
import type { ChatRef, ContactId, LegacyEvent, OutgoingMessage, RoomId, RoomInfo, RoomSnapshot, SendResult, ServiceId, Show } from "../../core/model.ts";
import { toPlain } from "../../core/format/model.ts";
import { IrcConnection, type ConnectionConfig } from "./connection.ts";
import { ircToRich, richToIrc } from "./format.ts";
import { hostAllowed, isChannel, isHost, isNick, roomId, splitId } from "./ids.ts";
import { safeMiddle } from "./lines.ts";
import { relayNick } from "./relay-nick.ts";
import { serverSettingsSchema, type IrcOptions, type ServerSettings } from "./options.ts";

type HistoryMessage = Extract<LegacyEvent, { type: "message" }>;

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

/** RFC 4648 base32 (lower case, no padding) of the first bytes of sha256(user): a stable, short ident. */
export function identFor(user: string): string {
  const digest = createHash("sha256").update(user).digest();
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < 8) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    if (out.length >= 8) break;
  }
  return out;
}

/** A nick from a user key's localpart (RFC 2812 §2.3.1 nickname characters, letter first). */
export function nickFromUser(user: string): string {
  const local = user.split("@")[0] ?? "";
  let nick = local.replace(/[^A-Za-z0-9[\]\\`_^{|}-]/g, "");
  if (!/^[A-Za-z[\]\\`_^{|}]/.test(nick)) nick = `x${nick}`;
  return nick.slice(0, 30) || "estuary";
}

interface Target {
  server: string;
  name: string;
}

export class IrcSession implements AdapterSession {
  private readonly ctx: SessionContext;
  private readonly options: IrcOptions;
  private readonly conns = new Map<string, Promise<IrcConnection>>();
  /** Created on first use: most users never leave every channel of a server nor chat in private. */
  private lingerTimers: Map<string, NodeJS.Timeout> | undefined;
  private lastDirect: Map<string, number> | undefined;
  private closed = false;

  constructor(ctx: SessionContext, options: IrcOptions) {
    this.ctx = ctx;
    this.options = options;
    ctx.signal.addEventListener("abort", () => void this.close("Session ended"), { once: true });
  }

  private target(id: string, kind: "room" | "contact"): Target {
    const parts = splitId(id);
    const ok = parts && (kind === "room" ? isChannel(parts.name) : isNick(parts.name));
    if (!parts || !ok) throw fail("bad-request", `Not an IRC ${kind === "room" ? "channel" : "nick"}: ${id}`);
    if (this.options.fixedServer && parts.server !== this.options.fixedServer.toLowerCase()) {
      throw fail("forbidden", `This gateway only serves ${this.options.fixedServer}`);
    }
    if (!hostAllowed(parts.server, this.options.allowedServers)) {
      throw fail("forbidden", `This gateway does not connect to ${parts.server}`);
    }
    return parts;
  }

  /** An IRC server the user may reach through this gateway (the same rules as for its channels). */
  private server(service: ServiceId): string {
    const server = service.toLowerCase();
    if (!isHost(server)) throw fail("bad-request", `Not an IRC server: ${service}`);
    if (this.options.fixedServer && server !== this.options.fixedServer.toLowerCase()) {
      throw fail("forbidden", `This gateway only serves ${this.options.fixedServer}`);
    }
    if (!hostAllowed(server, this.options.allowedServers)) throw fail("forbidden", `This gateway does not connect to ${server}`);
    return server;
  }

  private async settings(server: string): Promise<ServerSettings> {
    const raw = await this.ctx.store.get<unknown>(`server:${server}`);
    if (raw === undefined) return {};
    const parsed = serverSettingsSchema.safeParse(raw);
    if (!parsed.success) {
      this.ctx.log.warn({ server }, "ignoring invalid stored IRC server settings");
      return {};
    }
    return parsed.data;
  }

  private config(server: string, s: ServerSettings, nick: string | undefined): ConnectionConfig {
    const o = this.options;
    const admin = o.servers[server] ?? {};
    const port = s.port ?? admin.port ?? o.defaultPort;
    // 6697 is the IANA port for IRC over TLS (RFC 7194); 6667 plain.
    const tls = s.tls ?? admin.tls ?? (port === 6697 ? true : port === 6667 ? false : o.defaultTls);
    const ident = identFor(this.ctx.user);
    const webirc = admin.webirc ?? o.webirc;
    return {
      host: server,
      port,
      tls,
      rejectUnauthorized: admin.rejectUnauthorized ?? true,
      ca: admin.ca,
      nick: nick ?? s.nick ?? o.defaultNick ?? nickFromUser(this.ctx.user),
      // One abusive user can be banned by ident without banning the whole gateway.
      username: o.identFromUser ? ident : (s.username ?? "estuary"),
      realname: s.realname ?? admin.realname ?? o.realname,
      password: s.password,
      sasl: s.saslAccount && s.saslPassword ? { account: s.saslAccount, password: s.saslPassword } : undefined,
      webirc: webirc
        ? { password: webirc.password, gateway: webirc.gateway, hostname: webirc.hostname ?? `${ident}.xmpp`, ip: webirc.ip ?? "127.0.0.1" }
        : undefined,
      commandsAfterConnect: s.commandsAfterConnect ?? [],
      flood: {
        burst: s.floodBurst ?? admin.flood?.burst ?? o.flood.burst,
        intervalMs: s.floodIntervalMs ?? admin.flood?.intervalMs ?? o.flood.intervalMs,
      },
      maxQueue: o.maxQueue,
      retryWindowMs: o.retryWindowMs,
      timeoutMs: o.joinTimeoutMs,
      reconnect: o.reconnect,
    };
  }

  /** The user's connection to `server`, opened (and registered) if needed. */
  private async connection(server: string, nick?: string): Promise<IrcConnection> {
    if (this.closed) throw fail("unavailable", "The session is closed");
    let p = this.conns.get(server);
    if (!p) {
      p = this.settings(server).then(
        (s) =>
          new IrcConnection(this.config(server, s, nick === undefined ? undefined : (safeMiddle(nick) ?? undefined)), {
            emit: (e) => this.ctx.emit(e),
            log: this.ctx.log,
            onIdle: () => this.scheduleLinger(server),
            onDirectActivity: () => {
              (this.lastDirect ??= new Map()).set(server, Date.now());
              this.scheduleLinger(server);
            },
          }),
      );
      this.conns.set(server, p);
    }
    const conn = await p;
    clearTimeout(this.lingerTimers?.get(server));
    try {
      await conn.ensureOnline(nick);
    } catch (e) {
      this.scheduleLinger(server);
      throw e;
    }
    return conn;
  }

  private scheduleLinger(server: string): void {
    clearTimeout(this.lingerTimers?.get(server));
    const timer = setTimeout(() => void this.lingerCheck(server), this.options.lingerMs);
    timer.unref();
    (this.lingerTimers ??= new Map()).set(server, timer);
  }

  private async lingerCheck(server: string): Promise<void> {
    const conn = await this.conns.get(server);
    if (!conn || this.closed) return;
    const sinceDirect = Date.now() - (this.lastDirect?.get(server) ?? 0);
    if (conn.channelCount > 0 || conn.queued > 0) return;
    if (sinceDirect < this.options.lingerMs) {
      this.scheduleLinger(server);
      return;
    }
    this.conns.delete(server);
    this.lingerTimers?.delete(server);
    this.lastDirect?.delete(server);
    await conn.close("Leaving");
  }

  async joinRoom(room: RoomId, nick: string, options: { password?: string }): Promise<RoomSnapshot> {
    const t = this.target(room, "room");
    const conn = await this.connection(t.server, nick);
    try {
      return await conn.join(t.name, options.password);
    } finally {
      if (conn.channelCount === 0) this.scheduleLinger(t.server);
    }
  }

  async leaveRoom(room: RoomId, reason?: string): Promise<void> {
    const t = this.target(room, "room");
    const conn = await this.conns.get(t.server);
    if (!conn) return;
    await conn.leave(t.name, reason);
  }

  async sendMessage(chat: ChatRef, message: OutgoingMessage): Promise<SendResult> {
    const t = chat.kind === "room" ? this.target(chat.room, "room") : this.target(chat.contact, "contact");
    const lines = richToIrc(message.text);
    // IRC carries no files: attachments become their URLs, one per line.
    for (const a of message.attachments ?? []) lines.push(a.url);
    const conn = await this.connection(t.server);
    await conn.say(t.name, lines, message.action ?? false, chat.kind === "direct");
    return {};
  }

  /**
   * A bridge's message under the person's own name (IRCv3 draft/relaymsg):
   * `RELAYMSG #chan alice/xmpp :text`. undefined when the server did not
   * grant the capability or refuses it in this channel (the bridge then
   * prefixes the name), or the channel is not joined.
   */
  async sendAs(chat: ChatRef, sender: { nick: string; network: string }, message: OutgoingMessage): Promise<SendResult | undefined> {
    if (chat.kind !== "room") return undefined;
    const t = this.target(chat.room, "room");
    const conn = await this.connection(t.server);
    const separators = conn.relaySeparators();
    if (separators === undefined || !conn.isJoined(t.name)) return undefined;
    const lines = richToIrc(message.text);
    for (const a of message.attachments ?? []) lines.push(a.url);
    const nick = relayNick(sender.nick, sender.network, { separators, nicklen: conn.nickLen() });
    return (await conn.relay(t.name, nick, lines, message.action ?? false)) ? {} : undefined;
  }

  /**
   * The channel's recent history from the server (IRCv3 chathistory), for the
   * core to archive what the user missed. Only on a connection that is open
   * and in the channel: history never opens a connection of its own.
   */
  async history(room: RoomId, options: { limit: number }): Promise<HistoryMessage[]> {
    const t = this.target(room, "room");
    const conn = await this.conns.get(t.server);
    if (!conn) return [];
    return conn.history(t.name, options.limit);
  }

  /**
   * With `service`: the public channels of that IRC server (LIST), opening a
   * connection if none is open (it then lingers out like one a join opened).
   * Without: nothing (an IRC account is in no channel the gateway does not know).
   */
  async listRooms(service?: ServiceId): Promise<RoomInfo[]> {
    if (service === undefined) return [];
    const server = this.server(service);
    const conn = await this.connection(server);
    try {
      const channels = await conn.listChannels();
      const rooms: RoomInfo[] = [];
      for (const c of channels) {
        // A server may list names no address can carry (a hidden channel shown as "*").
        if (!isChannel(c.name)) continue;
        const topic = toPlain(ircToRich(c.topic)).trim();
        rooms.push({ room: roomId(server, c.name), name: c.name, members: c.users, ...(topic ? { topic } : {}) });
      }
      return rooms;
    } finally {
      if (conn.channelCount === 0) this.scheduleLinger(server);
    }
  }

  /** IRC INVITE (RFC 2812 §3.2.7); the reason has no place on the line and is not sent. */
  async invite(room: RoomId, contact: ContactId, reason?: string): Promise<void> {
    void reason;
    const t = this.target(room, "room");
    const c = this.target(contact, "contact");
    if (c.server !== t.server) throw fail("bad-request", `${c.name} is on ${c.server}, not on ${t.server}: IRC invites only people of the channel's server`);
    const conn = await this.connection(t.server);
    await conn.invite(t.name, c.name);
  }

  async setSubject(room: RoomId, subject: string): Promise<void> {
    const t = this.target(room, "room");
    await (await this.connection(t.server)).topic(t.name, subject);
  }

  async changeNick(room: RoomId, nick: string): Promise<string> {
    const t = this.target(room, "room");
    if (!safeMiddle(nick) || !isNick(nick)) throw fail("not-acceptable", `Not a valid IRC nickname: ${nick}`);
    return (await this.connection(t.server)).changeNick(nick);
  }

  async kick(room: RoomId, nick: string, reason?: string): Promise<void> {
    const t = this.target(room, "room");
    await (await this.connection(t.server)).kick(t.name, nick, reason);
  }

  async ban(room: RoomId, nick: string, reason?: string): Promise<void> {
    const t = this.target(room, "room");
    await (await this.connection(t.server)).ban(t.name, nick, reason);
  }

  async setPresence(show: Show, status?: string): Promise<void> {
    const away = show === "available" || show === "chat" ? undefined : (status ?? "Away");
    const conns = await Promise.all([...this.conns.values()].map((p) => p.catch(() => undefined)));
    await Promise.all(
      conns.map((c) =>
        c?.away(away).catch((e: unknown) => {
          if (!isEstuaryError(e)) throw e;
        }),
      ),
    );
  }

  async close(reason?: string): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.lingerTimers?.values() ?? []) clearTimeout(t);
    const conns = await Promise.all([...this.conns.values()].map((p) => p.catch(() => undefined)));
    this.conns.clear();
    await Promise.all(conns.map((c) => c?.close(reason ?? "Leaving")));
  }
}
