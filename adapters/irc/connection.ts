/**
 * One IRC connection of one XMPP user to one IRC server: registration,
 * channel state, the outgoing queue with flood control, reconnection with
 * rejoin, and the translation of what the server says into LegacyEvents.
 *
 * wire/client.ts parses lines, negotiates IRCv3 capabilities (CAP LS 302) and
 * tracks ISUPPORT; every line this module sends after registration is built
 * here from sanitised parameters and goes through the flood-controlled queue.
 */
import Bottleneck from "bottleneck";
import type { ParsedMessage } from "irc-framework";
import type { Logger } from "pino";
import { fail, type EstuaryError } from "../../core/errors.ts";
import { roomPasswordRequired } from "../../core/rooms.ts";
import type { LegacyEvent, Occupant, RoomId, RoomSnapshot, Show } from "../../core/model.ts";
import { ircToRich } from "./format.ts";
import { CHANNEL_PREFIXES, contactId, ircLower, roomId } from "./ids.ts";
import { byteLength, maxBodyBytes, oneLine, safeMiddle, splitByBytes, stripUnsafe } from "./lines.ts";
import { modeForSymbol, rolesFromModes } from "./roles.ts";
import { SendQueue } from "./send-queue.ts";
import { ChannelList, type ListedChannel } from "./channel-list.ts";
import { InviteWaits } from "./invites.ts";
import { IrcClient } from "./wire/client.ts";
import { isCertificateError } from "./wire/socket.ts";

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

interface OccState {
  nick: string;
  modes: Set<string>;
  away?: string | undefined;
}

/** How long a join waits for the MODE answer that follows the server's join replay. */
const JOIN_BARRIER_MS = 3000;

/** Most replayed lines kept per join (the rest of a long replay is dropped: it is old history). */
const MAX_REPLAYED = 200;

interface ChannelState {
  name: string;
  room: RoomId;
  key?: string | undefined;
  occupants: Map<string, OccState>;
  selfModes: Set<string>;
  subject?: { text: string; by?: string; at?: Date };
  synced: boolean;
  /** Occupants before a reconnect: the rejoin emits only the difference. */
  previous?: Map<string, OccState> | undefined;
  /** Waiting for the answer to MODE after NAMES (see the userlist handler). */
  barrier?: NodeJS.Timeout | undefined;
  /** Lines the server replayed before the join completed (InspIRCd +H, chathistory batches). */
  history?: Extract<LegacyEvent, { type: "message" }>[];
}

interface PendingJoin {
  resolve(snapshot: RoomSnapshot): void;
  reject(error: EstuaryError): void;
  timer: NodeJS.Timeout;
  rejoin: boolean;
}

/**
 * Staggers reconnects of every session of the process so a netsplit or a
 * server restart does not make hundreds of connections at once
 * (matrix-appservice-irc #1601).
 */
const reconnectLimiter = new Bottleneck({ maxConcurrent: 4, minTime: 100 });

/**
 * Numerics that answer a JOIN (RFC 2812 §5.2, plus common extensions), as the
 * error kinds XEP-0045 §7.2 distinguishes (see core/stanzas/muc.ts):
 * a key is a room password (§7.2.6), invite-only is members-only (§7.2.7),
 * a ban is a ban (§7.2.8), a full channel is "max users" (§7.2.10).
 */
const JOIN_ERRORS: Record<string, (text: string) => EstuaryError> = {
  "403": (t) => fail("not-found", t), // ERR_NOSUCHCHANNEL
  "476": (t) => fail("not-found", t), // ERR_BADCHANMASK
  "479": (t) => fail("not-found", t), // ERR_BADCHANNAME (InspIRCd, Solanum)
  "405": (t) => fail("not-allowed", t), // ERR_TOOMANYCHANNELS
  "471": (t) => fail("service-unavailable", t), // ERR_CHANNELISFULL (+l)
  "473": (t) => fail("registration-required", t), // ERR_INVITEONLYCHAN (+i)
  "474": (t) => fail("forbidden", t), // ERR_BANNEDFROMCHAN (+b)
  "475": (t) => roomPasswordRequired(t), // ERR_BADCHANNELKEY (+k)
  "477": (t) => fail("registration-required", t), // ERR_NEEDREGGEDNICK (+R: identify with services)
  "489": (t) => fail("not-allowed", t), // ERR_SECUREONLYCHAN
  "520": (t) => fail("forbidden", t), // ERR_CANTJOINOPERSONLY (InspIRCd)
};
/** Numerics that answer a NICK. */
const NICK_ERRORS: Record<string, "conflict" | "not-acceptable"> = {
  "433": "conflict", // ERR_NICKNAMEINUSE
  "436": "conflict", // ERR_NICKCOLLISION
  "437": "conflict", // ERR_UNAVAILRESOURCE
  "432": "not-acceptable", // ERR_ERRONEUSNICKNAME
  "447": "not-acceptable", // ERR_NONICKCHANGE (InspIRCd +N)
  "438": "not-acceptable", // ERR_NICKTOOFAST
};

const ECHO_MEMORY = 64;

/**
 * Numerics refusing a PRIVMSG, by its target (RFC 2812 §3.3.1 and common
 * extensions). With echo-message a line is confirmed by its echo or refused
 * by one of these, so the sender gets an error (RFC 6120 §8.3) rather than a
 * server notice they may never connect with the message.
 */
const SEND_ERRORS: Record<string, (text: string) => EstuaryError> = {
  "401": (t) => fail("not-found", t), // ERR_NOSUCHNICK
  "403": (t) => fail("not-found", t), // ERR_NOSUCHCHANNEL
  "404": (t) => fail("forbidden", t), // ERR_CANNOTSENDTOCHAN (+m, +n, banned)
  "477": (t) => fail("forbidden", t), // ERR_NEEDREGGEDNICK (+R/+M: identify with services to speak)
  "486": (t) => fail("forbidden", t), // ERR_NONONREG (the person accepts messages only from identified users)
  "531": (t) => fail("forbidden", t), // ERR_CANTSENDTOUSER (InspIRCd)
  "716": (t) => fail("forbidden", t), // ERR_TARGUMODEG (caller-id: the person must accept you first)
};

/**
 * Numerics refusing a channel operation (TOPIC, KICK, MODE +b), naming the
 * channel: the XMPP request fails with them (XEP-0045 §8.1: forbidden for a
 * subject change; §8.2: a refused kick), instead of succeeding beside a
 * server notice.
 */
const CHANNEL_OP_ERRORS: Record<string, (text: string) => EstuaryError> = {
  "482": (t) => fail("forbidden", t), // ERR_CHANOPRIVSNEEDED
  "442": (t) => fail("not-acceptable", t), // ERR_NOTONCHANNEL
  "403": (t) => fail("not-found", t), // ERR_NOSUCHCHANNEL
};

/** A TOPIC or KICK sent and not yet seen done (the server relays it to the channel) or refused. */
interface OpWait {
  lower: string;
  command: "TOPIC" | "KICK";
  /** KICK: the lowered nick kicked. */
  nick?: string;
  /** Error numerics the lines may still draw (a ban's MODE and KICK are refused once each). */
  errorsLeft: number;
  settled: boolean;
  done(error?: EstuaryError): void;
}

/** Longest a sent line waits for its echo; a server that does not echo is then no longer waited for. */
const ECHO_TIMEOUT_MS = 5000;

/** A PRIVMSG sent and not yet echoed (echo-message) or refused, oldest first per target. */
interface SayWait {
  lower: string;
  /** Echo keys (`P\ntext`) still expected. */
  keys: string[];
  /** The wire line of each key still expected (same index): sent again if the connection dies first. */
  lines: string[];
  done(error?: EstuaryError): void;
  /** Stops the echo timeout (the connection is down: no echo can come yet). */
  pause(): void;
  /** Starts the echo timeout again (the lines were written again). */
  resume(): void;
  /** Every line is written (lines still in the send queue need no resending: they go after the reconnect). */
  written: boolean;
}

/**
 * IRCv3 capabilities the client does not ask for by itself (wire/registration.ts):
 * draft/relaymsg (ircv3-specifications PR #417) for bridges, and
 * chathistory (https://ircv3.net/specs/extensions/chathistory, prefixed
 * `draft/` while it was a draft) for the network's own history of a channel.
 */
const EXTRA_CAPS = ["draft/relaymsg", "draft/chathistory", "chathistory"];

/** draft/relaymsg: the tag naming the client that relayed a message (Ergo's name, then the spec text's). */
const RELAYMSG_TAGS = ["draft/relaymsg", "relaymsg"];

/** Longest a CHATHISTORY request may take (a join waits for it) before it counts as unanswered. */
const HISTORY_TIMEOUT_MS = 5000;

type HistoryMessage = Extract<LegacyEvent, { type: "message" }>;

/** A CHATHISTORY LATEST waiting for its `chathistory` batch. */
interface HistoryRequest {
  limit: number;
  messages: HistoryMessage[];
  finish(messages: HistoryMessage[]): void;
}

interface RelayWait {
  lower: string;
  nick: string;
  done(result: "ok" | "fail" | "timeout"): void;
}

/**
 * Errors a new attempt with the same settings cannot fix (refused password,
 * failed SASL login, untrusted TLS certificate): reconnection stops on them
 * instead of retrying every few minutes forever.
 */
const permanent = new WeakSet<EstuaryError>();

function permanentFail(kind: "not-allowed" | "unavailable", text: string): EstuaryError {
  const e = fail(kind, text);
  permanent.add(e);
  return e;
}

/** privmsg, action and notice events (wire/events.ts). */
type MsgEvent = {
  nick: string;
  ident: string;
  hostname: string;
  target: string;
  message: string;
  tags: Record<string, string>;
  time?: number;
  from_server: boolean;
};

export class IrcConnection {
  readonly host: string;
  nick: string;
  private readonly cfg: ConnectionConfig;
  private readonly hooks: ConnectionHooks;
  private readonly log: Logger;
  private client: IrcClient | undefined;
  private state: State = "idle";
  private opening: Promise<void> | undefined;
  private lastError: EstuaryError | undefined;
  private ident: string | undefined;
  private displayedHost: string | undefined;
  private readonly channels = new Map<string, ChannelState>();
  private readonly joins = new Map<string, PendingJoin>();
  private nickChange: { resolve(nick: string): void; reject(e: EstuaryError): void; timer: NodeJS.Timeout } | undefined;
  private readonly lines: SendQueue;
  private readonly stateWaiters = new Set<() => void>();
  private readonly echoes = new Map<string, string[]>();
  /** TOPIC and KICK lines waiting for the server's answer, oldest first. */
  private readonly opWaits: OpWait[] = [];
  /** Messages waiting for their echoes (or an error numeric), oldest first. */
  private readonly sayWaits: SayWait[] = [];
  /** The server did not echo a line in time once: later messages count as sent when written. */
  private sayUnechoed = false;
  /** RELAYMSG lines written and not yet echoed or refused, oldest first (the server answers in order). */
  private readonly relayWaits: RelayWait[] = [];
  /** Channels where the server refused RELAYMSG (FAIL RELAYMSG …), with its reason: the prefix is used there. */
  private readonly relayRefused = new Map<string, string>();
  /** The server did not echo a RELAYMSG line in time once: later ones are taken as sent when written (no 20 s stalls). */
  private relayUnechoed = false;
  /** CHATHISTORY requests by lowered channel (one at a time per channel). */
  private readonly historyRequests = new Map<string, HistoryRequest>();
  /** Requests that timed out, by channel: their batch, if it still comes, is dropped rather than shown live. */
  private readonly lateHistory = new Map<string, number>();
  private reconnectAttempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  /** The server's channel list (LIST), cached briefly for paging. */
  private readonly channelList = new ChannelList({ send: () => this.enqueue([this.build("LIST", [])]) });
  /** INVITEs sent and waiting for 341 or a refusal. */
  private readonly invites: InviteWaits;

  constructor(cfg: ConnectionConfig, hooks: ConnectionHooks) {
    this.cfg = cfg;
    this.host = cfg.host;
    this.nick = cfg.nick;
    this.hooks = hooks;
    this.log = hooks.log.child({ ircServer: cfg.host });
    this.lines = new SendQueue(
      { host: cfg.host, maxQueue: cfg.maxQueue, retryWindowMs: cfg.retryWindowMs, flood: cfg.flood },
      {
        writable: () => this.state === "online" && this.client?.connection.connected === true,
        write: (line, written) => this.client!.connection.write(line, written),
      },
    );
    this.invites = new InviteWaits(cfg.timeoutMs);
  }

  get online(): boolean {
    return this.state === "online";
  }

  get closed(): boolean {
    return this.state === "closed";
  }

  get channelCount(): number {
    return this.channels.size + this.joins.size;
  }

  get queued(): number {
    return this.lines.length;
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
      this.opening = this.open().then(
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

  /** One connection attempt: resolves on RPL_WELCOME (001), with the account if SASL logged in. */
  private open(): Promise<string | undefined> {
    return new Promise((resolve, reject) => {
      const client = new IrcClient();
      client.requestCap(EXTRA_CAPS);
      this.client = client;
      this.attach(client);
      const base = this.nick;
      let tries = 0;
      let serverError = "";
      let account: string | undefined;
      let settled = false;
      const finish = (error?: EstuaryError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        client.off("registered", onRegistered);
        client.off("socket close", onClose);
        client.off("loggedin", onLoggedIn);
        client.off("sasl failed", onSaslFailed);
        client.connection.off("message", onMessage);
        if (error) {
          this.client = undefined;
          client.removeAllListeners();
          client.connection.end();
          reject(error);
        } else resolve(account);
      };
      const timer = setTimeout(
        () => finish(fail("timeout", `${this.host} did not complete registration in time`)),
        this.cfg.timeoutMs,
      );
      const onRegistered = (ev: { nick: string }) => {
        this.nick = ev.nick;
        finish();
      };
      const onClose = (err?: Error) => {
        if (!serverError && this.cfg.tls && isCertificateError(err)) {
          finish(
            permanentFail(
              "unavailable",
              `Could not connect to ${this.host}: its TLS certificate is not trusted (${err?.message}); the gateway administrator can trust the server's CA (servers.${this.host}.ca)`,
            ),
          );
          return;
        }
        const why = serverError || err?.message || "connection closed";
        finish(fail("unavailable", `Could not connect to ${this.host}: ${why}`));
      };
      // RPL_LOGGEDIN (900, IRCv3 SASL 3.1).
      const onLoggedIn = (ev: { account?: string }) => {
        account = ev.account || undefined;
      };
      // The client reports SASL failures (904 ERR_SASLFAIL, 902 ERR_NICKLOCKED, 905, 906, no `sasl`
      // capability, no PLAIN) and then goes on registering without an account. The user asked to
      // log in (cloak, +R channels, nick protection), so registering anonymously is refused here.
      const onSaslFailed = (ev: { reason?: string; message?: string }) => {
        const why = ev.message ? stripUnsafe(ev.message) : ev.reason === "capability_missing" ? "the server does not offer SASL" : (ev.reason ?? "failed");
        finish(permanentFail("not-allowed", `SASL login as ${this.cfg.sasl?.account ?? "?"} on ${this.host} failed: ${why}`));
      };
      const onMessage = (msg: ParsedMessage) => {
        const reason = msg.params[msg.params.length - 1] ?? "";
        if (msg.command === "ERROR") serverError = reason;
        else if (msg.command === "433" || msg.command === "436" || msg.command === "437") {
          // Nick in use at registration: try nick_, nick__, nick___ (Biboumi does the same).
          tries++;
          if (tries > 3) finish(fail("conflict", `The nickname ${base} is already in use on ${this.host}`));
          else {
            this.nick = `${safeMiddle(base) ?? "estuary"}${"_".repeat(tries)}`;
            client.connection.write(`NICK ${this.nick}`);
          }
        } else if (msg.command === "432") {
          finish(fail("not-acceptable", `${this.host} refuses the nickname ${base}: ${reason}`));
        } else if (msg.command === "464" || msg.command === "465") {
          // ERR_PASSWDMISMATCH, ERR_YOUREBANNEDCREEP
          finish(permanentFail("not-allowed", `${this.host}: ${reason}`));
        }
      };
      client.on("registered", onRegistered);
      client.on("socket close", onClose);
      client.on("loggedin", onLoggedIn);
      client.on("sasl failed", onSaslFailed);
      client.connection.on("message", onMessage);
      const cfg = this.cfg;
      client.connect({
        host: cfg.host.replace(/^\[(.*)\]$/, "$1"),
        port: cfg.port,
        tls: cfg.tls,
        rejectUnauthorized: cfg.rejectUnauthorized,
        ...(cfg.ca ? { ca: cfg.ca } : {}),
        nick: safeMiddle(this.nick) ?? "estuary",
        username: safeMiddle(cfg.username) ?? "estuary",
        gecos: stripUnsafe(cfg.realname) || "Estuary",
        ...(cfg.password ? { password: stripUnsafe(cfg.password) } : {}),
        ...(cfg.sasl
          ? { account: { account: stripUnsafe(cfg.sasl.account), password: stripUnsafe(cfg.sasl.password) } }
          : {}),
        ...(cfg.webirc
          ? {
              webirc: {
                password: stripUnsafe(cfg.webirc.password),
                username: stripUnsafe(cfg.webirc.gateway),
                hostname: stripUnsafe(cfg.webirc.hostname),
                address: stripUnsafe(cfg.webirc.ip),
              },
            }
          : {}),
        // Reconnection is ours (backoff with jitter, staggered, with rejoin and diff): the client never reconnects.
        enable_echomessage: true,
      });
    });
  }

  private afterRegistration(): void {
    for (const line of this.cfg.commandsAfterConnect) {
      const l = stripUnsafe(line).replace(/^\//, "");
      if (l.trim() !== "") this.enqueue([l]).catch((e: unknown) => this.log.warn({ err: e }, "command after connect"));
    }
    this.lines.pump();
  }

  private lost(why: string): void {
    if (this.state !== "online") return;
    this.client = undefined;
    this.resendUnechoed();
    this.settleOpWaits();
    for (const ch of this.channels.values()) {
      ch.previous ??= ch.occupants;
      ch.synced = false;
    }
    this.failJoins(fail("unavailable", `Lost the connection to ${this.host}`));
    this.setState("reconnecting");
    this.emitStatus("degraded", `Lost the connection to ${this.host} (${why}); reconnecting`);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    // Exponential backoff with "equal jitter", capped (5 minutes by default).
    const base = Math.min(this.cfg.reconnect.maxMs, this.cfg.reconnect.initialMs * 2 ** this.reconnectAttempt);
    const delay = base / 2 + Math.random() * (base / 2);
    this.reconnectAttempt++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.state !== "reconnecting") return;
      if (this.channels.size === 0 && this.lines.length === 0) {
        // Nothing to restore: open lazily next time.
        this.setState("idle");
        this.hooks.onIdle();
        return;
      }
      reconnectLimiter
        .schedule(() => this.open())
        .then(
          () => {
            if (this.state !== "reconnecting") return;
            this.reconnectAttempt = 0;
            this.setState("online");
            this.emitStatus("online", `Reconnected to ${this.host}`);
            this.rejoin();
            this.afterRegistration();
          },
          (e: EstuaryError) => {
            if (this.state !== "reconnecting") return;
            this.log.info({ err: e }, "reconnect failed");
            if (permanent.has(e)) this.giveUp(e);
            else this.scheduleReconnect();
          },
        );
    }, delay);
  }

  /** Reconnection failed for good: the rooms close with the reason; the next join or message starts afresh. */
  private giveUp(e: EstuaryError): void {
    this.lastError = e;
    this.reconnectAttempt = 0;
    for (const ch of this.channels.values()) this.hooks.emit({ type: "room-closed", room: ch.room, how: "error", reason: e.message });
    this.channels.clear();
    this.failJoins(e);
    this.setState("idle");
    this.lines.rejectAll(fail("unavailable", `Not sent: ${e.message}`));
    this.emitStatus("error", e.message);
    this.hooks.onIdle();
  }

  private rejoin(): void {
    for (const ch of this.channels.values()) {
      const lower = ircLower(ch.name);
      const timer = setTimeout(() => this.settleJoin(lower, fail("timeout", `${ch.name}: no answer to JOIN`)), this.cfg.timeoutMs);
      this.joins.set(lower, { resolve: () => {}, reject: () => {}, timer, rejoin: true });
      this.enqueue([this.build("JOIN", [ch.name, ...(ch.key ? [ch.key] : [])])], true).catch(() => {});
    }
  }

  async close(reason = "Bye"): Promise<void> {
    if (this.state === "closed") return;
    const client = this.client;
    this.setState("closed");
    clearTimeout(this.reconnectTimer);
    this.failJoins(fail("unavailable", "Session closed"));
    this.settleSayWaits();
    this.invites.settleAll();
    this.channelList.dispose();
    this.lines.rejectAll(fail("unavailable", "Not sent: the session was closed"));
    if (this.nickChange) {
      clearTimeout(this.nickChange.timer);
      this.nickChange.reject(fail("unavailable", "Session closed"));
      this.nickChange = undefined;
    }
    this.lines.stop();
    if (client?.connected) {
      const closed = new Promise<void>((resolve) => client.once("socket close", () => resolve()));
      client.quit(stripUnsafe(reason));
      await Promise.race([closed, new Promise((r) => setTimeout(r, 2000).unref())]);
    }
    client?.removeAllListeners();
    this.channels.clear();
  }

  private setState(state: State): void {
    this.state = state;
    if (state === "online") this.lines.setOnline(true);
    else if (state === "reconnecting" || state === "connecting") this.lines.setOnline(false);
    for (const w of [...this.stateWaiters]) w();
  }

  private waitOnline(deadline: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.state === "online") done();
        else if (this.state === "closed") done(fail("unavailable", `The connection to ${this.host} is closed`));
        else if (this.state === "idle") done(this.lastError ?? fail("unavailable", `Not connected to ${this.host}`));
      };
      const timer = setTimeout(() => done(fail("timeout", `${this.host} is not reachable right now`)), deadline - Date.now());
      const done = (e?: EstuaryError) => {
        clearTimeout(timer);
        this.stateWaiters.delete(check);
        if (e) reject(e);
        else resolve();
      };
      this.stateWaiters.add(check);
      check();
    });
  }

  private emitStatus(state: "connecting" | "online" | "degraded" | "error", text: string): void {
    this.hooks.emit({ type: "status", state, text });
  }

  // ---------------------------------------------------------------- queue

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

  // ---------------------------------------------------------------- commands

  async join(channel: string, key?: string): Promise<RoomSnapshot> {
    const lower = ircLower(channel);
    const existing = this.channels.get(lower);
    if (existing?.synced) return this.snapshot(existing);
    const line = this.build("JOIN", [channel, ...(key ? [key] : [])]);
    return new Promise<RoomSnapshot>((resolve, reject) => {
      const previous = this.joins.get(lower);
      if (previous) clearTimeout(previous.timer);
      const timer = setTimeout(
        () => this.settleJoin(lower, fail("timeout", `${this.host} did not answer the join of ${channel} in time`)),
        this.cfg.timeoutMs,
      );
      this.joins.set(lower, {
        resolve: (s) => {
          previous?.resolve(s);
          resolve(s);
        },
        reject: (e) => {
          previous?.reject(e);
          reject(e);
        },
        timer,
        rejoin: false,
      });
      if (key) {
        const ch = this.channels.get(lower);
        if (ch) ch.key = key;
      }
      this.pendingKeys.set(lower, key);
      this.enqueue([line]).catch((e: EstuaryError) => this.settleJoin(lower, e));
    });
  }

  private readonly pendingKeys = new Map<string, string | undefined>();

  private settleJoin(lower: string, result: EstuaryError | ChannelState): void {
    const pending = this.joins.get(lower);
    if (!pending) return;
    this.joins.delete(lower);
    clearTimeout(pending.timer);
    if (result instanceof Error) {
      const ch = this.channels.get(lower);
      if (pending.rejoin && ch) {
        this.channels.delete(lower);
        this.hooks.emit({ type: "room-closed", room: ch.room, how: "error", reason: result.message });
      } else if (ch && !ch.synced) this.channels.delete(lower);
      pending.reject(result);
      if (this.channelCount === 0) this.hooks.onIdle();
    } else pending.resolve(this.snapshot(result));
  }

  private failJoins(e: EstuaryError): void {
    for (const [lower, p] of [...this.joins]) {
      if (p.rejoin) {
        this.joins.delete(lower);
        clearTimeout(p.timer);
      } else this.settleJoin(lower, e);
    }
  }

  async leave(channel: string, reason?: string): Promise<void> {
    const lower = ircLower(channel);
    const ch = this.channels.get(lower);
    this.channels.delete(lower);
    const pending = this.joins.get(lower);
    if (pending) this.settleJoin(lower, fail("not-found", "Left before the join completed"));
    if (ch && this.state === "online") await this.enqueue([this.build("PART", [ch.name], reason ?? undefined)]);
    if (this.channelCount === 0) this.hooks.onIdle();
  }

  isJoined(channel: string): boolean {
    return this.channels.has(ircLower(channel));
  }

  async say(target: string, lines: string[], action: boolean, direct: boolean): Promise<void> {
    const lineLen = Number(this.client?.network.options.LINELEN) || 512;
    const out: string[] = [];
    const echoKeys: string[] = [];
    for (const text of lines) {
      // CTCP ACTION adds "\x01ACTION " and "\x01" (9 bytes) around the text.
      const limit =
        maxBodyBytes({ lineLen, nick: this.nick, user: this.ident, host: this.displayedHost, command: "PRIVMSG", target }) -
        (action ? 9 : 0);
      for (const piece of splitByBytes(stripUnsafe(text), limit)) {
        if (piece === "") continue;
        out.push(this.build("PRIVMSG", [target], action ? `\x01ACTION ${piece}\x01` : piece));
        echoKeys.push(`${action ? "A" : "P"}\n${piece}`);
      }
    }
    if (out.length === 0) throw fail("not-acceptable", "Empty message: IRC cannot send it");
    const done = this.enqueue(out);
    // Remember what we sent so echo-message copies are not emitted (the core reflects them itself),
    // and wait for them: an echo confirms a line, an error numeric (401, 404…) refuses it.
    const echoing = this.client?.network.cap.isEnabled("echo-message") === true;
    const key = ircLower(target);
    if (echoing) {
      const list = this.echoes.get(key) ?? [];
      list.push(...echoKeys);
      this.echoes.set(key, list.slice(-ECHO_MEMORY));
    }
    const confirmed = echoing && !this.sayUnechoed ? this.awaitEchoes(key, echoKeys, out) : undefined;
    if (direct) this.hooks.onDirectActivity();
    try {
      await done;
    } catch (e) {
      confirmed?.cancel();
      throw e;
    }
    if (confirmed) {
      confirmed.wait.written = true;
      // Written to a connection that died meanwhile: sent again after the reconnect.
      if (this.state === "online") confirmed.wait.resume();
      else this.resend(confirmed.wait);
      await confirmed.result;
    }
  }

  private awaitEchoes(lower: string, keys: string[], lines: string[]): { result: Promise<void>; cancel(): void; wait: SayWait } {
    let settle!: (error?: EstuaryError) => void;
    let timer: NodeJS.Timeout | undefined;
    const result = new Promise<void>((resolve, reject) => {
      settle = (error) => {
        clearTimeout(timer);
        const i = this.sayWaits.indexOf(wait);
        if (i >= 0) this.sayWaits.splice(i, 1);
        if (error) reject(error);
        else resolve();
      };
    });
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (!this.sayUnechoed) {
          this.sayUnechoed = true;
          this.log.info({ target: lower }, "no echo of a sent line in time; lines are taken as sent from now on");
        }
        settle();
      }, Math.min(this.cfg.timeoutMs, ECHO_TIMEOUT_MS));
    };
    // The echo timeout starts when the lines are written (say()), not while flood control holds them.
    const wait: SayWait = { lower, keys: [...keys], lines: [...lines], done: (e) => settle(e), pause: () => clearTimeout(timer), resume: arm, written: false };
    this.sayWaits.push(wait);
    return { result, cancel: () => settle(), wait };
  }

  /**
   * The connection died with messages written but not echoed: the server may
   * have closed before reading them (an IRC server restart), so their lines
   * go out again after the reconnect, ahead of what was typed meanwhile, and
   * their messages still wait for the echo. Refused past the retry window,
   * like any line.
   */
  private resendUnechoed(): void {
    for (const w of this.sayWaits) {
      w.pause();
      // Lines still queued go out after the reconnect anyway; a message cut by the drop halfway
      // through its lines is not resent (its written part may be lost: one long message, rarely).
      if (w.written) this.resend(w);
    }
  }

  private resend(w: SayWait): void {
    if (w.lines.length === 0) return;
    this.lines.requeue(w.lines).then(
      () => w.resume(),
      (e: EstuaryError) => w.done(e),
    );
  }

  /** The session is closing: no echo will come; what was written counts as sent. */
  private settleSayWaits(): void {
    for (const w of [...this.sayWaits]) w.done();
    this.settleOpWaits();
  }

  /** TOPIC/KICK requests in flight: the connection is gone, no answer will come; they count as done. */
  private settleOpWaits(): void {
    for (const w of [...this.opWaits]) {
      w.errorsLeft = 0;
      w.done();
    }
  }

  /** Our own line came back (echo-message): it counts for the oldest message waiting for it. */
  private sayEchoed(lower: string, key: string): void {
    const wait = this.sayWaits.find((w) => w.lower === lower && w.keys.includes(key));
    if (!wait) return;
    const i = wait.keys.indexOf(key);
    wait.keys.splice(i, 1);
    wait.lines.splice(i, 1);
    if (wait.keys.length === 0) wait.done();
  }

  // ---------------------------------------------------------------- draft/relaymsg

  /** The draft/relaymsg separators (the capability's value) when the server granted it, else undefined. */
  relaySeparators(): string | undefined {
    const cap = this.client?.network.cap;
    if (!cap?.isEnabled("draft/relaymsg")) return undefined;
    return cap.available.get("draft/relaymsg") ?? "";
  }

  /** ISUPPORT NICKLEN, when the server said. */
  nickLen(): number | undefined {
    const n = Number(this.client?.network.options.NICKLEN);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  }

  /**
   * `RELAYMSG <channel> <nick> :<text>` for each line (draft/relaymsg, PR #417).
   * Resolves false when it cannot be used (no capability, refused in this
   * channel): nothing was shown and the caller sends otherwise. With
   * echo-message each line is confirmed by its echo or refused by a
   * `FAIL RELAYMSG`; without it, by being written.
   */
  async relay(channel: string, nick: string, lines: string[], action: boolean): Promise<boolean> {
    const lower = ircLower(channel);
    if (this.relaySeparators() === undefined || this.relayRefused.has(lower)) return false;
    const lineLen = Number(this.client?.network.options.LINELEN) || 512;
    // Both what we send and the PRIVMSG the server makes of it (`:nick!user@host PRIVMSG …`) must fit.
    const relayed = maxBodyBytes({ lineLen, nick, command: "PRIVMSG", target: channel });
    const sent = lineLen - 2 - byteLength(`RELAYMSG ${channel} ${nick} :`);
    const limit = Math.min(relayed, sent) - (action ? 9 : 0);
    const out: string[] = [];
    for (const text of lines) {
      for (const piece of splitByBytes(stripUnsafe(text), limit)) {
        if (piece !== "") out.push(this.build("RELAYMSG", [channel, nick], action ? `\x01ACTION ${piece}\x01` : piece));
      }
    }
    if (out.length === 0) return true;
    const confirm = this.client?.network.cap.isEnabled("echo-message") === true && !this.relayUnechoed;
    const waits = confirm ? out.map(() => this.awaitRelay(lower, nick)) : [];
    try {
      await this.enqueue(out);
    } catch (e) {
      for (const w of waits) w.cancel();
      throw e;
    }
    const results = await Promise.all(waits.map((w) => w.result));
    // A refused line was not shown: the whole message goes again the other way (no loss).
    return !results.includes("fail");
  }

  private awaitRelay(lower: string, nick: string): { result: Promise<"ok" | "fail" | "timeout">; cancel(): void } {
    let resolve!: (r: "ok" | "fail" | "timeout") => void;
    const result = new Promise<"ok" | "fail" | "timeout">((r) => (resolve = r));
    const settle = (r: "ok" | "fail" | "timeout") => {
      clearTimeout(timer);
      const i = this.relayWaits.indexOf(wait);
      if (i >= 0) this.relayWaits.splice(i, 1);
      resolve(r);
    };
    const wait: RelayWait = { lower, nick: ircLower(nick), done: settle };
    const timer = setTimeout(() => {
      if (!this.relayUnechoed) {
        this.relayUnechoed = true;
        this.log.info({ channel: lower }, "no echo of a RELAYMSG line in time; taken as sent, and no longer awaited");
      }
      settle("timeout");
    }, this.cfg.timeoutMs);
    this.relayWaits.push(wait);
    // Cancelled when the lines were never written: nothing to wait for, and no sign of a silent server.
    return { result, cancel: () => settle("timeout") };
  }

  private relayEchoed(lower: string, nick: string): void {
    const w = this.relayWaits.find((x) => x.lower === lower && x.nick === ircLower(nick));
    w?.done("ok");
  }

  /** IRCv3 standard replies: `FAIL <command> <code> [<context>…] :<description>`. */
  private onFail(msg: ParsedMessage): void {
    const [command, code] = msg.params;
    const description = stripUnsafe(msg.params[msg.params.length - 1] ?? "");
    if (command === "RELAYMSG") {
      const w = this.relayWaits[0];
      if (!w) return;
      // PRIVS_NEEDED and the like: stop trying in this channel until something changes (op, rejoin).
      // INVALID_NICK is about one nick: only that message goes with a prefix.
      if (code !== "INVALID_NICK") {
        if (!this.relayRefused.has(w.lower)) this.log.warn({ channel: w.lower, code, description }, "the server refuses RELAYMSG here; relaying with a prefix");
        this.relayRefused.set(w.lower, `${code ?? "FAIL"}: ${description}`);
      }
      w.done("fail");
      return;
    }
    if (command === "CHATHISTORY") {
      // FAIL CHATHISTORY <code> <subcommand> [<target>] :… (chathistory "Errors and Warnings").
      const target = msg.params.length > 4 ? ircLower(msg.params[3] ?? "") : undefined;
      this.log.info({ code, target, description }, "CHATHISTORY refused");
      for (const [lower, req] of [...this.historyRequests]) if (target === undefined || target === lower) req.finish([]);
      return;
    }
    if (this.state === "online") {
      this.hooks.emit({ type: "service-message", service: this.host, text: ircToRich(msg.params.map(stripUnsafe).join(" ")) });
    }
  }

  // ---------------------------------------------------------------- chathistory

  /**
   * The channel's latest messages from the server's own history (IRCv3
   * chathistory: `CHATHISTORY LATEST <channel> * <n>`, n at most the
   * server's ISUPPORT CHATHISTORY), oldest first, as history. [] when the
   * server does not offer it, the channel is not joined, or no answer comes
   * within HISTORY_TIMEOUT_MS.
   */
  async history(channel: string, limit: number): Promise<HistoryMessage[]> {
    const lower = ircLower(channel);
    const ch = this.channels.get(lower);
    const cap = this.client?.network.cap;
    const offered = cap !== undefined && (cap.isEnabled("chathistory") || cap.isEnabled("draft/chathistory")) && cap.isEnabled("batch");
    if (!ch?.synced || this.state !== "online" || !offered || this.historyRequests.has(lower)) return [];
    // "If 0, the client SHOULD assume that there is no maximum number of messages."
    const max = Number(this.client?.network.options.CHATHISTORY);
    const n = Math.floor(Number.isFinite(max) && max > 0 ? Math.min(limit, max) : limit);
    if (n <= 0) return [];
    return new Promise<HistoryMessage[]>((resolve) => {
      const timer = setTimeout(() => {
        this.lateHistory.set(lower, (this.lateHistory.get(lower) ?? 0) + 1);
        this.log.warn({ channel: ch.name }, "no answer to CHATHISTORY in time; joining without the network's history");
        req.finish([]);
      }, Math.min(this.cfg.timeoutMs, HISTORY_TIMEOUT_MS));
      const req: HistoryRequest = {
        limit: n,
        messages: [],
        finish: (messages) => {
          clearTimeout(timer);
          if (this.historyRequests.get(lower) === req) this.historyRequests.delete(lower);
          resolve(messages);
        },
      };
      this.historyRequests.set(lower, req);
      this.enqueue([this.build("CHATHISTORY", ["LATEST", ch.name, "*", String(n)])], true).catch(() => req.finish([]));
    });
  }

  /** The end of a batch: a `chathistory` one answers the request for its target. */
  private onBatchEnd(ev: { type?: string; params?: string[] }): void {
    if (ev.type !== "chathistory" && ev.type !== "draft/chathistory") return;
    const lower = ircLower(ev.params?.[0] ?? "");
    const req = this.historyRequests.get(lower);
    if (req) {
      const out = req.messages.slice(-req.limit);
      // The spec says SHOULD be ascending; make sure (a stable sort keeps equal times in server order).
      if (out.every((m) => m.at)) out.sort((a, b) => a.at!.getTime() - b.at!.getTime());
      req.finish(out);
      return;
    }
    const late = this.lateHistory.get(lower);
    if (late) {
      if (late > 1) this.lateHistory.set(lower, late - 1);
      else this.lateHistory.delete(lower);
    }
  }

  async changeNick(nick: string): Promise<string> {
    if (ircLower(nick) === ircLower(this.nick)) return this.nick;
    await this.ensureOnline();
    const line = this.build("NICK", [nick]);
    if (this.nickChange) throw fail("conflict", "A nick change is already in progress");
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.nickChange = undefined;
        reject(fail("timeout", `${this.host} did not answer the nick change in time`));
      }, this.cfg.timeoutMs);
      this.nickChange = { resolve, reject, timer };
      this.enqueue([line]).catch((e: EstuaryError) => {
        clearTimeout(timer);
        this.nickChange = undefined;
        reject(e);
      });
    });
  }

  async topic(channel: string, text: string): Promise<void> {
    await this.confirmed([this.build("TOPIC", [channel], oneLine(text))], { lower: ircLower(channel), command: "TOPIC" });
  }

  async kick(channel: string, nick: string, reason?: string): Promise<void> {
    await this.confirmed([this.build("KICK", [channel, nick], reason ? oneLine(reason) : undefined)], { lower: ircLower(channel), command: "KICK", nick: ircLower(nick) });
  }

  async ban(channel: string, nick: string, reason?: string): Promise<void> {
    const mask = `${safeMiddle(nick) ?? ""}!*@*`;
    await this.confirmed([this.build("MODE", [channel, "+b", mask]), this.build("KICK", [channel, nick], reason ? oneLine(reason) : undefined)], {
      lower: ircLower(channel),
      command: "KICK",
      nick: ircLower(nick),
    });
  }

  /**
   * Sends a channel operation and resolves once the server relays it back
   * (TOPIC, KICK), rejects on its refusal (482…); after the timeout it is
   * taken as done (a server that answers nothing refused nothing we can tell).
   */
  private async confirmed(lines: string[], what: Pick<OpWait, "lower" | "command" | "nick">): Promise<void> {
    let settle!: (error?: EstuaryError) => void;
    const result = new Promise<void>((resolve, reject) => {
      settle = (error) => (error ? reject(error) : resolve());
    });
    const remove = () => {
      const i = this.opWaits.indexOf(wait);
      if (i >= 0) this.opWaits.splice(i, 1);
    };
    const wait: OpWait = {
      ...what,
      errorsLeft: lines.length,
      settled: false,
      done: (error) => {
        if (!wait.settled) {
          wait.settled = true;
          settle(error);
        }
        if (!error || wait.errorsLeft <= 0) {
          clearTimeout(timer);
          remove();
        }
      },
    };
    const timer = setTimeout(() => {
      remove();
      wait.done();
    }, this.cfg.timeoutMs);
    this.opWaits.push(wait);
    try {
      await this.enqueue(lines);
    } catch (e) {
      clearTimeout(timer);
      remove();
      throw e;
    }
    await result;
  }

  /** The server relayed a TOPIC or KICK of ours: the oldest matching request is done. */
  private opDone(lower: string, command: OpWait["command"], nick?: string): void {
    this.opWaits.find((w) => !w.settled && w.lower === lower && w.command === command && (nick === undefined || w.nick === nick))?.done();
  }

  /** The server's public channels (LIST), at most LIST_MAX_ENTRIES, reused for a minute (channel-list.ts). */
  async listChannels(): Promise<ListedChannel[]> {
    await this.ensureOnline();
    return this.channelList.list();
  }

  /**
   * `INVITE <nick> <channel>`: resolves on 341 RPL_INVITING, rejects with the
   * refusal (no such nick, not an operator…). IRC carries no reason.
   */
  async invite(channel: string, nick: string): Promise<void> {
    const line = this.build("INVITE", [nick, channel]);
    const wait = this.invites.wait(channel, nick);
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

  // ---------------------------------------------------------------- snapshot

  /** The join is complete: from now on the channel's events are live. */
  private finishJoin(lower: string): void {
    const ch = this.channels.get(lower);
    if (!ch || ch.synced) return;
    clearTimeout(ch.barrier);
    ch.barrier = undefined;
    const before = ch.previous;
    ch.previous = undefined;
    ch.synced = true;
    this.relayRefused.delete(lower);
    if (before) {
      this.emitDiff(ch, before);
      // A rejoin after a reconnect: what the server replayed is history the core de-duplicates.
      for (const m of ch.history?.splice(0) ?? []) this.hooks.emit(m);
    }
    this.settleJoin(lower, ch);
  }

  private snapshot(ch: ChannelState): RoomSnapshot {
    const self = rolesFromModes(ch.selfModes);
    const snapshot: RoomSnapshot = {
      nick: this.nick,
      self,
      occupants: [...ch.occupants.values()].map((o) => this.occupant(o)),
    };
    if (ch.subject) snapshot.subject = ch.subject;
    if (ch.history?.length) snapshot.history = ch.history.splice(0);
    return snapshot;
  }

  private occupant(o: OccState): Occupant {
    const occ: Occupant = { nick: o.nick, contact: contactId(this.host, o.nick), ...rolesFromModes(o.modes) };
    if (o.away !== undefined) {
      occ.show = "away";
      if (o.away) occ.status = o.away;
    }
    return occ;
  }

  private isSelf(nick: string | undefined): boolean {
    return nick !== undefined && ircLower(nick) === ircLower(this.nick);
  }

  private isChannelName(target: string): boolean {
    const types = this.client?.network.options.CHANTYPES;
    const prefixes = Array.isArray(types) ? types.join("") : CHANNEL_PREFIXES;
    return target !== "" && prefixes.includes(target[0]!);
  }

  private prefixModes(): Set<string> {
    const prefix = this.client?.network.options.PREFIX;
    return new Set(Array.isArray(prefix) ? prefix.map((p) => p.mode) : ["q", "a", "o", "h", "v"]);
  }

  // ---------------------------------------------------------------- events

  private attach(client: IrcClient): void {
    // One handler object for all of the client's events (ircEvent below): no listener closure per connection.
    client.sink = this;
  }

  /** Every event of the client (wire/client.ts IrcEventSink): raw lines to onFail/onNumeric, the rest through ircEvents. */
  ircEvent(event: string, ev: unknown, client: IrcClient): void {
    if (client !== this.client || this.state === "closed") return;
    if (event === "message") {
      const msg = ev as ParsedMessage;
      if (msg.command === "FAIL") this.onFail(msg);
      else if (!this.channelList.onMessage(msg) && !this.invites.onMessage(msg)) this.onNumeric(msg);
      return;
    }
    const handler = IrcConnection.ircEvents[event];
    if (!handler) return;
    try {
      handler.call(this, ev as never);
    } catch (e) {
      this.log.error({ err: e, event }, "IRC event handler failed");
    }
  }

  /** The handlers of the client's events, by event name (methods of the connection: `this` is it). */
  private static readonly ircEvents: Record<string, (this: IrcConnection, ev: never) => void> = {
    "socket close"(err: Error | undefined) {
      if (this.state === "online") this.lost(err?.message ?? "connection closed");
    },

    join(ev: { nick: string; ident: string; hostname: string; channel: string }) {
      const lower = ircLower(ev.channel);
      if (this.isSelf(ev.nick)) {
        this.ident = ev.ident || this.ident;
        this.displayedHost = ev.hostname || this.displayedHost;
        const ch = this.channels.get(lower);
        if (ch) {
          ch.previous ??= ch.occupants;
          ch.occupants = new Map();
          ch.selfModes = new Set();
          ch.synced = false;
          ch.name = ev.channel;
        } else if (this.joins.has(lower)) {
          this.channels.set(lower, {
            name: ev.channel,
            room: roomId(this.host, ev.channel),
            key: this.pendingKeys.get(lower),
            occupants: new Map(),
            selfModes: new Set(),
            synced: false,
          });
        }
        this.pendingKeys.delete(lower);
        return;
      }
      const ch = this.channels.get(lower);
      if (!ch) return;
      const o: OccState = { nick: ev.nick, modes: new Set() };
      ch.occupants.set(ircLower(ev.nick), o);
      if (ch.synced) this.hooks.emit({ type: "join", room: ch.room, occupant: this.occupant(o) });
    },

    userlist(ev: { channel: string; users: { nick: string; modes: string[] }[] }) {
      const lower = ircLower(ev.channel);
      const ch = this.channels.get(lower);
      if (!ch) return;
      const fresh = new Map<string, OccState>();
      for (const u of ev.users) {
        // The client strips known PREFIX symbols; keep any it did not know.
        const modes = new Set(u.modes);
        let nick = u.nick;
        while (nick && modeForSymbol(nick[0]!)) {
          modes.add(modeForSymbol(nick[0]!)!);
          nick = nick.slice(1);
        }
        if (this.isSelf(nick)) ch.selfModes = modes;
        else fresh.set(ircLower(nick), { nick, modes, away: ch.occupants.get(ircLower(nick))?.away });
      }
      ch.occupants = fresh;
      if (ch.synced) {
        this.settleJoin(lower, ch);
        return;
      }
      // A server may replay the channel's history right after NAMES (InspIRCd +H, a chathistory
      // batch). Ask for the channel modes: the answer (324) comes after everything the join
      // produced, so the join completes with that history in hand instead of racing it.
      if (ch.barrier) return;
      ch.barrier = setTimeout(() => this.finishJoin(lower), JOIN_BARRIER_MS);
      this.enqueue([this.build("MODE", [ch.name])], true).catch(() => this.finishJoin(lower));
    },

    "batch end"(ev: { type?: string; params?: string[] }) {
      this.onBatchEnd(ev);
    },

    "channel info"(ev: { channel: string; raw_modes?: string }) {
      if (ev.raw_modes === undefined) return;
      const lower = ircLower(ev.channel);
      if (this.channels.get(lower)?.barrier) this.finishJoin(lower);
    },

    topic(ev: { channel: string; topic: string; nick?: string }) {
      const ch = this.channels.get(ircLower(ev.channel));
      if (!ch) return;
      const text = stripUnsafe(ev.topic);
      if (ev.nick && this.isSelf(ev.nick)) this.opDone(ircLower(ev.channel), "TOPIC");
      const changed = ch.subject?.text !== text;
      ch.subject = ev.nick ? { text, by: ev.nick, at: new Date() } : { text };
      if (ev.nick) {
        if (ch.synced) this.hooks.emit({ type: "topic", room: ch.room, text, by: ev.nick });
      } else if (changed && (ch.synced || ch.previous !== undefined)) {
        // RPL_TOPIC outside a first join: a TOPIC query or a rejoin after the topic changed.
        this.hooks.emit({ type: "topic", room: ch.room, text });
      }
    },

    topicsetby(ev: { channel: string; nick: string; when: string }) {
      const ch = this.channels.get(ircLower(ev.channel));
      if (!ch?.subject) return;
      ch.subject.by = ev.nick;
      const when = Number(ev.when);
      if (Number.isFinite(when) && when > 0) ch.subject.at = new Date(when * 1000);
    },

    part(ev: { nick: string; channel: string; message: string }) {
      const lower = ircLower(ev.channel);
      const ch = this.channels.get(lower);
      if (!ch) return;
      if (this.isSelf(ev.nick)) {
        // We did not ask (leave() forgets the channel first): the server parted us (SAPART, channel closed).
        this.channels.delete(lower);
        this.hooks.emit({ type: "room-closed", room: ch.room, how: "error", reason: ev.message || "Removed from the channel" });
        if (this.channelCount === 0) this.hooks.onIdle();
        return;
      }
      if (ch.occupants.delete(ircLower(ev.nick)) && ch.synced) {
        this.hooks.emit({ type: "part", room: ch.room, nick: ev.nick, how: "leave", ...(ev.message ? { reason: ev.message } : {}) });
      }
    },

    kick(ev: { nick: string; channel: string; kicked: string; message: string }) {
      const lower = ircLower(ev.channel);
      const ch = this.channels.get(lower);
      if (!ch) return;
      const reason = ev.message && ev.message !== ev.kicked ? { reason: ev.message } : {};
      if (this.isSelf(ev.nick)) this.opDone(lower, "KICK", ircLower(ev.kicked));
      if (this.isSelf(ev.kicked)) {
        this.channels.delete(lower);
        this.hooks.emit({ type: "room-closed", room: ch.room, how: "kick", by: ev.nick, ...reason });
        if (this.channelCount === 0) this.hooks.onIdle();
        return;
      }
      if (ch.occupants.delete(ircLower(ev.kicked)) && ch.synced) {
        this.hooks.emit({ type: "part", room: ch.room, nick: ev.kicked, how: "kick", by: ev.nick, ...reason });
      }
    },

    quit(ev: { nick: string; message: string }) {
      if (this.isSelf(ev.nick)) return;
      for (const ch of this.channels.values()) {
        if (ch.occupants.delete(ircLower(ev.nick)) && ch.synced) {
          this.hooks.emit({ type: "part", room: ch.room, nick: ev.nick, how: "quit", ...(ev.message ? { reason: ev.message } : {}) });
        }
      }
    },

    nick(ev: { nick: string; new_nick: string }) {
      if (this.isSelf(ev.nick)) {
        const old = this.nick;
        this.nick = ev.new_nick;
        if (this.nickChange) {
          clearTimeout(this.nickChange.timer);
          this.nickChange.resolve(ev.new_nick);
          this.nickChange = undefined;
        }
        for (const ch of this.channels.values()) this.hooks.emit({ type: "nick", room: ch.room, old, new: ev.new_nick });
        return;
      }
      for (const ch of this.channels.values()) {
        const o = ch.occupants.get(ircLower(ev.nick));
        if (!o) continue;
        ch.occupants.delete(ircLower(ev.nick));
        o.nick = ev.new_nick;
        ch.occupants.set(ircLower(ev.new_nick), o);
        if (ch.synced) this.hooks.emit({ type: "nick", room: ch.room, old: ev.nick, new: ev.new_nick, contact: contactId(this.host, ev.new_nick) });
      }
    },

    mode(ev: { target: string; modes: { mode: string; param?: string }[] }) {
      const ch = this.channels.get(ircLower(ev.target));
      if (!ch) return;
      const prefixModes = this.prefixModes();
      for (const m of ev.modes) {
        const letter = m.mode.slice(1);
        if (!prefixModes.has(letter) || !m.param) continue;
        const adding = m.mode.startsWith("+");
        if (this.isSelf(m.param)) {
          // Made an operator: RELAYMSG may be allowed now (servers let channel operators relay).
          if (adding) this.relayRefused.delete(ircLower(ch.name));
          if (adding) ch.selfModes.add(letter);
          else ch.selfModes.delete(letter);
          if (ch.synced) this.hooks.emit({ type: "occupant", room: ch.room, occupant: { nick: this.nick, ...rolesFromModes(ch.selfModes) } });
          continue;
        }
        const o = ch.occupants.get(ircLower(m.param));
        if (!o) continue;
        if (adding) o.modes.add(letter);
        else o.modes.delete(letter);
        if (ch.synced) this.hooks.emit({ type: "occupant", room: ch.room, occupant: this.occupant(o) });
      }
    },

    away(ev: { nick: string; message: string; self: boolean }) {
      this.awayChange(ev, stripUnsafe(ev.message ?? ""));
    },
    back(ev: { nick: string; message: string; self: boolean }) {
      this.awayChange(ev, undefined);
    },

    // Someone invites us into a channel (RFC 2812 §3.2.7). With invite-notify (IRCv3) channel
    // members also see invitations of others: only ours becomes an invitation for the user.
    invite(ev: { nick: string; ident: string; hostname: string; invited: string; channel: string }) {
      if (!this.isSelf(ev.invited) || !this.isChannelName(ev.channel ?? "")) return;
      const channel = stripUnsafe(ev.channel);
      const fromServer = !ev.nick || (!ev.ident && !ev.hostname && ev.nick.includes("."));
      this.hooks.emit({
        type: "invite",
        room: roomId(this.host, channel),
        from: fromServer ? { nick: ev.nick || this.host } : { nick: ev.nick, contact: contactId(this.host, ev.nick) },
      });
    },

    "displayed host"(ev: unknown) {
      const e = ev as { nick: string; hostname: string };
      if (this.isSelf(e.nick)) this.displayedHost = e.hostname;
    },

    privmsg(ev: MsgEvent) {
      this.onMessage(ev, "P");
    },
    action(ev: MsgEvent) {
      this.onMessage(ev, "A");
    },
    notice(ev: MsgEvent) {
      this.onMessage(ev, "N");
    },
  };

  private awayChange(ev: { nick: string; message: string; self: boolean }, away: string | undefined): void {
    if (ev.self || this.isSelf(ev.nick)) return;
    let seen = false;
    for (const ch of this.channels.values()) {
      const o = ch.occupants.get(ircLower(ev.nick));
      if (!o) continue;
      seen = true;
      o.away = away;
      if (ch.synced) this.hooks.emit({ type: "occupant", room: ch.room, occupant: this.occupant(o) });
    }
    if (seen) {
      const show: Show = away === undefined ? "available" : "away";
      this.hooks.emit({ type: "presence", contact: contactId(this.host, ev.nick), show, ...(away ? { status: away } : {}) });
    }
  }

  private onMessage(
    ev: { nick: string; ident: string; hostname: string; target: string; message: string; tags: Record<string, string>; time?: number; from_server: boolean },
    kind: "P" | "A" | "N",
  ): void {
    const text = stripUnsafe(ev.message ?? "");
    // draft/relaymsg: a line this connection relayed for a bridge, echoed back. Never emitted: the
    // bridge must not relay its own output again.
    const relayedBy = RELAYMSG_TAGS.map((t) => ev.tags?.[t]).find((v) => v !== undefined);
    if (relayedBy !== undefined && this.isSelf(relayedBy)) {
      this.relayEchoed(ircLower(ev.target), ev.nick);
      return;
    }
    const fromServer = ev.from_server || !ev.nick || (!ev.ident && !ev.hostname && ev.nick.includes("."));
    if (fromServer || (kind === "N" && ev.target === "*")) {
      this.hooks.emit({ type: "service-message", service: this.host, text: ircToRich(text), notice: kind === "N" });
      return;
    }
    const inChannel = this.isChannelName(ev.target);
    const self = this.isSelf(ev.nick);
    if (self) {
      // echo-message (IRCv3): our own line coming back. Suppress what this session sent.
      const key = ircLower(ev.target);
      const list = this.echoes.get(key);
      const i = list?.indexOf(`${kind}\n${text}`) ?? -1;
      if (list && i >= 0) {
        list.splice(i, 1);
        this.sayEchoed(key, `${kind}\n${text}`);
        return;
      }
    }
    const chat = inChannel
      ? { kind: "room" as const, room: roomId(this.host, ev.target) }
      : { kind: "direct" as const, contact: contactId(this.host, self ? ev.target : ev.nick) };
    if (!inChannel) this.hooks.onDirectActivity();
    const event: LegacyEvent = {
      type: "message",
      chat,
      // Someone relayed by another bridge (`alice/discord`) is nobody one can talk to on IRC: no contact.
      from: relayedBy !== undefined ? { nick: ev.nick } : { nick: ev.nick, contact: contactId(this.host, ev.nick) },
      text: ircToRich(text),
    };
    if (kind === "A") event.action = true;
    if (kind === "N") event.notice = true;
    if (self) event.self = true;
    const msgid = ev.tags?.msgid;
    if (msgid) event.id = msgid;
    if (ev.time) event.at = new Date(ev.time);
    // Server-side history (InspIRCd's +H replay, IRCv3 chathistory) arrives in a batch, or
    // before the join completed: it is history, not live chat.
    const batch = (ev as { batch?: { type?: string; params?: string[] } }).batch;
    const batchType = batch?.type ?? "";
    if (inChannel && (batchType === "chathistory" || batchType === "draft/chathistory")) {
      // The answer to our CHATHISTORY: collected for history(), never shown as live chat.
      const lower = ircLower(batch?.params?.[0] ?? ev.target);
      const req = this.historyRequests.get(lower);
      if (req) {
        event.history = true;
        req.messages.push(event);
        if (req.messages.length > MAX_REPLAYED) req.messages.shift();
        return;
      }
      if (this.lateHistory.has(lower)) return;
    }
    const ch = inChannel ? this.channels.get(ircLower(ev.target)) : undefined;
    if (/history/i.test(batchType) || (ch && !ch.synced)) event.history = true;
    if (ch && !ch.synced) {
      const buffered = (ch.history ??= []);
      buffered.push(event);
      if (buffered.length > MAX_REPLAYED) buffered.shift();
      return;
    }
    this.hooks.emit(event);
  }

  private onNumeric(msg: ParsedMessage): void {
    const code = msg.command;
    if (!/^[45]\d\d$/.test(code)) return;
    const reason = stripUnsafe(msg.params[msg.params.length - 1] ?? "");
    const subject = msg.params[1] ?? "";
    if (code === "421" && subject.toUpperCase() === "CHATHISTORY") {
      // ERR_UNKNOWNCOMMAND: the server does not know it after all.
      for (const req of [...this.historyRequests.values()]) req.finish([]);
      return;
    }
    const opError = CHANNEL_OP_ERRORS[code];
    // 441 ERR_USERNOTINCHANNEL names the nick, then the channel.
    const opChannel = code === "441" ? (msg.params[2] ?? "") : subject;
    const op = opError || code === "441" ? this.opWaits.find((w) => w.lower === ircLower(opChannel) && w.errorsLeft > 0) : undefined;
    if (op) {
      op.errorsLeft--;
      op.done(code === "441" ? fail("not-found", `${subject}: ${reason}`) : opError!(`${subject}: ${reason}`));
      return;
    }
    const sendError = SEND_ERRORS[code];
    const refused = sendError ? this.sayWaits.find((w) => w.lower === ircLower(subject)) : undefined;
    if (sendError && refused) {
      // The message it refuses fails with this reason (no server notice besides: one report, where the message was).
      refused.done(sendError(`${subject}: ${reason}`));
      return;
    }
    const joinError = JOIN_ERRORS[code];
    if (joinError && this.joins.has(ircLower(subject))) {
      this.settleJoin(ircLower(subject), joinError(`${subject}: ${reason}`));
      return;
    }
    const nickKind = NICK_ERRORS[code];
    if (nickKind && this.nickChange && this.state === "online") {
      const p = this.nickChange;
      this.nickChange = undefined;
      clearTimeout(p.timer);
      p.reject(fail(nickKind, `${subject}: ${reason}`));
      return;
    }
    if (this.state !== "online") return; // registration errors are handled by open()
    // Anything else the server refuses (cannot send to channel, no such nick, not an operator…)
    // is shown from the server's address so nothing fails silently.
    const text = msg.params.slice(1).map(stripUnsafe).join(" ");
    this.hooks.emit({ type: "service-message", service: this.host, text: ircToRich(text) });
  }

  private emitDiff(ch: ChannelState, before: Map<string, OccState>): void {
    for (const [lower, o] of before) {
      if (!ch.occupants.has(lower)) this.hooks.emit({ type: "part", room: ch.room, nick: o.nick, how: "quit", reason: "Left while the gateway was disconnected" });
    }
    for (const [lower, o] of ch.occupants) {
      const old = before.get(lower);
      if (!old) this.hooks.emit({ type: "join", room: ch.room, occupant: this.occupant(o) });
      else {
        const a = rolesFromModes(old.modes);
        const b = rolesFromModes(o.modes);
        if (a.role !== b.role || a.affiliation !== b.affiliation) this.hooks.emit({ type: "occupant", room: ch.room, occupant: this.occupant(o) });
      }
    }
  }
}
