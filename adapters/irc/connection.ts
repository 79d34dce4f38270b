/**
 * One IRC connection of one XMPP user to one IRC server: its state, its
 * lifecycle (connect on demand, close) and the public API the session
 * (session.ts) uses. The jobs live in their own modules, as functions taking
 * the connection, so that one connection per user costs one object and no
 * closures:
 *
 * - open.ts: one connection attempt and registration;
 * - reconnect.ts: losing the connection, backoff, rejoin;
 * - channels.ts: joining, leaving, occupants, snapshots;
 * - channel-events.ts: the client's events as channel state and LegacyEvents;
 * - incoming.ts: PRIVMSG/NOTICE as messages; say.ts: sending them, echo confirmation;
 * - relay.ts (draft/relaymsg), channel-ops.ts (TOPIC, KICK, ban), nick.ts (NICK),
 *   chathistory.ts (CHATHISTORY), numerics.ts (error numerics, FAIL);
 * - send-queue.ts (flood control), channel-list.ts (LIST), invites.ts (INVITE).
 *
 * wire/client.ts parses lines, negotiates IRCv3 capabilities (CAP LS 302) and
 * tracks ISUPPORT; every line sent after registration is built by build()
 * from sanitised parameters and goes through the flood-controlled queue.
 *
 * The fields below are shared with those modules (TypeScript has no
 * module-private members); session.ts uses only the documented methods.
 */
import type { Logger } from "pino";
import { fail, type EstuaryError } from "../../core/errors.ts";
import type { LegacyEvent, RoomSnapshot } from "../../core/model.ts";
import { ChannelList, type ListedChannel } from "./channel-list.ts";
import { dispatch } from "./channel-events.ts";
import { ban, kick, settleOpWaits, topic, type OpWait } from "./channel-ops.ts";
import { failJoins, join, leave, type ChannelState, type PendingJoin } from "./channels.ts";
import { history, type HistoryMessage, type HistoryRequest } from "./chathistory.ts";
import { CHANNEL_PREFIXES, ircLower } from "./ids.ts";
import { InviteWaits } from "./invites.ts";
import { safeMiddle, stripUnsafe } from "./lines.ts";
import { changeNick, dropNickChange, type NickChange } from "./nick.ts";
import { openConnection } from "./open.ts";
import { relay, relaySeparators, type RelayWait } from "./relay.ts";
import { say, settleSayWaits, type SayWait } from "./say.ts";
import { SendQueue } from "./send-queue.ts";
import type { IrcClient, IrcEventSink } from "./wire/client.ts";

export interface ConnectionConfig {
  host: string;
  port: number;
  tls: boolean;
  rejectUnauthorized: boolean;
  /** PEM CA certificates trusted for this server's TLS certificate instead of Node's bundled roots. */
  ca?: string | undefined;
  nick: string;
  username: string;
  realname: string;
  password?: string | undefined;
  sasl?: { account: string; password: string } | undefined;
  webirc?: { password: string; gateway: string; hostname: string; ip: string } | undefined;
  commandsAfterConnect: string[];
  flood: { burst: number; intervalMs: number };
  maxQueue: number;
  retryWindowMs: number;
  /** Registration, JOIN and NICK replies must arrive within this. */
  timeoutMs: number;
  reconnect: { initialMs: number; maxMs: number };
}

export interface ConnectionHooks {
  emit(event: LegacyEvent): void;
  log: Logger;
  /** The connection has no channel left (the session decides when to close it). */
  onIdle(): void;
  /** A private message came or went (keeps the connection from lingering out). */
  onDirectActivity(): void;
}

type State = "idle" | "connecting" | "online" | "reconnecting" | "closed";

export class IrcConnection implements IrcEventSink {
  readonly host: string;
  nick: string;
  readonly cfg: ConnectionConfig;
  readonly hooks: ConnectionHooks;
  /** The pino child logger, made on first use (most connections never log: one less object per user). */
  private logger: Logger | undefined;
  client: IrcClient | undefined;
  state: State = "idle";
  private opening: Promise<void> | undefined;
  lastError: EstuaryError | undefined;
  /** Our ident and host as the server shows them (for the length of our lines' prefix). */
  ident: string | undefined;
  displayedHost: string | undefined;
  readonly channels = new Map<string, ChannelState>();
  /** JOINs sent and not yet complete, by lowered channel (created on first use: pendingJoins()). */
  joins: Map<string, PendingJoin> | undefined;
  nickChange: NickChange | undefined;
  readonly lines: SendQueue;
  /** ensureOnline() callers waiting for the state to settle. */
  private stateWaiters: Set<() => void> | undefined;
  /** Echo keys of lines sent and not yet echoed, by lowered target (say.ts). */
  echoes: Map<string, string[]> | undefined;
  /** TOPIC and KICK lines waiting for the server's answer, oldest first. */
  readonly opWaits: OpWait[] = [];
  /** Messages waiting for their echoes (or an error numeric), oldest first. */
  readonly sayWaits: SayWait[] = [];
  /** The server did not echo a line in time once: later messages count as sent when written. */
  sayUnechoed = false;
  /** RELAYMSG lines written and not yet echoed or refused, oldest first (the server answers in order). */
  readonly relayWaits: RelayWait[] = [];
  /** Channels where the server refused RELAYMSG (FAIL RELAYMSG …), with its reason: the prefix is used there. */
  relayRefused: Map<string, string> | undefined;
  /** The server did not echo a RELAYMSG line in time once: later ones are taken as sent when written (no 20 s stalls). */
  relayUnechoed = false;
  /** CHATHISTORY requests by lowered channel (one at a time per channel). */
  historyRequests: Map<string, HistoryRequest> | undefined;
  /** Requests that timed out, by channel: their batch, if it still comes, is dropped rather than shown live. */
  lateHistory: Map<string, number> | undefined;
  reconnectAttempt = 0;
  reconnectTimer: NodeJS.Timeout | undefined;
  /** The server's channel list (LIST), cached briefly for paging; made on the first listChannels(). */
  channelList: ChannelList | undefined;
  /** INVITEs sent and waiting for 341 or a refusal; made on the first invite(). */
  invites: InviteWaits | undefined;

  constructor(cfg: ConnectionConfig, hooks: ConnectionHooks) {
    this.cfg = cfg;
    this.host = cfg.host;
    this.nick = cfg.nick;
    this.hooks = hooks;
    this.lines = new SendQueue(
      { host: cfg.host, maxQueue: cfg.maxQueue, retryWindowMs: cfg.retryWindowMs, flood: cfg.flood },
      {
        writable: () => this.state === "online" && this.client?.connection.connected === true,
        write: (line, written) => this.client!.connection.write(line, written),
      },
    );
  }

  get log(): Logger {
    return (this.logger ??= this.hooks.log.child({ ircServer: this.host }));
  }

  get online(): boolean {
    return this.state === "online";
  }

  get closed(): boolean {
    return this.state === "closed";
  }

  get channelCount(): number {
    return this.channels.size + (this.joins?.size ?? 0);
  }

  get queued(): number {
    return this.lines.length;
  }

  /** The pending JOINs, created on first use. */
  pendingJoins(): Map<string, PendingJoin> {
    return (this.joins ??= new Map());
  }

  // ---------------------------------------------------------------- lifecycle

  /** Connects and registers if needed; `nick` is used only when a new connection is opened. */
  async ensureOnline(nick?: string): Promise<void> {
    if (this.state === "online") return;
    if (this.state === "closed") throw fail("unavailable", `The connection to ${this.host} is closed`);
    if (this.state === "idle") {
      if (nick !== undefined) this.nick = safeMiddle(nick) ?? this.nick;
      this.setState("connecting");
      this.emitStatus("connecting", `Connecting to ${this.host}`);
      this.opening = openConnection(this).then(
        (account) => {
          this.lastError = undefined;
          this.setState("online");
          this.emitStatus("online", `Connected to ${this.host}${account ? ` (logged in as ${account})` : ""}`);
          this.afterRegistration();
        },
        (e: EstuaryError) => {
          this.lastError = e;
          this.emitStatus("error", e.message);
          this.setState("idle");
          this.lines.rejectAll(fail("unavailable", `Not sent: ${e.message}`));
          throw e;
        },
      );
      this.opening.catch(() => {});
    }
    if (this.state === "connecting" && this.opening) {
      await this.opening;
      return;
    }
    // Reconnecting: lines queue and wait up to retryWindowMs; JOINs wait for their own reply.
    if (this.state === "reconnecting") return;
    await this.waitOnline(Date.now() + this.cfg.timeoutMs);
  }

  /** Registered (first time or after a reconnect): the configured commands, then the queued lines. */
  afterRegistration(): void {
    for (const line of this.cfg.commandsAfterConnect) {
      const l = stripUnsafe(line).replace(/^\//, "");
      if (l.trim() !== "") this.enqueue([l]).catch((e: unknown) => this.log.warn({ err: e }, "command after connect"));
    }
    this.lines.pump();
  }

  async close(reason = "Bye"): Promise<void> {
    if (this.state === "closed") return;
    const client = this.client;
    this.setState("closed");
    clearTimeout(this.reconnectTimer);
    failJoins(this, fail("unavailable", "Session closed"));
    settleSayWaits(this);
    settleOpWaits(this);
    this.invites?.settleAll();
    this.channelList?.dispose();
    this.lines.rejectAll(fail("unavailable", "Not sent: the session was closed"));
    dropNickChange(this);
    this.lines.stop();
    if (client?.connected) {
      const closed = new Promise<void>((resolve) => client.once("socket close", () => resolve()));
      client.quit(stripUnsafe(reason));
      await Promise.race([closed, new Promise((r) => setTimeout(r, 2000).unref())]);
    }
    client?.removeAllListeners();
    this.channels.clear();
  }

  setState(state: State): void {
    this.state = state;
    if (state === "online") this.lines.setOnline(true);
    else if (state === "reconnecting" || state === "connecting") this.lines.setOnline(false);
    if (this.stateWaiters) for (const w of [...this.stateWaiters]) w();
  }

  private waitOnline(deadline: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const waiters = (this.stateWaiters ??= new Set());
      const check = () => {
        if (this.state === "online") done();
        else if (this.state === "closed") done(fail("unavailable", `The connection to ${this.host} is closed`));
        else if (this.state === "idle") done(this.lastError ?? fail("unavailable", `Not connected to ${this.host}`));
      };
      const timer = setTimeout(() => done(fail("timeout", `${this.host} is not reachable right now`)), deadline - Date.now());
      const done = (e?: EstuaryError) => {
        clearTimeout(timer);
        waiters.delete(check);
        if (waiters.size === 0 && this.stateWaiters === waiters) this.stateWaiters = undefined;
        if (e) reject(e);
        else resolve();
      };
      waiters.add(check);
      check();
    });
  }

  emitStatus(state: "connecting" | "online" | "degraded" | "error", text: string): void {
    this.hooks.emit({ type: "status", state, text });
  }

  // ---------------------------------------------------------------- lines

  /** `COMMAND middle… :trailing` from sanitised parameters; throws bad-request on an unusable middle parameter. */
  build(command: string, middles: string[], trailing?: string): string {
    const parts = [command];
    for (const m of middles) {
      const safe = safeMiddle(m);
      if (safe === undefined) throw fail("bad-request", `Invalid IRC parameter: ${JSON.stringify(stripUnsafe(m))}`);
      parts.push(safe);
    }
    if (trailing !== undefined) parts.push(`:${stripUnsafe(trailing)}`);
    return parts.join(" ");
  }

  /**
   * Queues lines (all or none: a message is never half-queued); resolves once
   * every line is written to the socket after flood control (send-queue.ts).
   */
  enqueue(lines: string[], urgent = false): Promise<void> {
    if (this.state === "closed") return Promise.reject(fail("unavailable", "Not sent: the session was closed"));
    return this.lines.enqueue(lines, urgent);
  }

  // ---------------------------------------------------------------- commands (session.ts)

  join(channel: string, key?: string): Promise<RoomSnapshot> {
    return join(this, channel, key);
  }

  leave(channel: string, reason?: string): Promise<void> {
    return leave(this, channel, reason);
  }

  isJoined(channel: string): boolean {
    return this.channels.has(ircLower(channel));
  }

  say(target: string, lines: string[], action: boolean, direct: boolean): Promise<void> {
    return say(this, target, lines, action, direct);
  }

  /** The draft/relaymsg separators (the capability's value) when the server granted it, else undefined. */
  relaySeparators(): string | undefined {
    return relaySeparators(this);
  }

  /** ISUPPORT NICKLEN, when the server said. */
  nickLen(): number | undefined {
    const n = Number(this.client?.network.options.NICKLEN);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  }

  /** RELAYMSG (relay.ts): false when it cannot be used here and the caller must send otherwise. */
  relay(channel: string, nick: string, lines: string[], action: boolean): Promise<boolean> {
    return relay(this, channel, nick, lines, action);
  }

  /** The channel's latest messages from the server's own history (chathistory.ts); [] when unavailable. */
  history(channel: string, limit: number): Promise<HistoryMessage[]> {
    return history(this, channel, limit);
  }

  changeNick(nick: string): Promise<string> {
    return changeNick(this, nick);
  }

  topic(channel: string, text: string): Promise<void> {
    return topic(this, channel, text);
  }

  kick(channel: string, nick: string, reason?: string): Promise<void> {
    return kick(this, channel, nick, reason);
  }

  ban(channel: string, nick: string, reason?: string): Promise<void> {
    return ban(this, channel, nick, reason);
  }

  /** The server's public channels (LIST), at most LIST_MAX_ENTRIES, reused for a minute (channel-list.ts). */
  async listChannels(): Promise<ListedChannel[]> {
    await this.ensureOnline();
    this.channelList ??= new ChannelList({ send: () => this.enqueue([this.build("LIST", [])]) });
    return this.channelList.list();
  }

  /**
   * `INVITE <nick> <channel>`: resolves on 341 RPL_INVITING, rejects with the
   * refusal (no such nick, not an operator…). IRC carries no reason.
   */
  async invite(channel: string, nick: string): Promise<void> {
    const line = this.build("INVITE", [nick, channel]);
    const wait = (this.invites ??= new InviteWaits(this.cfg.timeoutMs)).wait(channel, nick);
    try {
      await this.enqueue([line]);
    } catch (e) {
      wait.cancel();
      throw e;
    }
    await wait.result;
  }

  async away(message: string | undefined): Promise<void> {
    if (this.state !== "online") return;
    await this.enqueue([message === undefined ? "AWAY" : this.build("AWAY", [], message || "Away")]);
  }

  // ---------------------------------------------------------------- events

  /** Every event of the client (wire/client.ts IrcEventSink), handled by channel-events.ts. */
  ircEvent(event: string, ev: unknown, client: IrcClient): void {
    if (client !== this.client || this.state === "closed") return;
    dispatch(this, event, ev);
  }

  isSelf(nick: string | undefined): boolean {
    return nick !== undefined && ircLower(nick) === ircLower(this.nick);
  }

  isChannelName(target: string): boolean {
    const types = this.client?.network.options.CHANTYPES;
    const prefixes = Array.isArray(types) ? types.join("") : CHANNEL_PREFIXES;
    return target !== "" && prefixes.includes(target[0]!);
  }
}
