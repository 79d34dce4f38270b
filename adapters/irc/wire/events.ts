/**
 * What the server says, as the events the IRC adapter listens to, with the
 * names and payload fields of irc-framework 4.14
 * (src/commands/handlers/{channel,messaging,user,misc}.js) for every field
 * adapters/irc/connection.ts reads. One module-level table for every
 * connection: handlers keep no state but the client's.
 */
import type { IrcClient, WireMessage } from "./client.ts";
import { parseModes } from "./isupport.ts";

type Handler = (c: IrcClient, m: WireMessage) => void;

const NUMERIC_TIME = /^[0-9.]+$/;

/** IRCv3 server-time (`time` tag, ISO 8601) in ms; ZNC's older unix-seconds form too. */
export function serverTime(tags: Record<string, string>): number | undefined {
  const t = tags.time;
  if (!t) return undefined;
  const ms = Date.parse(t);
  if (ms) return ms;
  return NUMERIC_TIME.test(t) ? Number(t) * 1000 || undefined : undefined;
}

/** `nick!user@host` → its parts (irc-framework's Helpers.parseMask, for masks inside parameters). */
function parseMask(mask: string): { nick: string; ident: string; hostname: string } {
  const bang = mask.indexOf("!");
  const at = mask.indexOf("@");
  if (bang === -1 && at === -1) return mask.includes(".") ? { nick: "", ident: "", hostname: mask } : { nick: mask, ident: "", hostname: "" };
  if (bang === -1) return { nick: mask.slice(0, at), ident: "", hostname: mask.slice(at + 1) };
  if (at === -1) return { nick: mask.slice(0, bang), ident: mask.slice(bang + 1), hostname: "" };
  return { nick: mask.slice(0, bang), ident: mask.slice(bang + 1, at), hostname: mask.slice(at + 1) };
}

function last(m: WireMessage): string | undefined {
  return m.params[m.params.length - 1];
}

/** A message to `@#chan` (STATUSMSG: only the channel's operators): the channel and the prefix apart. */
function targetOf(c: IrcClient, target: string): { target: string; group: string | undefined } {
  const statusmsg = c.network.options.STATUSMSG;
  if (statusmsg && target.length > 1 && statusmsg.includes(target[0]!)) return { target: target.slice(1), group: target[0] };
  return { target, group: undefined };
}

function message(c: IrcClient, m: WireMessage, text: string): Record<string, unknown> {
  const { target, group } = targetOf(c, m.params[0] ?? "");
  return {
    from_server: !m.nick,
    nick: m.nick,
    ident: m.ident,
    hostname: m.hostname,
    target,
    group,
    message: text,
    tags: m.tags,
    time: serverTime(m.tags),
    account: m.tags.account,
    batch: m.batch,
  };
}

function isCtcp(text: string): boolean {
  return text.length >= 2 && text.charCodeAt(0) === 1 && text.charCodeAt(text.length - 1) === 1;
}

/** PRIVMSG: `privmsg`, or `action` for CTCP ACTION; other CTCP requests are not answered (no VERSION reply, as the adapter sets it). */
function onPrivmsg(c: IrcClient, m: WireMessage): void {
  const text = last(m) ?? "";
  if (!isCtcp(text)) {
    c.emit("privmsg", message(c, m, text));
    return;
  }
  const command = text.slice(1, -1).split(" ")[0]!.toUpperCase();
  // "\x01ACTION text\x01" → "text" (CTCP: https://modern.ircdocs.horse/ctcp#action).
  if (command === "ACTION") c.emit("action", message(c, m, text.slice(8, -1)));
}

/** NOTICE: `notice`; a CTCP reply (`\x01…\x01`) is none (irc-framework emits it as `ctcp response`). */
function onNotice(c: IrcClient, m: WireMessage): void {
  const text = last(m) ?? "";
  if (!isCtcp(text)) c.emit("notice", message(c, m, text));
}

function onJoin(c: IrcClient, m: WireMessage): void {
  // extended-join: `JOIN #chan account :gecos`.
  const extended = c.network.cap.isEnabled("extended-join");
  const ev: Record<string, unknown> = {
    nick: m.nick,
    ident: m.ident,
    hostname: m.hostname,
    gecos: m.params[extended ? 2 : 1] ?? "",
    channel: m.params[0] || undefined,
    time: serverTime(m.tags),
    tags: m.tags,
    batch: m.batch,
  };
  if (extended) ev.account = m.params[1] === "*" ? false : m.params[1];
  c.emit("join", ev);
}

function onPart(c: IrcClient, m: WireMessage): void {
  c.emit("part", {
    nick: m.nick,
    ident: m.ident,
    hostname: m.hostname,
    channel: m.params[0],
    message: (m.params.length > 1 ? last(m) : "") || "",
    time: serverTime(m.tags),
    tags: m.tags,
    batch: m.batch,
  });
}

function onKick(c: IrcClient, m: WireMessage): void {
  c.emit("kick", {
    kicked: m.params[1],
    nick: m.nick,
    ident: m.ident,
    hostname: m.hostname,
    channel: m.params[0],
    message: last(m) || "",
    time: serverTime(m.tags),
    tags: m.tags,
    batch: m.batch,
  });
}

function onQuit(c: IrcClient, m: WireMessage): void {
  c.emit("quit", { nick: m.nick, ident: m.ident, hostname: m.hostname, message: last(m) || "", time: serverTime(m.tags), tags: m.tags, batch: m.batch });
}

function onNick(c: IrcClient, m: WireMessage): void {
  const newNick = m.params[0] ?? "";
  // irc-framework: nicks starting with a digit are UIDs (a forced nick change), never kept as our nick.
  if (c.nick === m.nick && !/^\d/.test(newNick)) c.nick = newNick;
  c.emit("nick", { nick: m.nick, ident: m.ident, hostname: m.hostname, new_nick: newNick, time: serverTime(m.tags), tags: m.tags, batch: m.batch });
}

function onMode(c: IrcClient, m: WireMessage): void {
  const rawModes = m.params[1];
  const rawParams = m.params.slice(2);
  c.emit("mode", {
    target: m.params[0],
    nick: m.nick || m.prefix || "",
    modes: parseModes(c.network.options, rawModes, rawParams),
    time: serverTime(m.tags),
    raw_modes: rawModes,
    raw_params: rawParams,
    tags: m.tags,
    batch: m.batch,
  });
}

function onTopic(c: IrcClient, m: WireMessage): void {
  if (!m.params[0]) return;
  c.emit("topic", { nick: m.nick, channel: m.params[0], topic: (m.params.length > 1 ? last(m) : "") || "", time: serverTime(m.tags), tags: m.tags });
}

function onInvite(c: IrcClient, m: WireMessage): void {
  c.emit("invite", { nick: m.nick, ident: m.ident, hostname: m.hostname, invited: m.params[0], channel: m.params[1], time: serverTime(m.tags), tags: m.tags });
}

/** AWAY (IRCv3 away-notify): with a message, away; without, back. */
function onAway(c: IrcClient, m: WireMessage): void {
  const text = (m.params.length > 0 ? last(m) : "") || "";
  c.emit(text === "" ? "back" : "away", { self: false, nick: m.nick, message: text, time: serverTime(m.tags), tags: m.tags });
}

/** 301 RPL_AWAY: the person we wrote to is away. */
function onRplAway(c: IrcClient, m: WireMessage): void {
  c.emit("away", { self: false, nick: m.params[1], message: last(m) || "is away", time: serverTime(m.tags), tags: m.tags });
}

/** 305 RPL_UNAWAY, 306 RPL_NOWAWAY: our own state. */
function selfAway(event: "away" | "back"): Handler {
  return (c, m) => c.emit(event, { self: true, nick: m.params[0], message: m.params[1] || "", time: serverTime(m.tags), tags: m.tags });
}

/** 353 RPL_NAMREPLY `<me> <type> <channel> :[prefixes]nick[!user@host] …`, collected until 366. */
/**
 * At most this many NAMES entries are held per connection while lists are
 * being collected (353 until 366): a big channel has a few thousand; a server
 * that never ends its lists must not make us hold names without bound. Beyond
 * it, further entries are left out of that list (the occupants then fill in
 * from JOIN, PRIVMSG and WHO-less traffic as people speak).
 */
export const MAX_NAMES_HELD = 50_000;

function onNames(c: IrcClient, m: WireMessage): void {
  const key = c.caseLower(m.params[2] ?? "");
  const names = (c.names ??= new Map());
  let held = 0;
  for (const list of names.values()) held += list.length;
  if (held >= MAX_NAMES_HELD) return;
  let members = names.get(key);
  if (!members) names.set(key, (members = []));
  const prefix = c.network.options.PREFIX ?? [];
  for (const entry of (last(m) ?? "").split(" ")) {
    if (!entry) continue;
    // multi-prefix sends every prefix the person has (`@+nick`), highest first.
    const modes: string[] = [];
    let i = 0;
    for (; i < entry.length; i++) {
      const p = prefix.find((x) => x.symbol === entry[i]);
      if (!p) break;
      modes.push(p.mode);
    }
    const user = parseMask(entry.slice(i));
    members.push({ nick: user.nick, ident: user.ident, hostname: user.hostname, modes, tags: m.tags });
  }
}

/** 366 RPL_ENDOFNAMES: the whole list. */
function onEndOfNames(c: IrcClient, m: WireMessage): void {
  const key = c.caseLower(m.params[1] ?? "");
  const users = c.names?.get(key) ?? [];
  c.names?.delete(key);
  if (c.names?.size === 0) c.names = undefined;
  c.emit("userlist", { channel: m.params[1], users, tags: m.tags });
}

function onTopicReply(c: IrcClient, m: WireMessage): void {
  c.emit("topic", { channel: m.params[1], topic: m.command === "331" ? "" : (last(m) ?? ""), tags: m.tags, batch: m.batch });
}

/** 333 RPL_TOPICWHOTIME `<me> <channel> <nick[!user@host]> <setat>`. */
function onTopicWhoTime(c: IrcClient, m: WireMessage): void {
  const who = parseMask(m.params[2] ?? "");
  c.emit("topicsetby", { nick: who.nick, ident: who.ident, hostname: who.hostname, channel: m.params[1], when: m.params[3], tags: m.tags });
}

/** 324 RPL_CHANNELMODEIS: the answer to MODE #chan. */
function onChannelModes(c: IrcClient, m: WireMessage): void {
  const rawModes = m.params[2];
  const rawParams = m.params.slice(3);
  c.emit("channel info", { channel: m.params[1], modes: parseModes(c.network.options, rawModes, rawParams), raw_modes: rawModes, raw_params: rawParams, tags: m.tags });
}

function onCreationTime(c: IrcClient, m: WireMessage): void {
  c.emit("channel info", { channel: m.params[1], created_at: parseInt(m.params[2] ?? "", 10), tags: m.tags });
}

function onChannelUrl(c: IrcClient, m: WireMessage): void {
  c.emit("channel info", { channel: m.params[1], url: last(m), tags: m.tags });
}

/** 396 RPL_HOSTHIDDEN `<me> <host> :is now your displayed host`. */
function onDisplayedHost(c: IrcClient, m: WireMessage): void {
  if (c.nick === m.params[0]) c.host = m.params[1] ?? c.host;
  c.emit("displayed host", { nick: m.params[0], hostname: m.params[1], tags: m.tags });
}

function onPing(c: IrcClient, m: WireMessage): void {
  c.write(`PONG ${last(m) ?? ""}`);
}

/**
 * Lines held per open batch (and open batches per connection)
 * before a batch is handed on line by line: a chathistory answer is at most
 * the server's CHATHISTORY limit, a netsplit a few thousand QUITs; a server
 * that never ends a batch must not make us hold its lines without bound.
 */
export const MAX_BATCH_LINES = 5000;
export const MAX_OPEN_BATCHES = 16;

/**
 * BATCH (https://ircv3.net/specs/extensions/batch): as irc-framework does,
 * the lines of a batch are held and handled only at its end, each with
 * `batch: {id, type, params}`, between `batch start` and `batch end`
 * (the adapter collects a chathistory answer that way).
 */
function onBatch(c: IrcClient, m: WireMessage): void {
  const ref = m.params[0] ?? "";
  const id = ref.slice(1);
  if (!id) return;
  if (ref[0] === "+") {
    // Beyond the bound, a batch is not held: its lines are handled as they come (client.ts).
    if ((c.batches?.size ?? 0) >= MAX_OPEN_BATCHES) return;
    (c.batches ??= new Map()).set(id, { id, type: m.params[1], params: m.params.slice(2), commands: [] });
    return;
  }
  const batch = c.batches?.get(id);
  if (!batch) return;
  c.batches!.delete(id);
  if (c.batches!.size === 0) c.batches = undefined;
  c.emit("batch start", batch);
  const info = { id, type: batch.type, params: batch.params };
  for (const command of batch.commands) {
    command.batch = info;
    c.execute(command);
  }
  c.emit("batch end", batch);
}

export const EVENT_HANDLERS: Record<string, Handler> = {
  PRIVMSG: onPrivmsg,
  NOTICE: onNotice,
  JOIN: onJoin,
  PART: onPart,
  KICK: onKick,
  QUIT: onQuit,
  NICK: onNick,
  MODE: onMode,
  TOPIC: onTopic,
  INVITE: onInvite,
  AWAY: onAway,
  PING: onPing,
  BATCH: onBatch,
  "301": onRplAway,
  "305": selfAway("back"),
  "306": selfAway("away"),
  "324": onChannelModes,
  "328": onChannelUrl,
  "329": onCreationTime,
  "331": onTopicReply,
  "332": onTopicReply,
  "333": onTopicWhoTime,
  "353": onNames,
  "366": onEndOfNames,
  "396": onDisplayedHost,
};
