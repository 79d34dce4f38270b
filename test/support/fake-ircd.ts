/**
 * FakeIrcd: an in-process FAKE IRC server for tests. It is not a real ircd;
 * it exists because no IRC server installable here (Debian's InspIRCd 3)
 * offers IRCv3 `draft/chathistory` or `draft/relaymsg`. It speaks just enough
 * RFC 1459/2812 for irc-framework clients, and follows the IRCv3
 * specifications for what it offers:
 *
 * - capability negotiation 3.2 (https://ircv3.net/specs/extensions/capability-negotiation):
 *   CAP LS [302] (values only for 302), REQ all-or-nothing ACK/NAK, LIST, END;
 * - message-tags, server-time, batch, echo-message: every PRIVMSG/NOTICE to a
 *   channel gets a `msgid` and a `time`, shown to clients that negotiated them;
 * - chathistory (https://ircv3.net/specs/extensions/chathistory): CHATHISTORY
 *   LATEST/BEFORE/AFTER/AROUND/BETWEEN with `*`, `msgid=` and `timestamp=`
 *   references, answered in a `chathistory` batch with each line's original
 *   tags; ISUPPORT CHATHISTORY=<max> and MSGREFTYPES=msgid,timestamp. (Not
 *   implemented: TARGETS, event-playback.)
 * - draft/relaymsg (ircv3-specifications PR #417, as Ergo implements it):
 *   `RELAYMSG <channel> <spoofed nick> :<text>` by a channel operator, the nick
 *   containing a separator from the capability value; members get a PRIVMSG from
 *   `<spoofed>!relay@<server>` tagged `draft/relaymsg=<relayer>` (for clients
 *   with the capability); the relayer gets it back only with echo-message;
 *   errors as `FAIL RELAYMSG INVALID_NICK|PRIVS_NEEDED`.
 *
 * Plus registration (NICK/USER, 001–005, 422), PING/PONG, JOIN (353/366, 332),
 * PART, QUIT, NAMES, TOPIC, MODE (324 for a channel query, +o/+v by operators),
 * PRIVMSG/NOTICE/TAGMSG to channels and nicks. Listens on 127.0.0.1, port 0.
 */
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { parseMsgRef, TargetHistory, type MsgRef, type StoredMessage, type Subcommand } from "./fake-ircd/history.ts";
import { formatLine, ircLower, parseLine, validChannel, validNick, validSpoofedNick, type Line } from "./fake-ircd/protocol.ts";

export type { StoredMessage } from "./fake-ircd/history.ts";

export interface FakeIrcdOptions {
  serverName?: string;
  network?: string;
  /** Which chathistory capability to offer (default `draft/chathistory`); false: none, no ISUPPORT tokens. */
  chathistory?: false | "draft/chathistory" | "chathistory";
  /** ISUPPORT CHATHISTORY=<n>: most messages per request (0: no maximum). Default 100. */
  chathistoryMax?: number;
  /** draft/relaymsg separators (the capability value); false: the capability is not offered. Default "/". */
  relaymsg?: string | false;
  /** ISUPPORT NICKLEN. Default 30. */
  nicklen?: number;
}

/** One line a client sent, for assertions. */
export interface ReceivedLine {
  nick: string | undefined;
  line: string;
}

interface Member {
  client: Conn;
  op: boolean;
  voice: boolean;
}

interface Channel {
  name: string;
  members: Map<string, Member>;
  topic?: { text: string; by: string; at: number };
  history: TargetHistory;
}

const ISUPPORT_TRAILER = "are supported by this server";

class Conn {
  nick: string | undefined;
  user: string | undefined;
  registered = false;
  /** CAP LS/REQ before registration suspends it until CAP END (capability-negotiation "Connection Registration"). */
  capHold = false;
  cap302 = false;
  readonly caps = new Set<string>();
  readonly channels = new Set<string>();
  readonly socket: Socket;
  readonly host = "127.0.0.1";

  constructor(socket: Socket) {
    this.socket = socket;
  }

  get mask(): string {
    return `${this.nick}!${this.user ?? "unknown"}@${this.host}`;
  }

  send(line: string): void {
    if (!this.socket.destroyed) this.socket.write(`${line}\r\n`);
  }
}

export class FakeIrcd {
  readonly host = "127.0.0.1";
  port = 0;
  readonly serverName: string;
  /** Every line clients sent, in arrival order. */
  readonly received: ReceivedLine[] = [];
  /** While false, CHATHISTORY requests are read and never answered (to test a client's timeout). */
  answerChathistory = true;
  private readonly options: Required<FakeIrcdOptions>;
  private readonly server: Server;
  private readonly conns = new Set<Conn>();
  private readonly nicks = new Map<string, Conn>();
  private readonly channels = new Map<string, Channel>();
  private readonly direct = new Map<string, TargetHistory>();
  private readonly events = new EventEmitter();
  private msgCounter = 0;

  private constructor(options: FakeIrcdOptions) {
    this.options = {
      serverName: options.serverName ?? "fake.ircd.test",
      network: options.network ?? "FakeNet",
      chathistory: options.chathistory ?? "draft/chathistory",
      chathistoryMax: options.chathistoryMax ?? 100,
      relaymsg: options.relaymsg ?? "/",
      nicklen: options.nicklen ?? 30,
    };
    this.serverName = this.options.serverName;
    this.server = createServer((socket) => this.accept(socket));
  }

  static async start(options: FakeIrcdOptions = {}): Promise<FakeIrcd> {
    const ircd = new FakeIrcd(options);
    await new Promise<void>((resolve, reject) => {
      ircd.server.once("error", reject);
      ircd.server.listen({ host: "127.0.0.1", port: 0 }, () => resolve());
    });
    ircd.port = (ircd.server.address() as AddressInfo).port;
    return ircd;
  }

  async stop(): Promise<void> {
    for (const c of this.conns) c.socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** The stored history of a channel (or undefined when it never existed). */
  history(channel: string): readonly StoredMessage[] | undefined {
    return this.channels.get(ircLower(channel))?.history.messages;
  }

  /** Lines received with this command (upper case), e.g. every CHATHISTORY a client sent. */
  commands(command: string): ReceivedLine[] {
    return this.received.filter((r) => parseLine(r.line)?.command === command);
  }

  /** Resolves when a client sends a line matching `pred` (or one already did). */
  waitReceived(what: string, pred: (r: ReceivedLine) => boolean, ms = 10_000): Promise<ReceivedLine> {
    const found = this.received.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.events.off("line", check);
        reject(new Error(`FakeIrcd: timed out after ${ms} ms waiting for ${what}`));
      }, ms);
      const check = (r: ReceivedLine) => {
        if (!pred(r)) return;
        clearTimeout(timer);
        this.events.off("line", check);
        resolve(r);
      };
      this.events.on("line", check);
    });
  }

  // ------------------------------------------------------------ connections

  private accept(socket: Socket): void {
    const c = new Conn(socket);
    this.conns.add(c);
    socket.setEncoding("utf8");
    let buffer = "";
    socket.on("data", (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const raw = buffer.slice(0, nl).replace(/\r$/, "");
        buffer = buffer.slice(nl + 1);
        if (raw === "") continue;
        const r = { nick: c.nick, line: raw };
        this.received.push(r);
        this.events.emit("line", r);
        const line = parseLine(raw);
        if (line) this.dispatch(c, line);
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => this.drop(c, "Connection closed"));
  }

  private drop(c: Conn, reason: string): void {
    if (!this.conns.delete(c)) return;
    if (c.nick && this.nicks.get(ircLower(c.nick)) === c) this.nicks.delete(ircLower(c.nick));
    const told = new Set<Conn>();
    for (const lower of c.channels) {
      const ch = this.channels.get(lower);
      if (!ch) continue;
      ch.members.delete(ircLower(c.nick ?? ""));
      for (const m of ch.members.values()) {
        if (told.has(m.client)) continue;
        told.add(m.client);
        m.client.send(formatLine({ prefix: c.mask, command: "QUIT", params: [reason] }, true));
      }
    }
    c.channels.clear();
    c.socket.destroy();
  }

  private numeric(c: Conn, code: string, ...params: string[]): void {
    c.send(formatLine({ prefix: this.serverName, command: code, params: [c.nick ?? "*", ...params] }, true));
  }

  private fail(c: Conn, command: string, code: string, ...context: string[]): void {
    // Standard replies (https://ircv3.net/specs/extensions/standard-replies): FAIL <command> <code> [<context>...] :<description>
    const description = context.pop() ?? code;
    c.send(formatLine({ prefix: this.serverName, command: "FAIL", params: [command, code, ...context, description] }, true));
  }

  private capsOffered(): Map<string, string> {
    const caps = new Map<string, string>([
      ["message-tags", ""],
      ["server-time", ""],
      ["batch", ""],
      ["echo-message", ""],
    ]);
    if (this.options.chathistory) caps.set(this.options.chathistory, "");
    if (this.options.relaymsg !== false) caps.set("draft/relaymsg", this.options.relaymsg);
    return caps;
  }

  private dispatch(c: Conn, line: Line): void {
    const p = line.params;
    switch (line.command) {
      case "CAP":
        return this.cap(c, p);
      case "PASS":
        return;
      case "NICK":
        return this.nickCmd(c, p[0]);
      case "USER":
        if (c.registered) return this.numeric(c, "462", "You may not reregister");
        if (p.length < 4) return this.numeric(c, "461", "USER", "Not enough parameters");
        c.user = p[0]!.replace(/[^A-Za-z0-9_.-]/g, "").slice(0, 10) || "user";
        return this.tryRegister(c);
      case "PING":
        return c.send(formatLine({ prefix: this.serverName, command: "PONG", params: [this.serverName, p[0] ?? ""] }, true));
      case "PONG":
        return;
      case "QUIT":
        c.send(formatLine({ command: "ERROR", params: ["Closing link"] }, true));
        return this.drop(c, `Quit: ${p[0] ?? ""}`);
    }
    if (!c.registered) return this.numeric(c, "451", "You have not registered");
    switch (line.command) {
      case "JOIN":
        for (const name of (p[0] ?? "").split(",")) if (name) this.join(c, name);
        return;
      case "PART":
        for (const name of (p[0] ?? "").split(",")) if (name) this.part(c, name, p[1]);
        return;
      case "NAMES":
        return this.names(c, p[0] ?? "");
      case "TOPIC":
        return this.topic(c, p);
      case "MODE":
        return this.mode(c, p);
      case "PRIVMSG":
      case "NOTICE":
      case "TAGMSG":
        return this.message(c, line);
      case "RELAYMSG":
        return this.relaymsg(c, line);
      case "CHATHISTORY":
        if (!this.options.chathistory || !c.caps.has(this.options.chathistory)) return this.numeric(c, "421", "CHATHISTORY", "Unknown command");
        return this.chathistory(c, p);
      case "WHO":
        return this.numeric(c, "315", p[0] ?? "*", "End of /WHO list");
      case "AWAY":
        return p[0] ? this.numeric(c, "306", "You have been marked as being away") : this.numeric(c, "305", "You are no longer marked as being away");
      default:
        return this.numeric(c, "421", line.command, "Unknown command");
    }
  }

  // ------------------------------------------------------------ registration

  private cap(c: Conn, p: string[]): void {
    const sub = (p[0] ?? "").toUpperCase();
    const offered = this.capsOffered();
    const target = c.nick ?? "*";
    const reply = (...params: string[]) => c.send(formatLine({ prefix: this.serverName, command: "CAP", params: [target, ...params] }, true));
    switch (sub) {
      case "LS": {
        if (!c.registered) c.capHold = true;
        // "CAP LS 302": values are sent with the names (capability-negotiation "CAP LS").
        if (Number(p[1]) >= 302) c.cap302 = true;
        reply("LS", [...offered].map(([k, v]) => (c.cap302 && v !== "" ? `${k}=${v}` : k)).join(" "));
        return;
      }
      case "LIST":
        reply("LIST", [...c.caps].join(" "));
        return;
      case "REQ": {
        if (!c.registered) c.capHold = true;
        const asked = (p[1] ?? "").split(" ").filter(Boolean);
        // All or nothing: one unknown capability NAKs the whole request.
        if (asked.length === 0 || asked.some((a) => !offered.has(a.replace(/^-/, "")))) {
          reply("NAK", p[1] ?? "");
          return;
        }
        for (const a of asked) {
          if (a.startsWith("-")) c.caps.delete(a.slice(1));
          else c.caps.add(a);
        }
        reply("ACK", asked.join(" "));
        return;
      }
      case "END":
        c.capHold = false;
        this.tryRegister(c);
        return;
      default:
        this.numeric(c, "410", sub, "Invalid CAP command");
    }
  }

  private nickCmd(c: Conn, nick: string | undefined): void {
    if (!nick) return this.numeric(c, "431", "No nickname given");
    if (!validNick(nick, this.options.nicklen)) return this.numeric(c, "432", nick, "Erroneous nickname");
    const holder = this.nicks.get(ircLower(nick));
    if (holder && holder !== c) return this.numeric(c, "433", nick, "Nickname is already in use");
    const old = c.nick;
    if (old) this.nicks.delete(ircLower(old));
    this.nicks.set(ircLower(nick), c);
    if (c.registered && old) {
      const line = formatLine({ prefix: `${old}!${c.user}@${c.host}`, command: "NICK", params: [nick] }, true);
      const told = new Set<Conn>([c]);
      c.send(line);
      for (const lower of c.channels) {
        const ch = this.channels.get(lower)!;
        const m = ch.members.get(ircLower(old));
        if (m) {
          ch.members.delete(ircLower(old));
          ch.members.set(ircLower(nick), m);
        }
        for (const o of ch.members.values()) {
          if (!told.has(o.client)) {
            told.add(o.client);
            o.client.send(line);
          }
        }
      }
    }
    c.nick = nick;
    this.tryRegister(c);
  }

  private tryRegister(c: Conn): void {
    if (c.registered || c.capHold || !c.nick || !c.user) return;
    c.registered = true;
    const o = this.options;
    this.numeric(c, "001", `Welcome to the ${o.network} IRC network ${c.mask}`);
    this.numeric(c, "002", `Your host is ${this.serverName}, running version fake-ircd-1`);
    this.numeric(c, "003", "This server was created for a test");
    c.send(formatLine({ prefix: this.serverName, command: "004", params: [c.nick, this.serverName, "fake-ircd-1", "io", "ntov"] }));
    const tokens = [
      "CASEMAPPING=rfc1459",
      "CHANTYPES=#",
      "PREFIX=(ov)@+",
      "CHANMODES=b,k,l,nt",
      `NICKLEN=${o.nicklen}`,
      "CHANNELLEN=50",
      `NETWORK=${o.network}`,
      "TARGMAX=PRIVMSG:1,NOTICE:1,TAGMSG:1",
    ];
    if (o.chathistory) tokens.push(`CHATHISTORY=${o.chathistoryMax}`, "MSGREFTYPES=msgid,timestamp");
    this.numeric(c, "005", ...tokens, ISUPPORT_TRAILER);
    this.numeric(c, "422", "MOTD File is missing");
  }

  // ------------------------------------------------------------ channels

  private join(c: Conn, name: string): void {
    if (!validChannel(name)) return this.numeric(c, "403", name, "No such channel");
    const lower = ircLower(name);
    let ch = this.channels.get(lower);
    if (ch?.members.has(ircLower(c.nick!))) return;
    if (!ch) {
      ch = { name, members: new Map(), history: new TargetHistory() };
      this.channels.set(lower, ch);
    }
    // The first one in an empty channel is its operator (RFC 2811 §4.1 channel creator, simplified).
    ch.members.set(ircLower(c.nick!), { client: c, op: ch.members.size === 0, voice: false });
    c.channels.add(lower);
    const line = formatLine({ prefix: c.mask, command: "JOIN", params: [ch.name] });
    for (const m of ch.members.values()) m.client.send(line);
    if (ch.topic) {
      this.numeric(c, "332", ch.name, ch.topic.text);
      this.numeric(c, "333", ch.name, ch.topic.by, String(Math.floor(ch.topic.at / 1000)));
    }
    this.names(c, ch.name);
  }

  private names(c: Conn, name: string): void {
    const ch = this.channels.get(ircLower(name));
    if (ch) {
      const list = [...ch.members.values()].map((m) => `${m.op ? "@" : m.voice ? "+" : ""}${m.client.nick}`);
      this.numeric(c, "353", "=", ch.name, list.join(" "));
    }
    this.numeric(c, "366", ch?.name ?? name, "End of /NAMES list");
  }

  private part(c: Conn, name: string, reason: string | undefined): void {
    const ch = this.channels.get(ircLower(name));
    if (!ch) return this.numeric(c, "403", name, "No such channel");
    if (!ch.members.has(ircLower(c.nick!))) return this.numeric(c, "442", ch.name, "You're not on that channel");
    const line = formatLine({ prefix: c.mask, command: "PART", params: reason ? [ch.name, reason] : [ch.name] }, reason !== undefined);
    for (const m of ch.members.values()) m.client.send(line);
    ch.members.delete(ircLower(c.nick!));
    c.channels.delete(ircLower(ch.name));
  }

  private topic(c: Conn, p: string[]): void {
    const ch = this.channels.get(ircLower(p[0] ?? ""));
    if (!ch) return this.numeric(c, "403", p[0] ?? "*", "No such channel");
    const me = ch.members.get(ircLower(c.nick!));
    if (p.length < 2) {
      if (!ch.topic) return this.numeric(c, "331", ch.name, "No topic is set");
      return this.numeric(c, "332", ch.name, ch.topic.text);
    }
    if (!me) return this.numeric(c, "442", ch.name, "You're not on that channel");
    if (!me.op) return this.numeric(c, "482", ch.name, "You're not channel operator");
    ch.topic = { text: p[1]!, by: c.nick!, at: Date.now() };
    const line = formatLine({ prefix: c.mask, command: "TOPIC", params: [ch.name, p[1]!] }, true);
    for (const m of ch.members.values()) m.client.send(line);
  }

  private mode(c: Conn, p: string[]): void {
    const target = p[0] ?? "";
    if (!target.startsWith("#")) {
      if (ircLower(target) !== ircLower(c.nick!)) return this.numeric(c, "502", "Can't change mode for other users");
      return this.numeric(c, "221", "+i");
    }
    const ch = this.channels.get(ircLower(target));
    if (!ch) return this.numeric(c, "403", target, "No such channel");
    if (p.length < 2) {
      // RPL_CHANNELMODEIS: Estuary completes a join on this answer.
      this.numeric(c, "324", ch.name, "+nt");
      return;
    }
    const me = ch.members.get(ircLower(c.nick!));
    const change = p[1]!;
    const m = /^([+-])([ov])$/.exec(change);
    if (!m) return this.numeric(c, "472", change.replace(/^[+-]/, "").slice(0, 1), "is unknown mode char to me");
    if (!me?.op) return this.numeric(c, "482", ch.name, "You're not channel operator");
    const who = ch.members.get(ircLower(p[2] ?? ""));
    if (!who) return this.numeric(c, "441", p[2] ?? "*", ch.name, "They aren't on that channel");
    if (m[2] === "o") who.op = m[1] === "+";
    else who.voice = m[1] === "+";
    const line = formatLine({ prefix: c.mask, command: "MODE", params: [ch.name, change, who.client.nick!] });
    for (const o of ch.members.values()) o.client.send(line);
  }

  // ------------------------------------------------------------ messages

  private nextMsgid(): string {
    return `fake${(++this.msgCounter).toString(36)}${randomBytes(6).toString("base64url")}`;
  }

  /** What `to` sees of a stored message: tags by its capabilities (message-tags, server-time, draft/relaymsg). */
  private render(to: Conn, m: StoredMessage, extra: Map<string, string> = new Map()): string {
    const tags = new Map(extra);
    if (to.caps.has("message-tags")) tags.set("msgid", m.msgid);
    if (to.caps.has("server-time")) tags.set("time", m.time.toISOString());
    if (m.relayedBy !== undefined && to.caps.has("draft/relaymsg")) tags.set("draft/relaymsg", m.relayedBy);
    return formatLine({ tags, prefix: m.prefix, command: m.command, params: [m.target, m.text] }, true);
  }

  private directHistory(a: string, b: string): TargetHistory {
    const key = [ircLower(a), ircLower(b)].sort().join("\n");
    let h = this.direct.get(key);
    if (!h) this.direct.set(key, (h = new TargetHistory()));
    return h;
  }

  private message(c: Conn, line: Line): void {
    const command = line.command as "PRIVMSG" | "NOTICE" | "TAGMSG";
    const target = line.params[0];
    const text = line.params[1];
    const quiet = command === "NOTICE";
    if (!target) return quiet ? undefined : this.numeric(c, "411", `No recipient given (${command})`);
    if (command !== "TAGMSG" && (text === undefined || text === "")) return quiet ? undefined : this.numeric(c, "412", "No text to send");
    // Client-only tags (message-tags "Client-only tags", `+` prefix) travel to clients that negotiated message-tags.
    const clientTags = new Map([...line.tags].filter(([k]) => k.startsWith("+")));
    let recipients: Conn[];
    let history: TargetHistory;
    if (target.startsWith("#")) {
      const ch = this.channels.get(ircLower(target));
      if (!ch) return quiet ? undefined : this.numeric(c, "403", target, "No such channel");
      // +n: no external messages.
      if (!ch.members.has(ircLower(c.nick!))) return quiet ? undefined : this.numeric(c, "404", ch.name, "Cannot send to channel");
      recipients = [...ch.members.values()].map((m) => m.client);
      history = ch.history;
    } else {
      const to = this.nicks.get(ircLower(target));
      if (!to?.registered) return quiet ? undefined : this.numeric(c, "401", target, "No such nick/channel");
      recipients = [c, to];
      history = this.directHistory(c.nick!, to.nick!);
    }
    const msgid = this.nextMsgid();
    const time = history.nextTime();
    if (command === "TAGMSG") {
      for (const r of recipients) {
        if (!r.caps.has("message-tags") || (r === c && !c.caps.has("echo-message"))) continue;
        const tags = new Map(clientTags);
        tags.set("msgid", msgid);
        if (r.caps.has("server-time")) tags.set("time", time.toISOString());
        r.send(formatLine({ tags, prefix: c.mask, command: "TAGMSG", params: [target] }));
      }
      return;
    }
    const stored: StoredMessage = { msgid, time, prefix: c.mask, command, target, text: text! };
    history.add(stored);
    for (const r of new Set(recipients)) {
      // echo-message: the sender gets its own message back only when it asked for it.
      if (r === c && !c.caps.has("echo-message")) continue;
      r.send(this.render(r, stored, r.caps.has("message-tags") ? clientTags : new Map()));
    }
  }

  private relaymsg(c: Conn, line: Line): void {
    const [target, spoofed, text] = line.params;
    if (target === undefined || spoofed === undefined || text === undefined || text === "") {
      return this.numeric(c, "461", "RELAYMSG", "Not enough parameters");
    }
    const separators = this.options.relaymsg;
    if (separators === false) return this.numeric(c, "421", "RELAYMSG", "Unknown command");
    const ch = this.channels.get(ircLower(target));
    if (!ch) return this.numeric(c, "403", target, "No such channel");
    // Ergo: only a channel operator may relay into a channel.
    if (!ch.members.get(ircLower(c.nick!))?.op) return this.fail(c, "RELAYMSG", "PRIVS_NEEDED", "You cannot relay messages to this channel");
    if (!validSpoofedNick(spoofed, separators, this.options.nicklen) || this.nicks.has(ircLower(spoofed))) {
      return this.fail(c, "RELAYMSG", "INVALID_NICK", `Invalid nickname: ${spoofed}`);
    }
    const stored: StoredMessage = {
      msgid: this.nextMsgid(),
      time: ch.history.nextTime(),
      prefix: `${spoofed}!relay@${this.serverName}`,
      command: "PRIVMSG",
      target: ch.name,
      text,
      relayedBy: c.nick!,
    };
    ch.history.add(stored);
    for (const m of ch.members.values()) {
      if (m.client === c && !c.caps.has("echo-message")) continue;
      m.client.send(this.render(m.client, stored));
    }
  }

  private chathistory(c: Conn, p: string[]): void {
    const sub = (p[0] ?? "").toUpperCase();
    if (!p[0]) return this.fail(c, "CHATHISTORY", "NEED_MORE_PARAMS", "*", "Missing parameters");
    if (!["LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN"].includes(sub)) {
      return this.fail(c, "CHATHISTORY", "UNKNOWN_COMMAND", p[0], "Unknown command");
    }
    const between = sub === "BETWEEN";
    if (p.length < (between ? 5 : 4)) return this.fail(c, "CHATHISTORY", "NEED_MORE_PARAMS", sub, "Missing parameters");
    const target = p[1]!;
    const refs: MsgRef[] = [];
    for (const raw of between ? [p[2]!, p[3]!] : [p[2]!]) {
      const ref = parseMsgRef(raw);
      // `*` only makes sense for LATEST.
      if (!ref || (ref.kind === "*" && sub !== "LATEST")) return this.fail(c, "CHATHISTORY", "INVALID_PARAMS", sub, raw, "Invalid message reference");
      refs.push(ref);
    }
    const rawLimit = p[between ? 4 : 3]!;
    if (!/^\d+$/.test(rawLimit)) return this.fail(c, "CHATHISTORY", "INVALID_PARAMS", sub, rawLimit, "Invalid limit");
    const max = this.options.chathistoryMax;
    let limit = Number(rawLimit);
    if (max > 0 && (limit === 0 || limit > max)) limit = max;
    let history: TargetHistory | undefined;
    if (target.startsWith("#")) {
      const ch = this.channels.get(ircLower(target));
      // Only members may read a channel's history (spec "Security Considerations").
      if (!ch?.members.has(ircLower(c.nick!))) return this.fail(c, "CHATHISTORY", "INVALID_TARGET", sub, target, "Messages could not be retrieved");
      history = ch.history;
    } else if (validNick(target, this.options.nicklen)) {
      history = this.directHistory(c.nick!, target);
    } else return this.fail(c, "CHATHISTORY", "INVALID_TARGET", sub, target, "Messages could not be retrieved");
    if (!this.answerChathistory) return;
    const found = history.select(sub as Subcommand, refs, limit === 0 ? Number.MAX_SAFE_INTEGER : limit);
    // The reply is a `chathistory` batch (batch/chathistory), each line with its original msgid and time.
    const batched = c.caps.has("batch");
    const id = randomBytes(6).toString("hex");
    if (batched) c.send(formatLine({ prefix: this.serverName, command: "BATCH", params: [`+${id}`, "chathistory", target] }));
    for (const m of found) c.send(this.render(c, m, batched ? new Map([["batch", id]]) : new Map()));
    if (batched) c.send(formatLine({ prefix: this.serverName, command: "BATCH", params: [`-${id}`] }));
  }
}
