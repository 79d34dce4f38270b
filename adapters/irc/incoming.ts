/**
 * PRIVMSG, CTCP ACTION and NOTICE received by an IrcConnection, as message
 * LegacyEvents: our own echoed lines are recognised and suppressed (say.ts,
 * relay.ts), server notices become service messages, and what the server
 * replays (a chathistory batch, InspIRCd's +H before the join completed) is
 * marked as history instead of live chat.
 *
 * IRCv3 message tags arrive in `ev.tags` (msgid and server-time are read
 * here); tag-only messages (TAGMSG: +typing, +draft/react) and further
 * client tags on PRIVMSG (+draft/reply) would be read beside them.
 */
import type { LegacyEvent } from "../../core/model.ts";
import { collectHistory, isHistoryBatch, MAX_REPLAYED } from "./chathistory.ts";
import type { IrcConnection } from "./connection.ts";
import { ircToRich } from "./format.ts";
import { contactId, ircLower, roomId } from "./ids.ts";
import { stripUnsafe } from "./lines.ts";
import { relayedBy, relayEchoed } from "./relay.ts";
import { echoKey, takeEcho } from "./say.ts";

/** privmsg, action and notice events (wire/events.ts). */
export interface MsgEvent {
  nick: string;
  ident: string;
  hostname: string;
  target: string;
  message: string;
  tags: Record<string, string>;
  time?: number;
  from_server: boolean;
  batch?: { type?: string; params?: string[] };
}

/** `kind`: P privmsg, A action, N notice. */
export function onMessage(c: IrcConnection, ev: MsgEvent, kind: "P" | "A" | "N"): void {
  const text = stripUnsafe(ev.message ?? "");
  // draft/relaymsg: a line this connection relayed for a bridge, echoed back. Never emitted: the
  // bridge must not relay its own output again.
  const relayer = relayedBy(ev.tags);
  if (relayer !== undefined && c.isSelf(relayer)) {
    relayEchoed(c, ircLower(ev.target), ev.nick);
    return;
  }
  const fromServer = ev.from_server || !ev.nick || (!ev.ident && !ev.hostname && ev.nick.includes("."));
  if (fromServer || (kind === "N" && ev.target === "*")) {
    c.hooks.emit({ type: "service-message", service: c.host, text: ircToRich(text), notice: kind === "N" });
    return;
  }
  const inChannel = c.isChannelName(ev.target);
  const self = c.isSelf(ev.nick);
  // echo-message (IRCv3): our own line coming back. Suppress what this session sent.
  if (self && takeEcho(c, ircLower(ev.target), echoKey(kind, text))) return;
  const chat = inChannel
    ? { kind: "room" as const, room: roomId(c.host, ev.target) }
    : { kind: "direct" as const, contact: contactId(c.host, self ? ev.target : ev.nick) };
  if (!inChannel) c.hooks.onDirectActivity();
  const event: Extract<LegacyEvent, { type: "message" }> = {
    type: "message",
    chat,
    // Someone relayed by another bridge (`alice/discord`) is nobody one can talk to on IRC: no contact.
    from: relayer !== undefined ? { nick: ev.nick } : { nick: ev.nick, contact: contactId(c.host, ev.nick) },
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
  const batchType = ev.batch?.type ?? "";
  // The answer to our CHATHISTORY: collected for history(), never shown as live chat.
  if (inChannel && isHistoryBatch(batchType) && collectHistory(c, ircLower(ev.batch?.params?.[0] ?? ev.target), event)) return;
  const ch = inChannel ? c.channels.get(ircLower(ev.target)) : undefined;
  if (/history/i.test(batchType) || (ch && !ch.synced)) event.history = true;
  if (ch && !ch.synced) {
    const buffered = (ch.history ??= []);
    buffered.push(event);
    if (buffered.length > MAX_REPLAYED) buffered.shift();
    return;
  }
  c.hooks.emit(event);
}
