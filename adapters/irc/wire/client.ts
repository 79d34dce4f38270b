/**
 * A lean IRC client: the part of irc-framework's `Client` the IRC adapter
 * uses (adapters/irc/connection.ts), with the same event names and payloads,
 * at a fraction of its memory per connection.
 *
 * irc-framework's Client builds, per connection, a Connection, a transport,
 * an IrcCommandHandler with its handler table and caches, a NetworkInfo
 * holding every ISUPPORT token, eventemitter3 emitters proxying each other
 * and dozens of closures (~17 KB of heap each; bench/irc/client-cost.ts).
 * Here one object holds the socket and a few fields; command handlers are
 * one module-level table (events.ts, registration.ts); socket listeners are
 * module-level functions that find their client through a symbol on the
 * socket; keepalive is one re-armed timer; state that only some moments need
 * (registration, NAMES, batches) exists only during them.
 *
 * The line parser is irc-framework's own (`ircLineParser`): a module-level
 * function, nothing per connection.
 */
import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import { ircLineParser, type ParsedMessage } from "irc-framework";
import { Caps } from "./caps.ts";
import { EVENT_HANDLERS, MAX_BATCH_LINES } from "./events.ts";
import { caseLower, defaultOptions, type IsupportOptions } from "./isupport.ts";
import { newRegistration, REGISTRATION_HANDLERS, type Registration } from "./registration.ts";
import { openSocket, readLines, type SocketOptions } from "./socket.ts";

/** A parsed line; lines of a batch get their batch when it ends (events.ts onBatch). */
export interface WireMessage extends ParsedMessage {
  batch?: { id: string; type: string | undefined; params: string[] };
}

interface Batch {
  id: string;
  type: string | undefined;
  params: string[];
  commands: WireMessage[];
}

export interface NamesMember {
  nick: string;
  ident: string;
  hostname: string;
  modes: string[];
  tags: Record<string, string>;
}

/**
 * One object that receives every event (`message` included) before the
 * EventEmitter listeners: a connection that handles ~20 events costs one
 * pointer here instead of a listener closure each and an `_events`
 * dictionary (~3.8 KB per connection together, measured).
 */
export interface IrcEventSink {
  ircEvent(event: string, payload: unknown, client: IrcClient): void;
}

/** The options irc-framework's `connect()` took that the adapter sets (irc-framework 4.14 names). */
export interface ConnectOptions extends SocketOptions {
  nick: string;
  username?: string | undefined;
  gecos?: string | undefined;
  /** Server password (PASS). */
  password?: string | undefined;
  /** SASL PLAIN credentials. */
  account?: { account: string; password: string } | undefined;
  webirc?: { password: string; username: string; hostname: string; address: string; options?: Record<string, string> } | undefined;
  enable_echomessage?: boolean | undefined;
  /** Seconds of silence before we PING (irc-framework's default 30); 0: never. */
  ping_interval?: number | undefined;
  /** Seconds of silence after which the connection is dropped (irc-framework's default 120); 0: never. */
  ping_timeout?: number | undefined;
}

const HANDLERS: Record<string, (c: IrcClient, m: WireMessage) => void> = Object.assign(Object.create(null) as object, EVENT_HANDLERS, REGISTRATION_HANDLERS);

/** The client a socket belongs to (a symbol property: no closure per socket listener). */
const OWNER = Symbol("irc client");
type OwnedSocket = Socket & { [OWNER]?: IrcClient };

function onSocketReady(this: OwnedSocket): void {
  this[OWNER]?.opened();
}
function onSocketData(this: OwnedSocket, data: Buffer): void {
  const c = this[OWNER];
  if (c) c.held = readLines(c.held, data, c);
}
function onSocketError(this: OwnedSocket, err: Error): void {
  const c = this[OWNER];
  if (c) c.closeError ??= err;
}
function onSocketClose(this: OwnedSocket): void {
  this[OWNER]?.closed();
}
function onSocketTimeout(this: OwnedSocket): void {
  this.destroy();
}
function onTick(c: IrcClient): void {
  c.tick();
}

/** How long a closing socket may wait for the server's end before it is destroyed. */
const END_GRACE_MS = 5000;

export class IrcClient extends EventEmitter {
  /** Our nick, as the server knows it. */
  nick = "";
  username = "";
  /** Our host as shown to others (396), when the server said. */
  host = "";
  connected = false;
  /** Receives every event first (see IrcEventSink). */
  sink: IrcEventSink | undefined;
  readonly network: { options: IsupportOptions; cap: Caps } = { options: defaultOptions(), cap: new Caps() };
  /** Capabilities asked for besides the defaults (requestCap): the caller's array, shared when it is one. */
  extraCaps: readonly string[] = [];
  echoMessage = false;
  saslAccount: string | undefined;
  saslPassword: string | undefined;
  /** Registration state, from the socket's opening to 001. */
  registration: Registration | undefined;
  /** NAMES replies being collected, by lowered channel (353 until 366). */
  names: Map<string, NamesMember[]> | undefined;
  /** Open batches, by reference tag. */
  batches: Map<string, Batch> | undefined;
  /** A partial line waiting for the rest of it. */
  held: Buffer | undefined;
  closeError: Error | undefined;
  private socket: OwnedSocket | undefined;
  private options: ConnectOptions | undefined;
  private ending = false;
  private timer: NodeJS.Timeout | undefined;
  /** Something arrived since the last tick. */
  private heard = false;
  /** Seconds of silence so far, counted in ticks. */
  private silent = 0;
  private pingInterval = 30;
  private pingTimeout = 120;

  /** Events go to the sink, then to listeners (at most two arguments: `message` has the parsed line and its text). */
  override emit(event: string, payload?: unknown, text?: unknown): boolean {
    this.sink?.ircEvent(event, payload, this);
    return super.emit(event, payload, text);
  }

  /** irc-framework's `client.connection`: here the client itself (connected, write, end, and its `message` event). */
  get connection(): this {
    return this;
  }

  /** irc-framework's `client.user`: here the client itself (nick, username, host). */
  get user(): this {
    return this;
  }

  requestCap(cap: string | readonly string[]): void {
    const add = typeof cap === "string" ? [cap] : cap;
    this.extraCaps = this.extraCaps.length === 0 && typeof cap !== "string" ? add : [...this.extraCaps, ...add];
  }

  connect(options: ConnectOptions): void {
    if (this.socket) {
      // A new connection replaces the old one: the old socket's close is not this one's.
      delete this.socket[OWNER];
      this.socket.destroy();
    }
    this.options = options;
    this.nick = options.nick;
    this.username = options.username ?? options.nick;
    this.echoMessage = options.enable_echomessage === true;
    this.saslAccount = options.account?.account || undefined;
    this.saslPassword = options.account?.password;
    this.pingInterval = options.ping_interval ?? 30;
    this.pingTimeout = options.ping_timeout ?? 120;
    this.network.cap = new Caps();
    this.registration = newRegistration();
    this.names = this.batches = this.held = this.closeError = undefined;
    this.ending = false;
    const { socket, readyEvent } = openSocket(options);
    const s = socket as OwnedSocket;
    s[OWNER] = this;
    s.once(readyEvent, onSocketReady);
    s.on("data", onSocketData);
    s.on("error", onSocketError);
    s.once("close", onSocketClose);
    this.socket = s;
  }

  /** The socket is ready (TCP connected, or TLS handshake done): register (irc-framework's order). */
  opened(): void {
    const o = this.options;
    if (!o) return;
    this.connected = true;
    if (o.webirc) {
      // WEBIRC (https://ircv3.net/specs/extensions/webirc): an address starting with ":" (::1) would read as a trailing parameter.
      const w = o.webirc;
      const address = String(w.address).startsWith(":") ? `0${w.address}` : w.address;
      const opts = Object.entries(w.options ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(" ");
      this.raw("WEBIRC", w.password, w.username, w.hostname, address, ...(opts ? [opts] : []));
    }
    this.write("CAP LS 302");
    if (o.password) this.raw("PASS", o.password);
    this.raw("NICK", this.nick);
    this.raw("USER", this.username, 0, "*", o.gecos ?? o.nick);
    this.startTicking();
  }

  closed(): void {
    const s = this.socket;
    if (s) {
      s.off("data", onSocketData);
      s.off("error", onSocketError);
      delete s[OWNER];
    }
    this.socket = undefined;
    this.connected = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.registration = this.names = this.batches = this.held = undefined;
    this.options = undefined;
    const err = this.closeError;
    this.closeError = undefined;
    this.emit("socket close", err);
  }

  /** RPL_WELCOME: registration is over; its state goes. */
  registered(nick: string): void {
    this.nick = nick;
    this.registration = undefined;
    this.saslPassword = undefined;
    const o = this.options;
    this.options = undefined;
    // What is kept of the options after registration: nothing but what `user` shows.
    if (o) this.username = o.username ?? this.username;
  }

  /** One line from the server (readLines' sink). */
  line(text: string): void {
    this.heard = true;
    const msg = ircLineParser(text) as WireMessage;
    this.emit("message", msg, text);
    const batch = msg.tags.batch;
    // A line of a batch waits for its end (BATCH lines themselves are handled at once, so nested batches open).
    if (batch !== undefined && msg.command !== "BATCH") {
      const open = this.batches?.get(batch);
      // A line naming a batch that was never opened is handled at once, not dropped.
      if (open) {
        open.commands.push(msg);
        if (open.commands.length <= MAX_BATCH_LINES) return;
        // Too long to hold: what it held is handled now, in order, and its later lines as they come.
        this.batches!.delete(batch);
        if (this.batches!.size === 0) this.batches = undefined;
        for (const held of open.commands) this.execute(held);
        return;
      }
    }
    this.execute(msg);
  }

  execute(msg: WireMessage): void {
    HANDLERS[msg.command]?.(this, msg);
  }

  /**
   * Writes one line (CR LF added, UTF-8); `callback` once it is handed to the
   * system. When not connected the line is dropped and the callback still
   * runs (irc-framework does the same; the send queue only needs to move on).
   */
  write(line: string, callback?: () => void): boolean {
    const s = this.socket;
    if (!s || !this.connected || this.ending) {
      if (callback) process.nextTick(callback);
      return false;
    }
    return s.write(`${line}\r\n`, callback);
  }

  /** irc-framework's rawString: arguments joined, the last one as a trailing parameter when it needs to be. */
  raw(...args: (string | number)[]): void {
    const parts = args.filter((a) => typeof a === "string" || typeof a === "number").map(String);
    if (parts.length > 1) {
      const i = parts.length - 1;
      if (parts[i] === "" || /^:|\s/.test(parts[i]!)) parts[i] = `:${parts[i]}`;
    }
    this.write(parts.join(" "));
  }

  quit(message?: string): void {
    if (!this.connected) {
      this.end();
      return;
    }
    const parts = message === undefined ? ["QUIT"] : ["QUIT", message];
    if (parts.length > 1) parts[1] = `:${parts[1]}`;
    this.write(parts.join(" "), () => this.end());
  }

  /** Closes the connection: gracefully once connected (the server closes after our FIN), at once before. */
  end(): void {
    const s = this.socket;
    if (!s || this.ending) return;
    this.ending = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.connected) {
      s.destroy();
      return;
    }
    s.end();
    // A server that never closes its side does not keep the socket forever.
    s.setTimeout(END_GRACE_MS, onSocketTimeout);
  }

  /** Lower case under the server's CASEMAPPING (rfc1459 until it says). */
  caseLower(s: string): string {
    return caseLower(this.network.options.CASEMAPPING, s);
  }

  // ---------------------------------------------------------------- keepalive

  /**
   * One timer per connection, re-armed (Timeout.refresh) every ping_interval:
   * reads only set a flag. After an interval of silence we PING (the answer
   * is traffic); after ping_timeout of silence the connection is dropped
   * (irc-framework's ping_interval/ping_timeout, without a timer per line).
   */
  private startTicking(): void {
    if (this.pingInterval <= 0 && this.pingTimeout <= 0) return;
    this.heard = false;
    this.silent = 0;
    const step = this.pingInterval > 0 ? this.pingInterval : this.pingTimeout;
    this.timer = setTimeout(onTick, step * 1000, this);
    this.timer.unref();
  }

  tick(): void {
    const step = this.pingInterval > 0 ? this.pingInterval : this.pingTimeout;
    if (this.heard) {
      this.heard = false;
      this.silent = 0;
    } else this.silent += step;
    if (this.pingTimeout > 0 && this.silent >= this.pingTimeout) {
      this.timer = undefined;
      this.closeError = new Error(`Ping timeout (${this.pingTimeout} seconds)`);
      this.write(`QUIT :Ping timeout (${this.pingTimeout} seconds)`);
      this.socket?.destroy();
      return;
    }
    if (this.silent > 0 && this.pingInterval > 0 && this.registration === undefined) this.write(`PING ${Date.now()}`);
    this.timer?.refresh();
  }
}
